"""`wasmkernel new-plugin NAME`: a ready-to-publish plugin package."""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "wasmkernel-{name}"
version = "0.1.0"
description = "WasmKernel plugin: {name}"
requires-python = ">=3.10"
dependencies = ["wasmkernel", "attrs"]

[project.entry-points."wasmkernel.plugins"]
{name} = "{package}.plugin:Plugin"

[tool.setuptools]
packages = ["{package}"]
"""

INIT = '''\
"""WasmKernel plugin `{name}`."""
'''

PLUGIN = '''\
"""`{name}`: serves GET /{name}/{{who}} with a configurable greeting.

Enable it in plugin_registry.toml:

    [plugins.{name}]
    enabled = true
    [plugins.{name}.config]
    greeting = "Hello"
"""

from __future__ import annotations

import attrs

from kernel import Application, ConfiguredPlugin, Request, Route, hookimpl


@attrs.frozen
class Config:
    greeting: str = "Hello"


class Plugin(ConfiguredPlugin[Config]):
    """One instance per application; `self.config` is the parsed config."""

    config_class = Config

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [Route("/{name}/{{who}}", self.greet, name="{name}.greet", summary="Greet someone")]

    async def greet(self, request: Request) -> dict[str, str]:
        return {{"message": f"{{self.config.greeting}}, {{request.path_params['who']}}!"}}
'''

TEST = """\
from kernel.testing import app_from, running
from {package}.plugin import Plugin


async def test_greets() -> None:
    plugins = {{"router": {{}}, "{name}": {{"config": {{"greeting": "Hi"}}}}}}
    app = app_from(plugins, extra_plugins={{"{name}": Plugin()}})
    async with running(app) as client:
        response = await client.get("/{name}/ada")
    assert response.status_code == 200
    assert response.json() == {{"message": "Hi, ada!"}}
"""

README = """\
# wasmkernel-{name}

A WasmKernel plugin. Install with `pip install .`, enable it with
`[plugins.{name}]` in `plugin_registry.toml`, test with `pytest` (needs
`wasmkernel[test]`, `pytest-trio` and the `router` plugin).
"""

CONFTEST = """\
import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.trio)
"""


def scaffold_plugin(name: str, directory: str | Path | None = None) -> Path:
    """Create the package for plugin `name`; returns its directory."""
    if not _NAME.match(name):
        raise ValueError(f"invalid plugin name {name!r}: use lower-case letters, digits and dashes, e.g. 'hello-world'")
    target = Path(directory) if directory else Path("plugins") / name
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} already exists and is not empty")
    package = "wasmkernel_" + name.replace("-", "_")
    values = {"name": name, "package": package}
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{package}/__init__.py": INIT,
        f"{package}/plugin.py": PLUGIN,
        "tests/conftest.py": CONFTEST,
        f"tests/test_{package}.py": TEST,
    }
    for relative, template in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return target
