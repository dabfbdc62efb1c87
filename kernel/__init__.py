"""WasmKernel: a minimal trio kernel that assembles an ASGI application from
plugins. This module is the public API for plugin authors."""

from __future__ import annotations

from kernel.app import Application, load_application
from kernel.auth import AccessPolicy, Authenticator
from kernel.cli import Command
from kernel.config import ConfiguredPlugin, NoConfig, parse_config
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
from kernel.plugins import LoadedPlugin, built_in, installed_plugins
from kernel.registry import REGISTRY_ENV, Registry, default_registry_path, load_registry, resolve_secrets
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
from kernel.services import ServiceKey, Services
from kernel.websocket import WebSocket, WebSocketDisconnect

__version__ = "0.1.0"
