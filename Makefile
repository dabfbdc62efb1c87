# The two commands of the README:
#   make run    install what serving needs and serve $(REGISTRY) on $(HOST):$(PORT)
#   make test   install everything and run lint, types and the whole test suite
#               (and beside it the in-process tests on the other supported Pythons found)
# And: make run-components   install the component toolchains, build the Python,
#      JavaScript and Spin components of wasm_modules/ and serve plugin_registry.components.toml
# Both are idempotent: a step whose inputs did not change is skipped. Each step
# prints one line with its duration (scripts/bootstrap.sh). The server runs on
# the newest CPython >= 3.11 found (PYTHON=... chooses); the Wasmer loader's
# workers on a Python 3.10 environment of their own.
#
# Install sets, one step each: `runtime` (the kernel, wasmkernel-modules and the
# plugins $(REGISTRY) enables: no test, lint or benchmark tools), `dev` (every
# plugin with its test extra, the tools), `modules` (the committed prebuilt
# modules when they match their sources, else the toolchains they need and a
# build), `toolchains` (Rust, C and AssemblyScript, for tests that build modules).

MAKEFLAGS += --no-print-directory

VENV      := .venv
BIN       := $(VENV)/bin
HOST      ?= 127.0.0.1
PORT      ?= 8000
REGISTRY  ?= plugin_registry.toml
PYTEST_ARGS ?=
# pytest-xdist workers of `make test` (a test file at a time on each: its module
# fixtures are set up once); 0 runs the suite in this process.
TEST_WORKERS ?= 2
PYTEST    := $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# System packages the test suite uses beyond the Rust toolchain: headless
# Chromium (docs page test), wrk (load), Go + Gin (benchmark peer), nginx
# (multi-instance test), redis-server (shared rate limits, Redis broker),
# Spring Framework + Tomcat (benchmark peer).
TEST_APT  := chromium wrk golang-go golang-github-gin-gonic-gin-dev nginx redis-server \
             libspring-web-servlet-java libspring-context-java libtomcat9-java libjackson2-databind-java

# mypy sees every plugin's package under its own name (plugins/<name>/ is a root);
# plugins' test folders (all named tests) are checked in a second run.
PLUGIN_ROOTS    := $(subst $(eval) ,:,$(wildcard plugins/*/))
PLUGIN_PACKAGES := $(filter-out %.egg-info,$(wildcard plugins/*/wasmkernel_*))

PACKAGE_FILES := pyproject.toml wasm_modules/pyproject.toml $(wildcard plugins/*/pyproject.toml) scripts/bootstrap.sh scripts/runtime_set.py \
                 plugins/wasm/tests/programs-without-runner.txt

# The in-process tests (no server processes, no benchmark tools) that `make
# test` also runs on every other supported Python found (.venv-3.X): the kernel's
# and the plugins' tests; the WebAssembly loaders' shared suite and Wasmer's
# own (its workers run on 3.10 whatever the server's Python) only on the primary.
SERVER_ONLY   := tests/test_server.py tests/test_third_party.py tests/test_standalone_plugins.py
VERSION_TESTS := $(filter-out tests/test_benchmark_% tests/test_realtime_% $(SERVER_ONLY),$(wildcard tests/test_*.py)) \
                 $(filter-out plugins/wasm/tests plugins/wasm-filters/tests plugins/wasm-http/tests plugins/wasmer-loader/tests,$(wildcard plugins/*/tests))

COMPONENT_TOOLS := .tools/components/.installed .tools/spin/.installed
COMPONENTS      := py_http js_http spin_kv

.PHONY: run run-components components test other-pythons install interpreter wasmer-env modules toolchains bench clean

run: install
	@if [ -z "$$WASMKERNEL_JWT_SECRET" ]; then \
		echo "warning: WASMKERNEL_JWT_SECRET is not set; using a development secret from .dev-secrets/ (never in production)" >&2; \
	fi; \
	WASMKERNEL_JWT_SECRET="$${WASMKERNEL_JWT_SECRET:-$$(bash scripts/bootstrap.sh dev-secret)}" \
	WASMKERNEL_LINKS_KEY="$${WASMKERNEL_LINKS_KEY:-$$(bash scripts/bootstrap.sh dev-secret links-key)}" \
		$(BIN)/wasmkernel run --registry $(REGISTRY) --bind $(HOST):$(PORT)

run-components: install components
	$(BIN)/wasmkernel run --registry plugin_registry.components.toml --bind $(HOST):$(PORT)

# WASI 0.2 components: toolchains in Python >= 3.11 tool venvs and npm; each build
# takes a minute or more the first time (incremental afterwards).
components: $(COMPONENT_TOOLS) toolchains modules
	bash wasm_modules/build.sh $(COMPONENTS)

$(COMPONENT_TOOLS) &: scripts/bootstrap.sh
	@bash scripts/bootstrap.sh components
	@touch $(COMPONENT_TOOLS)

test: interpreter $(VENV)/.dev modules toolchains wasmer-env $(VENV)/.test-apt $(COMPONENT_TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH=kernel:$(PLUGIN_ROOTS) $(BIN)/mypy kernel/wasmkernel tests benchmarks stress scripts wasm_modules/__init__.py $(PLUGIN_PACKAGES)
	MYPYPATH=kernel $(BIN)/mypy $(wildcard plugins/*/tests)
	@# The whole suite. The other supported Pythons' in-process tests (their
	@# environments made first: their editable installs build in plugins/)
	@# run beside the primary's; their output is shown when both ended.
	@if [ -n "$(PYTEST_ARGS)" ]; then exec $(PYTEST) $(PYTEST_ARGS); fi; \
	bash scripts/bootstrap.sh versions || exit 1; \
	log=$$(mktemp); \
	$(MAKE) other-pythons > $$log 2>&1 & other=$$!; \
	$(PYTEST); primary=$$?; \
	wait $$other; others=$$?; \
	cat $$log; rm -f $$log; \
	[ $$primary -eq 0 ] && [ $$others -eq 0 ]

# The in-process tests on every other supported Python found (.venv-3.X, made
# by `bash scripts/bootstrap.sh versions`).
other-pythons:
	@for venv in .venv-3.*; do \
		[ -x "$$venv/bin/pytest" ] || continue; \
		echo "in-process tests on $$($$venv/bin/python -V)"; \
		$$venv/bin/pytest -q -p no:cacheprovider -m "not server and not slow" $(VERSION_TESTS) || exit 1; \
	done

install: interpreter $(VENV)/.runtime modules wasmer-env

# Always checked (fast): the newest Python may have changed; a .venv of another is recreated.
interpreter:
	@bash scripts/bootstrap.sh interpreter

# After the installs: finds Python 3.10 and the Wasmer workers' environment when the loader is installed.
wasmer-env: interpreter
	@bash scripts/bootstrap.sh wasmer

$(VENV)/.runtime: $(PACKAGE_FILES) $(REGISTRY) | interpreter
	@bash scripts/bootstrap.sh runtime $(REGISTRY)
	@touch $@

$(VENV)/.dev: $(PACKAGE_FILES) benchmarks/requirements.txt | interpreter
	@bash scripts/bootstrap.sh dev
	@touch $@ $(VENV)/.runtime

modules:
	@bash scripts/bootstrap.sh modules

toolchains:
	@bash scripts/bootstrap.sh rust
	@bash scripts/bootstrap.sh c
	@bash scripts/bootstrap.sh npm

$(VENV)/.test-apt: scripts/bootstrap.sh Makefile
	@bash scripts/bootstrap.sh apt $(TEST_APT)
	@touch $@

bench: interpreter $(VENV)/.dev modules wasmer-env
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-3.* .tools wasm_modules/target .wasmkernel
