# vodfc: two commands on a fresh machine.
#   make serve   the whole stack, offline, on the embedded default (SQLite + emulated VOD/OSS)
#   make test    install what is needed, lint, type-check, run the suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install serve test lint typecheck pytest test-load test-browser test-py310 bench package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/vodfc serve $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check shared functions

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The suite with the coverage gate of pyproject.toml ([tool.coverage.report] fail_under).
pytest: $(STAMP)
	$(PY) -m pytest -q --cov --cov-report=term $(PYTEST_ARGS)

test: lint typecheck pytest

# FC's runtime is python3.10: run the unit and functional suites on it too (pyenv's 3.10 here).
PY310 ?= $(shell ls -d $$HOME/.pyenv/versions/3.10.*/bin/python3.10 2>/dev/null | tail -n 1)
VENV310 := .venv310
test-py310:
	@if [ -z "$(PY310)" ] && ! command -v python3.10 >/dev/null; then \
		if [ "$$CI" = "true" ]; then echo "test-py310: no Python 3.10 found" >&2; exit 1; fi; \
		echo "test-py310: no Python 3.10 found; skipped"; exit 0; fi; \
	py="$(PY310)"; [ -n "$$py" ] || py=python3.10; \
	[ -x $(VENV310)/bin/python ] || $$py -m venv $(VENV310); \
	$(VENV310)/bin/python -m pip install -q --upgrade pip; \
	$(VENV310)/bin/python -m pip install -q -e '.[dev]'; \
	$(VENV310)/bin/python -m pytest -q -p no:cacheprovider tests/unit tests/functional tests/security $(PYTEST_ARGS)

test-load: $(STAMP)
	$(PY) -m pytest -q -m load tests/load $(PYTEST_ARGS)

# The demo page (examples/web) in Debian's Chromium: run.mjs starts `vodfc serve` on a free port with
# a temporary --data-dir and short emulator delays, uploads a multipart file with a credential that
# expires mid-upload, stops the server; screenshot in test-artifacts/browser/finished.png.
test-browser: $(STAMP)
	@test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	cd examples/web/vendor && sha256sum --check --quiet SHA256SUMS
	cd tests/browser && npm ci --no-audit --no-fund
	mkdir -p test-artifacts/browser
	node tests/browser/run.mjs

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m bench $(ARGS)

package: $(STAMP)
	$(VENV)/bin/vodfc package --out dist

clean:
	rm -rf $(VENV) .vodfc dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
