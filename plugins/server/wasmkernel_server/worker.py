"""The application hypercorn's worker processes serve (``wasmkernel run
--workers N``): the registry's application, assembled in the worker, whose
failed startup the parent learns of (see `serving.reporting_failed_startup`).
"""

from __future__ import annotations

from wasmkernel import StartupError, load_application
from wasmkernel_server.serving import reporting_failed_startup, tune_gc

try:
    app = reporting_failed_startup(load_application())
except StartupError as exc:
    raise SystemExit(f"wasmkernel: {exc}") from None
tune_gc()
