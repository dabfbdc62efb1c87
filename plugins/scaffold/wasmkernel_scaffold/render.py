"""Rendering template folders, for plugins that scaffold things (this
plugin's `wasmkernel new-plugin`, the WebAssembly host's `new-module`)."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from pathlib import Path

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def render_templates(source: Path, target: Path, values: Mapping[str, str]) -> Path:
    """Copy every ``*.tmpl`` file under `source` to `target` (which must not
    exist or be empty), dropping ``.tmpl`` and substituting ``${key}`` in
    contents and ``__key__`` in paths from `values`; returns `target`."""
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} already exists and is not empty")
    for template in sorted(source.rglob("*.tmpl")):
        relative = str(template.relative_to(source).with_suffix(""))
        for key, value in values.items():
            relative = relative.replace(f"__{key}__", value)
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(string.Template(template.read_text(encoding="utf-8")).substitute(values), encoding="utf-8")
    return target


def check_name(name: str, what: str) -> None:
    """Package-style names: lower-case letters, digits and dashes."""
    if not _NAME.match(name):
        raise ValueError(f"invalid {what} name {name!r}: use lower-case letters, digits and dashes, e.g. 'hello-world'")
