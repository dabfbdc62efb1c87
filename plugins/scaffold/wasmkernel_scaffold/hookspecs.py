"""The hook the scaffold plugin adds to the plugin manager.

The scaffold plugin calls it when the CLI collects its commands (in its
`wasmkernel_commands`, through the CLI's ``hooks``: in plugin order, each
result attributed to its plugin; pluggy's ``tryfirst``, ``trylast`` and
wrappers do not apply across plugins). A plugin implementing it marks it
``@hookimpl(optionalhook=True)``, so that it loads where the scaffold plugin
is disabled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from wasmkernel import hookspec

if TYPE_CHECKING:
    from wasmkernel_scaffold.modules import ModuleTemplate


@hookspec
def wasmkernel_module_templates() -> Iterable[ModuleTemplate] | None:
    """Contribute template sets for ``wasmkernel new-module``, one
    `ModuleTemplate` per (language, kind).

    Called once on the registry's enabled plugins when the CLI starts, before
    any configuration and with no application (so it takes no ``app``).
    ``--lang`` and ``--kind`` offer what the plugins contribute, in plugin
    order; a (language, kind) pair contributed twice makes ``new-module`` an
    error naming both plugins, and with no contribution ``new-module`` says
    which plugin to enable.
    """
