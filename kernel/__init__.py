"""WasmKernel: a minimal trio kernel that assembles an ASGI application from
plugins. This module is the public API for plugin authors."""

from __future__ import annotations

from kernel.app import Application, load_application
from kernel.auth import AccessPolicy, Authenticator, missing_grants
from kernel.commands import Command
from kernel.config import ConfiguredPlugin, parse_config
from kernel.datastructures import Headers, QueryParams
from kernel.errors import (
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
from kernel.hookspecs import hookimpl, hookspec
from kernel.http import ClientDisconnected, Identity, Request
from kernel.metrics import MetricSource, Sample
from kernel.middleware import Handler, Middleware
from kernel.registry import Registry, default_registry_path, load_registry, resolve_secrets
from kernel.responses import HTMLResponse, JSONResponse, Response, StreamingResponse, TextResponse, dump_json
from kernel.routing import HTTP_METHODS, AuthRequirement, MatchKind, Route, RouteMatch, Router
from kernel.services import ServiceKey, Services

__version__ = "0.1.0"

__all__ = [
    "HTTP_METHODS",
    "AccessPolicy",
    "Application",
    "AuthRequirement",
    "Authenticator",
    "BadRequest",
    "ClientDisconnected",
    "Command",
    "ConfigError",
    "ConfiguredPlugin",
    "Forbidden",
    "GatewayTimeout",
    "HTMLResponse",
    "HTTPError",
    "Handler",
    "Headers",
    "Identity",
    "JSONResponse",
    "MatchKind",
    "MethodNotAllowed",
    "MetricSource",
    "Middleware",
    "NotFound",
    "PayloadTooLarge",
    "PluginLoadError",
    "QueryParams",
    "Registry",
    "RegistryError",
    "Request",
    "Response",
    "Route",
    "RouteMatch",
    "Router",
    "Sample",
    "ServiceKey",
    "ServiceUnavailable",
    "Services",
    "StartupError",
    "StreamingResponse",
    "TextResponse",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "default_registry_path",
    "dump_json",
    "hookimpl",
    "hookspec",
    "load_application",
    "load_registry",
    "missing_grants",
    "parse_config",
    "resolve_secrets",
]
