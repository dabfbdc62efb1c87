#!/usr/bin/env bash
# Build the WasmKernel guest modules in this folder into dist/<crate>.wasm.
#
#   ./build.sh                 build every module crate (incremental)
#   ./build.sh hello faults    build only the named crates
#   ./build.sh --clean [...]   remove build outputs (all, or the named crates), then build
#   ./build.sh --clean-only    remove build outputs and stop
#   ./build.sh PATH --out DIR  build the module folder PATH (anywhere) into DIR/<folder>.wasm
#
# A module crate is a subfolder with a Cargo.toml that has a
# [package.metadata.wasmkernel] section (the SDK library has none and is
# only built as a dependency). Keys read from that section:
#   target     = "wasm32-unknown-unknown" | "wasm32-wasi"   (required)
#   max-memory = <bytes, multiple of 65536>                 (declared memory maximum)
#   simd       = true | false                               (-C target-feature=+simd128)
#   rustflags  = "<extra rustc flags>"                      (optional)
#   wasm-opt   = true | false                               (optional, default true)
#
# Other languages, recognised by what a folder holds (dist/<folder>.wasm):
#   *.c files (no Cargo.toml)        C: clang-14 --target=wasm32-wasi with sdk-c/wasmkernel.h;
#                                    a folder whose code defines main() is a WASI command,
#                                    any other a reactor (-mexec-model=reactor)
#   asconfig.json or assembly/index.ts   AssemblyScript: asc (npm assemblyscript, installed in
#                                    node_modules/ here) -O3 --runtime stub --use abort=
#
# WASI 0.2 components (served by the components plugin), built only when named
# or with --components (each takes a minute or more and hundreds of MB):
#   app.py (no spin.toml)            Python: componentize-py, world wasi:http/proxy@0.2.0 (wit/wasi-http)
#   app.py + spin.toml               Spin Python SDK 3 app: spin-sdk's componentize-py, world spin-http
#   app.js                           JavaScript: componentize-js (node_modules here), world wit/js-http
# Their tools: scripts/bootstrap.sh components (a Python >= 3.11 tool venv in
# ../.tools: componentize-py, spin-sdk, wasm-tools) and scripts/bootstrap.sh npm.
#
# Requirements: a Rust toolchain with the wasm32 standard library (rustup's or
# Debian's rustc/cargo + libstd-rust-dev-wasm32 + lld); wasm-opt (binaryen) is
# optional. No crates registry is needed: the crates have no external deps.
set -uo pipefail

# Module folders given as paths (anywhere) are made absolute before the cd below.
args=()
out_dir=""
while (($#)); do
    case "$1" in
        --out) out_dir=$(mkdir -p "$2" && cd "$2" && pwd) || { echo "error: cannot use --out $2" >&2; exit 1; }; shift ;;
        *) if [[ "$1" == */* && -d "$1" ]]; then args+=("$(cd "$1" && pwd)"); else args+=("$1"); fi ;;
    esac
    shift
done
set -- "${args[@]+"${args[@]}"}"

cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
ROOT=$(pwd)
DIST="${out_dir:-$ROOT/dist}"
TARGET_ROOT="${out_dir:+$out_dir/.target}"
TARGET_ROOT="${TARGET_ROOT:-$ROOT/target}"
STAMPS="$DIST/.stamps"

die() { echo "error: $*" >&2; exit 1; }
warn() { echo "warning: $*" >&2; }

usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

clean=0
clean_only=0
components=0
selected=()
for arg in "$@"; do
    case "$arg" in
        --components) components=1 ;;
        --clean) clean=1 ;;
        --clean-only) clean=1; clean_only=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option: $arg (see --help)" ;;
        *) selected+=("${arg%/}") ;;
    esac
done

# --- crate discovery and metadata -------------------------------------------

# Prints the body of a TOML section (lines after [name] up to the next header).
toml_section() { # file section
    awk -v hdr="[$2]" '
        /^[[:space:]]*\[/ { insec = ($0 ~ /^[[:space:]]*\[/ && index($0, hdr) == 1) ; next }
        insec { print }' "$1"
}

# Value of key in a section body on stdin, quotes stripped, comments removed.
toml_get() { # key
    grep -E "^[[:space:]]*$1[[:space:]]*=" | head -n 1 \
        | sed -E 's/^[^=]*=[[:space:]]*//; s/[[:space:]]+#.*$//; s/^"(.*)"[[:space:]]*$/\1/; s/[[:space:]]+$//'
}

is_module_crate() { # dir
    [[ -f "$1/Cargo.toml" ]] && grep -q '^\[package\.metadata\.wasmkernel\]' "$1/Cargo.toml"
}

lang_of() { # dir -> rust | c | assemblyscript | python | spin-python | javascript | (nothing)
    if [[ -f "$1/Cargo.toml" ]]; then is_module_crate "$1" && echo rust
    elif [[ -f "$1/asconfig.json" || -f "$1/assembly/index.ts" ]]; then echo assemblyscript
    elif [[ -f "$1/app.py" && -f "$1/spin.toml" ]]; then echo spin-python
    elif [[ -f "$1/app.py" ]]; then echo python
    elif [[ -f "$1/app.js" ]]; then echo javascript
    elif compgen -G "$1/*.c" >/dev/null; then echo c
    fi
}

all_crates=()
others=()
for d in */; do
    d=${d%/}
    case "$d" in target|dist|node_modules|sdk|sdk-c|sdk-as|wit) continue ;; esac
    case "$(lang_of "$d")" in
        rust) all_crates+=("$d") ;;
        c|assemblyscript) others+=("$d") ;;
        python|spin-python|javascript) ((components)) && others+=("$d") ;;
    esac
done

named=${#selected[@]}
if ((clean && named == 0)); then
    rm -rf "$TARGET_ROOT" "$DIST"
    echo "removed target/ and dist/"
    ((clean_only)) && exit 0
    clean=0
fi
if ((named > 0)); then
    picked=()
    others=()
    for c in "${selected[@]}"; do
        case "$(lang_of "$c")" in
            c|assemblyscript|python|spin-python|javascript) others+=("$c") ;;
            *) picked+=("$c") ;;
        esac
    done
    selected=("${picked[@]}")
fi

mkdir -p "$DIST" "$STAMPS"
declare -A OTHER_STATUS=() OTHER_TARGET=()
other_failed=0
ASC="$ROOT/node_modules/.bin/asc"
[[ -x "$ASC" ]] || ASC=$(command -v asc 2>/dev/null || true)
TOOLS="$ROOT/../.tools"

tool() { # venv name -> its program, or the one on PATH
    if [[ -x "$TOOLS/$1/bin/$2" ]]; then echo "$TOOLS/$1/bin/$2"; else command -v "$2" 2>/dev/null || true; fi
}

tree_hash() { # files and dirs -> one sha256 of their contents
    find "$@" -type f \( -name '*.py' -o -name '*.js' -o -name '*.mjs' -o -name '*.wit' -o -name '*.toml' \) -not -path '*/__pycache__/*' -print0 2>/dev/null \
        | sort -z | xargs -0 cat | sha256sum | cut -c1-64
}

build_other() { # dir
    local d=$1 name out stamp tmp
    name=$(basename "$d")
    out="$DIST/$name.wasm"
    tmp="$DIST/.$name.wasm.tmp"
    case "$(lang_of "$d")" in
        c)
            command -v clang-14 >/dev/null && [[ -f /usr/lib/wasm32-wasi/libc.a ]] \
                || { echo "error: $d is C: install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 (apt-get install -y clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)" >&2; return 1; }
            local model=reactor
            grep -qE '\bint[[:space:]]+main[[:space:]]*\(' "$d"/*.c && model=command
            OTHER_TARGET[$d]="wasm32-wasi (C $model)"
            stamp="$(cat "$d"/*.c "$d"/*.h "$ROOT/sdk-c/wasmkernel.h" 2>/dev/null | sha256sum | cut -c1-64) $model $(clang-14 --version | head -n 1)"
            [[ -f "$out" && "$(cat "$STAMPS/$name.stamp" 2>/dev/null)" == "$stamp" ]] && { OTHER_STATUS[$d]="up to date"; return 0; }
            echo "==> $d (C, clang-14, $model)"
            clang-14 --target=wasm32-wasi -O2 -mexec-model="$model" -Wl,--strip-all -I "$ROOT/sdk-c" -I "$d" "$d"/*.c -o "$tmp" || return 1
            ;;
        assemblyscript)
            [[ -n "$ASC" ]] || { echo "error: $d is AssemblyScript: install it with: (cd $ROOT && npm install)  # npm assemblyscript" >&2; return 1; }
            OTHER_TARGET[$d]="wasm32 (AssemblyScript)"
            stamp="$(find "$d/assembly" "$ROOT/sdk-as" -name '*.ts' -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-64) $("$ASC" --version 2>/dev/null)"
            [[ -f "$out" && "$(cat "$STAMPS/$name.stamp" 2>/dev/null)" == "$stamp" ]] && { OTHER_STATUS[$d]="up to date"; return 0; }
            echo "==> $d (AssemblyScript, $ASC)"
            "$ASC" "$d/assembly/index.ts" -O3 --runtime stub --use abort= -o "$tmp" 2> >(grep -v -E '^(WARNING|$| +[:│└~])' >&2) || return 1
            ;;
        python|spin-python)
            local venv=components args=(-d "$ROOT/wit/wasi-http" -w wasi:http/proxy@0.2.0) what="Python component"
            [[ $(lang_of "$d") == spin-python ]] && { venv=spin; what="Spin Python app"; }
            local cpy
            cpy=$(tool "$venv" componentize-py)
            [[ -n "$cpy" ]] || { echo "error: $d is a $what: install its tools with: bash scripts/bootstrap.sh components" >&2; return 1; }
            local paths=()
            if [[ $venv == spin ]]; then  # spin-sdk ships its WIT (world spin-http) in the package, which the app imports
                local sdk
                sdk=$("$(dirname "$cpy")/python" -c 'import os, spin_sdk; print(os.path.dirname(spin_sdk.__file__))')
                args=(-d "$sdk/wit" -w spin-http)
                paths=(-p . -p "$(dirname "$sdk")")
            fi
            OTHER_TARGET[$d]="component ($what)"
            stamp="$(tree_hash "$d" "$ROOT/wit/wasi-http") $("$cpy" --version 2>/dev/null) $venv"
            [[ -f "$out" && "$(cat "$STAMPS/$name.stamp" 2>/dev/null)" == "$stamp" ]] && { OTHER_STATUS[$d]="up to date"; return 0; }
            echo "==> $d ($what, $cpy; a minute or more)"
            (cd "$d" && "$cpy" "${args[@]}" componentize "${paths[@]}" app -o "$tmp") >"$tmp.log" 2>&1 || { sed "/Stack backtrace:/q" "$tmp.log" | tail -n 25 >&2; rm -f "$tmp.log"; return 1; }
            rm -f "$tmp.log"
            ;;
        javascript)
            [[ -f "$ROOT/node_modules/@bytecodealliance/componentize-js/package.json" ]] \
                || { echo "error: $d is a JavaScript component: install componentize-js with: bash scripts/bootstrap.sh npm" >&2; return 1; }
            OTHER_TARGET[$d]="component (JavaScript)"
            stamp="$(tree_hash "$d" "$ROOT/wit/js-http" "$ROOT/componentize-js.mjs") $(grep '"version"' "$ROOT/node_modules/@bytecodealliance/componentize-js/package.json")"
            [[ -f "$out" && "$(cat "$STAMPS/$name.stamp" 2>/dev/null)" == "$stamp" ]] && { OTHER_STATUS[$d]="up to date"; return 0; }
            echo "==> $d (JavaScript component, componentize-js; a minute or more)"
            (cd "$ROOT" && node componentize-js.mjs "$(cd "$d" && pwd)/app.js" "$ROOT/wit/js-http" http "$tmp") >"$tmp.log" 2>&1 || { sed "/Stack backtrace:/q" "$tmp.log" | tail -n 25 >&2; rm -f "$tmp.log"; return 1; }
            rm -f "$tmp.log"
            ;;
    esac
    mv -f "$tmp" "$out"
    echo "$stamp" >"$STAMPS/$name.stamp"
    OTHER_STATUS[$d]=built
}

for d in "${others[@]}"; do
    if ! build_other "$d"; then
        OTHER_STATUS[$d]=FAILED
        other_failed=1
    fi
done

crates=()
if ((named == 0)); then
    crates=("${all_crates[@]}")
elif ((${#selected[@]} > 0)); then
    crates=()
    for c in "${selected[@]}"; do
        [[ -f "$c/Cargo.toml" ]] || die "no module '$c' in $ROOT"
        is_module_crate "$c" || die "'$c' has no [package.metadata.wasmkernel] section (library crate?)"
        crates+=("$c")
    done
fi

if ((clean)); then
    for c in "${crates[@]}"; do
        rm -rf "${TARGET_ROOT:?}/$c" "$DIST/$c.wasm" "$STAMPS/$c.stamp"
        echo "removed build outputs of $c"
    done
    ((clean_only)) && exit 0
fi

((${#crates[@]} > 0 || ${#others[@]} > 0)) || die "no modules found in $ROOT"

# --- toolchain selection ----------------------------------------------------

# Target aliases: newer toolchains renamed wasm32-wasi to wasm32-wasip1.
target_aliases() {
    case "$1" in
        wasm32-wasi|wasm32-wasip1) echo "wasm32-wasi wasm32-wasip1" ;;
        *) echo "$1" ;;
    esac
}

candidate_rustcs() {
    local r
    r=$(command -v rustc 2>/dev/null) && echo "$r"
    [[ -x /usr/bin/rustc ]] && echo /usr/bin/rustc
}

# Sets TC_RUSTC, TC_CARGO, TC_TARGET for the wanted target, or returns 1.
declare -A TC_CACHE=()
find_toolchain() { # target
    if [[ -n "${TC_CACHE[$1]:-}" ]]; then
        read -r TC_RUSTC TC_CARGO TC_TARGET <<<"${TC_CACHE[$1]}"
        return 0
    fi
    local rustc sysroot t cargo
    while read -r rustc; do
        [[ -n "$rustc" ]] || continue
        sysroot=$("$rustc" --print sysroot 2>/dev/null) || continue
        cargo="$(dirname "$rustc")/cargo"
        [[ -x "$cargo" ]] || continue
        for t in $(target_aliases "$1"); do
            if [[ -d "$sysroot/lib/rustlib/$t/lib" ]]; then
                TC_RUSTC=$rustc TC_CARGO=$cargo TC_TARGET=$t
                TC_CACHE[$1]="$rustc $cargo $t"
                return 0
            fi
        done
    done < <(candidate_rustcs)
    return 1
}

declare -A META_TARGET META_MAXMEM META_SIMD META_FLAGS META_OPT
for c in "${crates[@]}"; do
    sec=$(toml_section "$c/Cargo.toml" package.metadata.wasmkernel)
    META_TARGET[$c]=$(toml_get target <<<"$sec")
    META_MAXMEM[$c]=$(toml_get max-memory <<<"$sec")
    META_SIMD[$c]=$(toml_get simd <<<"$sec")
    META_FLAGS[$c]=$(toml_get rustflags <<<"$sec")
    META_OPT[$c]=$(toml_get wasm-opt <<<"$sec")
    [[ -n "${META_TARGET[$c]}" ]] || die "$c/Cargo.toml: [package.metadata.wasmkernel] needs target = \"...\""
    if [[ -n "${META_MAXMEM[$c]}" ]]; then
        [[ "${META_MAXMEM[$c]}" =~ ^[0-9]+$ ]] && ((META_MAXMEM[$c] % 65536 == 0)) \
            || die "$c/Cargo.toml: max-memory must be a multiple of 65536 bytes"
    fi
    find_toolchain "${META_TARGET[$c]}" || {
        echo "error: no Rust toolchain with the wasm32 target; install it with: apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld" >&2
        exit 1
    }
done

WASM_OPT=$(command -v wasm-opt 2>/dev/null || true)
WASM_OPT_VERSION=""
[[ -n "$WASM_OPT" ]] && WASM_OPT_VERSION=$("$WASM_OPT" --version 2>/dev/null | head -n 1)
((${#crates[@]} > 0)) && [[ -z "$WASM_OPT" ]] && warn "wasm-opt not found; modules are not post-optimized (install binaryen)"

# --- build ------------------------------------------------------------------

mkdir -p "$DIST" "$STAMPS"
declare -A STATUS=()
failed=0

artifact_name() { # crate-dir -> file stem cargo writes (a lib's name with '_' for '-'; a bin's name as is)
    local name
    if grep -q '^\[lib\]' "$1/Cargo.toml"; then
        name=$(toml_section "$1/Cargo.toml" lib | toml_get name)
        [[ -n "$name" ]] || name=$(toml_section "$1/Cargo.toml" package | toml_get name)
        echo "${name//-/_}"
        return
    fi
    name=$(toml_section "$1/Cargo.toml" '[bin]' | toml_get name)
    [[ -n "$name" ]] || name=$(toml_section "$1/Cargo.toml" package | toml_get name)
    echo "$name"
}

for c in "${crates[@]}"; do
    n=$(basename "$c")
    find_toolchain "${META_TARGET[$c]}"
    flags="-C strip=symbols -C debuginfo=0"
    [[ -n "${META_MAXMEM[$c]}" ]] && flags="-C link-arg=--max-memory=${META_MAXMEM[$c]} $flags"
    [[ "${META_SIMD[$c]}" == true ]] && flags="$flags -C target-feature=+simd128"
    [[ -n "${META_FLAGS[$c]}" ]] && flags="$flags ${META_FLAGS[$c]}"

    echo "==> $c (${TC_TARGET}, $TC_CARGO)"
    if ! RUSTC="$TC_RUSTC" RUSTFLAGS="$flags" CARGO_TARGET_DIR="$TARGET_ROOT/$n" \
        "$TC_CARGO" build --quiet --offline --release --target "$TC_TARGET" \
        --manifest-path "$c/Cargo.toml"; then
        echo "error: cargo build failed for $c" >&2
        STATUS[$c]=FAILED
        failed=1
        continue
    fi

    out="$TARGET_ROOT/$n/$TC_TARGET/release/$(artifact_name "$c").wasm"
    if [[ ! -f "$out" ]]; then
        echo "error: cargo output not found: $out" >&2
        STATUS[$c]=FAILED
        failed=1
        continue
    fi

    # wasm-opt needs to be told the features the module uses (rustc's output
    # has no target_features section): try the minimal set first (what Rust
    # <= 1.7x emits for a generic CPU), then the wider set newer rustc enables.
    optsets=()
    if [[ -n "$WASM_OPT" && "${META_OPT[$c]}" != false ]]; then
        simdflag=""
        [[ "${META_SIMD[$c]}" == true ]] && simdflag=" --enable-simd"
        optsets=("-O3 --enable-mutable-globals$simdflag"
                 "-O3 --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory --enable-multivalue --enable-reference-types$simdflag")
    fi
    optflags="${optsets[*]:-}"

    stamp="$(sha256sum "$out" | cut -d' ' -f1) ${optflags:-no-wasm-opt} $WASM_OPT_VERSION"
    if [[ -f "$DIST/$n.wasm" && -f "$STAMPS/$n.stamp" && "$(cat "$STAMPS/$n.stamp")" == "$stamp" ]]; then
        STATUS[$c]="up to date"
        continue
    fi

    tmp="$DIST/.$n.wasm.tmp"
    optimized=0
    for set in "${optsets[@]}"; do
        # shellcheck disable=SC2086
        if "$WASM_OPT" $set "$out" -o "$tmp" 2>"$tmp.log"; then
            optimized=1
            break
        fi
    done
    if ((!optimized)); then
        if ((${#optsets[@]} > 0)); then
            warn "wasm-opt failed for $c, keeping the unoptimized module: $(head -c 300 "$tmp.log")"
        fi
        cp "$out" "$tmp"
    fi
    rm -f "$tmp.log"
    mv -f "$tmp" "$DIST/$n.wasm"
    echo "$stamp" >"$STAMPS/$n.stamp"
    STATUS[$c]=built
done

# --- summary ----------------------------------------------------------------

echo
printf '%-12s %-24s %10s  %-12s  %s\n' module target bytes sha256 status
for c in "${others[@]}"; do
    f="$DIST/$(basename "$c").wasm"
    if [[ "${OTHER_STATUS[$c]}" != FAILED && -f "$f" ]]; then
        size=$(wc -c <"$f" | tr -d ' ')
        sha=$(sha256sum "$f" | cut -c1-12)
    else
        size=- sha=-
    fi
    printf '%-12s %-24s %10s  %-12s  %s\n' "$(basename "$c")" "${OTHER_TARGET[$c]:-?}" "$size" "$sha" "${OTHER_STATUS[$c]}"
done
for c in "${crates[@]}"; do
    f="$DIST/$(basename "$c").wasm"
    if [[ "${STATUS[$c]}" != FAILED && -f "$f" ]]; then
        size=$(wc -c <"$f" | tr -d ' ')
        sha=$(sha256sum "$f" | cut -c1-12)
    else
        size=- sha=-
    fi
    printf '%-12s %-24s %10s  %-12s  %s\n' "$(basename "$c")" "${META_TARGET[$c]}" "$size" "$sha" "${STATUS[$c]}"
done

((failed || other_failed)) && exit 1
exit 0
