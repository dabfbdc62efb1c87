"""The openapi plugin: the application's OpenAPI 3.1 document and interactive docs.

Config (`[plugins.openapi.config]`):
- `path`: where the document is served (default "/openapi.json")
- `docs_path`: where the Swagger UI page is served (default "/docs"; "" turns
  the page off)
- `title`, `version`: the document's `info` (default: the registry's
  `[kernel] title` and `version`)

HTTP:
- `GET <path>`: the document (application/json), built once at startup from
  every route with `include_in_schema` (see `wasmkernel_openapi.document`),
  this one included;
- `GET <docs_path>`: a Swagger UI page; it works offline: its scripts and
  styles come from the `swagger-ui-py` package, served from
  `GET <docs_path>/static/{path}` (404 for anything outside that directory,
  cacheable, with ETag/If-None-Match support) and `GET <docs_path>/init.js`
  (no inline script, so a strict Content-Security-Policy allows the page).

The docs page's routes do not appear in the document.
"""

from __future__ import annotations

import html
import importlib.util
import json
import mimetypes
import os
from pathlib import Path
from typing import Any

import attrs
import trio

from wasmkernel import (
    Application,
    ConfiguredPlugin,
    HTMLResponse,
    NotFound,
    Request,
    Response,
    ResponseSpec,
    Route,
    ServiceUnavailable,
    StartupError,
    dump_json,
    hookimpl,
)
from wasmkernel_openapi.document import build_document

#: Content types of the assets, fixed so they do not depend on the platform's
#: mimetypes database.
_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".map": "application/json",
    ".png": "image/png",
}
_ASSET_MAX_AGE = 86400


def _check_path(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if attribute.name == "docs_path" and value == "":
        return
    if not value.startswith("/") or (len(value) > 1 and value.endswith("/")) or "{" in value or "}" in value:
        raise ValueError(f"'{attribute.name}' must be a plain path starting with '/' and not ending with '/', got {value!r}")


@attrs.frozen
class Config:
    path: str = attrs.field(default="/openapi.json", validator=_check_path)
    docs_path: str = attrs.field(default="/docs", validator=_check_path)
    title: str | None = None
    version: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.docs_path and (self.path == self.docs_path or self.path.startswith(self.docs_path + "/")):
            raise ValueError(f"'path' ({self.path!r}) must lie outside 'docs_path' ({self.docs_path!r})")


def swagger_ui_directory() -> Path:
    """The directory of Swagger UI's files shipped by `swagger-ui-py`.

    Found without importing the package (its import pulls in jinja2 and
    PyYAML, which serving files does not need).
    """
    spec = importlib.util.find_spec("swagger_ui")
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        directory = Path(location, "static").resolve()
        if (directory / "swagger-ui-bundle.js").is_file():
            return directory
    raise StartupError("the openapi plugin's docs page needs the Swagger UI files of 'swagger-ui-py' (pip install swagger-ui-py), or set docs_path = \"\"")


def docs_page(title: str, static_url: str, init_url: str) -> str:
    static = html.escape(static_url, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - API docs</title>
<link rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="icon" type="image/png" href="{static}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{html.escape(init_url, quote=True)}"></script>
</body>
</html>
"""


def docs_script(document_url: str) -> str:
    options = {"url": document_url, "dom_id": "#swagger-ui", "deepLinking": True, "layout": "BaseLayout"}
    return (
        f"window.ui = SwaggerUIBundle(Object.assign({json.dumps(options)}, "
        "{presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]}));\n"
    )


@attrs.frozen
class Assets:
    """Files served from one directory, never from outside it."""

    directory: Path
    #: Its own threads for file lookups: never another subsystem's.
    threads: trio.CapacityLimiter = attrs.field(factory=lambda: trio.CapacityLimiter(2), eq=False)

    def locate(self, name: str) -> tuple[Path, os.stat_result] | None:
        """The file `name` inside the directory and its stat, or None (missing,
        a directory, or resolving outside: `..`, absolute paths, symlinks)."""
        try:
            target = (self.directory / name).resolve()
            if not target.is_relative_to(self.directory) or not target.is_file():
                return None
            return target, target.stat()
        except (OSError, ValueError):
            return None

    async def serve(self, request: Request) -> Response:
        found = await trio.to_thread.run_sync(self.locate, str(request.path_params["path"]), limiter=self.threads)
        if found is None:
            raise NotFound("No such asset")
        target, stat = found
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        headers = {"ETag": etag, "Cache-Control": f"public, max-age={_ASSET_MAX_AGE}", "X-Content-Type-Options": "nosniff"}
        if etag in (tag.strip() for tag in (request.headers.get("if-none-match") or "").split(",")):
            return Response(status=304, headers=headers)
        body = await trio.Path(target).read_bytes()
        content_type = _CONTENT_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(body, headers=headers, media_type=content_type)


class Plugin(ConfiguredPlugin[Config]):
    order = 32
    config_class = Config

    def __init__(self) -> None:
        super().__init__()
        self.assets: Assets | None = None
        self.document: bytes | None = None

    def configured(self) -> None:
        if self.config.docs_path:
            self.assets = Assets(swagger_ui_directory())

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        document = ResponseSpec("The OpenAPI 3.1 document", schema={"type": "object", "required": ["openapi", "info", "paths"]})
        routes = [Route(self.config.path, self.openapi, name="openapi", summary="This OpenAPI document", tags=("openapi",), responses={200: document})]
        if self.assets is not None:
            docs = self.config.docs_path
            title = self.config.title or app.registry.title
            page = docs_page(title, f"{docs}/static", f"{docs}/init.js").encode()
            script = docs_script(self.config.path).encode()

            async def docs_html(request: Request) -> Response:
                return HTMLResponse(page)

            async def docs_js(request: Request) -> Response:
                return Response(script, headers={"Cache-Control": "no-cache"}, media_type=_CONTENT_TYPES[".js"])

            routes += [
                Route(docs, docs_html, name="openapi.docs", summary="Interactive API docs", include_in_schema=False),
                Route(f"{docs}/init.js", docs_js, name="openapi.docs_init", include_in_schema=False),
                Route(f"{docs}/static/{{path:path}}", self.assets.serve, name="openapi.docs_static", include_in_schema=False),
            ]
        return routes

    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        document = build_document(
            app.router.routes,
            title=self.config.title or app.registry.title,
            version=self.config.version or app.registry.version,
            authenticators=[found for _, found in app.hooks.gather("wasmkernel_authenticators")],
            has_access_policies=bool(app.hooks.gather("wasmkernel_access_policies")),
        )
        try:
            self.document = dump_json(document)
        except (TypeError, ValueError) as exc:
            raise StartupError(f"a route's schema cannot be written as JSON: {exc}") from None

    async def openapi(self, request: Request) -> Response:
        if self.document is None:
            raise ServiceUnavailable("The OpenAPI document is not built yet")
        return Response(self.document, media_type="application/json")
