"""Fixtures of the component host's tests: an application serving given components."""

from __future__ import annotations

import functools
import gzip
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from wasmkernel import Application
from wasmkernel.testing import app_from

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compile cache for the session (keyed by content: safe to share)."""
    return tmp_path_factory.mktemp("component-cache")


@pytest.fixture
def make_app(cache_dir: Path) -> Callable[..., Application]:
    """``make_app({"name": path, ...}, routes=[...], **settings)``: the components
    plugin serving those components (kind wasi-http unless a spec says otherwise),
    each on ``/<name>`` and everything under it (GET and POST) unless `routes` is given."""

    def make(components: dict[str, Any], routes: list[dict[str, Any]] | None = None, **settings: Any) -> Application:
        modules = [{"name": name, "path": str(value)} if not isinstance(value, dict) else {"name": name, **value} for name, value in components.items()]
        config = {
            "cache_dir": str(cache_dir),
            "default_timeout": 5.0,
            "modules": modules,
            "routes": routes if routes is not None else [{"prefix": f"/{name}", "module": name, "methods": ["GET", "POST"]} for name in components],
            **settings,
        }
        return app_from({"router": {}, "wasm": {}, "components": {"config": config}})

    return make


@pytest.fixture
async def upstream(hostile: Any) -> int:
    """The port of a tiny HTTP server on loopback answering `pong` (any ordinary path)."""
    return int(hostile.port)


class Upstream:
    """A hostile HTTP server on loopback, by path: `/pong`; `/head` (the request head it
    received, as the body); `/drip` (a byte at a time, forever); `/big` (2 MiB);
    `/bomb` (gzip that inflates to 64 MiB); `/hang` (never answers). `open` counts
    connections not yet closed by the client."""

    def __init__(self) -> None:
        self.port = 0
        self.open = 0
        self.seen = 0
        self.heads: list[bytes] = []

    async def serve(self, stream: trio.SocketStream) -> None:
        self.open += 1
        self.seen += 1
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                data += chunk
            head = data.split(b"\r\n\r\n", 1)[0]
            self.heads.append(head)
            path = head.split(b" ", 2)[1]
            if path.endswith(b"/hang") or b"/hang?" in path:
                while await stream.receive_some(4096):  # until the client closes
                    pass
                return
            if path.endswith(b"/drip") or b"/drip?" in path:
                await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n")
                while True:
                    await stream.send_all(b"x")
                    await trio.sleep(0.05)
            body, extra = b"pong", b""
            if path.endswith(b"/head") or b"/head?" in path:
                body = head
            elif path.endswith(b"/big") or b"/big?" in path:
                body = b"b" * (2 * 1024 * 1024)
            elif path.endswith(b"/bomb") or b"/bomb?" in path:
                body, extra = gzip.compress(bytes(64 * 1024 * 1024)), b"content-encoding: gzip\r\n"
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%sconnection: close\r\n\r\n" % (len(body), extra) + body)
        except trio.BrokenResourceError:
            pass
        finally:
            self.open -= 1
            await stream.aclose()


@pytest.fixture
async def hostile(nursery: Any) -> Upstream:
    upstream = Upstream()
    listeners = await nursery.start(functools.partial(trio.serve_tcp, upstream.serve, 0, host="127.0.0.1"))
    upstream.port = listeners[0].socket.getsockname()[1]
    return upstream
