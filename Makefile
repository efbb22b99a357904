# The two commands a new user runs: `make demo` and `make test`.
# Both create the virtual environment, install, build the engine, and run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: setup engine demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

engine: setup
	$(BIN)/python -m runtime.engine.build

demo: engine
	$(BIN)/python -m sdk.demo

test: engine
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: engine
	$(BIN)/python benchmarks/execution_latency.py

clean:
	rm -rf $(VENV) runtime/engine/_built .pytest_cache .mypy_cache .ruff_cache
