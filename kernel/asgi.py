"""The ASGI entry point: ``hypercorn --worker-class trio kernel.asgi:app``.

Assembles the application from $WASMKERNEL_REGISTRY (or
./plugin_registry.toml) when imported; a registry or plugin error exits with
its message instead of a traceback.
"""

from __future__ import annotations

from kernel import expect_continue
from kernel.app import Application, load_application
from kernel.errors import StartupError
from kernel.server import tune_gc


def _load() -> Application:
    try:
        return load_application()
    except StartupError as exc:
        raise SystemExit(f"wasmkernel: {exc}") from None


expect_continue.install()  # hypercorn's worker processes serve this module
app = _load()
tune_gc()
