from __future__ import annotations

import json
from typing import Any

import pytest
import wasmkernel_validation

from wasmkernel import Application, RegistryError, Request, Route, StartupError, hookimpl
from wasmkernel.testing import app_from, running

BODY = {
    "type": "object",
    "required": ["name", "matrix"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "a/b~c": {"type": "integer"},
    },
}
QUERY = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "minimum": 1},
        "ratio": {"type": "number"},
        "verbose": {"type": "boolean"},
        "tag": {"type": "array", "items": {"type": "string"}},
        "ids": {"type": "array", "items": {"type": "integer"}},
        "name": {"type": "string"},
        "maybe": {"type": ["integer", "null"]},
    },
    "additionalProperties": False,
}
PATH = {"type": "object", "properties": {"item": {"type": "integer", "maximum": 100}}}


class Routes:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def echo(request: Request) -> dict[str, Any]:
            body = await request.json() if request.route and request.route.body_schema else None
            return {"body": body, "query": request.stash.get(wasmkernel_validation.QUERY), "path": request.stash.get(wasmkernel_validation.PATH)}

        return [
            Route("/items", echo, methods=["POST"], body_schema=BODY, query_schema=QUERY),
            Route("/items/{item}", echo, path_schema=PATH, query_schema=QUERY),
            Route("/plain", echo, methods=["POST"]),
        ]


def make_app(config: dict[str, Any] | None = None, routes: Any = None) -> Application:
    return app_from({"router": {}, "validation": {"config": config or {}}, "t": {}}, extra_plugins={"t": routes or Routes()})


async def test_valid_body_and_coerced_query_reach_the_endpoint() -> None:
    body = {"name": "m", "matrix": [[1, 2.5]], "email": "a@example.com"}
    async with running(make_app()) as client:
        response = await client.post(
            "/items?n=3&ratio=0.5&verbose=true&tag=x&ids=1&ids=2&name=42&maybe=",
            json=body,
        )
    assert response.status_code == 200
    assert response.json() == {
        "body": body,
        "query": {"n": 3, "ratio": 0.5, "verbose": True, "tag": ["x"], "ids": [1, 2], "name": "42", "maybe": None},
        "path": None,
    }


async def test_content_type_and_malformed_json() -> None:
    async with running(make_app()) as client:
        text = await client.post("/items", content=b'{"name": "m"}', headers={"content-type": "text/plain"})
        missing = await client.post("/items", content=b'{"name": "m"}')
        problem = await client.post("/items", content=b'{"name": "m", "matrix": []}', headers={"content-type": "application/problem+json; charset=utf-8"})
        broken = await client.post("/items", content=b'{"name": ', headers={"content-type": "application/json"})
        plain = await client.post("/plain", content=b"anything")
    assert text.status_code == 415
    assert text.json()["detail"] == "Content-Type must be application/json, got text/plain"
    assert missing.status_code == 415
    assert problem.status_code == 200
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("Malformed JSON body")
    assert plain.status_code == 200


async def test_every_body_error_with_pointers_sorted_by_location() -> None:
    body = {"matrix": [[1, "x"], "row", [True, 2, "y"]], "email": "nope", "a/b~c": 1.5, "extra": 1}
    async with running(make_app()) as client:
        response = await client.post("/items?n=0", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["detail"] == "Request validation failed"
    found = [(e["location"], e["pointer"], e["validator"]) for e in payload["errors"]]
    assert found == [
        ("query", "/n", "minimum"),
        ("body", "", "additionalProperties"),
        ("body", "/a~1b~0c", "type"),
        ("body", "/email", "format"),
        ("body", "/matrix/0/1", "type"),
        ("body", "/matrix/1", "type"),
        ("body", "/matrix/2/0", "type"),
        ("body", "/matrix/2/2", "type"),
        ("body", "/name", "required"),
    ]
    messages = {e["pointer"]: e["message"] for e in payload["errors"]}
    assert messages["/name"] == '"name" is a required property'
    assert messages["/matrix/2/0"] == 'true is not of type "number"'


async def test_query_conversion_failures_are_422() -> None:
    async with running(make_app()) as client:
        response = await client.post("/items?n=abc&ratio=nan&verbose=maybe&ids=1&ids=x&n2=1", json={"name": "m", "matrix": []})
    errors = [(e["location"], e["pointer"], e["validator"], e["message"]) for e in response.json()["errors"]]
    assert errors == [
        ("query", "", "additionalProperties", "Additional properties are not allowed ('n2' was unexpected)"),
        ("query", "/ids/1", "type", '"x" is not of type "integer"'),
        ("query", "/n", "type", '"abc" is not of type "integer"'),
        ("query", "/ratio", "type", '"nan" is not of type "number"'),
        ("query", "/verbose", "type", '"maybe" is not of type "boolean"'),
    ]


async def test_path_params_are_validated_and_combined_with_query_errors() -> None:
    async with running(make_app()) as client:
        ok = await client.get("/items/7?tag=a&tag=b")
        bad = await client.get("/items/700?n=-1")
    assert ok.json() == {"body": None, "query": {"tag": ["a", "b"]}, "path": {"item": 7}}
    assert [(e["location"], e["pointer"], e["validator"]) for e in bad.json()["errors"]] == [("path", "/item", "maximum"), ("query", "/n", "minimum")]


async def test_error_list_and_messages_are_bounded() -> None:
    body = {"name": "m", "matrix": [["x" * 1000, *["y"] * 20], *[["y"] * 20] * 20]}
    async with running(make_app({"max_errors": 5})) as client:
        response = await client.post("/items", content=json.dumps(body), headers={"content-type": "application/json"})
    payload = response.json()
    assert [error["pointer"] for error in payload["errors"]] == ["/matrix/0/0", "/matrix/0/1", "/matrix/0/2", "/matrix/0/3", "/matrix/0/4"]
    assert payload["errors_truncated"] is True
    assert all(len(error["message"]) <= 240 for error in payload["errors"])
    assert len(response.content) < 3000


async def test_a_large_invalid_body_reports_its_first_error() -> None:
    # Listing every error of a large document costs ~15 µs each (a 1 MB body
    # of wrong items: seconds), so only the first is reported.
    body = {"name": "m", "matrix": [[1.5] * 100] * 100 + [["x"] * 100] * 100}
    async with running(make_app()) as client:
        response = await client.post("/items", content=json.dumps(body), headers={"content-type": "application/json"})
    payload = response.json()
    assert [(e["pointer"], e["validator"]) for e in payload["errors"]] == [("/matrix/100/0", "type")]
    assert payload["errors_truncated"] is True


async def test_schema_defaults_are_filled_in() -> None:
    class Defaults:
        @hookimpl
        def wasmkernel_routes(self, app: Application) -> list[Route]:
            async def echo(request: Request) -> dict[str, Any]:
                return {"body": await request.json(), "query": request.stash[wasmkernel_validation.QUERY]}

            query = {"type": "object", "properties": {"limit": {"type": "integer", "default": 20}, "q": {"type": "string"}}}
            item = {"type": "object", "properties": {"qty": {"type": "integer", "default": 1}}}
            body = {
                "type": "object",
                "properties": {"tags": {"type": "array", "default": []}, "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
                "$defs": {"Item": item},
            }
            return [Route("/d", echo, methods=["POST"], query_schema=query, body_schema=body)]

    async with running(make_app(routes=Defaults())) as client:
        response = await client.post("/d?q=x", json={"items": [{}, {"qty": 5}]})
        given = await client.post("/d?limit=3", json={"tags": ["a"]})
    assert response.json() == {"body": {"tags": [], "items": [{"qty": 1}, {"qty": 5}]}, "query": {"limit": 20, "q": "x"}}
    assert given.json() == {"body": {"tags": ["a"]}, "query": {"limit": 3}}


def test_invalid_schema_stops_startup_naming_the_route() -> None:
    class BadRoutes:
        @hookimpl
        def wasmkernel_routes(self, app: Application) -> list[Route]:
            return [Route("/x", lambda request: {}, name="bad", body_schema={"type": "object", "properties": {"a": {"type": "nonsense"}}})]

    with pytest.raises(StartupError, match=r"route 'bad' \(t\): invalid body schema at /properties/a/type"):
        make_app(routes=BadRoutes())


def test_bad_config() -> None:
    with pytest.raises(RegistryError, match="max_errors"):
        make_app({"max_errors": 0})
