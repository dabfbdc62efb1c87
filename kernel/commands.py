"""CLI commands contributed by plugins."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import attrs


@attrs.frozen
class Command:
    """A `wasmkernel <name>` subcommand.

    `add_arguments` configures its argparse parser (the global `--registry`
    option is already there; by default it adds nothing); `run` receives the
    parsed arguments and returns the process exit code.
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print `rows` under `headers` in aligned columns (commands' listings)."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    for row in (headers, ["-" * width for width in widths], *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
