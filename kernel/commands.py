"""CLI commands contributed by plugins."""

from __future__ import annotations

import argparse
from collections.abc import Callable

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
