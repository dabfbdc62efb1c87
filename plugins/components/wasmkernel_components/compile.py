"""``python -m wasmkernel_components.compile SOURCE TARGET``: compile a component into a cached artifact.

Run in a child process by the host, so the compiler's memory (hundreds of MB
for a big component) is returned to the system when it exits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import wasmtime
from wasmkernel_wasm.engine import write_cached
from wasmtime.component import Component

from wasmkernel_components.runtime import engine


def main(source: str, target: str) -> int:
    try:
        component = Component(engine(), Path(source).read_bytes())
    except (OSError, wasmtime.WasmtimeError) as exc:
        print(str(exc).strip() or type(exc).__name__, file=sys.stderr)
        return 1
    write_cached(Path(target), bytes(component.serialize()))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
