# The two commands of the README:
#   make run    install what serving needs and serve $(REGISTRY) on $(HOST):$(PORT)
#   make test   install everything and run lint, types and the whole test suite
# Both are idempotent: a step whose inputs did not change is skipped. Each step
# prints one line with its duration (scripts/bootstrap.sh).
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

PACKAGE_FILES := pyproject.toml wasm_modules/pyproject.toml $(wildcard plugins/*/pyproject.toml) scripts/bootstrap.sh scripts/runtime_set.py

.PHONY: run test install modules toolchains bench clean

run: install
	@if [ -z "$$WASMKERNEL_JWT_SECRET" ]; then \
		echo "warning: WASMKERNEL_JWT_SECRET is not set; using a development secret from .dev-secrets/ (never in production)" >&2; \
	fi; \
	WASMKERNEL_JWT_SECRET="$${WASMKERNEL_JWT_SECRET:-$$(bash scripts/bootstrap.sh dev-secret)}" \
	WASMKERNEL_LINKS_KEY="$${WASMKERNEL_LINKS_KEY:-$$(bash scripts/bootstrap.sh dev-secret links-key)}" \
		$(BIN)/wasmkernel run --registry $(REGISTRY) --bind $(HOST):$(PORT)

test: $(VENV)/.dev modules toolchains $(VENV)/.test-apt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH=kernel:$(PLUGIN_ROOTS) $(BIN)/mypy kernel/wasmkernel tests benchmarks stress scripts wasm_modules/__init__.py $(PLUGIN_PACKAGES)
	MYPYPATH=kernel $(BIN)/mypy $(wildcard plugins/*/tests)
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(VENV)/.runtime modules

$(BIN)/python:
	@bash scripts/bootstrap.sh venv

$(VENV)/.runtime: $(PACKAGE_FILES) $(REGISTRY) | $(BIN)/python
	@bash scripts/bootstrap.sh runtime $(REGISTRY)
	@touch $@

$(VENV)/.dev: $(PACKAGE_FILES) benchmarks/requirements.txt | $(BIN)/python
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

bench: $(VENV)/.dev modules
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) wasm_modules/target .wasmkernel
