from __future__ import annotations

import gzip
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from wasmkernel_compression import plugin as compression
from wasmkernel_compression.plugin import negotiate

from wasmkernel import Application, RegistryError, Request, Response, Route, StreamingResponse, TextResponse, hookimpl
from wasmkernel.testing import app_from, running

TEXT = "The quick brown fox jumps over the lazy dog. " * 40
NOISE = os.urandom(2000)


async def lines() -> AsyncIterator[bytes]:
    for number in range(50):
        yield f"line {number}: {TEXT[:60]}\n".encode()


class Routes:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        text = TextResponse
        return [
            Route("/text", lambda request: text(TEXT)),
            Route("/small", lambda request: text("tiny")),
            Route("/big", lambda request: text(TEXT * 200)),
            Route("/png", lambda request: Response(TEXT, media_type="image/png")),
            Route("/svg", lambda request: Response(TEXT, media_type="image/svg+xml")),
            Route("/noise", lambda request: Response(NOISE, media_type="application/octet-stream")),
            Route("/encoded", lambda request: Response(gzip.compress(TEXT.encode()), headers={"Content-Encoding": "gzip"}, media_type="text/plain")),
            Route("/no-transform", lambda request: text(TEXT, headers={"Cache-Control": "no-transform"})),
            Route("/etag", lambda request: text(TEXT, headers={"ETag": '"v1"'})),
            Route("/stream", self.stream),
        ]

    async def stream(self, request: Request) -> StreamingResponse:
        return StreamingResponse(lines(), media_type="text/plain")


def make_app(**config: Any) -> Application:
    return app_from({"compression": {"config": config}, "router": {}, "t": {}}, extra_plugins={"t": Routes()})


async def fetch(client: httpx.AsyncClient, path: str, accept: str | None) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (httpx does not decode it)."""
    headers = {"Accept-Encoding": accept} if accept is not None else {"Accept-Encoding": "identity"}
    async with client.stream("GET", path, headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, raw


async def test_gzip_round_trip() -> None:
    async with running(make_app()) as client:
        response, raw = await fetch(client, "/text", "gzip")
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == len(raw) < len(TEXT)
    assert gzip.decompress(raw) == TEXT.encode()


async def test_brotli_preferred_on_ties_and_round_trips() -> None:
    brotli = pytest.importorskip("brotli")
    async with running(make_app(brotli_quality=11)) as client:
        response, raw = await fetch(client, "/text", "gzip, deflate, br")
    assert response.headers["content-encoding"] == "br"
    assert brotli.decompress(raw) == TEXT.encode()


async def test_q_values_choose_the_coding() -> None:
    async with running(make_app()) as client:
        gzip_first, raw = await fetch(client, "/text", "br;q=0.5, gzip;q=0.9")
        refused, plain = await fetch(client, "/text", "gzip;q=0, br;q=0")
    assert gzip_first.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == TEXT.encode()
    assert "content-encoding" not in refused.headers
    assert refused.headers["vary"] == "Accept-Encoding"
    assert plain == TEXT.encode()


def test_negotiation() -> None:
    both = ("br", "gzip")
    assert negotiate("gzip, br", both) == "br"
    assert negotiate("gzip;q=1.0, br;q=0.8", both) == "gzip"
    assert negotiate("*", both) == "br"
    assert negotiate("*;q=0.5, br;q=0", both) == "gzip"
    assert negotiate("identity", both) is None
    assert negotiate("", both) is None
    assert negotiate("x-gzip", both) == "gzip"
    assert negotiate("gzip;q=abc, br;q=0.1", both) == "br"
    assert negotiate("br", ("gzip",)) is None


async def test_small_bodies_are_left_alone_without_vary() -> None:
    async with running(make_app()) as client:
        response, raw = await fetch(client, "/small", "gzip")
    assert raw == b"tiny"
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers


async def test_minimum_size_is_configurable() -> None:
    async with running(make_app(minimum_size=0)) as client:
        response, _ = await fetch(client, "/svg", "gzip")
    assert response.headers["content-encoding"] == "gzip"


@pytest.mark.parametrize("path", ["/png", "/encoded", "/no-transform"])
async def test_excluded_responses_are_untouched(path: str) -> None:
    async with running(make_app()) as client:
        response, _ = await fetch(client, path, "gzip, br")
        plain, _ = await fetch(client, path, None)
    assert response.headers.get("content-encoding") == plain.headers.get("content-encoding")
    assert "vary" not in response.headers


async def test_suffixed_text_types_and_custom_exclusions() -> None:
    async with running(make_app()) as client:
        svg, _ = await fetch(client, "/svg", "gzip")
    async with running(make_app(exclude_types=["image/svg+xml"])) as client:
        excluded, _ = await fetch(client, "/svg", "gzip")
    assert svg.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in excluded.headers


async def test_incompressible_body_is_sent_as_is_with_vary() -> None:
    async with running(make_app()) as client:
        response, raw = await fetch(client, "/noise", "gzip")
    assert raw == NOISE
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"


async def test_strong_etag_becomes_weak() -> None:
    async with running(make_app()) as client:
        response, _ = await fetch(client, "/etag", "gzip")
    assert response.headers["etag"] == 'W/"v1"'


async def test_big_body_round_trip() -> None:
    async with running(make_app()) as client:
        _, raw = await fetch(client, "/big", "gzip")
    assert gzip.decompress(raw) == (TEXT * 200).encode()


@pytest.mark.parametrize("coding", ["gzip", "br"])
async def test_streaming_is_compressed_incrementally(coding: str) -> None:
    decompress = gzip.decompress if coding == "gzip" else pytest.importorskip("brotli").decompress
    async with running(make_app()) as client:
        response, raw = await fetch(client, "/stream", coding)
        plain, expected = await fetch(client, "/stream", None)
    assert response.headers["content-encoding"] == coding
    assert "content-length" not in response.headers
    assert decompress(raw) == expected
    assert len(raw) < len(expected)
    assert plain.headers["vary"] == "Accept-Encoding"


async def test_without_brotli_gzip_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compression, "brotli", None)
    async with running(make_app()) as client:
        response, _ = await fetch(client, "/text", "br, gzip;q=0.5")
        only_br, _ = await fetch(client, "/text", "br")
    assert response.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in only_br.headers


@pytest.mark.parametrize(
    ("config", "key"), [({"level": 10}, "level"), ({"brotli_quality": -1}, "brotli_quality"), ({"exclude_types": ["image"]}, "exclude_types")]
)
def test_invalid_config_is_refused(config: dict[str, Any], key: str) -> None:
    with pytest.raises(RegistryError, match=key):
        make_app(**config)
