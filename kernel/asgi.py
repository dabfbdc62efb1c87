"""The ASGI entry point, ``hypercorn --worker-class trio kernel.asgi:app``: the
application of $WASMKERNEL_REGISTRY (or ./plugin_registry.toml), assembled on
import; a registry or plugin error exits with its message, no traceback."""

from __future__ import annotations

from kernel.app import load_application
from kernel.errors import StartupError

try:
    app = load_application()
except StartupError as exc:
    raise SystemExit(f"wasmkernel: {exc}") from None
