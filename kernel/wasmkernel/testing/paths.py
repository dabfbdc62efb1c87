"""Where the project under test lives, without deriving it from a test
file's ``__file__``: pytest's root directory (the folder of its
configuration file), recorded by the kit's pytest plugin."""

from __future__ import annotations

from pathlib import Path

_root: list[Path] = []


def set_project_root(path: Path) -> None:
    """Called by the pytest plugin when the session is configured."""
    _root[:] = [path.resolve()]


def project_root() -> Path:
    """The root of the project whose tests run (pytest's ``rootpath``);
    outside a pytest session, the current directory."""
    return _root[0] if _root else Path.cwd().resolve()
