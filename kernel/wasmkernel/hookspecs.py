"""The plugin contract: every hook a WasmKernel plugin can implement.

A plugin is an entry point in the group ``wasmkernel.plugins`` (its name is
the plugin's name in ``plugin_registry.toml``) whose object is a class,
instantiated once per application, or a module; implementations are marked
``@wasmkernel.hookimpl``. The plugins of the kernel's own distribution (the
server) are built in: enabled unless the registry disables them.

Hooks run while an application is assembled, started, stopped or driven from
the CLI, never per request: the request path is the chain the hooks returned,
compiled once. Unless a hook says otherwise the kernel calls it on each
enabled plugin in plugin order, knowing which plugin returned what.

There is one way to call a hook, for the kernel and for a plugin calling
the hooks it adds: ``app.hooks`` (`wasmkernel.hooks.Hooks`), one plugin at a
time, through pluggy (argument checks, tracing), ``app`` passed to hooks
that take it: ``each(hook, **kwargs)`` → [(plugin, result)] of the
implementers; ``gather(hook)`` → [(plugin, item)] of the iterables they
return; ``first(hook)`` → the first result that is not None (later plugins
are not called); ``call(plugin, hook)`` → (implemented?, result) for one
plugin, what it raises propagating as is. An exception in ``each``/``gather``/``first``
becomes a `PluginLoadError` naming the plugin. Because the kernel orders the
calls, pluggy's ``tryfirst``/``trylast`` and hook wrappers do not apply across
plugins (use ``order``/``before``/``after``), and calling
``app.hooks.manager.hook.<name>(...)`` directly (pluggy's order: last
registered first) is not supported.

Plugin order is what each plugin class declares, ``order`` (int, default 0, lower
first), ``before`` and ``after`` (plugin names), replaced by the registry's
keys of those names; ties go by file order, so plugins declaring distinct
orders build one application from any file layout. A class's ``requires``
(plugin names) brings in required plugins that are installed but not enabled.
Awaitable results (pluggy has no async hooks) are awaited inside the ASGI
lifespan, under trio. ``app`` is the `wasmkernel.Application` being built.
``WASMKERNEL_TRACE_HOOKS=1`` logs every hook call with its arguments and results.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from wasmkernel.app import Application
    from wasmkernel.auth import AccessPolicy, Authenticator
    from wasmkernel.boundary import ErrorMapping, ErrorRenderer
    from wasmkernel.cli import Command
    from wasmkernel.hooks import Hooks
    from wasmkernel.metrics import MetricSource
    from wasmkernel.middleware import Middleware
    from wasmkernel.routing import Route, Router
    from wasmkernel.services import ServiceKey

PROJECT = "wasmkernel"
hookspec = pluggy.HookspecMarker(PROJECT)
#: Marks a plugin's hook implementations: ``@hookimpl def wasmkernel_routes(self, app): ...``
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- configuration ---------------------------------------------------------


@hookspec(historic=True)
def wasmkernel_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Add a plugin's own hookspecs (``pluginmanager.add_hookspecs(module)``):
    called when plugins are registered, before any other hook (historic).
    Implementations of another plugin's hooks that may be absent are marked
    ``@hookimpl(optionalhook=True)``; any other hook without a spec stops startup.
    """


@hookspec
def wasmkernel_configure(config: Mapping[str, Any], app: Application) -> None:
    """Configure one plugin from its registry section.

    Called first, once per plugin, with only its ``[plugins.<name>.config]``
    table (empty if absent), secret references (``{ env = "NAME" }``,
    ``{ file = "path" }``) resolved. Validate it, typically with
    `wasmkernel.parse_config` into an attrs class, and keep it; raise
    `wasmkernel.ConfigError` naming the key: the kernel adds file and plugin
    and stops startup.
    """


@hookspec(firstresult=True)
def wasmkernel_configure_logging(app: Application) -> bool | None:
    """Configure structlog and the standard library's logging: called once
    after configuration, the first plugin returning True owns logging (else
    structlog's defaults, tracebacks without frame locals)."""


@hookspec
def wasmkernel_services(app: Application) -> Iterable[tuple[ServiceKey[Any], Any]] | None:
    """Offer services to other plugins: ``(key, object)`` pairs.

    Called once per plugin after configuration. Consumers ask with
    ``app.services.get(key, needed_by=name)`` in any later hook (a missing
    service stops startup naming the consumer and ``key.hint``) or
    ``app.services.find(key)``. Two providers of one key stop startup. A
    provider starts before, and stops after, the plugins that got its service.
    """


# -- what the application serves -------------------------------------------


@hookspec
def wasmkernel_routes(app: Application) -> Iterable[Route] | None:
    """Contribute routes; the kernel records the plugin as each one's ``owner``."""


@hookspec(firstresult=True)
def wasmkernel_router(routes: Sequence[Route], app: Application) -> Router | None:
    """Compile every plugin's routes into a `Router`: called once after
    `wasmkernel_routes`, the first plugin returning one provides it; raise
    `wasmkernel.StartupError` for duplicate or conflicting routes, naming both
    owners. Without a router every request gets 404."""


@hookspec
def wasmkernel_middleware(app: Application) -> Iterable[Middleware] | None:
    """Contribute middleware to the request chains, which run them in plugin
    order (first = outermost); each wrapper (`Middleware.wrap` for HTTP
    routes, `Middleware.websocket` for WebSocket routes) is called once per
    route of its kind to build its precompiled handler."""


@hookspec
def wasmkernel_error_statuses(app: Application) -> Mapping[type[Exception], ErrorMapping] | None:
    """Map the plugin's own exception types to HTTP errors at the error
    boundary: ``{BrokerUnavailable: 503}`` (the exception's message is sent as
    the detail: raise such errors with messages safe to show) or
    ``{QuotaExceeded: lambda exc: HTTPError(str(exc), status=429, headers=...)}``.

    Called once after the middleware. An exception is answered by the mapping
    of the first class of its MRO that has one (``HTTPError``s map to
    themselves); an unmapped one is a logged 500. Two plugins mapping the same
    class stop startup. Domain errors stay plain exceptions: code that
    raises them needs no kernel import.
    """


@hookspec(firstresult=True)
def wasmkernel_error_renderer(app: Application) -> ErrorRenderer | None:
    """Provide the function that renders errors as responses.

    Called once; the first plugin returning one provides it (one format for
    the whole application). It gets the connection, the `HTTPError` (a 500
    one for a crash) and, for a crash, the exception, already logged with the
    request id as error id. Every error a handler or middleware raises goes
    through it once, at the boundary where it was raised. Default:
    ``{"status", "message", ...}`` JSON.
    """


# -- authentication and authorization ---------------------------------------


@hookspec
def wasmkernel_authenticators(app: Application) -> Iterable[Authenticator] | None:
    """Contribute authentication schemes (JWT, API keys, ...). The plugins
    that use them gather them (``app.hooks.gather("wasmkernel_authenticators")``,
    in plugin order: the order authz tries them); return the same objects on
    every call."""


@hookspec
def wasmkernel_access_policies(app: Application) -> Iterable[AccessPolicy] | None:
    """Contribute authorization policies, gathered by the plugin enforcing
    `AuthRequirement`s: a policy gets (identity, requirement, route) and
    returns a refusal reason or None. A request is authorized when its
    identity holds the route's scopes and roles and no policy refuses."""


# -- lifecycle ----------------------------------------------------------------


@hookspec
def wasmkernel_startup(app: Application) -> Awaitable[None] | None:
    """Start the plugin's resources.

    Called in plugin order (service providers before their consumers) inside
    the ASGI lifespan startup, under trio; an awaitable is awaited before the
    next plugin starts. Long-running tasks go to ``app.nursery``. An
    exception stops startup naming the plugin, unless the registry marks it
    ``optional = true``: then it is disabled (its routes answer 503) and
    reported.
    """


@hookspec
def wasmkernel_shutdown(app: Application) -> Awaitable[None] | None:
    """Release what `wasmkernel_startup` acquired: called in reverse startup
    order at lifespan shutdown, for plugins whose startup succeeded; an
    exception is logged and the others still shut down."""


# -- observability ------------------------------------------------------------


@hookspec
def wasmkernel_metric_sources(app: Application) -> Iterable[MetricSource] | None:
    """Contribute metric sources, gathered by the plugin exporting them (metrics, if enabled)."""


# -- command line --------------------------------------------------------------


@hookspec
def wasmkernel_commands(hooks: Hooks) -> Iterable[Command] | None:
    """Contribute ``wasmkernel`` subcommands: called on the registry's enabled
    plugins when the CLI starts (before any configuration); a command that
    needs the application builds it with `wasmkernel.load_application`.

    `hooks` calls hooks on the same plugins, with no application: a plugin
    whose command offers what other plugins contribute adds a hook for it
    (`wasmkernel_addhooks`) that takes no ``app`` and gathers it here, e.g.
    the scaffold plugin's ``hooks.gather("wasmkernel_module_templates")``.
    Implementations that need nothing omit the argument."""
