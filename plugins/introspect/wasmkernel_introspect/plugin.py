"""The introspect plugin: ``wasmkernel plugins``, ``routes`` and ``check``
show what a registry assembles, without serving it. It adds the hook
`wasmkernel_check` (see `hookspecs`), through which plugins contribute their own checks. The application is
assembled with placeholders for unset secrets (each one noted), so none is
needed to look at it.

Config: none (it only contributes commands).
"""

from __future__ import annotations

import argparse
import sys

import pluggy

from wasmkernel import Application, AuthRequirement, Command, LoadedPlugin, StartupError, built_in, hookimpl, installed_plugins
from wasmkernel_introspect import hookspecs
from wasmkernel_introspect.listing import listed_application, print_table


def _print_chain(app: Application, owners: bool = False) -> None:
    chain = " -> ".join(f"{m.name} ({m.owner})" if owners else m.name for m in app.middleware) or "(none)"
    print(f"\nmiddleware chain (outermost first): {chain} -> endpoint")


def cmd_check(args: argparse.Namespace) -> int:
    app = listed_application(args.registry)
    failed = 0
    for plugin in app.plugins:
        try:
            _, lines = app.hooks.call(plugin, "wasmkernel_check")
        except Exception as exc:
            failed += 1
            print(f"{plugin.name}: FAILED: {exc}", file=sys.stderr)
            continue
        for line in lines or ():
            print(f"{plugin.name}: {line}")
    if failed:
        return 1
    print(f"{app.registry.path}: OK — {len(app.plugins)} plugins enabled, {len(app.router.routes)} routes, {len(app.middleware)} middleware")
    return 0


def _placement(plugin: LoadedPlugin) -> str:
    entry = plugin.entry
    parts = [f"order={entry.order}"] + [f"{key}={','.join(getattr(entry, key))}" for key in ("before", "after") if getattr(entry, key)]
    sources = sorted(set(entry.sources.values()))
    return " ".join(parts) + (f" ({'/'.join(sources)})" if sources else "")


def cmd_plugins(args: argparse.Namespace) -> int:
    try:
        app: Application | None = listed_application(args.registry)
    except StartupError as exc:
        print(f"wasmkernel: {exc}", file=sys.stderr)
        app = None
    enabled = {plugin.name: (index, plugin) for index, plugin in enumerate(app.plugins if app else (), 1)}
    rows = []
    for name, installed in sorted(installed_plugins().items(), key=lambda item: (enabled.get(item[0], (999,))[0], item[0])):
        version = installed.dist.version if installed.dist else "?"
        if name in enabled:
            index, plugin = enabled[name]
            listed = name in {entry.name for entry in app.registry.plugins if entry.enabled}  # type: ignore[union-attr]
            state = "yes" if listed else "built-in" if built_in(installed) else "required"
            hooks = ", ".join(name.removeprefix("wasmkernel_") for name in app.hooks.implemented_by(plugin))  # type: ignore[union-attr]
            rows.append([name, version, state, str(index), _placement(plugin), hooks])
        else:
            rows.append([name, version, "no", "-", "", ""])
    print_table(["plugin", "version", "enabled", "position", "placement (from)", "hooks"], rows)
    if app is None:
        return 1
    _print_chain(app, owners=True)
    print("startup order: " + ", ".join(plugin.name for plugin in app.startup_order()))
    return 0


def describe(auth: AuthRequirement | None) -> str:
    """A route's auth requirement as `wasmkernel routes` shows it."""
    if auth is None or not auth.required:
        return "public"
    parts = ["required"]
    if auth.scopes:
        parts.append("scopes=" + ",".join(auth.scopes))
    if auth.roles:
        parts.append("roles=" + ",".join(auth.roles))
    return " ".join(parts)


def cmd_routes(args: argparse.Namespace) -> int:
    app = listed_application(args.registry)
    rows = [
        [",".join(route.methods), route.path, route.name, route.owner, describe(route.auth)] for route in sorted(app.routes, key=lambda r: (r.path, r.methods))
    ]
    print_table(["methods", "path", "name", "plugin", "auth"], rows)
    _print_chain(app)
    return 0


class Plugin:
    order = 91

    @hookimpl
    def wasmkernel_addhooks(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(hookspecs)

    @hookimpl
    def wasmkernel_commands(self) -> list[Command]:
        return [
            Command("check", "validate the registry: plugins installed, configs valid, routes consistent", cmd_check),
            Command("plugins", "installed and enabled plugins, their hooks and the middleware chain", cmd_plugins),
            Command("routes", "every route: methods, path, owning plugin, auth requirement", cmd_routes),
        ]
