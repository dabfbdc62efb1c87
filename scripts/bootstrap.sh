#!/usr/bin/env bash
# Set-up steps behind `make run` / `make test`. Each step is idempotent, prints
# one line with its duration (its output only when it fails), and stops with one
# clear line when something must be installed by hand.
#   scripts/bootstrap.sh venv          find Python 3.10, create .venv
#   scripts/bootstrap.sh python        venv, then dev (everything: what a development checkout needs)
#   scripts/bootstrap.sh runtime [REGISTRY]   install what serving REGISTRY needs into .venv: the kernel,
#                                      wasmkernel-modules, the registry's plugins (editable)
#   scripts/bootstrap.sh dev           install the development set into .venv: every plugin with its test
#                                      extra, lint, types, test and benchmark tools
#   scripts/bootstrap.sh modules       make wasm_modules/dist match the module sources: nothing to do when the
#                                      committed prebuilt modules are current, else the toolchains they need, then build
#   scripts/bootstrap.sh apt PKG...    make sure Debian packages are installed
#   scripts/bootstrap.sh rust          make sure a Rust toolchain with the wasm32 targets exists
#   scripts/bootstrap.sh c             make sure clang-14 + wasi-libc (C guests) are installed
#   scripts/bootstrap.sh npm           install AssemblyScript (wasm_modules/package.json) into wasm_modules/node_modules
#   scripts/bootstrap.sh dev-secret [NAME]   print a development secret (default jwt-secret; created once, git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv

die() { echo "error: $*" >&2; exit 1; }

# quietly LABEL SUMMARY COMMAND...: run COMMAND with its output in a log, print
# "LABEL  SUMMARY (N.N s)"; on failure print the log and stop.
quietly() {
    local label=$1 summary=$2 log start status
    shift 2
    log=$(mktemp)
    start=$EPOCHREALTIME
    if "$@" >"$log" 2>&1; then status=0; else status=$?; fi
    if ((status != 0)); then
        cat "$log" >&2
        rm -f "$log"
        die "$label: failed (exit $status): $*"
    fi
    rm -f "$log"
    printf '%-8s %s (%s s)\n' "$label" "$summary" "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
}

# pip into .venv, quiet. The project's distributions build with the venv's
# setuptools (no isolated build environment per plugin: minutes saved);
# setuptools' note on every editable install of a flat layout ("Editable
# installation ... folders in your working directory") is dropped.
pip_install() {
    local pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
    "${pip[@]}" "setuptools>=77" && PYTHONWARNINGS="ignore:Editable installation" "${pip[@]}" --no-build-isolation "$@"
}

is_py310() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

find_python310() {
    local candidate
    for candidate in "${PYTHON:-}" "$(command -v python3.10 || true)"; do
        is_py310 "$candidate" && { echo "$candidate"; return; }
    done
    if command -v pyenv >/dev/null 2>&1; then
        local version
        for version in 3.10.13 $(pyenv versions --bare 2>/dev/null | grep '^3\.10' | sort -rV); do
            candidate="$(pyenv prefix "$version" 2>/dev/null)/bin/python3.10"
            is_py310 "$candidate" && { echo "$candidate"; return; }
        done
    fi
    return 1
}

step_python() {
    if ! is_py310 "$VENV/bin/python"; then
        local python
        python=$(find_python310) || die "Python 3.10 is required (wasmer 1.1.0 ships wheels only up to 3.10): install it (apt-get install python3.10, or pyenv install 3.10.13) or set PYTHON=/path/to/python3.10"
        rm -rf "$VENV"
        quietly python "created $VENV with $python" "$python" -m venv "$VENV"
    fi
}

step_runtime() {
    local registry=${1:-plugin_registry.toml} editable=() folder
    pip_install -e . -e ./wasm_modules || return 1
    while read -r folder; do editable+=(-e "$folder"); done < <("$VENV/bin/python" scripts/runtime_set.py "$registry")
    pip_install "${editable[@]}"
}

step_dev() {
    local editable=(-e ".[dev]" -e ./wasm_modules) plugin
    for plugin in plugins/*; do
        [ -f "$plugin/pyproject.toml" ] || continue
        # A plugin's own test extra (e.g. a validator its tests use) comes along.
        if grep -q '^test = ' "$plugin/pyproject.toml"; then editable+=(-e "$plugin[test]"); else editable+=(-e "$plugin"); fi
    done
    pip_install "${editable[@]}" -r benchmarks/requirements.txt
}

# The languages of the modules whose prebuilt output does not match their sources.
stale_languages() { bash wasm_modules/build.sh --check | awk '$1 == "stale" { print $3 }' | sort -u; }

step_modules() {
    local languages lang
    languages=$(stale_languages)
    if [ -z "$languages" ]; then
        echo "modules  $(wc -l <wasm_modules/dist/manifest.txt) prebuilt, current with their sources (wasm_modules/dist)"
        return 0
    fi
    for lang in $languages; do
        case "$lang" in
            rust) step_rust ;;
            c) step_c ;;
            assemblyscript) step_npm ;;
        esac
    done
    quietly modules "built what changed ($(echo $languages | tr ' ' ',')) with wasm_modules/build.sh" bash wasm_modules/build.sh
}

step_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        quietly apt "installed ${missing[*]}" apt_install "${missing[@]}"
    else
        die "missing system packages; install them with: sudo apt-get install -y ${missing[*]}"
    fi
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

has_wasm_target() {
    local rustc
    for rustc in "$(command -v rustc || true)" /usr/bin/rustc; do
        [ -x "$rustc" ] && [ -d "$("$rustc" --print sysroot 2>/dev/null)/lib/rustlib/wasm32-unknown-unknown/lib" ] && return 0
    done
    return 1
}

step_rust() {
    has_wasm_target && return 0
    if command -v apt-get >/dev/null 2>&1; then
        step_apt rustc cargo libstd-rust-dev-wasm32 lld binaryen
    fi
    has_wasm_target || die "no Rust toolchain with the wasm32 target; install it with: apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld"
}

step_c() {
    command -v clang-14 >/dev/null 2>&1 && [ -f /usr/lib/wasm32-wasi/libc.a ] && [ -d /usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi ] && return 0
    step_apt clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32
}

step_npm() {
    [ -x wasm_modules/node_modules/.bin/asc ] && [ wasm_modules/node_modules/.bin/asc -nt wasm_modules/package.json ] && return 0
    command -v npm >/dev/null 2>&1 || step_apt npm
    quietly npm "AssemblyScript into wasm_modules/node_modules" npm --prefix wasm_modules install --no-audit --no-fund --silent
    touch wasm_modules/node_modules/.bin/asc
}

step_dev_secret() {
    local file=".dev-secrets/${1:-jwt-secret}"
    case "${1:-jwt-secret}" in *[!a-z0-9-]*) die "dev-secret: NAME must be lower-case letters, digits and '-'" ;; esac
    if [ ! -s "$file" ]; then
        mkdir -p .dev-secrets
        "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(48))' > "$file"
        chmod 600 "$file"
    fi
    cat "$file"
}

case "${1:-}" in
    venv) step_python ;;
    python) step_python; quietly dev "every plugin with its test extra, lint, type, test and benchmark tools, into $VENV" step_dev ;;
    runtime) shift; quietly runtime "the kernel and the plugins ${1:-plugin_registry.toml} enables, editable, into $VENV" step_runtime "$@" ;;
    dev) quietly dev "every plugin with its test extra, lint, type, test and benchmark tools, into $VENV" step_dev ;;
    modules) step_modules ;;
    apt) shift; step_apt "$@" ;;
    rust) step_rust ;;
    c) step_c ;;
    npm) step_npm ;;
    dev-secret) shift; step_dev_secret "$@" ;;
    *) die "usage: $0 venv|python|runtime [REGISTRY]|dev|modules|apt PKG...|rust|c|npm|dev-secret [NAME]" ;;
esac
