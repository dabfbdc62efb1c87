#!/usr/bin/env bash
# Lines in kernel/wasmkernel/*.py (the test kit, testing/, aside): all of them, and code only (no blank lines, comments or docstrings).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import ast, pathlib
total = code = 0
for path in sorted(pathlib.Path("kernel/wasmkernel").rglob("*.py")):
    if "testing" in path.relative_to("kernel/wasmkernel").parts[:1]:
        continue
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    docs: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docs.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    total += len(lines)
    code += sum(1 for number, line in enumerate(lines, 1) if line.strip() and not line.strip().startswith("#") and number not in docs)
print(f"kernel/: {total} lines, {code} lines of code")
PY
