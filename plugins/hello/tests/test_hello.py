from __future__ import annotations

import pytest

from wasmkernel import RegistryError
from wasmkernel.testing import app_from, running


async def test_hello_answers_text() -> None:
    async with running(app_from({"router": {}, "hello": {}})) as client:
        response = await client.get("/hello")
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "13"


async def test_hello_head_and_wrong_method() -> None:
    async with running(app_from({"router": {}, "hello": {}})) as client:
        head = await client.head("/hello")
        post = await client.post("/hello")
    assert head.status_code == 200
    assert head.content == b""
    assert post.status_code == 405


def test_unknown_config_key_is_refused() -> None:
    with pytest.raises(RegistryError, match="greeting"):
        app_from({"router": {}, "hello": {"config": {"greeting": "hi"}}})
