#!/usr/bin/env bash
# Build WasmKernel guest modules into <out>/<folder>.wasm.
#
#   build.sh                     every module folder next to this script, into dist/
#   build.sh hello faults        only the named folders next to this script
#   build.sh PATH... --out DIR   module folders anywhere, into DIR (default: dist/ here)
#   build.sh --in DIR [...]      the module folders (or the named ones) in DIR instead,
#                                into DIR/dist (DIR/target for cargo)
#   build.sh --check [...]       build nothing: print "stale NAME LANG" for each module whose
#                                output does not match its sources, exit 1 if there is one
#   build.sh --clean [...]       remove build outputs (all, or the named modules), then build
#   build.sh --clean-only        remove build outputs and stop
#   build.sh --components        also build every component folder (below)
#
# A module is up to date when <out>/manifest.txt records its source digest
# (its sources and its language's SDK, hashed) with the SHA-256 of
# <out>/<folder>.wasm, and both still match: it is not rebuilt and needs no
# toolchain. The example modules here are committed prebuilt in dist/ with
# their manifest, so serving them never needs a compiler.
#
# Languages, recognised by what a folder holds:
#   Cargo.toml with [package.metadata.wasmkernel]   Rust (cargo, offline; the SDK crate
#        wasmkernel-guest is sdk/ here, whatever the module's one-line
#        `wasmkernel-guest = ...` dependency says: "0.1", or a path). Section keys:
#        target = "wasm32-unknown-unknown" | "wasm32-wasi" (required),
#        max-memory = <bytes, multiple of 65536>, simd = true | false,
#        rustflags = "<extra rustc flags>", wasm-opt = true | false (default true)
#   *.c files        C: clang-14 --target=wasm32-wasi, -I sdk-c (wasmkernel.h); a folder whose
#                    code defines main() is a WASI command, any other a reactor
#   assembly/*.ts    AssemblyScript: asc -O3 --runtime stub --use abort= --path <here>, so a
#                    module imports the SDK as "sdk-as/wasmkernel" (or "sdk-as/wasi")
#
# WASI 0.2 components (served by the components plugin), built only when named
# or with --components (each takes a minute or more and hundreds of MB; not
# committed, their digests are kept in <out>/.components.txt):
#   app.py (no spin.toml)            Python: componentize-py, world wasi:http/proxy@0.2.0 (wit/wasi-http)
#   app.py + spin.toml               Spin Python SDK 3 app: spin-sdk's componentize-py, world spin-http
#   app.js                           JavaScript: componentize-js (node_modules here), world wit/js-http
# Their tools: scripts/bootstrap.sh components (Python >= 3.11 tool venvs in
# ../.tools: componentize-py, spin-sdk, wasm-tools) and scripts/bootstrap.sh npm.
#
# Toolchains, looked for only when something must be built: a rustc with the
# wasm32 standard library (`rustc` on PATH, then /usr/bin/rustc) and the cargo
# next to it; clang-14 with wasi-libc; asc ($WASMKERNEL_ASC, node_modules/ here,
# PATH, then ~/.cache/wasmkernel/node_modules); wasm-opt (binaryen) is optional.
# A missing one stops the build with one line saying what to install.
set -uo pipefail

args=()
out_dir=""
in_dir=""
while (($#)); do
    case "$1" in
        --out) out_dir=$(mkdir -p "$2" && cd "$2" && pwd) || { echo "error: cannot use --out $2" >&2; exit 1; }; shift ;;
        --in) in_dir=$(realpath -m "$2"); shift ;;
        *) if [[ "$1" == */* && -d "$1" ]]; then args+=("$(cd "$1" && pwd)"); else args+=("$1"); fi ;;
    esac
    shift
done
set -- "${args[@]+"${args[@]}"}"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || exit 1
MODULES="${in_dir:-$ROOT}"
DIST="${out_dir:-$MODULES/dist}"
TARGET_ROOT="${out_dir:+$out_dir/.target}"
TARGET_ROOT="${TARGET_ROOT:-$MODULES/target}"
MANIFEST="$DIST/manifest.txt"

die() { echo "error: $*" >&2; exit 1; }
warn() { echo "warning: $*" >&2; }
usage() { sed -n '2,46p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

clean=0 clean_only=0 check=0 components=0
selected=()
for arg in "$@"; do
    case "$arg" in
        --clean) clean=1 ;;
        --clean-only) clean=1; clean_only=1 ;;
        --check) check=1 ;;
        --components) components=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option: $arg (see --help)" ;;
        *) selected+=("${arg%/}") ;;
    esac
done

# --- modules ----------------------------------------------------------------

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

lang_of() { # dir -> rust | c | assemblyscript | python | spin-python | javascript | (nothing)
    if [[ -f "$1/Cargo.toml" ]]; then grep -q '^\[package\.metadata\.wasmkernel\]' "$1/Cargo.toml" && echo rust
    elif [[ -f "$1/asconfig.json" || -f "$1/assembly/index.ts" ]]; then echo assemblyscript
    elif compgen -G "$1/*.c" >/dev/null; then echo c
    elif [[ -f "$1/app.py" && -f "$1/spin.toml" ]]; then echo spin-python
    elif [[ -f "$1/app.py" ]]; then echo python
    elif [[ -f "$1/app.js" ]]; then echo javascript
    fi
}

is_component() { case "$1" in python|spin-python|javascript) return 0 ;; esac; return 1; }

modules=()
[[ -d "$MODULES" ]] && cd "$MODULES"
if ((${#selected[@]} == 0)); then
    [[ -d "$MODULES" ]] || die "no modules found in $MODULES"
    for d in */; do
        d=${d%/}
        case "$d" in target|dist|node_modules|sdk|sdk-c|sdk-as|wit|build|*.egg-info) continue ;; esac
        lang=$(lang_of "$d")
        [[ -n "$lang" ]] || continue
        is_component "$lang" && ((!components)) && continue
        modules+=("$d")
    done
    if ((clean)); then
        rm -rf "$TARGET_ROOT" "$DIST"
        echo "removed ${TARGET_ROOT#"$MODULES/"}/ and ${DIST#"$MODULES/"}/"
        ((clean_only)) && exit 0
        clean=0
    fi
else
    for m in "${selected[@]}"; do
        [[ -d "$m" ]] || die "no module folder '$m' (a name in $MODULES or a path)"
        [[ -n "$(lang_of "$m")" ]] || die "'$m' is not a module folder: it needs a Cargo.toml with [package.metadata.wasmkernel], *.c files, assembly/index.ts, app.py or app.js"
        modules+=("$m")
    done
fi
((${#modules[@]} > 0)) || die "no modules found in $MODULES"

sources_of() { # lang -> the files (in the current folder) whose content makes the module, sorted
    case "$1" in
        rust) find . \( -name target -o -path './.*' \) -prune -o -type f \( -name Cargo.toml -o -name '*.rs' \) -print ;;
        c) find . -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \) -print ;;
        assemblyscript) find . \( -name node_modules -o -path './.*' \) -prune -o -type f \( -name '*.ts' -o -name asconfig.json \) -print ;;
        python|spin-python|javascript) find . \( -name __pycache__ -o -name node_modules -o -path './.*' \) -prune -o -type f \( -name '*.py' -o -name '*.js' -o -name '*.mjs' -o -name '*.wit' -o -name '*.toml' \) -print ;;
    esac | LC_ALL=C sort
}

sdk_of() { # lang -> the SDK files a module of that language builds with
    case "$1" in
        rust) echo sdk/Cargo.toml sdk/src/*.rs ;;
        c) echo sdk-c/wasmkernel.h ;;
        assemblyscript) echo sdk-as/*.ts ;;
        python) find wit/wasi-http -name '*.wit' | LC_ALL=C sort ;;
        spin-python) ;;  # the WIT ships in spin-sdk (its version is in the tool venv's pins)
        javascript) { find wit/js-http -name '*.wit'; echo componentize-js.mjs; } | LC_ALL=C sort ;;
    esac
}

digest_of() { # dir lang -> hex digest of its sources and SDK (names and contents; not where they are)
    { (cd "$1" && sources_of "$2" | tr '\n' '\0' | xargs -0 -r sha256sum)
      # shellcheck disable=SC2046
      (cd "$ROOT" && sha256sum $(sdk_of "$2") </dev/null); } | sha256sum | cut -c1-64
}

sha_of() { sha256sum "$1" | cut -c1-64; }

manifest_of() { # lang -> the manifest its outputs are recorded in (components are never committed)
    if is_component "$1"; then echo "$DIST/.components.txt"; else echo "$MANIFEST"; fi
}

is_current() { # name digest lang
    local manifest; manifest=$(manifest_of "$3")
    [[ -f "$DIST/$1.wasm" && -f "$manifest" ]] && grep -qxF "$1 $2 $(sha_of "$DIST/$1.wasm")" "$manifest"
}

record() { # name digest lang
    local manifest; manifest=$(manifest_of "$3")
    { [[ -f "$manifest" ]] && awk -v name="$1" '$1 != name' "$manifest"; echo "$1 $2 $(sha_of "$DIST/$1.wasm")"; } | LC_ALL=C sort >"$manifest.tmp"
    mv -f "$manifest.tmp" "$manifest"
}

# --- toolchains (looked for on first use) -------------------------------------

# Sets TC_RUSTC, TC_CARGO, TC_TARGET for the wanted target, or returns 1.
find_rust() { # target
    local rustc sysroot t
    for rustc in "$(command -v rustc 2>/dev/null)" /usr/bin/rustc; do
        [[ -x "$rustc" && -x "$(dirname "$rustc")/cargo" ]] || continue
        sysroot=$("$rustc" --print sysroot 2>/dev/null) || continue
        # Newer toolchains renamed wasm32-wasi to wasm32-wasip1.
        for t in "$1" $([[ "$1" == wasm32-wasi* ]] && echo wasm32-wasi wasm32-wasip1); do
            [[ -d "$sysroot/lib/rustlib/$t/lib" ]] && { TC_RUSTC=$rustc TC_CARGO="$(dirname "$rustc")/cargo" TC_TARGET=$t; return 0; }
        done
    done
    return 1
}

find_asc() {
    local candidate
    for candidate in "${WASMKERNEL_ASC:-}" "$ROOT/node_modules/.bin/asc" "$(command -v asc 2>/dev/null)" "${XDG_CACHE_HOME:-$HOME/.cache}/wasmkernel/node_modules/.bin/asc"; do
        [[ -n "$candidate" && -x "$candidate" ]] && { echo "$candidate"; return 0; }
    done
    return 1
}

asc_version() { sed -nE 's/.*"assemblyscript": *"([^"]+)".*/\1/p' "$ROOT/package.json"; }

# --- building one module into $tmp --------------------------------------------

build_rust() { # dir -> TARGET_LABEL set
    local d=$1 sec max simd extra opt out optsets=() set flags=()
    sec=$(toml_section "$d/Cargo.toml" package.metadata.wasmkernel)
    local target; target=$(toml_get target <<<"$sec")
    max=$(toml_get max-memory <<<"$sec"); simd=$(toml_get simd <<<"$sec")
    extra=$(toml_get rustflags <<<"$sec"); opt=$(toml_get wasm-opt <<<"$sec")
    [[ -n "$target" ]] || { echo "error: $d/Cargo.toml: [package.metadata.wasmkernel] needs target = \"...\"" >&2; return 1; }
    if [[ -n "$max" ]] && ! [[ "$max" =~ ^[0-9]+$ && $((max % 65536)) -eq 0 ]]; then
        echo "error: $d/Cargo.toml: max-memory must be a multiple of 65536 bytes" >&2; return 1
    fi
    find_rust "$target" || { echo "error: $d is Rust: no toolchain with the $target target; install it with: apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld" >&2; return 1; }
    TARGET_LABEL=$target
    # Cargo builds a copy (the stage): the module's files with the SDK crate
    # inside, which the module's `wasmkernel-guest = ...` line is pointed at.
    # Cargo then hashes both by their path in the stage and the output is the
    # same wherever the module, the checkout or the package are.
    local stage="$TARGET_ROOT/$name.src"
    rm -rf "$stage" && mkdir -p "$stage" || return 1
    tar -C "$d" --exclude=./target --exclude=./Cargo.lock --exclude='./.*' -cf - . | tar -C "$stage" -xf - || return 1
    cp -a "$ROOT/sdk" "$stage/.wasmkernel-guest" || return 1
    sed -i -E 's/^wasmkernel-guest[[:space:]]*=.*$/wasmkernel-guest = "0.1"/' "$stage/Cargo.toml"
    flags=(-C strip=symbols -C debuginfo=0 "--remap-path-prefix=$stage=/module")
    [[ -n "$max" ]] && flags+=(-C "link-arg=--max-memory=$max")
    [[ "$simd" == true ]] && flags+=(-C target-feature=+simd128)
    # shellcheck disable=SC2206
    [[ -n "$extra" ]] && flags+=($extra)
    RUSTC="$TC_RUSTC" CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; echo "${flags[*]}")" CARGO_TARGET_DIR="$TARGET_ROOT/$name" \
        "$TC_CARGO" build --quiet --offline --release --target "$TC_TARGET" --manifest-path "$stage/Cargo.toml" \
        --config "patch.crates-io.wasmkernel-guest.path=\"$stage/.wasmkernel-guest\"" \
        || { echo "error: cargo build failed for $d" >&2; return 1; }
    out="$TARGET_ROOT/$name/$TC_TARGET/release/$(artifact_name "$d").wasm"
    [[ -f "$out" ]] || { echo "error: cargo output not found: $out" >&2; return 1; }
    # wasm-opt must be told the features the module uses (rustc's output has no
    # target_features section): the minimal set first, then what newer rustc enables.
    if [[ "$opt" != false ]] && command -v wasm-opt >/dev/null; then
        local s=""; [[ "$simd" == true ]] && s=" --enable-simd"
        optsets=("-O3 --enable-mutable-globals$s"
                 "-O3 --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory --enable-multivalue --enable-reference-types$s")
    elif [[ "$opt" != false ]]; then
        warn "wasm-opt not found; $name is not post-optimized (install binaryen)"
    fi
    for set in "${optsets[@]+"${optsets[@]}"}"; do
        # shellcheck disable=SC2086
        wasm-opt $set "$out" -o "$tmp" 2>/dev/null && return 0
    done
    ((${#optsets[@]} == 0)) || warn "wasm-opt failed for $name, keeping the unoptimized module"
    cp "$out" "$tmp"
}

artifact_name() { # crate-dir -> file stem cargo writes (a lib's name with '_' for '-'; a bin's name as is)
    local n
    if grep -q '^\[lib\]' "$1/Cargo.toml"; then
        n=$(toml_section "$1/Cargo.toml" lib | toml_get name)
        [[ -n "$n" ]] || n=$(toml_section "$1/Cargo.toml" package | toml_get name)
        echo "${n//-/_}"
        return
    fi
    n=$(toml_section "$1/Cargo.toml" '[bin]' | toml_get name)
    [[ -n "$n" ]] || n=$(toml_section "$1/Cargo.toml" package | toml_get name)
    echo "$n"
}

build_c() { # dir
    local d=$1 model=reactor
    command -v clang-14 >/dev/null && [[ -f /usr/lib/wasm32-wasi/libc.a ]] \
        || { echo "error: $d is C: install clang-14 and wasi-libc (apt-get install -y clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)" >&2; return 1; }
    grep -qE '\bint[[:space:]]+main[[:space:]]*\(' "$d"/*.c && model=command
    TARGET_LABEL="wasm32-wasi (C $model)"
    clang-14 --target=wasm32-wasi -O2 -mexec-model="$model" -Wl,--strip-all \
        -I "$ROOT/sdk-c" -I "$d" "$d"/*.c -o "$tmp"
}

build_assemblyscript() { # dir
    local d=$1 asc
    asc=$(find_asc) || { echo "error: $d is AssemblyScript: install asc with: npm install --prefix ~/.cache/wasmkernel assemblyscript@$(asc_version) (or set WASMKERNEL_ASC)" >&2; return 1; }
    TARGET_LABEL="wasm32 (AssemblyScript)"
    "$asc" "$d/assembly/index.ts" -O3 --runtime stub --use abort= --path "$ROOT" -o "$tmp"
}

TOOLS="$ROOT/../.tools"

tool() { # venv name -> its program, or the one on PATH
    if [[ -x "$TOOLS/$1/bin/$2" ]]; then echo "$TOOLS/$1/bin/$2"; else command -v "$2" 2>/dev/null || true; fi
}

# A component toolchain's output goes to a log, shown (trimmed) only on failure.
logged() { # command...
    "$@" >"$tmp.log" 2>&1 || { sed "/Stack backtrace:/q" "$tmp.log" | tail -n 25 >&2; rm -f "$tmp.log"; return 1; }
    rm -f "$tmp.log"
}

componentize_py() { # dir venv wit-args... -- path-args...
    local d=$1 venv=$2 cpy; shift 2
    cpy=$(tool "$venv" componentize-py)
    [[ -n "$cpy" ]] || { echo "error: $d is a component: install its tools with: bash scripts/bootstrap.sh components" >&2; return 1; }
    local args=() paths=()
    while (($#)) && [[ "$1" != -- ]]; do args+=("$1"); shift; done
    (($#)) && shift
    paths=("$@")
    if [[ $venv == spin ]]; then  # spin-sdk ships its WIT (world spin-http) in the package, which the app imports
        local sdk
        sdk=$("$(dirname "$cpy")/python" -c 'import os, spin_sdk; print(os.path.dirname(spin_sdk.__file__))') || return 1
        args=(-d "$sdk/wit" -w spin-http)
        paths=(-p . -p "$(dirname "$sdk")")
    fi
    (cd "$d" && logged "$cpy" "${args[@]}" componentize "${paths[@]+"${paths[@]}"}" app -o "$tmp")
}

build_python() { # dir
    TARGET_LABEL="component (Python)"
    componentize_py "$1" components -d "$ROOT/wit/wasi-http" -w wasi:http/proxy@0.2.0
}

build_spin-python() { # dir
    TARGET_LABEL="component (Spin Python)"
    componentize_py "$1" spin
}

build_javascript() { # dir
    local d=$1
    [[ -f "$ROOT/node_modules/@bytecodealliance/componentize-js/package.json" ]] \
        || { echo "error: $d is a JavaScript component: install componentize-js with: bash scripts/bootstrap.sh npm" >&2; return 1; }
    TARGET_LABEL="component (JavaScript)"
    (cd "$ROOT" && logged node componentize-js.mjs "$(cd "$d" && pwd)/app.js" "$ROOT/wit/js-http" http "$tmp")
}

# --- build ------------------------------------------------------------------

declare -A STATUS=() LABEL=()
stale=0
failed=0
for d in "${modules[@]}"; do
    name=$(basename "$d")
    lang=$(lang_of "$d")
    if ((clean)); then
        rm -rf "${TARGET_ROOT:?}/$name" "$DIST/$name.wasm"
        echo "removed build outputs of $name"
        ((clean_only)) && continue
    fi
    digest=$(digest_of "$d" "$lang")
    if is_current "$name" "$digest" "$lang"; then
        STATUS[$d]="up to date"
        continue
    fi
    if ((check)); then
        echo "stale $name $lang"
        stale=1
        continue
    fi
    echo "==> $name ($lang$(is_component "$lang" && echo ', a minute or more'))"
    mkdir -p "$DIST"
    tmp="$DIST/.$name.wasm.tmp"
    TARGET_LABEL=$lang
    if "build_$lang" "$d" && mv -f "$tmp" "$DIST/$name.wasm"; then
        record "$name" "$digest" "$lang"
        STATUS[$d]=built
    else
        rm -f "$tmp"
        STATUS[$d]=FAILED
        failed=1
    fi
    LABEL[$d]=$TARGET_LABEL
done
((clean_only)) && exit 0
((check)) && exit "$stale"

echo
printf '%-14s %-24s %10s  %-12s  %s\n' module built-as bytes sha256 status
for d in "${modules[@]}"; do
    f="$DIST/$(basename "$d").wasm" size=- sha=-
    [[ "${STATUS[$d]}" != FAILED && -f "$f" ]] && { size=$(wc -c <"$f" | tr -d ' '); sha=$(sha_of "$f" | cut -c1-12); }
    printf '%-14s %-24s %10s  %-12s  %s\n' "$(basename "$d")" "${LABEL[$d]:-$(lang_of "$d")}" "$size" "$sha" "${STATUS[$d]}"
done
exit "$failed"
