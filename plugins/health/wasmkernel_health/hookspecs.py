"""The hook the health plugin adds: readiness probes from other plugins."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from wasmkernel import hookspec

if TYPE_CHECKING:
    from wasmkernel import Application


@hookspec
def wasmkernel_readiness(app: Application) -> Mapping[str, Callable[[], tuple[bool, Any]]] | None:
    """Contribute readiness probes: name → a function returning (ready, detail).

    Called once per plugin when the health plugin starts (after every other
    plugin it depends on started). ``GET /readyz`` calls every probe — keep
    them cheap and non-blocking — and answers 503 while any is not ready;
    each detail appears under its name in the body. Plugins that implement
    it without requiring the health plugin mark it
    ``@hookimpl(optionalhook=True)``.
    """
