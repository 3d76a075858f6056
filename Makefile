# vodfc: two commands on a fresh machine.
#   make serve   the whole stack, offline, on the embedded default (SQLite + emulated VOD/OSS)
#   make test    install what is needed, lint, type-check, run the suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install serve test lint typecheck pytest test-load test-browser bench package clean

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

pytest: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

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
