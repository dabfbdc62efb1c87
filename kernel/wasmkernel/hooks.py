"""Calling hooks: the one way, for the kernel and for plugins that add hooks
(``app.hooks.each/gather/first``), in plugin order, each result with its plugin."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from wasmkernel.errors import PluginLoadError, StartupError

if TYPE_CHECKING:
    from wasmkernel.plugins import LoadedPlugin


@contextlib.contextmanager
def blamed(plugin: LoadedPlugin, failed: str) -> Iterator[None]:
    """Turn what `plugin` raises into a `PluginLoadError` naming it (`failed`
    says where: "in wasmkernel_routes", "to start"); a `StartupError` passes."""
    try:
        yield
    except StartupError:
        raise
    except Exception as exc:
        raise PluginLoadError(f"plugin '{plugin.name}' failed {failed}: {type(exc).__name__}: {exc}") from exc


@attrs.define(eq=False)
class Hooks:
    """The hooks of one application's enabled `plugins` (in plugin order),
    registered in `manager`. Every call goes through pluggy (argument checks,
    ``WASMKERNEL_TRACE_HOOKS``), one plugin at a time; `app`, when set, is
    passed to hooks that take it."""

    manager: pluggy.PluginManager = attrs.field(repr=False)
    plugins: Sequence[LoadedPlugin]
    app: Any = attrs.field(default=None, repr=False)

    def call(self, plugin: LoadedPlugin, hook: str, **kwargs: Any) -> tuple[bool, Any]:
        """Call `hook` on `plugin` only: (implemented?, result). What it
        raises propagates (for callers that handle plugins' failures one by one)."""
        caller = getattr(self.manager.hook, hook)
        if not any(impl.plugin is plugin.instance for impl in caller.get_hookimpls()):
            return False, None
        if self.app is not None and caller.spec is not None and "app" in caller.spec.argnames:
            kwargs.setdefault("app", self.app)
        others = [other for other in self.manager.get_plugins() if other is not plugin.instance]
        result = self.manager.subset_hook_caller(hook, remove_plugins=others)(**kwargs)
        if not (caller.spec and caller.spec.opts.get("firstresult")):
            result = result[0] if result else None
        return True, result

    def each(self, hook: str, **kwargs: Any) -> list[tuple[LoadedPlugin, Any]]:
        """(plugin, result) for each plugin implementing `hook`, in plugin
        order; an exception stops the call with a `PluginLoadError` naming the plugin."""
        results = []
        for plugin in self.plugins:
            with blamed(plugin, f"in {hook}"):
                implemented, result = self.call(plugin, hook, **kwargs)
            if implemented:
                results.append((plugin, result))
        return results

    def gather(self, hook: str, **kwargs: Any) -> list[tuple[LoadedPlugin, Any]]:
        """(plugin, item) for every item of the iterable each plugin returns."""
        return [(plugin, item) for plugin, items in self.each(hook, **kwargs) for item in items or ()]

    def first(self, hook: str, **kwargs: Any) -> Any:
        """The first result that is not None, in plugin order; the plugins
        after it are not called."""
        for plugin in self.plugins:
            with blamed(plugin, f"in {hook}"):
                implemented, result = self.call(plugin, hook, **kwargs)
            if implemented and result is not None:
                return result
        return None

    def implemented_by(self, plugin: LoadedPlugin) -> list[str]:
        """The names of the hooks `plugin` implements."""
        return sorted(caller.name for caller in self.manager.get_hookcallers(plugin.instance) or ())
