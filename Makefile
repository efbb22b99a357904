# The two commands a new user runs: `make demo` and `make test`.
# Both create the virtual environment, install, build the engine, and run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TYPES  := sdk/types
WEB    := runtime/console/web

.PHONY: setup engine typings console browser demo test lint bench bench-latency bench-flows bench-compare clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

engine: setup
	$(BIN)/python -m runtime.engine.build

# TypeScript, pinned by sdk/types/package-lock.json, checks the example actions
# against the sandbox's typings (tests/sdk/test_typings.py). node_modules is
# never committed; npm's cache makes later installs offline.
$(TYPES)/node_modules/.installed: $(TYPES)/package.json $(TYPES)/package-lock.json
	@command -v npm >/dev/null || { echo "make typings: npm is missing; install Node.js 18 or later with npm" >&2; exit 1; }
	cd $(TYPES) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	@touch $@

typings: $(TYPES)/node_modules/.installed

# The web console (/console): its sources in runtime/console/web, bundled with esbuild into
# runtime/console/_built (never committed). CodeMirror, diff and esbuild are pinned by the
# web folder's package-lock.json; npm's cache makes later installs offline.
$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "make console: npm is missing; install Node.js 18 or later with npm" >&2; exit 1; }
	cd $(WEB) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	@touch $@

runtime/console/_built/console.js: $(WEB)/node_modules/.installed $(wildcard $(WEB)/src/*.js $(WEB)/src/*/*.js $(WEB)/src/*.css)
	cd $(WEB) && npm run --silent build

console: runtime/console/_built/console.js

# The console's browser test drives Debian's chromium (or the Chromium that $CHROMIUM names);
# as root it is installed when missing, otherwise this says how to get it.
browser:
	@if [ -z "$$CHROMIUM" ] && ! command -v chromium >/dev/null; then \
	    if [ "$$(id -u)" -ne 0 ]; then \
	        echo "make test: the console's browser test needs Debian's chromium; as root: apt-get install chromium (or set CHROMIUM)" >&2; exit 1; \
	    fi; \
	    echo "Installing Debian's chromium for the console's browser test (once)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null || { \
	        echo "make test: apt-get could not install chromium; install it, or set CHROMIUM to a Chromium binary" >&2; exit 1; }; \
	fi

demo: engine console
	$(BIN)/python -m sdk.demo

test: engine typings console browser
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The benchmarks (benchmarks/README.md): figures, targets and plots in benchmarks/results/.
bench: bench-latency bench-flows

bench-latency: engine
	$(BIN)/python benchmarks/execution_latency.py

# Starts its own server on a fresh database: DATABASE_URL's server, else the local
# PostgreSQL at 127.0.0.1:5432, else the embedded one. About 3 minutes.
bench-flows: engine
	$(BIN)/python benchmarks/flow_throughput.py

# The working tree against another build, served side by side in alternating rounds:
# make bench-compare BASE=<git revision> (default HEAD: what the uncommitted changes do). About 2 minutes.
BASE ?= HEAD
bench-compare: engine
	$(BIN)/python benchmarks/compare_flows.py $(BASE)

clean:
	rm -rf $(VENV) runtime/engine/_built $(TYPES)/node_modules runtime/console/_built $(WEB)/node_modules \
		.pytest_cache .mypy_cache .ruff_cache
