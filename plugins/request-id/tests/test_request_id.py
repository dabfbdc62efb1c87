from __future__ import annotations

from typing import Any

import pytest
import structlog

from wasmkernel import Application, BadRequest, RegistryError, Request, Route, hookimpl
from wasmkernel.testing import app_from, running


class Routes:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [Route("/whoami", self.whoami), Route("/bad", self.bad)]

    async def whoami(self, request: Request) -> dict[str, Any]:
        return {"id": request.id, "context": structlog.contextvars.get_contextvars()}

    async def bad(self, request: Request) -> None:
        raise BadRequest("nope")


def make_app(**config: Any) -> Application:
    return app_from({"request-id": {"config": config}, "router": {}, "t": {}}, extra_plugins={"t": Routes()})


async def test_well_formed_incoming_id_is_used_echoed_and_bound() -> None:
    async with running(make_app()) as client:
        response = await client.get("/whoami", headers={"X-Request-ID": "abc.DEF_123-x"})
    assert response.json() == {"id": "abc.DEF_123-x", "context": {"request_id": "abc.DEF_123-x"}}
    assert response.headers["x-request-id"] == "abc.DEF_123-x"
    assert structlog.contextvars.get_contextvars() == {}


@pytest.mark.parametrize("incoming", ["", "has space", "a" * 129, "semi;colon", "ünïcode"])
async def test_malformed_incoming_id_is_replaced(incoming: str) -> None:
    async with running(make_app()) as client:
        response = await client.get("/whoami", headers=[(b"X-Request-ID", incoming.encode())])
    generated = response.json()["id"]
    assert generated != incoming
    assert len(generated) == 16
    assert response.headers["x-request-id"] == generated
    assert response.json()["context"] == {"request_id": generated}


async def test_missing_id_is_generated_and_unique() -> None:
    async with running(make_app()) as client:
        first = await client.get("/whoami")
        second = await client.get("/whoami")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.json()["id"] == first.headers["x-request-id"]


async def test_maximum_length_id_is_accepted() -> None:
    async with running(make_app()) as client:
        response = await client.get("/whoami", headers={"X-Request-ID": "a" * 128})
    assert response.json()["id"] == "a" * 128


async def test_custom_header_and_untrusted_incoming() -> None:
    async with running(make_app(header="X-Correlation-ID", trust_incoming=False)) as client:
        response = await client.get("/whoami", headers={"X-Correlation-ID": "client-chosen"})
    assert response.json()["id"] != "client-chosen"
    assert response.headers["x-correlation-id"] == response.json()["id"]
    assert "x-request-id" not in response.headers


async def test_id_is_echoed_on_errors_and_unrouted_requests() -> None:
    async with running(make_app()) as client:
        bad = await client.get("/bad", headers={"X-Request-ID": "req-1"})
        missing = await client.get("/nowhere", headers={"X-Request-ID": "req-2"})
    assert (bad.status_code, bad.headers["x-request-id"]) == (400, "req-1")
    assert (missing.status_code, missing.headers["x-request-id"]) == (404, "req-2")


def test_invalid_header_name_is_refused() -> None:
    with pytest.raises(RegistryError, match="header"):
        make_app(header="X Request ID")
