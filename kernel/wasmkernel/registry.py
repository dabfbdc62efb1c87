"""Reading `plugin_registry.toml` (see the README): the `[kernel]` table,
which plugins are enabled, in which order, with which configuration, and its
secret references: `{ env = "NAME" }` or `{ file = "path" }` (optionally
with a `default`) is the variable or the file's stripped content (relative
to the registry's directory), converted to the field's type (`Reference`).
"""

from __future__ import annotations

import graphlib
import heapq
import os
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from wasmkernel.config import Reference, parse_config
from wasmkernel.errors import ConfigError, RegistryError

REGISTRY_ENV = "WASMKERNEL_REGISTRY"
DEFAULT_REGISTRY = "plugin_registry.toml"
PLACEMENT_KEYS = ("order", "before", "after")
T = TypeVar("T")


@attrs.frozen
class PluginTable:
    """The keys a `[plugins.<name>]` table may set."""

    enabled: bool = True
    order: int = 0
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    optional: bool = False
    config: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class PluginEntry(PluginTable):
    """One `[plugins.<name>]` table and its place in the file."""

    name: str
    position: int = 0
    #: Where each of order/before/after came from: "registry" (the table sets
    #: it, replacing the plugin's own) or "plugin" (see `placed`).
    sources: Mapping[str, str] = attrs.field(factory=dict)

    def placed(self, declared_by_plugin: Any = None) -> PluginEntry:
        """This entry with each of order/before/after that the table does not
        set taken from `declared_by_plugin` (the plugin class's attributes of
        the same names), if it has it."""
        found = {key: getattr(declared_by_plugin, key) for key in PLACEMENT_KEYS if key not in self.sources and hasattr(declared_by_plugin, key)}
        values: dict[str, Any] = {key: int(value) if key == "order" else tuple(value) for key, value in found.items()}
        return attrs.evolve(self, **values, sources={**self.sources, **dict.fromkeys(found, "plugin")})


@attrs.frozen
class KernelTable:
    """The `[kernel]` table."""

    title: str = "WasmKernel"
    version: str = "0.1.0"
    #: Serve routes whose auth or schema checks no plugin enforces (warned once per route).
    allow_unenforced: bool = False


@attrs.frozen(kw_only=True)
class Registry(KernelTable):
    """A parsed registry file: its `[kernel]` settings and its plugins."""

    path: Path
    plugins: tuple[PluginEntry, ...]

    def entry(self, name: str) -> PluginEntry:
        return {plugin.name: plugin for plugin in self.plugins}[name]

    def where(self, name: str, key: str = "") -> str:
        """`file: [plugins.name] key` for error messages."""
        return f"{self.path}: [plugins.{name}] {key}".rstrip()


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
    kernel = _parse_table(KernelTable, data.get("kernel", {}), f"{path}: [kernel]")
    plugins = data.get("plugins", {})
    if not isinstance(plugins, dict):
        raise RegistryError(f"{path}: 'plugins' must be a table of [plugins.<name>] tables")
    entries = tuple(_entry(name, table, path, position) for position, (name, table) in enumerate(plugins.items()))
    return Registry(path=path, plugins=entries, **attrs.asdict(kernel, recurse=False))


def _entry(name: str, table: Any, path: Path, position: int) -> PluginEntry:
    parsed = _parse_table(PluginTable, table, f"{path}: [plugins.{name}]")
    sources = {key: "registry" for key in PLACEMENT_KEYS if key in table}
    return PluginEntry(name=name, position=position, sources=sources, **attrs.asdict(parsed, recurse=False))


def _parse_table(cls: type[T], table: Any, where: str) -> T:
    if not isinstance(table, dict):
        raise RegistryError(f"{where} must be a table")
    try:
        return parse_config(cls, table)
    except ConfigError as exc:
        raise RegistryError(f"{where} {exc}") from None


def topological(names: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """`names` ordered so that in every (first, then) pair of `edges` first
    comes first; among the names free to go, the earliest in `names`. Pairs
    naming something absent are ignored; a cycle raises `graphlib.CycleError`."""
    rank = {name: index for index, name in enumerate(names)}
    graph = graphlib.TopologicalSorter({name: set() for name in rank})
    for first, then in edges:
        if first in rank and then in rank:
            graph.add(then, first)
    graph.prepare()
    ready: list[tuple[int, str]] = []
    ordered: list[str] = []
    while graph.is_active():
        for name in graph.get_ready():
            heapq.heappush(ready, (rank[name], name))
        ordered.append(heapq.heappop(ready)[1])
        graph.done(ordered[-1])
    return ordered


def order_plugins(entries: list[PluginEntry], path: Path) -> list[PluginEntry]:
    """Topological order honouring `before`/`after`; ties by (`order`, position
    in the file). Names of plugins that are not enabled are ignored, so
    disabling a plugin never breaks another's ordering. A cycle is an error
    naming the plugins and where their constraints come from."""
    by_name = {entry.name: entry for entry in sorted(entries, key=lambda entry: (entry.order, entry.position))}
    edges = [(e.name, other) for e in entries for other in e.before] + [(other, e.name) for e in entries for other in e.after]
    try:
        return [by_name[name] for name in topological(by_name, edges)]
    except graphlib.CycleError as exc:
        stuck = sorted(set(exc.args[1]))
        said = "; ".join(f"{n}: before={list(by_name[n].before)} after={list(by_name[n].after)} ({_sources(by_name[n])})" for n in stuck)
        raise RegistryError(f"{path}: plugin ordering has a cycle between: {', '.join(stuck)} — {said}; set before/after in the registry to break it") from None


def _sources(entry: PluginEntry) -> str:
    return ", ".join(f"{key} from {source}" for key, source in entry.sources.items()) or "defaults"


def resolve_secrets(value: Any, base: Path, where: str, unset: list[str] | None = None) -> Any:
    """Replace `{ env = ... }` / `{ file = ... }` references, recursively. A
    reference that cannot be resolved takes its `default`; without one it is a
    `RegistryError`, unless `unset` is given (to list an application, never to
    serve it): then it becomes a random value nothing can match, and its
    description is appended to `unset`."""
    if isinstance(value, list):
        return [resolve_secrets(item, base, f"{where}[{i}]", unset) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value

    def missing(reference: str, message: str) -> Any:
        if "default" in value:
            return value["default"]
        if unset is None:
            raise RegistryError(f"{where}: {message}")
        unset.append(f"{where} ({reference})")
        return secrets.token_urlsafe(48)

    if "env" in value and set(value) <= {"env", "default"}:
        resolved = os.environ.get(str(value["env"]))
        if resolved is None:
            return missing(f"${value['env']}", f"environment variable {value['env']} is not set")
        return Reference(resolved, f"${value['env']}")
    if "file" in value and set(value) <= {"file", "default"}:
        file = base / Path(str(value["file"])).expanduser()  # an absolute path replaces `base`
        try:
            return Reference(file.read_text(encoding="utf-8").strip(), str(file))
        except OSError as exc:
            return missing(str(file), f"cannot read secret file {file}: {exc.strerror}")
    return {key: resolve_secrets(item, base, f"{where}.{key}", unset) for key, item in value.items()}
