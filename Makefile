# The two commands of the README: `make demo` (examples vs the embedded server) and
# `make test` (the project's tests). Each makes its own virtualenv on first use.

VENV ?= .venv
# The first Python >= 3.11 on PATH, unless PYTHON is given.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
BIN := $(VENV)/bin
# Parallel workers for the test suite (0 = serial).
WORKERS ?= 2

.PHONY: demo test lint check bench clean

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11+ not found on PATH (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# pytest exit code 5 (no tests collected) is a failure: a run that tests nothing is no pass.
NO_TESTS_IS_FAILURE = rc=$$?; if [ $$rc -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi; exit $$rc

# Each project under examples/ with its own pyproject.toml runs as its own pytest project
# (-c names its configuration); the cookbook's servers come from docs/cookbook.md.
COOKBOOK = examples/cookbook
demo: $(BIN)/.installed
	$(BIN)/pytest examples -p ws_resilience -v --ignore=examples/fastapi_app --ignore=$(COOKBOOK); $(NO_TESTS_IS_FAILURE)
	$(BIN)/pytest -c examples/fastapi_app/pyproject.toml examples/fastapi_app -p ws_resilience -v; $(NO_TESTS_IS_FAILURE)
	$(BIN)/pytest -c $(COOKBOOK)/channels_chat/pyproject.toml $(COOKBOOK)/channels_chat -p ws_resilience -v; $(NO_TESTS_IS_FAILURE)
	$(BIN)/pytest -c $(COOKBOOK)/channels_chat/pyproject.toml $(COOKBOOK)/channels_chat -p ws_resilience -v \
		--ws-server-cmd='daphne -p {port} mysite.asgi:application'; $(NO_TESTS_IS_FAILURE)
	$(BIN)/pytest -c $(COOKBOOK)/aiohttp_echo/pyproject.toml $(COOKBOOK)/aiohttp_echo -p ws_resilience -v \
		--ws-server-cmd='python server.py --port {port}'; $(NO_TESTS_IS_FAILURE)
	$(BIN)/pytest -c $(COOKBOOK)/websockets_game/pyproject.toml $(COOKBOOK)/websockets_game -p ws_resilience -v; $(NO_TESTS_IS_FAILURE)
	$(BIN)/pytest -c $(COOKBOOK)/starlette_app/pyproject.toml $(COOKBOOK)/starlette_app -p ws_resilience -v; $(NO_TESTS_IS_FAILURE)

test: $(BIN)/.installed
	$(BIN)/pytest tests -n $(WORKERS) --dist loadgroup; $(NO_TESTS_IS_FAILURE)

lint: $(BIN)/.installed
	$(BIN)/ruff check pytest_ws_resilience tests examples benchmarks
	$(BIN)/ruff format --check pytest_ws_resilience tests examples benchmarks
	$(BIN)/mypy

check: lint test

# The release as users get it (.ci/wheel-check): build the wheel and the sdist, twine
# check, install the wheel into a fresh virtualenv, run the examples with it outside the tree.
.PHONY: wheel-check
wheel-check: $(BIN)/.installed
	VENV=$(VENV) bash .ci/wheel-check

# The whole suite at the oldest release of every dependency pyproject.toml allows (.ci/floor-check).
.PHONY: floor-check
floor-check: $(BIN)/.installed
	VENV=$(VENV) WORKERS=$(WORKERS) bash .ci/floor-check

# The whole suite on every other CPython the classifiers declare (.ci/python-matrix):
# pyenv's or PATH's, else Debian unstable's in a chroot (needs root).
.PHONY: python-matrix
python-matrix: $(BIN)/.installed
	VENV=$(VENV) WORKERS=$(WORKERS) bash .ci/python-matrix

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/suite_overhead.py
	$(BIN)/python benchmarks/client_overhead.py
	$(BIN)/python benchmarks/isolation.py
	$(BIN)/python benchmarks/pool.py
	$(BIN)/python benchmarks/chaos_proxy.py
	$(BIN)/python benchmarks/storm.py
	$(BIN)/python benchmarks/parallel.py
	$(BIN)/python benchmarks/service_ready.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/fuzz_throughput.py
	$(BIN)/python benchmarks/fuzz_find.py
	$(BIN)/python benchmarks/idle_timeout.py
	$(BIN)/python benchmarks/server_growth.py
	$(BIN)/python benchmarks/scenario_run.py
	$(BIN)/python benchmarks/locust_bridge.py
	$(BIN)/python benchmarks/distributed_load.py

clean:
	rm -rf $(VENV) .venv-3.* .tox .pytest_cache .mypy_cache .ruff_cache
