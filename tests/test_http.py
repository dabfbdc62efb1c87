"""The request path in-process: routing, request model, responses, errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import structlog

from tests.plugins_for_tests import Demo
from wasmkernel.testing import app_from, running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = app_from({"router": {}, "health": {}, "demo": {}}, extra_plugins={"demo": Demo()})
    async with running(app) as http:
        yield http


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"] == "application/json"


async def test_unknown_path_is_404_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"title": "Not Found", "status": 404, "detail": "No route matches this path"}
    assert response.headers["content-type"] == "application/problem+json"


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/echo")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"


async def test_automatic_head_and_options(client: httpx.AsyncClient) -> None:
    head = await client.head("/health")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == "15"
    options = await client.options("/items/3")
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, HEAD, OPTIONS"


async def test_request_model(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/echo?tag=a&tag=b&single=1&empty=",
        content=b"payload",
        headers=[("X-Multi", "one"), ("x-multi", "two"), ("Cookie", "session=abc; theme=dark")],
    )
    assert response.json() == {
        "method": "POST",
        "path": "/echo",
        "query": {"tag": ["a", "b"], "single": "1", "empty": ""},
        "tags": ["a", "b"],
        "x_multi": ["one", "two"],
        "cookies": {"session": "abc", "theme": "dark"},
        "client": "127.0.0.1",
        "body": "payload",
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/items/42", {"item_id": 42, "type": "int"}), ("/items/-3", {"item_id": -3, "type": "int"}), ("/scale/1.5", {"factor": 1.5})],
)
async def test_path_converters(client: httpx.AsyncClient, path: str, expected: dict[str, object]) -> None:
    assert (await client.get(path)).json() == expected


async def test_path_and_uuid_converters(client: httpx.AsyncClient) -> None:
    assert (await client.get("/files/a/b/c.txt")).text == "a/b/c.txt"
    value = uuid.uuid4()
    assert (await client.get(f"/ids/{value}")).text == str(value)
    assert (await client.get("/ids/not-a-uuid")).status_code == 404
    assert (await client.get("/items/abc")).status_code == 404


async def test_sync_handlers_run_in_a_worker_thread(client: httpx.AsyncClient) -> None:
    assert (await client.get("/sync")).json() == {"thread": True}


async def test_unhandled_error_is_500_json_logged_once_without_traceback(client: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        response = await client.get("/boom")
        after = await client.get("/health")
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500
    assert body["detail"] == "Internal server error"
    assert body["error_id"]
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    failures = [entry for entry in logs if entry["event"] == "request.failed"]
    assert len(failures) == 1
    assert failures[0]["error_id"] == body["error_id"]
    assert failures[0]["exc_info"] is True
    assert after.status_code == 200


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/json", content=b'{"a": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed JSON body")
    ok = await client.post("/json", json={"a": [1, 2]})
    assert (ok.status_code, ok.json()) == (201, {"received": {"a": [1, 2]}})


@pytest.mark.parametrize("body", [b"NaN", b'{"a": Infinity}', b"[-Infinity]", b"1e999"])
async def test_non_finite_json_numbers_are_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/json", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed JSON body")


async def test_invalid_utf8_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/json", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "UTF-8" in response.json()["detail"]


async def test_body_over_the_cap_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", content=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413


async def test_a_route_declares_its_own_body_cap(client: httpx.AsyncClient) -> None:
    assert (await client.post("/small", content=b"x" * 10)).status_code == 200
    assert (await client.post("/small", content=b"x" * 11)).status_code == 413


async def test_streaming_response(client: httpx.AsyncClient) -> None:
    response = await client.get("/stream")
    assert response.text == "chunk0;chunk1;chunk2;"
    assert "content-length" not in response.headers


async def test_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    assert (await client.get("/healthz")).json() == {"status": "alive"}
