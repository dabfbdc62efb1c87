"""WasmKernel: a minimal trio kernel that assembles an ASGI application from
plugins. This module is the public API for plugin authors."""

from __future__ import annotations

from kernel.app import Application as Application
from kernel.app import load_application as load_application
from kernel.auth import AccessPolicy as AccessPolicy
from kernel.auth import Authenticator as Authenticator
from kernel.commands import Command as Command
from kernel.commands import print_table as print_table
from kernel.config import ConfiguredPlugin as ConfiguredPlugin
from kernel.config import NoConfig as NoConfig
from kernel.config import parse_config as parse_config
from kernel.datastructures import Headers as Headers
from kernel.datastructures import QueryParams as QueryParams
from kernel.errors import BadRequest as BadRequest
from kernel.errors import ConfigError as ConfigError
from kernel.errors import Forbidden as Forbidden
from kernel.errors import GatewayTimeout as GatewayTimeout
from kernel.errors import HTTPError as HTTPError
from kernel.errors import MethodNotAllowed as MethodNotAllowed
from kernel.errors import NotFound as NotFound
from kernel.errors import PayloadTooLarge as PayloadTooLarge
from kernel.errors import PluginLoadError as PluginLoadError
from kernel.errors import RegistryError as RegistryError
from kernel.errors import ServiceUnavailable as ServiceUnavailable
from kernel.errors import StartupError as StartupError
from kernel.errors import TooManyRequests as TooManyRequests
from kernel.errors import Unauthorized as Unauthorized
from kernel.errors import UnprocessableEntity as UnprocessableEntity
from kernel.errors import UnsupportedMediaType as UnsupportedMediaType
from kernel.hookspecs import hookimpl as hookimpl
from kernel.hookspecs import hookspec as hookspec
from kernel.http import ClientDisconnected as ClientDisconnected
from kernel.http import Identity as Identity
from kernel.http import Request as Request
from kernel.metrics import MetricSource as MetricSource
from kernel.metrics import Sample as Sample
from kernel.middleware import Handler as Handler
from kernel.middleware import Middleware as Middleware
from kernel.plugins import LoadedPlugin as LoadedPlugin
from kernel.plugins import installed_plugins as installed_plugins
from kernel.registry import REGISTRY_ENV as REGISTRY_ENV
from kernel.registry import Registry as Registry
from kernel.registry import default_registry_path as default_registry_path
from kernel.registry import load_registry as load_registry
from kernel.registry import resolve_secrets as resolve_secrets
from kernel.responses import HOP_BY_HOP as HOP_BY_HOP
from kernel.responses import HTMLResponse as HTMLResponse
from kernel.responses import InvalidResponse as InvalidResponse
from kernel.responses import JSONResponse as JSONResponse
from kernel.responses import Response as Response
from kernel.responses import StreamingResponse as StreamingResponse
from kernel.responses import TextResponse as TextResponse
from kernel.responses import dump_json as dump_json
from kernel.responses import head_problem as head_problem
from kernel.responses import header_problem as header_problem
from kernel.routing import HTTP_METHODS as HTTP_METHODS
from kernel.routing import WEBSOCKET as WEBSOCKET
from kernel.routing import AuthRequirement as AuthRequirement
from kernel.routing import MatchKind as MatchKind
from kernel.routing import PathPattern as PathPattern
from kernel.routing import Route as Route
from kernel.routing import RouteMatch as RouteMatch
from kernel.routing import Router as Router
from kernel.services import ServiceKey as ServiceKey
from kernel.services import Services as Services
from kernel.websocket import WebSocket as WebSocket
from kernel.websocket import WebSocketDisconnect as WebSocketDisconnect

__version__ = "0.1.0"
