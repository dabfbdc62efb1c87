"""A minimal Chrome DevTools Protocol client over trio-websocket: enough to
open pages in one headless Chromium, evaluate JavaScript in them and read
the results (no browser-driver package is needed)."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio_websocket

from wasmkernel.testing import wait_until

#: Headless, offline (only 127.0.0.1 resolves), nothing in the background.
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
FLAGS = (*HEADLESS, "--remote-debugging-port=0")


class DevTools:
    """One browser-level DevTools connection; commands to pages go through
    flattened sessions (`session` arguments)."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}

    async def read_loop(self) -> None:
        while True:
            message = json.loads(await self.ws.get_message())
            waiter = self._waiting.pop(message.get("id", -1), None)
            if waiter is not None:
                waiter.send_nowait(message)

    async def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        command_id = next(self._ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._waiting[command_id] = send
        command: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session is not None:
            command["sessionId"] = session
        await self.ws.send_message(json.dumps(command))
        with trio.fail_after(30):
            answer = await receive.receive()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def open_page(self, url: str) -> str:
        """Open `url` in a new page; its session id."""
        target = await self.call("Target.createTarget", {"url": url})
        attached = await self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        return str(attached["sessionId"])

    async def evaluate(self, session: str, expression: str) -> Any:
        """The value of `expression` in the page (promises awaited)."""
        result = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")


@asynccontextmanager
async def chromium(binary: str, profile: Path) -> AsyncIterator[DevTools]:
    """Start headless Chromium with remote debugging on a free port; yield a
    DevTools connection; kill the browser afterwards."""
    profile.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        active = profile / "DevToolsActivePort"

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"chromium exited with {process.returncode}")
            return active.exists() and len(active.read_text().splitlines()) >= 2

        await wait_until(listening, interval=0.05, what="chromium's DevTools port")
        port, path = active.read_text().splitlines()[:2]
        async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}{path}", max_message_size=64 * 1024 * 1024) as ws:
            devtools = DevTools(ws)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(devtools.read_loop)
                yield devtools
                nursery.cancel_scope.cancel()
    finally:
        process.kill()
        process.wait()
