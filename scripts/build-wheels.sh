#!/usr/bin/env bash
# Build a wheel of every distribution in this repository into OUTDIR: the
# kernel (with its built-in plugins), wasmkernel-modules (wasm_modules/) and
# each plugins/<name>. Extra arguments go to `pip wheel` (e.g.
# --no-build-isolation to build with the running environment's setuptools).
# In a git checkout the files git tracks (or would) are built from a clean
# copy, so nothing a previous build left behind ends up in a wheel.
#   PYTHON=.venv/bin/python scripts/build-wheels.sh OUTDIR [PIP_ARGS...]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [PIP_ARGS...]" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
python=${PYTHON:-python3}
case "$python" in /*) ;; */*) python="$PWD/$python" ;; esac
cd "$(dirname "$0")/.."
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C "$stage" -xf -
    cd "$stage"
fi
projects=(. ./wasm_modules)
for plugin in plugins/*/; do
    [ -f "$plugin/pyproject.toml" ] && projects+=("./$plugin")
done
"$python" -m pip wheel -q --disable-pip-version-check --no-deps --wheel-dir "$out" "$@" "${projects[@]}"
echo "built ${#projects[@]} wheels into $out"
