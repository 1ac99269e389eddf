# The two commands of the README's Quickstart:
#   make demo   runs the demo site on http://127.0.0.1:8000
#   make test   installs everything and runs every quality gate and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: demo test install lint typecheck coverage pytest sanitize sanitized-run docs bench screenshots clean

demo: $(VENV)/.installed
	$(BIN)/consent demo --port $(PORT)

test: $(VENV)/.installed node_modules/.installed lint typecheck coverage pytest sanitize docs

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

# The compiled kernels once more, built with AddressSanitizer and UBSan into
# build/asan/ (the build in src/ is left as it is) and driven by the tests that
# call them. tests/conftest.py loads the file CONSENT_SPEEDUPS_PATH names as
# consent.core._speedups, and test_kernels.py checks that it is the one run. Any
# report (a read past a buffer, a use after free, a signed overflow, ...) ends the
# process at once, so the run fails; --capture=sys leaves file descriptor 2 alone
# so that the report shows (pytest's default capture would swallow it).
# Python itself is not built with ASan: the ASan runtime is preloaded, Python's
# allocator is plain malloc (so ASan sees every object's bounds) and leaks are not
# looked for (the interpreter's are not ours; tests/core/test_refleaks.py counts
# the kernels' own). The runtimes come with gcc (Debian: libasan8, libubsan1);
# nothing is installed here. Without them (no gcc, or clang on macOS) the step is
# skipped with a message, except where CONSENT_REQUIRE_SPEEDUPS=1 (.ci/run) makes
# it a failure, as for the compiled-kernel tests. To show that the gate
# bites, check a broken copy: make sanitize SAN_SOURCE=copy.c SAN_DIR=build/asan-copy
SAN_SOURCE := src/consent/core/_speedups.c
SAN_DIR    := build/asan
SAN_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
              -g -O1 -Wall -Wextra -Werror -shared -fPIC
SAN_TESTS  := tests/core/test_kernels.py tests/core/test_refleaks.py tests/core/test_flow.py \
              tests/test_shared_behaviour.py
SAN_SO      = $(SAN_DIR)/_speedups$(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
SAN_INCLUDE = $(shell $(BIN)/python -c 'import sysconfig; p = sysconfig.get_paths(); print(*sorted({"-I" + p["include"], "-I" + p["platinclude"]}))')
sanitize: $(VENV)/.installed
	@if ! command -v gcc >/dev/null 2>&1 || ! test -f "$$(gcc -print-file-name=libasan.so)" \
		|| ! test -f "$$(gcc -print-file-name=libubsan.so)"; then \
		echo "sanitize: needs gcc with its ASan/UBSan runtimes (Debian: gcc, libasan8, libubsan1)"; \
		if [ -n "$$CONSENT_REQUIRE_SPEEDUPS" ]; then exit 1; fi; \
		echo "sanitize: skipped (set CONSENT_REQUIRE_SPEEDUPS=1 to make this a failure)"; \
	else $(MAKE) --no-print-directory sanitized-run; fi

sanitized-run: $(VENV)/.installed
	mkdir -p $(SAN_DIR)
	gcc $(SAN_CFLAGS) $(SAN_INCLUDE) -o $(SAN_SO) $(SAN_SOURCE)
	CONSENT_SPEEDUPS_PATH=$(SAN_SO) CONSENT_REQUIRE_SPEEDUPS=1 PYTHONMALLOC=malloc \
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(BIN)/python -m pytest -q -p no:cacheprovider --capture=sys $(SAN_TESTS)

docs: $(VENV)/.installed
	@if [ -f mkdocs.yml ]; then NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site; fi

# Refresh the screenshots the README and docs show (tests write them to build/ otherwise).
screenshots: $(VENV)/.installed
	CONSENT_SCREENSHOTS=docs/img $(BIN)/python -m pytest tests/banner/test_browser_banner.py tests/test_demo.py -k "screenshot or chromium"

bench: $(VENV)/.installed
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) node_modules build .pytest_cache .mypy_cache .ruff_cache
