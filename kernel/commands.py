"""CLI commands contributed by plugins."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import attrs


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """Default for commands that take no arguments."""


@attrs.frozen
class Command:
    """A `wasmkernel <name>` subcommand.

    `add_arguments` configures its argparse parser (the global `--registry`
    option is already there); `run` receives the parsed arguments and returns
    the process exit code.
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
