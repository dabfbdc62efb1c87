"""The introspect plugin: ``wasmkernel plugins``, ``routes`` and ``check``
show what a registry assembles, without serving it. It adds the hook
`wasmkernel_check` (see `hookspecs`), through which plugins contribute their own checks. The application is
assembled with placeholders for unset secrets (each one noted), so none is
needed to look at it.

Config: none (it only contributes commands).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pluggy

from wasmkernel import Application, AuthRequirement, Command, LoadedPlugin, StartupError, built_in, hookimpl, installed_plugins
from wasmkernel_introspect import hookspecs
from wasmkernel_introspect.listing import listed_application, print_table, quiet_logs


def _chain(app: Application) -> list[dict[str, str]]:
    return [{"name": link.name, "plugin": link.owner} for link in app.middleware]


def _print_chain(app: Application, owners: bool = False) -> None:
    chain = " -> ".join(f"{m['name']} ({m['plugin']})" if owners else m["name"] for m in _chain(app)) or "(none)"
    print(f"\nmiddleware chain (outermost first): {chain} -> endpoint")


def _json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")


def cmd_check(args: argparse.Namespace) -> int:
    app = listed_application(args.registry)
    failed = 0
    for plugin in app.plugins:
        try:
            with quiet_logs():
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


def _placement(plugin: LoadedPlugin) -> dict[str, Any]:
    entry = plugin.entry
    return {"order": entry.order, "before": list(entry.before), "after": list(entry.after), "sources": dict(entry.sources)}


def _placement_text(placement: dict[str, Any]) -> str:
    parts = [f"order={placement['order']}"] + [f"{key}={','.join(placement[key])}" for key in ("before", "after") if placement[key]]
    sources = sorted(set(placement["sources"].values()))
    return " ".join(parts) + (f" ({'/'.join(sources)})" if sources else "")


def _plugin_rows(app: Application | None) -> list[dict[str, Any]]:
    """Every installed plugin, the enabled ones first in plugin order."""
    enabled = {plugin.name: (index, plugin) for index, plugin in enumerate(app.plugins if app else (), 1)}
    listed = {entry.name for entry in app.registry.plugins if entry.enabled} if app else set()
    rows = []
    for name, installed in sorted(installed_plugins().items(), key=lambda item: (enabled.get(item[0], (999,))[0], item[0])):
        row: dict[str, Any] = {"name": name, "version": installed.dist.version if installed.dist else None, "enabled": "no", "position": None}
        if name in enabled:
            index, plugin = enabled[name]
            hooks = sorted(name.removeprefix("wasmkernel_") for name in app.hooks.implemented_by(plugin))  # type: ignore[union-attr]
            state = "yes" if name in listed else "built-in" if built_in(installed) else "required"
            row |= {"enabled": state, "position": index, "placement": _placement(plugin), "hooks": hooks}
        rows.append(row)
    return rows


def _plugin_cells(row: dict[str, Any]) -> list[str]:
    placement = _placement_text(row["placement"]) if "placement" in row else ""
    return [row["name"], row["version"] or "?", row["enabled"], str(row["position"] or "-"), placement, ", ".join(row.get("hooks", ()))]


def cmd_plugins(args: argparse.Namespace) -> int:
    error = None
    try:
        app: Application | None = listed_application(args.registry)
    except StartupError as exc:
        print(f"wasmkernel: {exc}", file=sys.stderr)
        app, error = None, str(exc)
    rows = _plugin_rows(app)
    if args.json:
        document = {"plugins": rows, "middleware": _chain(app), "startup_order": [p.name for p in app.startup_order()]} if app else {"plugins": rows}
        print(json.dumps({**document, "error": error} if error else document, indent=2))
        return 0 if app else 1
    print_table(["plugin", "version", "enabled", "position", "placement (from)", "hooks"], [_plugin_cells(row) for row in rows])
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


def _auth(auth: AuthRequirement | None) -> dict[str, Any] | None:
    """A route's auth requirement in `routes --json`: null when public."""
    if auth is None or not auth.required:
        return None
    return {"scopes": list(auth.scopes), "roles": list(auth.roles)}


def cmd_routes(args: argparse.Namespace) -> int:
    app = listed_application(args.registry)
    routes = sorted(app.routes, key=lambda r: (r.path, r.methods))
    if args.json:
        listed = [{"methods": list(r.methods), "path": r.path, "name": r.name, "plugin": r.owner, "auth": _auth(r.auth)} for r in routes]
        print(json.dumps({"routes": listed, "middleware": _chain(app)}, indent=2))
        return 0
    print_table(["methods", "path", "name", "plugin", "auth"], [[",".join(r.methods), r.path, r.name, r.owner, describe(r.auth)] for r in routes])
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
            Command("plugins", "installed and enabled plugins, their hooks and the middleware chain", cmd_plugins, _json_argument),
            Command("routes", "every route: methods, path, owning plugin, auth requirement", cmd_routes, _json_argument),
        ]
