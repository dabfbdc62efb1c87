from __future__ import annotations

import uuid
from typing import Any

import pytest
from wasmkernel_router.table import RouteTable

from wasmkernel import MatchKind, Request, Route, StartupError, WebSocket, hookimpl
from wasmkernel.testing import app_from, running


async def endpoint(request: Request) -> dict[str, Any]:
    return {"route": request.route.name if request.route else None, **request.path_params}


async def socket(ws: WebSocket) -> None:
    await ws.accept()


def table(*routes: Route) -> RouteTable:
    return RouteTable([*routes])


def test_static_and_converted_parameters() -> None:
    routes = table(
        Route("/items", endpoint, name="list"),
        Route("/items/{id:int}", endpoint, name="item"),
        Route("/ids/{value:uuid}", endpoint, name="uuid"),
        Route("/files/{rest:path}", endpoint, name="file"),
    )
    found = routes.match("GET", "/items")
    assert (found.kind, found.route and found.route.name, dict(found.params)) == (MatchKind.FOUND, "list", {})
    assert dict(routes.match("GET", "/items/-7").params) == {"id": -7}
    value = uuid.uuid4()
    assert dict(routes.match("GET", f"/ids/{value}").params) == {"value": value}
    assert dict(routes.match("GET", "/files/a/b.txt").params) == {"rest": "a/b.txt"}
    assert routes.match("GET", "/items/seven").kind is MatchKind.NOT_FOUND
    assert routes.match("GET", "/ids/not-a-uuid").kind is MatchKind.NOT_FOUND


def test_method_not_allowed_lists_methods_and_head_follows_get() -> None:
    routes = table(Route("/notes", endpoint, methods=["GET", "POST"]), Route("/notes", socket, websocket=True))
    refused = routes.match("DELETE", "/notes")
    assert (refused.kind, refused.allowed) == (MatchKind.METHOD_NOT_ALLOWED, ("GET", "HEAD", "OPTIONS", "POST"))
    head = routes.match("HEAD", "/notes")
    assert head.kind is MatchKind.FOUND and head.route is not None and head.route.methods == ("GET", "POST")
    assert routes.match("WEBSOCKET", "/notes").route is not None
    options = routes.match("OPTIONS", "/notes").route
    assert options is not None and options.owner == "router" and not options.include_in_schema


def test_a_declared_options_route_is_kept() -> None:
    own = Route("/x", endpoint, methods=["OPTIONS"], name="own")
    assert table(own).match("OPTIONS", "/x").route is own


@pytest.mark.parametrize(("first", "second"), [("/items/{a:int}", "/items/{b:int}"), ("/same", "/same")])
def test_conflicting_routes_name_both_owners(first: str, second: str) -> None:
    routes = [Route(first, endpoint, owner="one"), Route(second, endpoint, owner="two")]
    with pytest.raises(StartupError, match=r"conflicting routes: GET .* of plugin 'two' and GET .* of plugin 'one'"):
        RouteTable(routes)


def test_same_path_other_shape_does_not_conflict() -> None:
    routes = table(Route("/v/{n:int}", endpoint, name="int"), Route("/v/{s}", endpoint, name="str"))
    found = [routes.match("GET", path).route for path in ("/v/3", "/v/x")]
    assert [route.name if route else None for route in found] == ["int", "str"]


class Routes:
    @hookimpl
    def wasmkernel_routes(self, app: Any) -> list[Route]:
        return [Route("/n/{n:int}", endpoint, name="n", methods=["GET", "PUT"])]


async def test_served_through_the_application() -> None:
    app = app_from({"router": {}, "t": {}}, extra_plugins={"t": Routes()})
    async with running(app) as client:
        assert (await client.get("/n/5")).json() == {"route": "n", "n": 5}
        head = await client.head("/n/5")
        assert (head.status_code, head.content) == (200, b"")
        options = await client.options("/n/5")
        assert (options.status_code, options.headers["allow"]) == (204, "GET, HEAD, PUT, OPTIONS")
        refused = await client.post("/n/5")
        assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD, OPTIONS, PUT")
        assert (await client.get("/n/x")).status_code == 404


def test_config_takes_no_keys() -> None:
    with pytest.raises(StartupError, match=r"\[plugins.router\] config: unknown key\(s\): strict \(allowed: none\)"):
        app_from({"router": {"config": {"strict": True}}})
