"""The hook the introspect plugin adds: plugins' own checks for ``wasmkernel check``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from wasmkernel import hookspec

if TYPE_CHECKING:
    from wasmkernel import Application


@hookspec
def wasmkernel_check(app: Application) -> Iterable[str] | None:
    """Check what startup would, without serving (``wasmkernel check``).

    Called once per plugin, in plugin order, on an application assembled with
    placeholders for unset secrets. Return lines saying what was verified;
    raise `wasmkernel.StartupError` for a problem. Every plugin is checked even
    after one fails. Plugins that implement it without requiring the
    introspect plugin mark it ``@hookimpl(optionalhook=True)``.
    """
