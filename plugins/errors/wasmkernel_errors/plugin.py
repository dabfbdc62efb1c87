"""The errors plugin: every error becomes an RFC 9457 problem document.

Config (`[plugins.errors.config]`):
- `type_base`: "about:blank" (default) or an absolute URI prefix; the
  problem's `type` is then `type_base` + the status, e.g.
  "https://errors.example.com/problems/" → ".../problems/404"
- `debug`: include the exception's type and message in the `detail` of 500s
  (default false; a traceback is never sent)

Titles are RFC 9110's reason phrases (`titles.TITLES`), the same on every Python.

The plugin is the application's error renderer (`wasmkernel_error_renderer`),
not a middleware: the kernel turns every `HTTPError` raised inside the chain
(by an endpoint, a middleware or the kernel's 404/405) into a response at the
boundary where it was raised, through this renderer, with the error's status
and headers and a body
``{"type", "title", "status", "detail", "instance", "error_id", **extra}``
(`instance` is the request path, `error_id` the request id). Any other
exception has been logged once by the kernel, with its traceback, as
``request.failed``, and is answered 500 with a generic detail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from wasmkernel import Application, ConfiguredPlugin, Connection, ErrorRenderer, HTTPError, JSONResponse, Response, hookimpl
from wasmkernel_errors.titles import title

PROBLEM_JSON = "application/problem+json"
GENERIC_DETAIL = "The server failed to handle this request; quote the error_id when reporting it."


def _type_base(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if value != "about:blank" and not (urlsplit(value).scheme and urlsplit(value).netloc):
        raise ValueError(f"{attribute.name}: expected 'about:blank' or an absolute URI such as 'https://example.com/problems/', got {value!r}")


@attrs.frozen
class Config:
    type_base: str = attrs.field(default="about:blank", validator=_type_base)
    debug: bool = False


class Plugin(ConfiguredPlugin[Config]):
    config_class = Config
    order = -60

    @hookimpl
    def wasmkernel_error_renderer(self, app: Application) -> ErrorRenderer:
        return self.render

    def render(self, request: Connection, error: HTTPError, cause: Exception | None) -> Response:
        detail = error.detail
        if cause is not None:
            detail = f"{GENERIC_DETAIL} ({type(cause).__name__}: {cause})" if self.config.debug else GENERIC_DETAIL
        return self.problem(request, error.status, detail, error.headers, error.extra)

    def problem(
        self, request: Connection, status: int, detail: str, headers: Iterable[tuple[str, str]] = (), extra: Mapping[str, Any] | None = None
    ) -> JSONResponse:
        """The problem+json response for `status` (extension members never
        replace the standard ones)."""
        body: dict[str, Any] = {
            "type": "about:blank" if self.config.type_base == "about:blank" else f"{self.config.type_base}{status}",
            "title": title(status),
            "status": status,
            "detail": detail,
            "instance": request.path,
            "error_id": request.id,
        }
        for key, value in (extra or {}).items():
            body.setdefault(key, value)
        return JSONResponse(body, status=status, headers=headers, media_type=PROBLEM_JSON)
