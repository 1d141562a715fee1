# statsaga: `make run` starts the service with local Azurite; `make test` runs the tests.
# Both install what they need first (a Python venv in .venv, Azurite in node_modules).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_OK  := $(VENV)/.installed
NODE_OK := node_modules/.installed

.PHONY: run test lint unit deps clean

deps: $(PY_OK) $(NODE_OK)

$(PY_OK): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "statsaga needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(NODE_OK): package.json package-lock.json
	@command -v node >/dev/null || { echo "node (>= 18) is needed for Azurite: see README"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: deps
	$(BIN)/statsaga dev

lint: $(PY_OK)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: deps lint
	$(BIN)/pytest

unit: $(PY_OK)
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) node_modules .data .pytest_cache .mypy_cache .ruff_cache
