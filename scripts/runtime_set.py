"""The plugin folders `make run` installs for a registry: the plugins it
enables that this repository holds (the built-in ones ship with the kernel),
and the repository's plugins those depend on. One folder per line.

    python scripts/runtime_set.py plugin_registry.toml
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from wasmkernel import load_registry

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
_PROJECT_REQUIREMENT = re.compile(r"^wasmkernel-([a-z0-9-]+)")


def needs(folder: Path) -> list[str]:
    """The repository plugins `folder`'s distribution requires (not its extras)."""
    requirements = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    found = (_PROJECT_REQUIREMENT.match(requirement) for requirement in requirements)
    return [match.group(1) for match in found if match and (PLUGINS / match.group(1) / "pyproject.toml").is_file()]


def runtime_set(registry_path: str) -> list[Path]:
    pending = [entry.name for entry in load_registry(registry_path).plugins if entry.enabled]
    chosen: list[str] = []
    while pending:
        name = pending.pop(0)
        if name not in chosen and (PLUGINS / name / "pyproject.toml").is_file():
            chosen.append(name)
            pending += needs(PLUGINS / name)
    return [PLUGINS / name for name in sorted(chosen)]


if __name__ == "__main__":
    print("\n".join(str(folder) for folder in runtime_set(sys.argv[1])))
