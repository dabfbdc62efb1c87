"""Exceptions of the kernel's public API: an `HTTPError` answers a request
with its status (anything else a handler raises is a 500 with an error id);
a `StartupError` stops the server before it serves, with a message for a human.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from wasmkernel.datastructures import Headers, HeadersInit


class HTTPError(Exception):
    """An error answered to the client with `status`: `detail` is safe to
    send, `headers` go on the response (`Allow`, `WWW-Authenticate`, ...; a
    name may repeat) and `extra` holds more JSON members (validation errors)."""

    status: int = 500

    def __init__(self, detail: str | None = None, *, status: int | None = None, headers: HeadersInit = None, extra: Mapping[str, Any] | None = None) -> None:
        if status is not None:
            self.status = status
        self.detail = detail or HTTPStatus(self.status).phrase
        self.headers = Headers(headers or ())
        self.extra: dict[str, Any] = dict(extra or {})
        super().__init__(self.detail)


class BadRequest(HTTPError):
    status = 400


class Unauthorized(HTTPError):
    status = 401


class Forbidden(HTTPError):
    status = 403


class NotFound(HTTPError):
    status = 404


class MethodNotAllowed(HTTPError):
    status = 405

    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__("Method not allowed; allowed: " + ", ".join(allowed), headers={"Allow": ", ".join(allowed)})
        self.allowed = tuple(allowed)


class PayloadTooLarge(HTTPError):
    status = 413


class UnsupportedMediaType(HTTPError):
    status = 415


class UnprocessableEntity(HTTPError):
    status = 422


class TooManyRequests(HTTPError):
    status = 429


class ServiceUnavailable(HTTPError):
    status = 503


class GatewayTimeout(HTTPError):
    status = 504


class StartupError(Exception):
    """The application cannot start; the message says why and what to do."""


class RegistryError(StartupError):
    """`plugin_registry.toml` is malformed or names something impossible."""


class ConfigError(StartupError):
    """A plugin's configuration is invalid at `key` (a dotted path in its
    `config` table); the kernel adds the file and plugin name."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


class PluginLoadError(StartupError):
    """A plugin is missing, fails to import, or fails while starting."""
