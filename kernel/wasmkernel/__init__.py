"""WasmKernel: a minimal trio kernel that assembles an ASGI application from
plugins. This module is the public API for plugin authors."""

from __future__ import annotations

from wasmkernel.app import Application, load_application
from wasmkernel.auth import AccessPolicy, Authenticator
from wasmkernel.cli import Command
from wasmkernel.config import ConfiguredPlugin, NoConfig, parse_config
from wasmkernel.datastructures import Headers, QueryParams
from wasmkernel.errors import (
    BadRequest,
    ConfigError,
    Forbidden,
    GatewayTimeout,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PluginLoadError,
    RegistryError,
    ServiceUnavailable,
    StartupError,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
    UnsupportedMediaType,
)
from wasmkernel.hookspecs import hookimpl, hookspec
from wasmkernel.http import ClientDisconnected, Identity, Request
from wasmkernel.metrics import MetricSource, Sample
from wasmkernel.middleware import Handler, Middleware
from wasmkernel.plugins import LoadedPlugin, built_in, installed_plugins
from wasmkernel.registry import REGISTRY_ENV, Registry, default_registry_path, load_registry, resolve_secrets
from wasmkernel.responses import (
    HOP_BY_HOP,
    HTMLResponse,
    InvalidResponse,
    JSONResponse,
    Response,
    StreamingResponse,
    TextResponse,
    dump_json,
    head_problem,
    header_problem,
)
from wasmkernel.routing import HTTP_METHODS, WEBSOCKET, AuthRequirement, MatchKind, PathPattern, Route, RouteMatch, Router
from wasmkernel.services import ServiceKey, Services
from wasmkernel.websocket import WebSocket, WebSocketDisconnect

# The public API: what type checkers see as exported from an installed kernel.
# fmt: off
__all__ = [
    "HOP_BY_HOP", "HTTP_METHODS", "REGISTRY_ENV", "WEBSOCKET", "AccessPolicy", "Application", "AuthRequirement", "Authenticator", "BadRequest",
    "ClientDisconnected", "Command", "ConfigError", "ConfiguredPlugin", "Forbidden", "GatewayTimeout", "HTMLResponse", "HTTPError", "Handler", "Headers",
    "Identity", "InvalidResponse", "JSONResponse", "LoadedPlugin", "MatchKind", "MethodNotAllowed", "MetricSource", "Middleware", "NoConfig", "NotFound",
    "PathPattern", "PayloadTooLarge", "PluginLoadError", "QueryParams", "Registry", "RegistryError", "Request", "Response", "Route", "RouteMatch", "Router",
    "Sample", "ServiceKey", "ServiceUnavailable", "Services", "StartupError", "StreamingResponse", "TextResponse", "TooManyRequests", "Unauthorized",
    "UnprocessableEntity", "UnsupportedMediaType", "WebSocket", "WebSocketDisconnect", "__version__", "built_in", "default_registry_path", "dump_json",
    "head_problem", "header_problem", "hookimpl", "hookspec", "installed_plugins", "load_application", "load_registry", "parse_config", "resolve_secrets",
]
# fmt: on

__version__ = "0.1.0"  # the one place: pyproject.toml reads it
