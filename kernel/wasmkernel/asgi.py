"""The ASGI entry point, ``hypercorn --worker-class trio wasmkernel.asgi:app``: the
application of $WASMKERNEL_REGISTRY (or ./plugin_registry.toml), assembled on
import; a registry or plugin error exits with its message, no traceback."""

from __future__ import annotations

from wasmkernel.app import load_application
from wasmkernel.errors import StartupError

try:
    app = load_application()
except StartupError as exc:
    raise SystemExit(f"wasmkernel: {exc}") from None
