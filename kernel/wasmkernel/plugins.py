"""Plugins: discovering installed ones and registering the enabled ones in a
fresh `pluggy.PluginManager` (one per application, never a global), and
`ConfiguredPlugin`, the base class of a plugin with a typed configuration."""

from __future__ import annotations

import importlib.metadata
import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import pluggy
import structlog

from wasmkernel import hookspecs
from wasmkernel.config import parse_config
from wasmkernel.errors import PluginLoadError
from wasmkernel.hookspecs import hookimpl
from wasmkernel.registry import PluginEntry, Registry, order_plugins

if TYPE_CHECKING:
    from wasmkernel.app import Application

ConfigT = TypeVar("ConfigT")

ENTRY_POINT_GROUP = "wasmkernel.plugins"
#: The kernel's own distribution: the plugins it ships are built in.
DISTRIBUTION = "wasmkernel"
TRACE_ENV = "WASMKERNEL_TRACE_HOOKS"

log = structlog.get_logger("wasmkernel.plugins")


@attrs.frozen(eq=False)
class LoadedPlugin:
    """An enabled plugin registered in an application's plugin manager;
    `entry` is its registry entry, placed (see `PluginEntry.placed`)."""

    entry: PluginEntry
    instance: Any

    @property
    def name(self) -> str:
        return self.entry.name


def installed_plugins() -> dict[str, importlib.metadata.EntryPoint]:
    """Every plugin advertised in the `wasmkernel.plugins` entry-point group."""
    return {entry_point.name: entry_point for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def built_in(available: Any) -> bool:
    """Whether `available` (an entry point) is a plugin of the kernel's own distribution."""
    return isinstance(available, importlib.metadata.EntryPoint) and available.dist is not None and available.dist.name == DISTRIBUTION


def install_hint(name: str, registry: Registry) -> str:
    """The `pip install` that would provide plugin `name`."""
    for root in (registry.path.resolve().parent, Path.cwd()):
        if (root / "plugins" / name / "pyproject.toml").is_file():
            return f"pip install ./plugins/{name}" if root == Path.cwd() else f"pip install {root / 'plugins' / name}"
    return f"pip install wasmkernel-{name}"


def new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV, "") not in ("", "0"):
        manager.trace.root.setwriter(lambda text: log.info("hook", trace=text.rstrip()))
        manager.enable_tracing()
    return manager


def _instantiate(name: str, available: Any) -> Any:
    if not isinstance(available, importlib.metadata.EntryPoint):
        return available  # an in-memory plugin object
    try:
        target = available.load()
        return target() if inspect.isclass(target) else target
    except Exception as exc:
        where = f"{available.dist.name} {available.dist.version}" if available.dist else available.value
        raise PluginLoadError(f"plugin '{name}' ({where}) failed to load: {type(exc).__name__}: {exc}") from exc


def _required_entry(name: str, needed_by: str, registry: Registry, available: Mapping[str, Any]) -> PluginEntry:
    """The entry of a plugin that `needed_by` requires and the registry does not enable."""
    if any(entry.name == name for entry in registry.plugins):
        raise PluginLoadError(f"plugin '{needed_by}' requires plugin '{name}', which {registry.where(name)} disables: enable it or disable '{needed_by}'")
    if name not in available:
        raise PluginLoadError(f"plugin '{needed_by}' requires plugin '{name}', which is not installed; install it with: {install_hint(name, registry)}")
    return PluginEntry(name=name, position=len(registry.plugins))


def load_enabled(registry: Registry, manager: pluggy.PluginManager, extra: Mapping[str, Any] | None = None) -> list[LoadedPlugin]:
    """Import, instantiate and register in `manager`, in plugin order (see
    `wasmkernel.hookspecs`), every enabled plugin, those they `require` and the
    built-in ones the registry does not disable; `extra` maps names to
    in-memory plugin objects (tests, embedding). A plugin that is missing,
    fails to import or implements an unknown hook stops everything with a
    `PluginLoadError` naming it (and, if missing, the fix)."""
    available: dict[str, Any] = {**installed_plugins(), **(extra or {})}
    listed = {entry.name for entry in registry.plugins}
    built_ins = [name for name, found in available.items() if name not in listed and built_in(found)]
    pending = [entry for entry in registry.plugins if entry.enabled]
    pending += [PluginEntry(name=name, position=len(listed) + index) for index, name in enumerate(built_ins)]
    loaded: dict[str, LoadedPlugin] = {}
    while pending:
        entry = pending.pop(0)
        if entry.name not in available:
            raise PluginLoadError(
                f"plugin '{entry.name}' is enabled in {registry.path} but not installed; install it with: {install_hint(entry.name, registry)}"
            )
        instance = _instantiate(entry.name, available[entry.name])
        loaded[entry.name] = LoadedPlugin(entry.placed(instance), instance)
        for name in getattr(instance, "requires", ()):
            if name not in loaded and all(other.name != name for other in pending):
                pending.append(_required_entry(name, entry.name, registry, available))
    ordered = [loaded[entry.name] for entry in order_plugins([plugin.entry for plugin in loaded.values()], registry.path)]
    manager.hook.wasmkernel_addhooks.call_historic(kwargs={"pluginmanager": manager})
    for plugin in ordered:
        try:
            manager.register(plugin.instance, name=plugin.name)
        except Exception as exc:
            raise PluginLoadError(f"plugin '{plugin.name}' failed to register: {type(exc).__name__}: {exc}") from exc
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(f"plugin '{manager.get_name(exc.plugin)}' implements an unknown hook: {exc}") from None
    return ordered


@attrs.frozen
class NoConfig:
    """The config of a plugin that takes no options: every key is refused."""


class ConfiguredPlugin(Generic[ConfigT]):
    """Base class for a plugin whose registry `config` table is the attrs class
    `config_class`: it is parsed strictly into `self.config` (defaults until
    then), the application kept as `self.app`; then `configured()` runs."""

    config_class: type[ConfigT]

    def __init__(self) -> None:
        self.config: ConfigT = self.config_class()
        self._app: Application | None = None

    @property
    def app(self) -> Application:
        if self._app is None:
            raise RuntimeError(f"{type(self).__name__} is not configured yet")
        return self._app

    @hookimpl
    def wasmkernel_configure(self, config: Mapping[str, Any], app: Application) -> None:
        self.config = parse_config(self.config_class, config)
        self._app = app
        self.configured()

    def configured(self) -> None:
        """Called once `self.config` and `self.app` are set."""
