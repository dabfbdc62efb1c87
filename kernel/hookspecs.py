"""The plugin contract: every hook a WasmKernel plugin can implement.

A plugin is an installed distribution with an entry point in the group
``wasmkernel.plugins``; the entry point's name is the plugin's name in
``plugin_registry.toml`` and its object is a class (instantiated once per
application, so two applications never share plugin state) or a module.
Implementations are marked with ``kernel.hookimpl``.

Hooks are called only while an application is assembled, started, stopped or
driven from the CLI — never per request: the request path is the chain of
handlers the hooks returned, compiled once at startup.

Unless a hook says otherwise, the kernel calls it on every enabled plugin one
by one, in plugin order, and knows which plugin returned what. Plugin order
comes from what each plugin class declares — ``order`` (int, default 0; lower
first), ``before`` and ``after`` (plugin names) — which the registry's keys of
the same names replace; ties go by the registry's file order (so plugins
that declare distinct orders build the same application from any file
layout). A plugin class may also declare ``requires`` (plugin names): a
required plugin that is installed but not enabled is brought in with an empty
configuration. A hook whose result may be awaitable (pluggy has no async
hooks) is awaited by the kernel, inside the ASGI lifespan, under trio. Every
``app`` argument is the `kernel.app.Application` being built.

Set ``WASMKERNEL_TRACE_HOOKS=1`` to log every hook call with its arguments and
results.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from kernel.app import Application
    from kernel.auth import AccessPolicy, Authenticator
    from kernel.commands import Command
    from kernel.errors import HTTPError
    from kernel.http import Request
    from kernel.metrics import MetricSource
    from kernel.middleware import Middleware
    from kernel.responses import Response
    from kernel.routing import Route, Router
    from kernel.services import ServiceKey

PROJECT = "wasmkernel"
hookspec = pluggy.HookspecMarker(PROJECT)
#: Marks a plugin's hook implementations: ``@hookimpl def wasmkernel_routes(self, app): ...``
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- configuration ---------------------------------------------------------


@hookspec(historic=True)
def wasmkernel_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Add a plugin's own hookspecs (``pluginmanager.add_hookspecs(module)``).

    Called when the plugin is registered, before any other hook (historic:
    plugins registered later still see every spec). Implementations of another
    plugin's hooks that may be absent are marked ``@hookimpl(optionalhook=True)``;
    any other hook without a spec is a startup error.
    """


@hookspec
def wasmkernel_configure(config: Mapping[str, Any], app: Application) -> None:
    """Configure one plugin from its registry section.

    Called first, once per enabled plugin, with only that plugin's
    ``[plugins.<name>.config]`` table (empty if absent). Secret references
    (``{ env = "NAME" }``, ``{ file = "path" }``) are already resolved.
    Validate it — typically with `kernel.config.parse_config` into an attrs
    class — and keep it on the plugin instance. Raise `kernel.ConfigError`
    with the offending key: the kernel adds the file and plugin name and stops
    startup.
    """


@hookspec(firstresult=True)
def wasmkernel_configure_logging(app: Application) -> bool | None:
    """Configure structlog and the standard library's logging.

    Called once after every plugin is configured. The first plugin that
    returns True owns logging; when none does, the kernel keeps structlog's
    defaults.
    """


@hookspec
def wasmkernel_services(app: Application) -> Iterable[tuple[ServiceKey[Any], Any]] | None:
    """Offer services to other plugins: ``(key, object)`` pairs.

    Called once per plugin after every plugin is configured. Consumers ask with
    ``app.services.get(key, needed_by=name)`` in any later hook (a missing
    service is a startup error naming the consumer and ``key.hint``) or
    ``app.services.find(key)``. Two providers of one key stop startup. A
    provider starts before, and stops after, the plugins that got its service.
    """


# -- what the application serves -------------------------------------------


@hookspec
def wasmkernel_routes(app: Application) -> Iterable[Route] | None:
    """Contribute routes.

    Called once per enabled plugin after configuration. Return `Route`s; the
    kernel records the plugin as each route's ``owner``.
    """


@hookspec(firstresult=True)
def wasmkernel_router(routes: Sequence[Route], app: Application) -> Router | None:
    """Compile every plugin's routes into a `Router`.

    Called once after `wasmkernel_routes`; the first plugin (in plugin order)
    returning a router provides it. Raise `kernel.StartupError` for duplicate or
    conflicting routes, naming both owners. Without a router plugin the
    application answers every request with 404.
    """


@hookspec
def wasmkernel_middleware(app: Application) -> Iterable[Middleware] | None:
    """Contribute middleware to the request chain.

    Called once per enabled plugin, in plugin order; the chain runs them in
    that order (first = outermost). Each `Middleware.wrap` is then called once
    per route to build that route's precompiled handler.
    """


@hookspec(firstresult=True)
def wasmkernel_error_renderer(app: Application) -> Callable[[Request, HTTPError, Exception | None], Response] | None:
    """Provide the function that renders errors as responses.

    Called once at assembly; the first plugin (in plugin order) returning one
    provides it (firstresult: one format for the whole application). It gets
    the request, the `HTTPError` (for a crash: a 500 one) and, for a crash,
    the exception — already logged with the request id as error id. Every
    error a handler or middleware raises goes through it, once, at the
    boundary where it was raised. Default: ``{"status", "message", ...}`` JSON.
    """


# -- authentication and authorization ---------------------------------------


@hookspec
def wasmkernel_authenticators(app: Application) -> Iterable[Authenticator] | None:
    """Contribute authentication schemes (JWT, API keys, ...).

    Called once per enabled plugin; the schemes are tried in plugin order
    for routes that carry an `AuthRequirement`. They are available as
    ``app.authenticators`` to the plugin that enforces requirements.
    """


@hookspec
def wasmkernel_access_policies(app: Application) -> Iterable[AccessPolicy] | None:
    """Contribute authorization policies.

    Called once per enabled plugin. A policy receives (identity, requirement,
    route) and returns a refusal reason or None. A request is authorized when
    its identity holds the route's scopes and roles and no policy refuses.
    Available as ``app.access_policies``.
    """


# -- lifecycle ----------------------------------------------------------------


@hookspec
def wasmkernel_startup(app: Application) -> Awaitable[None] | None:
    """Start the plugin's resources.

    Called in plugin order (service providers before their consumers) inside
    the ASGI lifespan startup, under trio; may return an awaitable (the kernel
    awaits it before calling the next plugin). Long-running tasks go to
    ``app.nursery``. An exception stops startup and names the plugin, unless
    the plugin is marked ``optional = true`` in the registry: then it is
    disabled (its routes answer 503) and reported.
    """


@hookspec
def wasmkernel_shutdown(app: Application) -> Awaitable[None] | None:
    """Release what `wasmkernel_startup` acquired.

    Called in reverse startup order at lifespan shutdown, for plugins whose
    startup succeeded; awaitables are awaited; exceptions are logged and do not
    stop the other plugins' shutdown.
    """


# -- observability ------------------------------------------------------------


@hookspec
def wasmkernel_metric_sources(app: Application) -> Iterable[MetricSource] | None:
    """Contribute metric sources (exported by the metrics plugin, if enabled).

    Called once per enabled plugin after startup hooks are collected.
    """


# -- command line --------------------------------------------------------------


@hookspec
def wasmkernel_commands() -> Iterable[Command] | None:
    """Contribute ``wasmkernel`` subcommands.

    Called on the plugins enabled in the chosen registry when the CLI starts
    (before any configuration). A command that needs the application builds it
    with `kernel.load_application`.
    """
