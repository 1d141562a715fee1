# statsaga: `make run` starts the service with local Azurite; `make test` runs the tests.
# Both install what they need first (a Python venv in .venv, Azurite in node_modules).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_OK  := $(VENV)/.installed
NODE_OK := node_modules/.installed
# Every Python dependency, pinned with the hashes of its files: requirements.lock (what
# the image needs) and requirements-dev.lock (that plus the tools and tests'), both from
# pyproject.toml by `make lock`, with this uv.
LOCK   := requirements-dev.lock
UV     := uv==0.13.8

.PHONY: run test lint unit capacity bench bench-quick screenshots deps lock clean

deps: $(PY_OK) $(NODE_OK)

$(PY_OK): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "statsaga needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# After a change to the dependencies in pyproject.toml (docs/running.md): resolve again.
# `make lock UPGRADE=--upgrade` also moves the unpinned transitive ones to their newest.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(UV)
	$(BIN)/uv pip compile pyproject.toml $(UPGRADE) --generate-hashes --python-version 3.11 \
	  --custom-compile-command "make lock" --quiet -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml $(UPGRADE) --extra dev --generate-hashes \
	  --python-version 3.11 --custom-compile-command "make lock" --quiet -o $(LOCK)

$(NODE_OK): package.json package-lock.json
	@command -v node >/dev/null || { echo "node (>= 18) is needed for Azurite: see README"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# --with-parent: killing make (even with SIGKILL) stops the stack; DEV_FLAGS=--free-ports
# keeps it off the default ports.
run: deps
	$(BIN)/statsaga dev --with-parent $(DEV_FLAGS)

lint: $(PY_OK)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: deps lint
	$(BIN)/pytest

unit: $(PY_OK)
	$(BIN)/pytest tests/unit

# The shard-capacity test at full size: 20,000 players through one shard of capacity
# 2,000 (~5 min; `make test` runs it at 2,000 players through capacity 200).
capacity: deps
	STATSAGA_TEST_CAPACITY_PLAYERS=20000 $(BIN)/pytest tests/integration/test_pools.py -k many_players

# The web pages' screenshots in docs/screenshots (the README shows them): the browser
# tests, writing their PNGs there rather than to a temp dir.
screenshots: deps
	STATSAGA_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/browser

# The end-to-end benchmark (docs/performance.md): results, summary and plots in
# bench/results/. `bench-quick` takes under 3 minutes, `bench` about 7.
bench: deps
	$(BIN)/statsaga bench

bench-quick: deps
	$(BIN)/statsaga bench --quick

clean:
	rm -rf $(VENV) node_modules .data .pytest_cache .mypy_cache .ruff_cache
