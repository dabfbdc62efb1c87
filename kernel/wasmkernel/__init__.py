"""WasmKernel: a minimal trio kernel that assembles an ASGI application from
plugins. This module is the public API for plugin authors.

Its names are imported on first use (PEP 562), so importing one kernel
module (``wasmkernel.services``, say) does not import the whole kernel.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmkernel.app import Application as Application
    from wasmkernel.app import load_application as load_application
    from wasmkernel.auth import AccessPolicy as AccessPolicy
    from wasmkernel.auth import Authenticator as Authenticator
    from wasmkernel.boundary import ErrorMapping as ErrorMapping
    from wasmkernel.boundary import ErrorRenderer as ErrorRenderer
    from wasmkernel.cli import Command as Command
    from wasmkernel.config import parse_config as parse_config
    from wasmkernel.connection import Connection as Connection
    from wasmkernel.connection import Identity as Identity
    from wasmkernel.datastructures import Headers as Headers
    from wasmkernel.datastructures import QueryParams as QueryParams
    from wasmkernel.endpoints import success_status as success_status
    from wasmkernel.errors import BadRequest as BadRequest
    from wasmkernel.errors import ConfigError as ConfigError
    from wasmkernel.errors import Forbidden as Forbidden
    from wasmkernel.errors import GatewayTimeout as GatewayTimeout
    from wasmkernel.errors import HTTPError as HTTPError
    from wasmkernel.errors import MethodNotAllowed as MethodNotAllowed
    from wasmkernel.errors import NotFound as NotFound
    from wasmkernel.errors import PayloadTooLarge as PayloadTooLarge
    from wasmkernel.errors import PluginLoadError as PluginLoadError
    from wasmkernel.errors import RegistryError as RegistryError
    from wasmkernel.errors import ServiceUnavailable as ServiceUnavailable
    from wasmkernel.errors import StartupError as StartupError
    from wasmkernel.errors import TooManyRequests as TooManyRequests
    from wasmkernel.errors import Unauthorized as Unauthorized
    from wasmkernel.errors import UnprocessableEntity as UnprocessableEntity
    from wasmkernel.errors import UnsupportedMediaType as UnsupportedMediaType
    from wasmkernel.forms import FormLimits as FormLimits
    from wasmkernel.forms import UploadFile as UploadFile
    from wasmkernel.hooks import Hooks as Hooks
    from wasmkernel.hookspecs import hookimpl as hookimpl
    from wasmkernel.hookspecs import hookspec as hookspec
    from wasmkernel.http import ClientDisconnected as ClientDisconnected
    from wasmkernel.http import Request as Request
    from wasmkernel.inputs import Inputs as Inputs
    from wasmkernel.inputs import RequestInputs as RequestInputs
    from wasmkernel.inputs import SchemaProblem as SchemaProblem
    from wasmkernel.jsonio import MAX_JSON_DEPTH as MAX_JSON_DEPTH
    from wasmkernel.jsonio import dump_json as dump_json
    from wasmkernel.jsonio import parse_json as parse_json
    from wasmkernel.metrics import MetricSource as MetricSource
    from wasmkernel.metrics import Sample as Sample
    from wasmkernel.middleware import Handler as Handler
    from wasmkernel.middleware import Middleware as Middleware
    from wasmkernel.middleware import WebSocketHandler as WebSocketHandler
    from wasmkernel.models import ResponseSpec as ResponseSpec
    from wasmkernel.models import SchemaBuilder as SchemaBuilder
    from wasmkernel.models import input_schema as input_schema
    from wasmkernel.models import model_schema as model_schema
    from wasmkernel.models import structure as structure
    from wasmkernel.models import unstructure as unstructure
    from wasmkernel.plugins import ConfiguredPlugin as ConfiguredPlugin
    from wasmkernel.plugins import LoadedPlugin as LoadedPlugin
    from wasmkernel.plugins import NoConfig as NoConfig
    from wasmkernel.plugins import built_in as built_in
    from wasmkernel.plugins import installed_plugins as installed_plugins
    from wasmkernel.registry import REGISTRY_ENV as REGISTRY_ENV
    from wasmkernel.registry import Registry as Registry
    from wasmkernel.registry import default_registry_path as default_registry_path
    from wasmkernel.registry import load_registry as load_registry
    from wasmkernel.registry import resolve_secrets as resolve_secrets
    from wasmkernel.responses import HOP_BY_HOP as HOP_BY_HOP
    from wasmkernel.responses import HTMLResponse as HTMLResponse
    from wasmkernel.responses import InvalidResponse as InvalidResponse
    from wasmkernel.responses import JSONResponse as JSONResponse
    from wasmkernel.responses import Response as Response
    from wasmkernel.responses import StreamingResponse as StreamingResponse
    from wasmkernel.responses import TextResponse as TextResponse
    from wasmkernel.responses import head_problem as head_problem
    from wasmkernel.responses import header_problem as header_problem
    from wasmkernel.routing import AUTH as AUTH
    from wasmkernel.routing import HTTP_METHODS as HTTP_METHODS
    from wasmkernel.routing import SCHEMA as SCHEMA
    from wasmkernel.routing import WEBSOCKET as WEBSOCKET
    from wasmkernel.routing import AuthRequirement as AuthRequirement
    from wasmkernel.routing import MatchKind as MatchKind
    from wasmkernel.routing import PathPattern as PathPattern
    from wasmkernel.routing import Protection as Protection
    from wasmkernel.routing import Route as Route
    from wasmkernel.routing import RouteMatch as RouteMatch
    from wasmkernel.routing import Router as Router
    from wasmkernel.services import ServiceKey as ServiceKey
    from wasmkernel.services import Services as Services
    from wasmkernel.stash import Stash as Stash
    from wasmkernel.stash import StashKey as StashKey
    from wasmkernel.websocket import SessionState as SessionState
    from wasmkernel.websocket import WebSocket as WebSocket
    from wasmkernel.websocket import WebSocketDisconnect as WebSocketDisconnect

#: Submodule → the names it exports here.
_EXPORTS = {
    "app": "Application load_application",
    "auth": "AccessPolicy Authenticator",
    "boundary": "ErrorMapping ErrorRenderer",
    "cli": "Command",
    "config": "parse_config",
    "connection": "Connection Identity",
    "datastructures": "Headers QueryParams",
    "endpoints": "success_status",
    "errors": "BadRequest ConfigError Forbidden GatewayTimeout HTTPError MethodNotAllowed NotFound PayloadTooLarge PluginLoadError RegistryError "
    "ServiceUnavailable StartupError TooManyRequests Unauthorized UnprocessableEntity UnsupportedMediaType",
    "forms": "FormLimits UploadFile",
    "hooks": "Hooks",
    "hookspecs": "hookimpl hookspec",
    "http": "ClientDisconnected Request",
    "inputs": "Inputs RequestInputs SchemaProblem",
    "jsonio": "MAX_JSON_DEPTH dump_json parse_json",
    "metrics": "MetricSource Sample",
    "middleware": "Handler Middleware WebSocketHandler",
    "models": "ResponseSpec SchemaBuilder input_schema model_schema structure unstructure",
    "plugins": "ConfiguredPlugin LoadedPlugin NoConfig built_in installed_plugins",
    "registry": "REGISTRY_ENV Registry default_registry_path load_registry resolve_secrets",
    "responses": "HOP_BY_HOP HTMLResponse InvalidResponse JSONResponse Response StreamingResponse TextResponse head_problem header_problem",
    "routing": "AUTH HTTP_METHODS SCHEMA WEBSOCKET AuthRequirement MatchKind PathPattern Protection Route RouteMatch Router",
    "services": "ServiceKey Services",
    "stash": "Stash StashKey",
    "websocket": "SessionState WebSocket WebSocketDisconnect",
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names.split()}
__all__ = sorted(_MODULE_OF)  # noqa: PLE0605 - the names above, one list
__version__ = "0.1.0"  # the one place: pyproject.toml reads it


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*globals(), *__all__]
