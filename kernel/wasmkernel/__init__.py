"""WasmKernel: a minimal trio kernel that assembles an ASGI application from
plugins. This module is the public API for plugin authors."""

from __future__ import annotations

from wasmkernel.app import Application, load_application
from wasmkernel.auth import AccessPolicy, Authenticator
from wasmkernel.cli import Command
from wasmkernel.config import ConfiguredPlugin, NoConfig, parse_config
from wasmkernel.datastructures import Headers, QueryParams
from wasmkernel.endpoints import success_status
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
from wasmkernel.inputs import Inputs, RequestInputs, SchemaProblem
from wasmkernel.jsonio import MAX_JSON_DEPTH, dump_json, parse_json
from wasmkernel.metrics import MetricSource, Sample
from wasmkernel.middleware import Handler, Middleware
from wasmkernel.models import ResponseSpec, SchemaBuilder, input_schema, model_schema, structure, unstructure
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
    head_problem,
    header_problem,
)
from wasmkernel.routing import HTTP_METHODS, WEBSOCKET, AuthRequirement, MatchKind, PathPattern, Route, RouteMatch, Router
from wasmkernel.services import ServiceKey, Services
from wasmkernel.websocket import WebSocket, WebSocketDisconnect

__version__ = "0.1.0"
