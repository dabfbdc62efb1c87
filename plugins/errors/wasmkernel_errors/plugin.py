"""The errors plugin: every error becomes an RFC 9457 problem document.

Config (`[plugins.errors.config]`):
- `type_base`: "about:blank" (default) or an absolute URI prefix; the
  problem's `type` is then `type_base` + the status, e.g.
  "https://errors.example.com/problems/" → ".../problems/404"
- `debug`: include the exception's type and message in the `detail` of 500s
  (default false; a traceback is never sent)

An `HTTPError` raised inside the chain (by an endpoint, middleware or the
kernel's 404/405) is answered with its status and headers and a body
``{"type", "title", "status", "detail", "instance", "error_id", **extra}``
(`instance` is the request path, `error_id` the request id). Any other
exception is logged once, with its traceback, as ``request.failed`` (logger
"wasmkernel.errors") and answered 500 with a generic detail.

Order: right after `request-id`, `logging` and `access-log`, before every
other middleware, so it renders what every inner layer raises and the outer
ones see a response.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import attrs
import structlog

from kernel import Application, ConfiguredPlugin, Handler, HTTPError, JSONResponse, Middleware, Request, Response, Route, hookimpl
from kernel.http import ClientDisconnected

PROBLEM_JSON = "application/problem+json"
GENERIC_DETAIL = "The server failed to handle this request; quote the error_id when reporting it."

log = structlog.get_logger("wasmkernel.errors")


def _type_base(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if value != "about:blank" and not (urlsplit(value).scheme and urlsplit(value).netloc):
        raise ValueError(f"{attribute.name}: expected 'about:blank' or an absolute URI such as 'https://example.com/problems/', got {value!r}")


@attrs.frozen
class Config:
    type_base: str = attrs.field(default="about:blank", validator=_type_base)
    debug: bool = False


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Plugin(ConfiguredPlugin[Config]):
    config_class = Config

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware("errors", self.wrap)]

    def problem(
        self, request: Request, status: int, detail: str, headers: Iterable[tuple[str, str]] = (), extra: Mapping[str, Any] | None = None
    ) -> JSONResponse:
        """The problem+json response for `status` (extension members never
        replace the standard ones)."""
        body: dict[str, Any] = {
            "type": "about:blank" if self.config.type_base == "about:blank" else f"{self.config.type_base}{status}",
            "title": _title(status),
            "status": status,
            "detail": detail,
            "instance": request.path,
            "error_id": request.id,
        }
        for key, value in (extra or {}).items():
            body.setdefault(key, value)
        return JSONResponse(body, status=status, headers=headers, media_type=PROBLEM_JSON)

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        route_name = route.name if route is not None else None

        async def handler(request: Request) -> Response:
            try:
                return await next_handler(request)
            except ClientDisconnected:
                raise
            except HTTPError as exc:
                return self.problem(request, exc.status, exc.detail, exc.headers, exc.extra)
            except Exception as exc:
                log.exception("request.failed", error_id=request.id, route=route_name, method=request.method, path=request.path)
                detail = f"{GENERIC_DETAIL} ({type(exc).__name__}: {exc})" if self.config.debug else GENERIC_DETAIL
                return self.problem(request, 500, detail)

        return handler
