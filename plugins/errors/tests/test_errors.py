from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from wasmkernel import Application, HTTPError, RegistryError, Request, Route, TooManyRequests, UnprocessableEntity, hookimpl
from wasmkernel.testing import app_from, running


class Routes:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/boom", self.boom, name="boom"),
            Route("/invalid", self.invalid, methods=["POST"]),
            Route("/slow-down", self.slow_down),
            Route("/custom", self.custom),
            Route("/ok", self.ok),
        ]

    async def boom(self, request: Request) -> None:
        raise RuntimeError("secret connection string")

    async def invalid(self, request: Request) -> None:
        raise UnprocessableEntity("Body is invalid", extra={"errors": [{"loc": ["body", "n"], "msg": "not an integer"}], "status": 999})

    async def slow_down(self, request: Request) -> None:
        raise TooManyRequests("Too many requests", headers={"Retry-After": "3"})

    async def custom(self, request: Request) -> None:
        raise HTTPError("Client closed", status=499)

    async def ok(self, request: Request) -> dict[str, bool]:
        return {"ok": True}


def make_app(**config: Any) -> Application:
    return app_from({"errors": {"config": config}, "router": {}, "t": {}}, extra_plugins={"t": Routes()})


async def test_unexpected_exception_is_a_500_problem_logged_once() -> None:
    with capture_logs() as logs:
        async with running(make_app()) as client:
            response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "about:blank"
    assert body["title"] == "Internal Server Error"
    assert body["status"] == 500
    assert body["instance"] == "/boom"
    assert body["error_id"]
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    failures = [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert len(failures) == 1
    assert failures[0]["event"] == "request.failed"
    assert failures[0]["exc_info"] is True
    assert failures[0]["error_id"] == body["error_id"]
    assert (failures[0]["route"], failures[0]["method"], failures[0]["path"]) == ("boom", "GET", "/boom")


async def test_debug_shows_exception_text_but_no_traceback() -> None:
    async with running(make_app(debug=True)) as client:
        response = await client.get("/boom")
    assert "RuntimeError: secret connection string" in response.json()["detail"]
    assert "Traceback" not in response.text


async def test_http_error_keeps_extra_members_without_overriding_standard_ones() -> None:
    with capture_logs() as logs:
        async with running(make_app(type_base="https://errors.example.com/problems/")) as client:
            response = await client.post("/invalid")
    assert response.status_code == 422
    assert response.json() == {
        "type": "https://errors.example.com/problems/422",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "Body is invalid",
        "instance": "/invalid",
        "error_id": response.json()["error_id"],
        "errors": [{"loc": ["body", "n"], "msg": "not an integer"}],
    }
    assert not [entry for entry in logs if entry["log_level"] == "error"]


async def test_http_error_headers_are_sent() -> None:
    async with running(make_app()) as client:
        response = await client.get("/slow-down")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["title"] == "Too Many Requests"


async def test_routing_errors_are_problems() -> None:
    async with running(make_app()) as client:
        missing = await client.get("/missing")
        wrong_method = await client.delete("/ok")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["instance"] == "/missing"
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, HEAD, OPTIONS"


async def test_unregistered_status_gets_a_generic_title() -> None:
    async with running(make_app()) as client:
        response = await client.get("/custom")
    assert (response.status_code, response.json()["title"]) == (499, "Error")


async def test_head_error_has_no_body() -> None:
    async with running(make_app()) as client:
        response = await client.head("/boom")
    assert response.status_code == 500
    assert response.content == b""


async def test_successful_responses_pass_through() -> None:
    async with running(make_app()) as client:
        response = await client.get("/ok")
    assert response.json() == {"ok": True}


@pytest.mark.parametrize("type_base", ["errors", "/problems/", "about:other"])
def test_relative_type_base_is_refused(type_base: str) -> None:
    with pytest.raises(RegistryError, match="type_base"):
        make_app(type_base=type_base)


def test_titles_are_rfc_9110_phrases_on_every_python() -> None:
    """`http.HTTPStatus` renamed 413 and 422 in Python 3.13: titles come from the plugin's own table."""
    from http import HTTPStatus

    from wasmkernel_errors.titles import TITLES, title

    assert (title(413), title(422), title(499)) == ("Content Too Large", "Unprocessable Content", "Error")
    assert {status.value for status in HTTPStatus if status >= 400} <= set(TITLES)
