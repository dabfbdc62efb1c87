from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Literal

import attrs
import pytest

from wasmkernel import Application, AuthRequirement, ConfigError, Identity, RegistryError, Request, ResponseSpec, Route, hookimpl
from wasmkernel.testing import app_from, running

ITEM_BODY = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
SEARCH_QUERY = {
    "type": "object",
    "properties": {"q": {"type": "string", "description": "Search terms"}, "limit": {"type": "integer", "minimum": 1}},
    "required": ["q"],
}


class JWT:
    scheme = "jwt"
    challenge = 'Bearer realm="test"'

    async def authenticate(self, request: Request) -> Identity | None:
        return None


class APIKey:
    scheme = "apikey"
    challenge = 'ApiKey realm="test"'
    header = "X-Token"

    async def authenticate(self, request: Request) -> Identity | None:
        return None


class Kerberos:
    scheme = "kerberos"
    challenge = "Negotiate"

    async def authenticate(self, request: Request) -> Identity | None:
        return None


class Routes:
    def __init__(self, *authenticators: Any) -> None:
        self.authenticators = authenticators

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def get_item(request: Request) -> dict[str, Any]:
            """Fetch one item.

            By its numeric id."""
            return {}

        async def anything(request: Request) -> dict[str, Any]:
            return {}

        return [
            Route(
                "/items/{item_id:int}",
                get_item,
                name="get_item",
                summary="Get an item",
                tags=("items",),
                path_schema={"type": "object", "properties": {"item_id": {"minimum": 1, "description": "The item's id"}}},
                responses={200: "The item", 404: "No such item"},
            ),
            Route(
                "/items",
                anything,
                methods=("POST",),
                name="create_item",
                body_schema=ITEM_BODY,
                auth=AuthRequirement(scopes=("items:write",)),
                responses={201: "Created"},
            ),
            Route("/search", anything, name="search", query_schema=SEARCH_QUERY),
            Route("/things/{key}/{ratio:float}/{ref:uuid}/{rest:path}", anything, name="things", methods=("GET", "PUT")),
            Route("/me", anything, name="me", auth=AuthRequirement()),
            Route("/maybe", anything, name="maybe", auth=AuthRequirement(required=False)),
            Route("/hidden", anything, name="hidden", include_in_schema=False),
        ]

    @hookimpl
    def wasmkernel_authenticators(self, app: Application) -> tuple[Any, ...]:
        return self.authenticators


def make_app(config: dict[str, Any] | None = None, *authenticators: Any) -> Application:
    return app_from(
        {"router": {}, "openapi": {"config": config or {}}, "t": {}},
        extra_plugins={"t": Routes(*authenticators)},
        kernel={"allow_unenforced": True},  # the document shows requirements; enforcing them is not its job
    )


async def fetch_document(app: Application, path: str = "/openapi.json") -> dict[str, Any]:
    async with running(app) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


async def test_document_describes_routes() -> None:
    document = await fetch_document(make_app({}, JWT(), APIKey(), Kerberos()))
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "WasmKernel", "version": "0.1.0"}
    paths = document["paths"]
    assert "/hidden" not in paths
    assert not any(path.startswith("/docs") for path in paths)
    assert paths["/openapi.json"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["required"] == ["openapi", "info", "paths"]

    get_item = paths["/items/{item_id}"]["get"]
    assert get_item["summary"] == "Get an item"
    assert get_item["description"] == "Fetch one item.\n\nBy its numeric id."
    assert get_item["tags"] == ["items"]
    assert get_item["operationId"] == "get_item"
    assert get_item["parameters"] == [
        {
            "name": "item_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "description": "The item's id"},
            "description": "The item's id",
        }
    ]
    assert set(get_item["responses"]) == {"200", "404", "422", "default"}
    error = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    assert get_item["responses"]["404"] == {"description": "No such item", "content": error}
    assert get_item["responses"]["422"]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert get_item["responses"]["200"] == {"description": "The item", "content": {"*/*": {"schema": {}}}}  # declares no body: any
    assert "security" not in get_item

    create = paths["/items"]["post"]
    assert create["requestBody"] == {"required": True, "content": {"application/json": {"schema": ITEM_BODY}}}
    assert set(create["responses"]) == {"201", "400", "401", "403", "415", "422", "default"}
    assert create["security"] == [{"jwt": ["items:write"]}, {"apikey": ["items:write"]}]
    assert "Requires scopes: items:write." in create["description"]

    search = paths["/search"]["get"]["parameters"]
    assert search == [
        {"name": "q", "in": "query", "required": True, "schema": {"type": "string", "description": "Search terms"}, "description": "Search terms"},
        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
    ]
    assert set(paths["/search"]["get"]["responses"]) == {"200", "422", "default"}

    things = paths["/things/{key}/{ratio}/{ref}/{rest}"]
    assert {param["name"]: param["schema"] for param in things["get"]["parameters"]} == {
        "key": {"type": "string"},
        "ratio": {"type": "number"},
        "ref": {"type": "string", "format": "uuid"},
        "rest": {"type": "string"},
    }
    assert (things["get"]["operationId"], things["put"]["operationId"]) == ("things_get", "things_put")
    assert set(things["get"]["responses"]) == {"200", "default"}

    me = paths["/me"]["get"]
    assert set(me["responses"]) == {"200", "401", "default"}
    assert me["security"] == [{"jwt": []}, {"apikey": []}]
    assert paths["/maybe"]["get"]["security"] == [{"jwt": []}, {"apikey": []}, {}]
    assert set(paths["/maybe"]["get"]["responses"]) == {"200", "default"}

    assert document["components"]["securitySchemes"] == {
        "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "apikey": {"type": "apiKey", "in": "header", "name": "X-Token"},
    }
    operation_ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_document_is_valid_openapi_3_1() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    document = await fetch_document(make_app({}, JWT(), APIKey()))
    validator.validate(document)


async def test_without_authenticators_no_security_but_auth_responses() -> None:
    document = await fetch_document(make_app())
    me = document["paths"]["/me"]["get"]
    assert "security" not in me
    assert "401" in me["responses"]
    assert "securitySchemes" not in document["components"]


async def test_config_overrides_and_custom_paths() -> None:
    app = make_app({"path": "/api/schema.json", "docs_path": "/api/docs", "title": "Shop", "version": "2.1"})
    async with running(app) as client:
        assert (await client.get("/openapi.json")).status_code == 404
        document = (await client.get("/api/schema.json")).json()
        page = await client.get("/api/docs")
        script = await client.get("/api/docs/init.js")
    assert document["info"] == {"title": "Shop", "version": "2.1"}
    assert "<title>Shop - API docs</title>" in page.text
    assert 'src="/api/docs/static/swagger-ui-bundle.js"' in page.text
    assert '"url": "/api/schema.json"' in script.text


async def test_docs_can_be_turned_off() -> None:
    async with running(make_app({"docs_path": ""})) as client:
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 200


async def test_document_is_built_once() -> None:
    app = make_app()
    async with running(app) as client:
        first = await client.get("/openapi.json")
        second = await client.get("/openapi.json")
    assert first.content == second.content
    plugin = next(p.instance for p in app.plugins if p.name == "openapi")
    assert plugin.document == first.content


async def test_docs_page_uses_local_assets_only() -> None:
    async with running(make_app()) as client:
        page = await client.get("/docs")
        script = await client.get("/docs/init.js")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'href="/docs/static/swagger-ui.css"' in page.text
    assert 'src="/docs/static/swagger-ui-bundle.js"' in page.text
    assert 'src="/docs/init.js"' in page.text
    assert "http" not in page.text.replace("http-equiv", "")
    assert "<script>" not in page.text  # no inline script: CSP-friendly
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert '"url": "/openapi.json"' in script.text


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("swagger-ui-bundle.js", "text/javascript; charset=utf-8"), ("swagger-ui.css", "text/css; charset=utf-8"), ("favicon-32x32.png", "image/png")],
)
async def test_static_assets_are_served(name: str, content_type: str) -> None:
    async with running(make_app()) as client:
        response = await client.get(f"/docs/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type
        assert len(response.content) > 100
        assert "max-age" in response.headers["cache-control"]
        cached = await client.get(f"/docs/static/{name}", headers={"If-None-Match": response.headers["etag"]})
        assert cached.status_code == 304
        assert cached.content == b""


async def asgi_get(app: Application, path: str) -> tuple[int, bytes]:
    """GET `path` exactly as given (no client-side URL normalisation)."""
    messages: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"", "headers": []}
    await app(scope, receive, send)
    return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])


@pytest.mark.parametrize(
    "path",
    [
        "/docs/static/../../plugin.py",
        "/docs/static/../__init__.py",
        "/docs/static/%2e%2e/__init__.py",
        "/docs/static/..%2f__init__.py",
        "/docs/static//etc/passwd",
        "/docs/static/",
        "/docs/static/nope.js",
        "/docs/static/a\x00b",
    ],
)
async def test_traversal_and_missing_assets_are_404(path: str) -> None:
    app = make_app()
    async with running(app) as client:
        status, body = await asgi_get(app, path)
        assert status == 404
        assert b"No such asset" in body
        # Through a real client, percent-encoded dots are decoded server-side.
        assert (await client.get(path.replace("\x00", "%00"))).status_code == 404


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"path": "openapi.json"}, "path"),
        ({"docs_path": "/docs/"}, "docs_path"),
        ({"path": "/docs/openapi.json"}, "path"),
        ({"title": 3}, "title"),
        ({"theme": "dark"}, "theme"),
    ],
)
def test_bad_config_is_refused(config: dict[str, Any], key: str) -> None:
    with pytest.raises((ConfigError, RegistryError), match=key):
        make_app(config)


@attrs.frozen
class Tag:
    """A label."""

    name: str = attrs.field(validator=attrs.validators.max_len(20))


@attrs.frozen
class NewPet:
    """A pet to add.

    Second paragraph."""

    name: str = attrs.field(validator=attrs.validators.min_len(1))
    tags: list[Tag] = attrs.Factory(list)


@attrs.frozen
class Pet:
    id: int
    name: str
    tags: list[Tag]


@attrs.frozen
class PetQuery:
    limit: int = attrs.field(default=20, validator=[attrs.validators.ge(1), attrs.validators.le(100)], metadata={"schema": {"description": "Page size"}})
    species: Literal["cat", "dog"] | None = None


@attrs.frozen
class PetPath:
    pet_id: int = attrs.field(validator=attrs.validators.ge(1))


@attrs.frozen
class Error:
    """A model named like the document's own Error component."""

    code: int


class TypedRoutes:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def create(request: Request, body: NewPet) -> Pet:
            return Pet(1, body.name, body.tags)

        async def search(request: Request, query: PetQuery) -> list[Pet]:
            return []

        async def get(request: Request, path: PetPath) -> Pet:
            return Pet(path.pet_id, "x", [])

        async def text(request: Request) -> str:
            return "hi"

        return [
            Route("/pets", create, methods=["POST"], body_model=NewPet, responses={201: Pet, 409: Error}),
            Route("/pets", search, query_model=PetQuery, responses={200: list[Pet]}),
            Route("/pets/{pet_id:int}", get, path_model=PetPath, responses={200: Pet, 404: "No such pet"}),
            Route("/text", text, responses={200: ResponseSpec("A greeting", schema={"type": "string"}, media_types="text/plain")}),
        ]


async def test_models_become_components_and_content() -> None:
    app = app_from({"router": {}, "openapi": {}, "t": {}}, extra_plugins={"t": TypedRoutes()})
    document = await fetch_document(app)
    pytest.importorskip("openapi_spec_validator").validate(document)
    schemas = document["components"]["schemas"]
    assert {"Error", "Problem", "ValidationError", "NewPet", "Pet", "Tag"} <= set(schemas)
    assert schemas["NewPet"]["properties"]["name"] == {"type": "string", "minLength": 1}
    assert schemas["NewPet"]["required"] == ["name"]
    assert schemas["Tag"]["properties"]["name"] == {"type": "string", "maxLength": 20}
    assert schemas["Error"]["required"] == ["title", "status", "detail"]  # the server's problem bodies, not the model
    conflicting = next(name for name in schemas if name.endswith("test_openapi.Error"))
    assert schemas[conflicting]["properties"] == {"code": {"type": "integer"}}

    create = document["paths"]["/pets"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NewPet"}
    assert create["responses"]["201"] == {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}
    assert create["responses"]["409"]["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{conflicting}"}
    assert set(create["responses"]) == {"201", "400", "409", "415", "422", "default"}

    search = document["paths"]["/pets"]["get"]
    assert search["parameters"] == [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20, "description": "Page size"},
            "description": "Page size",
        },
        {"name": "species", "in": "query", "required": False, "schema": {"enum": ["cat", "dog", None], "type": ["string", "null"], "default": None}},
    ]
    assert search["responses"]["200"]["content"]["application/json"]["schema"] == {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}

    get = document["paths"]["/pets/{pet_id}"]["get"]
    assert get["parameters"] == [{"name": "pet_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}]
    assert get["responses"]["404"]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert document["paths"]["/text"]["get"]["responses"]["200"] == {"description": "A greeting", "content": {"text/plain": {"schema": {"type": "string"}}}}


async def test_every_2xx_has_content() -> None:
    for app in (make_app({}, JWT()), app_from({"router": {}, "openapi": {}, "t": {}}, extra_plugins={"t": TypedRoutes()})):
        document = await fetch_document(app)
        for path, item in document["paths"].items():
            for method, operation in item.items():
                for status, response in operation["responses"].items():
                    if status.startswith("2"):
                        assert response["content"], (method, path, status)
