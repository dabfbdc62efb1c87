"""Listing what a registry assembles, for commands that never serve it."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence

import attrs

from wasmkernel import Application, load_registry, resolve_secrets


def listed_application(registry_path: str | None) -> Application:
    """The registry's application for listing and checking, never serving:
    a secret that is not set gets a placeholder nothing can match, noted on
    stderr (`wasmkernel run` still refuses to start without it). Plugins'
    log lines below warnings are not printed while it is assembled."""
    registry = load_registry(registry_path)
    unset: list[str] = []
    entries = [
        attrs.evolve(entry, config=resolve_secrets(dict(entry.config), registry.path.parent, registry.where(entry.name, "config"), unset))
        if entry.enabled
        else entry
        for entry in registry.plugins
    ]
    for reference in unset:
        print(f"note: unset secret {reference} (wasmkernel run refuses to start without it)", file=sys.stderr)
    with quiet_logs():
        return Application.assemble(attrs.evolve(registry, plugins=tuple(entries)))


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """No log line below a warning from the `wasmkernel` loggers meanwhile:
    before a listing they are noise (plugins log at info while configured)."""
    logger = logging.getLogger("wasmkernel")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print `rows` under `headers` in aligned columns."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    for row in (headers, ["-" * width for width in widths], *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
