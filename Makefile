# vodfc: two commands on a fresh machine.
#   make serve   the whole stack, offline, on the local defaults (SQLite + emulated VOD/OSS);
#                make serve PORT=8010 for another port, ARGS="..." for more vodfc serve flags
#   make test    install what is needed, lint, type-check, run the suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
PIP    := $(PY) -m pip install -q --disable-pip-version-check
# Two stamps in one venv: `make serve` needs the runtime and devkit extra only; `make test` adds
# the test toolchain (and so satisfies serve's stamp too).
DEVKIT_STAMP := $(VENV)/.installed-devkit
STAMP        := $(VENV)/.installed-test

.PHONY: install pgbouncer serve test lint typecheck pytest test-load test-browser test-py310 test-newcomer bench package clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# --no-compile: serving imports a fraction of what is installed; Python compiles that on first use.
$(DEVKIT_STAMP): pyproject.toml | $(PY)
	$(PIP) --no-compile -e '.[devkit]'
	touch $(DEVKIT_STAMP)

# What `make serve` installed has no bytecode yet: compile it as pip would have (quietly: some
# packages' sources warn when compiled, and the suite turns warnings into errors).
$(STAMP): pyproject.toml | $(PY)
	$(PIP) -e '.[devkit,test]'
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null 2>&1 || true
	touch $(STAMP) $(DEVKIT_STAMP)

install: $(STAMP)

serve: $(DEVKIT_STAMP)
	$(VENV)/bin/vodfc serve --port $(PORT) $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check shared functions

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# PgBouncer for the pooler tests (tests/pgbouncer.py starts private ones): Debian's package,
# installed when missing and apt is usable (root, or sudo without a password). Under CI=true a
# PgBouncer that cannot be installed fails the run; elsewhere those tests are skipped.
HAVE_PGBOUNCER = command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]
pgbouncer:
	@if $(HAVE_PGBOUNCER); then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi; \
	if [ "$$sudo" != none ] && command -v apt-get >/dev/null 2>&1; then \
		echo "pgbouncer: installing Debian's package"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$sudo apt-get install -y -q pgbouncer >/dev/null 2>&1 || \
		{ $$sudo apt-get update -q >/dev/null && $$sudo apt-get install -y -q pgbouncer >/dev/null; }; \
	fi; \
	if $(HAVE_PGBOUNCER); then exit 0; fi; \
	if [ "$$CI" = "true" ]; then echo "pgbouncer: not installed and apt cannot install it (CI=true)" >&2; exit 1; fi; \
	echo "pgbouncer: not installed (apt unusable); the PgBouncer tests will be skipped"

# The suite with the coverage gate of pyproject.toml ([tool.coverage.report] fail_under).
pytest: $(STAMP) pgbouncer
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
	$(VENV310)/bin/python -m pip install -q --disable-pip-version-check -e '.[devkit,test]'; \
	$(VENV310)/bin/python -m pytest -q -p no:cacheprovider tests/unit tests/functional tests/security $(PYTEST_ARGS)

test-load: $(STAMP)
	$(PY) -m pytest -q -m load tests/load $(PYTEST_ARGS)

# The demo page (examples/web) in Debian's Chromium: run.mjs starts `vodfc serve` on a free port with
# a temporary --data-dir and short emulator delays, uploads a multipart file with a credential that
# expires mid-upload, stops the server; screenshot in test-artifacts/browser/finished.png.
test-browser: $(DEVKIT_STAMP)
	@test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	cd examples/web/vendor && sha256sum --check --quiet SHA256SUMS
	cd tests/browser && npm ci --no-audit --no-fund
	mkdir -p test-artifacts/browser
	node tests/browser/run.mjs

# A fresh clone's first hour (tests/newcomer), with the opt-in part: `make serve` in a new clone
# and venv (warm pip cache), timed against the 15 s goal.
test-newcomer: $(STAMP)
	VODFC_TEST_FRESH_CLONE=1 $(PY) -m pytest -q tests/newcomer $(PYTEST_ARGS)

bench: $(STAMP)
	$(PIP) -e '.[devkit,test,bench]'
	$(PY) -m bench $(ARGS)

package: $(STAMP)
	$(VENV)/bin/vodfc package --out dist

clean:
	rm -rf $(VENV) .vodfc dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
