"""The kernel's send path: a response whose status or headers cannot be sent
(from any plugin, not only modules) is refused before anything goes out and
answered 500, so the server's protocol layer has nothing to trip on."""

from __future__ import annotations

from typing import Any

import pytest

from wasmkernel import Application, Response, Route, hookimpl
from wasmkernel.testing import app_from, running


class Unsendable:
    """Routes answering what the query asks for: a status, or one header."""

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [Route("/status/{code:int}", self.status), Route("/header", self.header)]

    async def status(self, request: Any) -> Response:
        return Response(b"x", status=request.path_params["code"])

    async def header(self, request: Any) -> Response:
        return Response(b"x", headers=[(request.query["name"], request.query["value"])])


@pytest.mark.parametrize("code", [100, 101, 103, 199, 600, 1000])
async def test_plugin_status_that_is_not_final_is_500(code: int) -> None:
    async with running(app_from({"router": {}, "t": {}}, {"t": Unsendable()})) as client:
        response = await client.get(f"/status/{code}")
        assert response.status_code == 500 and response.json()["error_id"]
        assert (await client.get("/status/201")).status_code == 201


@pytest.mark.parametrize(
    ("name", "value"),
    [("x-a", "a\r\nSet-Cookie: x=1"), ("x-a", "a\u2028b"), ("x-a", "a\x85b"), ("bad name", "v"), ("connection", "close"), ("transfer-encoding", "chunked")],
)
async def test_plugin_header_that_is_not_sendable_is_500(name: str, value: str) -> None:
    async with running(app_from({"router": {}, "t": {}}, {"t": Unsendable()})) as client:
        response = await client.get("/header", params={"name": name, "value": value})
        assert response.status_code == 500 and "set-cookie" not in response.headers
        assert (await client.get("/header", params={"name": "x-ok", "value": "café"})).headers["x-ok"].encode("latin-1") == "café".encode("latin-1")
