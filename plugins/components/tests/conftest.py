"""Fixtures of the component host's tests: an application serving given components."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
async def upstream(nursery: Any) -> Any:
    """A tiny HTTP server on loopback answering every request `pong`."""
    import functools

    import trio

    async def serve(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong")
        await stream.aclose()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]
