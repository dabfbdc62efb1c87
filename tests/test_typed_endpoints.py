"""Typed endpoints: models in (body, query, path) and out, with the kernel
alone (no validation plugin): the objects the endpoint gets, defaults, the
415/400/422 answers with pointers, and declarations refused at startup."""

from __future__ import annotations

import datetime
import enum
import re
import uuid
from typing import Any, Literal

import attrs
import pytest
from attrs import validators as v

from wasmkernel import Application, Request, Response, Route, StartupError, TextResponse, hookimpl, model_schema, structure, unstructure
from wasmkernel.testing import app_from, running


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Tag:
    name: str = attrs.field(validator=v.and_(v.min_len(1), v.max_len(10)))


def _odd(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if value % 2 == 0:
        raise ValueError(f"{attribute.name} must be odd", attribute, value)


@attrs.frozen
class NewItem:
    """An item to create."""

    name: str = attrs.field(validator=v.matches_re(r"\S", func=re.search))
    price: float = attrs.field(validator=v.ge(0))
    quantity: int = 1
    tags: list[Tag] = attrs.Factory(list)
    color: Color | None = None
    odd: int = attrs.field(default=1, validator=_odd)  # no schema keyword: checked when built


@attrs.frozen
class Item:
    id: int
    name: str
    price: float
    quantity: int
    tags: list[Tag]
    color: Color | None
    created: datetime.datetime
    ref: uuid.UUID


@attrs.frozen
class Page:
    limit: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
    order: Literal["asc", "desc"] = "asc"
    tag: list[str] = attrs.Factory(list)
    verbose: bool = False


@attrs.frozen
class ItemRef:
    item_id: int = attrs.field(validator=v.ge(1))


CREATED = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
REF = uuid.UUID(int=7)


class Routes:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/items", self.create, methods=["POST"], body_model=NewItem, responses={201: Item, 409: "Exists"}),
            Route("/items", self.search, query_model=Page, responses={200: list[Item]}),
            Route("/items/{item_id:int}", self.get, path_model=ItemRef, query_model=Page, responses={200: Item}),
            Route("/sync/{item_id}", self.sync, methods=["POST"], path_model=ItemRef, body_model=list[Tag]),
            Route("/plain", self.plain, responses={202: "Accepted"}),
            Route("/raw", self.raw, body_model=NewItem, methods=["POST"], responses={201: Item}),
        ]

    async def create(self, request: Request, body: NewItem) -> Item:
        self.seen.append(body)
        return Item(1, body.name, body.price, body.quantity, body.tags, body.color, CREATED, REF)

    async def search(self, request: Request, query: Page) -> list[Item]:
        self.seen.append(query)
        return [Item(n, "x", 1.0, 1, [], None, CREATED, REF) for n in range(2)]

    async def get(self, request: Request, path: ItemRef, query: Page) -> Item:
        self.seen.append((path, query))
        return Item(path.item_id, "x", 2.5, query.limit, [], Color.BLUE, CREATED, REF)

    def sync(self, request: Request, path: ItemRef, body: list[Tag]) -> dict[str, Any]:
        return {"item": path.item_id, "tags": [tag.name for tag in body]}

    async def plain(self, request: Request) -> dict[str, str]:
        return {"status": "queued"}

    async def raw(self, request: Request, body: NewItem) -> Response:
        return TextResponse("as it is", status=200)


def make_app(routes: Any = None) -> Application:
    return app_from({"router": {}, "t": {}}, extra_plugins={"t": routes or Routes()})


async def test_the_endpoint_gets_built_objects_with_defaults() -> None:
    routes = Routes()
    async with running(make_app(routes)) as client:
        created = await client.post("/items", json={"name": "pen", "price": 2, "tags": [{"name": "blue"}], "color": "red"})
        listed = await client.get("/items?limit=5&tag=a&tag=b&verbose=true&cache=123")
        defaulted = await client.get("/items")
        assert defaulted.status_code == 200
        one = await client.get("/items/7?order=desc")
    assert created.status_code == 201
    assert created.json() == {
        "id": 1,
        "name": "pen",
        "price": 2.0,
        "quantity": 1,
        "tags": [{"name": "blue"}],
        "color": "red",
        "created": "2026-01-02T03:04:05+00:00",
        "ref": str(REF),
    }
    assert routes.seen[0] == NewItem("pen", 2.0, 1, [Tag("blue")], Color.RED)
    assert isinstance(routes.seen[0].price, float)
    assert listed.status_code == 200 and [item["id"] for item in listed.json()] == [0, 1]
    assert routes.seen[1] == Page(limit=5, tag=["a", "b"], verbose=True)  # the unknown `cache` is not passed on
    assert routes.seen[2] == Page()
    assert routes.seen[3] == (ItemRef(7), Page(order="desc"))
    assert one.json()["quantity"] == 20 and one.json()["color"] == "blue"


async def test_sync_endpoints_and_collection_bodies() -> None:
    async with running(make_app()) as client:
        response = await client.post("/sync/3", json=[{"name": "a"}, {"name": "b"}])
        bad = await client.post("/sync/0", json=[{"name": "a"}, {"name": ""}, {}])
    assert response.json() == {"item": 3, "tags": ["a", "b"]}
    assert [(e["location"], e["pointer"], e["validator"]) for e in bad.json()["errors"]] == [
        ("path", "/item_id", "minimum"),
        ("body", "/1/name", "minLength"),
        ("body", "/2/name", "required"),
    ]


async def test_the_status_is_the_lowest_declared_2xx_unless_a_response_is_returned() -> None:
    async with running(make_app()) as client:
        assert (await client.get("/plain")).status_code == 202
        raw = await client.post("/raw", json={"name": "a", "price": 1})
    assert (raw.status_code, raw.text) == (200, "as it is")


async def test_bad_input_is_415_400_or_422_with_pointers() -> None:
    async with running(make_app()) as client:
        text = await client.post("/items", content=b"{}", headers={"content-type": "text/plain"})
        broken = await client.post("/items", content=b'{"name":', headers={"content-type": "application/json"})
        invalid = await client.post("/items", json={"name": " ", "price": -1, "tags": [{"name": "x" * 11}], "color": "green", "extra": 1})
        query = await client.get("/items/0?limit=abc&order=up")
    assert text.status_code == 415
    assert broken.status_code == 400 and broken.json()["detail"].startswith("Malformed JSON body")
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert [(e["location"], e["pointer"], e["validator"]) for e in invalid.json()["errors"]] == [
        ("body", "", "additionalProperties"),
        ("body", "/color", "enum"),
        ("body", "/name", "pattern"),
        ("body", "/price", "minimum"),
        ("body", "/tags/0/name", "maxLength"),
    ]
    assert [(e["location"], e["pointer"]) for e in query.json()["errors"]] == [("path", "/item_id"), ("query", "/limit"), ("query", "/order")]


async def test_a_validator_without_a_schema_keyword_is_a_422_too() -> None:
    async with running(make_app()) as client:
        response = await client.post("/items", json={"name": "a", "price": 1, "odd": 2})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"location": "body", "pointer": "/odd", "message": "odd must be odd", "validator": "model"}]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route("/x", lambda request, body: None, body_model=bytes), "type <class 'bytes'> has no JSON Schema"),
        (Route("/x/{a}", lambda request, path: None, path_model=ItemRef), "path_model ItemRef has fields that are not parameters of '/x/{a}': item_id"),
        (Route("/x", lambda request: None, body_model=NewItem), "the endpoint takes no keyword argument body"),
        (Route("/x", lambda request, body: None, body_model=NewItem, body_schema={"type": "object"}), "declare body_model or body_schema, not both"),
        (Route("/x", lambda request, query: None, query_model=Item), "parameters are scalars or lists of scalars, not models"),
        (Route("/x", lambda request: None, responses={200: dict[int, str]}), "JSON object keys are strings"),
    ],
)
def test_wrong_declarations_stop_startup_naming_the_route(route: Route, message: str) -> None:
    class Bad:
        @hookimpl
        def wasmkernel_routes(self, app: Application) -> list[Route]:
            return [route]

    with pytest.raises(StartupError, match=re.escape(f"route '{route.name}' of plugin 't': ") + ".*" + re.escape(message)):
        make_app(Bad())


def test_model_schema_follows_the_attrs_declaration() -> None:
    schema = model_schema(NewItem)
    definition = schema["$defs"]["NewItem"]
    assert schema["$ref"] == "#/$defs/NewItem"
    assert definition["description"] == "An item to create."
    assert definition["required"] == ["name", "price"]
    assert definition["additionalProperties"] is False
    assert definition["properties"]["price"] == {"type": "number", "minimum": 0}
    assert definition["properties"]["quantity"] == {"type": "integer", "default": 1}
    assert definition["properties"]["tags"] == {"type": "array", "items": {"$ref": "#/$defs/Tag"}}
    assert definition["properties"]["color"] == {"enum": ["red", "blue", None], "type": ["string", "null"], "default": None}
    assert schema["$defs"]["Tag"]["properties"]["name"] == {"type": "string", "minLength": 1, "maxLength": 10}


def test_structure_and_unstructure_round_trip() -> None:
    item = Item(3, "a", 1.5, 2, [Tag("t")], Color.RED, CREATED, REF)
    data = unstructure(item)
    assert data["created"] == "2026-01-02T03:04:05+00:00" and data["ref"] == str(REF) and data["tags"] == [{"name": "t"}]
    assert structure(data, Item) == item
    assert structure({"created": "2026-01-02T03:04:05Z"} | {k: v for k, v in data.items() if k != "created"}, Item) == item
