# The two commands of the README's Quickstart:
#   make demo   runs the demo site on http://127.0.0.1:8000
#   make test   installs everything and runs every quality gate and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: demo test install lint typecheck coverage pytest docs bench screenshots clean

demo: $(VENV)/.installed
	$(BIN)/consent demo --port $(PORT)

test: $(VENV)/.installed node_modules/.installed lint typecheck coverage pytest docs

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py src/consent/core/_speedups.c
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "asgi-consent needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# axe-core (accessibility checks in the browser tests) comes from npm when npm is there;
# without npm those checks skip with a message (CI requires them).
node_modules/.installed: package.json
	@if command -v npm >/dev/null 2>&1; then \
		npm install --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: accessibility (axe-core) checks will be skipped"; fi

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The whole suite twice: with the compiled kernels, then with their pure-Python
# twins (CONSENT_PURE_PYTHON=1), so that every behaviour is shown in both modes.
pytest: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	CONSENT_PURE_PYTHON=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# The sans-IO core's promise: its tests (pure ones and the strict-harness ones of
# the shells) exercise every branch of src/consent/core, the compiled kernels and
# the pure twins chosen in turn (the two runs are combined). Measured apart from
# the full run because, on Python 3.11, the coverage tracer changes how asyncio
# cancellation reaches some framework tests (Django's disconnect listener).
COVERED := tests/core tests/test_asgi.py tests/test_endpoint.py tests/test_shared_behaviour.py
coverage: $(VENV)/.installed
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run --parallel-mode --branch --source=consent.core -m pytest -q -p no:cacheprovider $(COVERED)
	CONSENT_PURE_PYTHON=1 $(BIN)/python -m coverage run --parallel-mode --branch --source=consent.core -m pytest -q -p no:cacheprovider $(COVERED)
	$(BIN)/python -m coverage combine --quiet
	$(BIN)/python -m coverage report --show-missing --fail-under=100

docs: $(VENV)/.installed
	@if [ -f mkdocs.yml ]; then NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site; fi

# Refresh the screenshots the README and docs show (tests write them to build/ otherwise).
screenshots: $(VENV)/.installed
	CONSENT_SCREENSHOTS=docs/img $(BIN)/python -m pytest tests/banner/test_browser_banner.py tests/test_demo.py -k "screenshot or chromium"

bench: $(VENV)/.installed
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) node_modules build .pytest_cache .mypy_cache .ruff_cache
