"""Reading `plugin_registry.toml`: which plugins are enabled, in which order,
with which configuration.

    [kernel]
    title = "WasmKernel"

    [plugins.router]
    enabled = true
    order = -100              # optional; lower runs first (default 0)
    before = ["health"]       # optional; names of other plugins
    after = []
    optional = false          # a failing optional plugin is skipped, not fatal

    [plugins.auth-jwt.config]
    secret = { env = "WASMKERNEL_JWT_SECRET" }   # never the secret itself

A value `{ env = "NAME" }` or `{ file = "path" }` (optionally with `default`)
is replaced by the environment variable or the file's content (stripped);
relative files are read from the registry's directory.
"""

from __future__ import annotations

import heapq
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from kernel.errors import RegistryError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10
    import tomli as tomllib

REGISTRY_ENV = "WASMKERNEL_REGISTRY"
DEFAULT_REGISTRY = "plugin_registry.toml"
_PLUGIN_KEYS = {"enabled", "order", "before", "after", "optional", "config"}
_KERNEL_KEYS = {"title", "version"}


@attrs.frozen
class PluginEntry:
    """One `[plugins.<name>]` table."""

    name: str
    enabled: bool = True
    order: int = 0
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    optional: bool = False
    config: Mapping[str, Any] = attrs.field(factory=dict)
    position: int = 0


@attrs.frozen
class Registry:
    """A parsed registry file."""

    path: Path
    plugins: tuple[PluginEntry, ...]
    title: str = "WasmKernel"
    version: str = "0.1.0"

    def entry(self, name: str) -> PluginEntry:
        for plugin in self.plugins:
            if plugin.name == name:
                return plugin
        raise KeyError(name)

    def enabled(self) -> list[PluginEntry]:
        """Enabled plugins in their effective order (see `order_plugins`)."""
        return order_plugins([p for p in self.plugins if p.enabled], self.path)

    def where(self, name: str, key: str = "") -> str:
        """`file: [plugins.name] key` for error messages."""
        section = f"[plugins.{name}]"
        return f"{self.path}: {section} {key}".rstrip()


def default_registry_path() -> Path:
    return Path(os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY)


def load_registry(path: str | os.PathLike[str] | None = None) -> Registry:
    """Parse and check a registry file (default: $WASMKERNEL_REGISTRY or
    ./plugin_registry.toml). Raises `RegistryError` with file and key."""
    registry_path = Path(path) if path is not None else default_registry_path()
    try:
        data = tomllib.loads(registry_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"{registry_path}: registry file not found (choose one with --registry or ${REGISTRY_ENV})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{registry_path}: invalid TOML: {exc}") from None
    return parse_registry(data, registry_path)


def parse_registry(data: Mapping[str, Any], path: Path) -> Registry:
    unknown = set(data) - {"kernel", "plugins"}
    if unknown:
        raise RegistryError(f"{path}: unknown top-level table(s): {', '.join(sorted(unknown))}")
    kernel = data.get("kernel", {})
    if not isinstance(kernel, dict) or set(kernel) - _KERNEL_KEYS:
        raise RegistryError(f"{path}: [kernel] accepts only: {', '.join(sorted(_KERNEL_KEYS))}")
    plugins = data.get("plugins", {})
    if not isinstance(plugins, dict):
        raise RegistryError(f"{path}: 'plugins' must be a table of [plugins.<name>] tables")
    entries = tuple(_parse_entry(name, table, path, index) for index, (name, table) in enumerate(plugins.items()))
    return Registry(
        path=path,
        plugins=entries,
        title=str(kernel.get("title", "WasmKernel")),
        version=str(kernel.get("version", "0.1.0")),
    )


def _parse_entry(name: str, table: Any, path: Path, position: int) -> PluginEntry:
    where = f"{path}: [plugins.{name}]"
    if not isinstance(table, dict):
        raise RegistryError(f"{where} must be a table")
    unknown = set(table) - _PLUGIN_KEYS
    if unknown:
        raise RegistryError(f"{where} unknown key(s): {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_PLUGIN_KEYS))})")

    def typed(key: str, kind: type, default: Any) -> Any:
        value = table.get(key, default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RegistryError(f"{where} {key}: expected {kind.__name__}, got {value!r}")
        return value

    names: dict[str, tuple[str, ...]] = {}
    for key in ("before", "after"):
        value = typed(key, list, [])
        if not all(isinstance(item, str) for item in value):
            raise RegistryError(f"{where} {key}: expected a list of plugin names")
        names[key] = tuple(value)
    config = typed("config", dict, {})
    return PluginEntry(
        name=name,
        enabled=typed("enabled", bool, True),
        order=typed("order", int, 0),
        before=names["before"],
        after=names["after"],
        optional=typed("optional", bool, False),
        config=config,
        position=position,
    )


def order_plugins(entries: list[PluginEntry], path: Path) -> list[PluginEntry]:
    """Topological order honouring `before`/`after`; ties by (`order`, position
    in the file). Names of plugins that are not enabled are ignored, so
    disabling a plugin never breaks another's ordering. A cycle is an error."""
    by_name = {entry.name: entry for entry in entries}
    successors: dict[str, set[str]] = {name: set() for name in by_name}
    for entry in entries:
        for other in entry.before:
            if other in by_name:
                successors[entry.name].add(other)
        for other in entry.after:
            if other in by_name:
                successors[other].add(entry.name)
    indegree = dict.fromkeys(by_name, 0)
    for targets in successors.values():
        for target in targets:
            indegree[target] += 1
    ready = [(by_name[n].order, by_name[n].position, n) for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    ordered: list[PluginEntry] = []
    while ready:
        _, _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for target in successors[name]:
            indegree[target] -= 1
            if indegree[target] == 0:
                heapq.heappush(ready, (by_name[target].order, by_name[target].position, target))
    if len(ordered) != len(entries):
        stuck = sorted(name for name, degree in indegree.items() if degree > 0)
        raise RegistryError(f"{path}: plugin ordering has a cycle between: {', '.join(stuck)} (check their before/after)")
    return ordered


def resolve_secrets(value: Any, base: Path, where: str) -> Any:
    """Replace `{ env = ... }` / `{ file = ... }` references, recursively."""
    if isinstance(value, dict):
        if set(value) and set(value) <= {"env", "default"} and "env" in value:
            resolved = os.environ.get(str(value["env"]))
            if resolved is None:
                if "default" in value:
                    return value["default"]
                raise RegistryError(f"{where}: environment variable {value['env']} is not set")
            return resolved
        if set(value) and set(value) <= {"file", "default"} and "file" in value:
            file = Path(str(value["file"])).expanduser()
            file = file if file.is_absolute() else base / file
            try:
                return file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                if "default" in value:
                    return value["default"]
                raise RegistryError(f"{where}: cannot read secret file {file}: {exc.strerror}") from None
        return {key: resolve_secrets(item, base, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(item, base, f"{where}[{i}]") for i, item in enumerate(value)]
    return value
