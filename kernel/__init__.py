"""WasmKernel: a minimal trio kernel that assembles an ASGI application from
plugins. This module is the public API for plugin authors."""

from __future__ import annotations

from kernel.app import Application, load_application
from kernel.auth import CREDENTIAL_HEADERS, AccessPolicy, Authenticator, credential_headers, missing_grants
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
from kernel.responses import (
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
from kernel.routing import HTTP_METHODS, WEBSOCKET, AuthRequirement, MatchKind, PathPattern, Route, RouteMatch, Router
from kernel.scaffold import check_name, render_templates
from kernel.services import ServiceKey, Services
from kernel.websocket import WebSocket, WebSocketDisconnect

__version__ = "0.1.0"

__all__ = [
    "CREDENTIAL_HEADERS",
    "HOP_BY_HOP",
    "HTTP_METHODS",
    "WEBSOCKET",
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
    "InvalidResponse",
    "JSONResponse",
    "MatchKind",
    "MethodNotAllowed",
    "MetricSource",
    "Middleware",
    "NotFound",
    "PathPattern",
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
    "WebSocket",
    "WebSocketDisconnect",
    "check_name",
    "credential_headers",
    "default_registry_path",
    "dump_json",
    "head_problem",
    "header_problem",
    "hookimpl",
    "hookspec",
    "load_application",
    "load_registry",
    "missing_grants",
    "parse_config",
    "render_templates",
    "resolve_secrets",
]
