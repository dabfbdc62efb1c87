"""The hostile soak (issue 22): for a minute, several clients at once send
every hostile shape of `tests.reliability.hostile` — WebSocket frames with
the handshake, early-data floods, compression bombs, floods nobody reads,
protocol violations, ping floods, abandoned handshakes, unread bodies, h2c
upgrades carrying frames, HTTP/2 rapid reset, CONTINUATION, PING and
PRIORITY floods, DATA after a response, WebSocket over HTTP/2 with early
data, window overflows — to a server with two worker processes, while a
prober keeps asking `/healthz`.

Afterwards the server must still serve: the same processes running (with
workers, hypercorn stops them all when one dies), `/healthz`, a WebSocket and
an HTTP/2 request answered, and every connection the clients closed closed
on the server's side too. No wall-clock bound is asserted: the minute is how
long the attack lasts, not a measurement.

Runs in CI with the rest (marked `soak` and `server`); alone:
``pytest -m soak``; ``WASMKERNEL_SOAK_SECONDS`` changes the duration.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import httpx
import pytest
import trio
import trio_websocket

from tests.reliability import hostile
from tests.reliability import raw_clients as raw
from tests.reliability.harness import installed, spawn, token

pytestmark = [pytest.mark.server, pytest.mark.soak, pytest.mark.skipif(not installed("channels", "feed", "limits"), reason="needs the feed and limits plugins")]

DURATION = float(os.environ.get("WASMKERNEL_SOAK_SECONDS", "60"))
ATTACKERS = 4


async def test_hostile_soak_leaves_the_server_serving(tmp_path: Path) -> None:
    instance = spawn(hostile.registry(tmp_path), tmp_path, workers=2)
    try:
        processes = hostile.serving_processes(instance)
        sent: Counter[str] = Counter()
        answered: Counter[int | str] = Counter()

        async def attacker(seed: int) -> None:
            shapes = list(hostile.SHAPES)
            random.Random(seed).shuffle(shapes)
            while True:
                for shape in shapes:
                    await trio.to_thread.run_sync(hostile.attack, shape, instance.port)
                    sent[shape.__name__] += 1

        async def prober() -> None:
            async with httpx.AsyncClient(base_url=instance.base, timeout=10) as client:
                while True:
                    try:
                        answered[(await client.get("/healthz")).status_code] += 1
                    except httpx.TransportError as exc:
                        answered[type(exc).__name__] += 1
                    await trio.sleep(0.2)

        with trio.move_on_after(DURATION):
            async with trio.open_nursery() as nursery:
                for seed in range(ATTACKERS):
                    nursery.start_soon(attacker, seed)
                nursery.start_soon(prober)
        print(f"shapes sent: {dict(sent)}; /healthz during the soak: {dict(answered)}")
        assert set(sent) == {shape.__name__ for shape in hostile.SHAPES}  # every shape went out at least once

        await trio.to_thread.run_sync(hostile.assert_still_serves, instance, processes)
        await trio.to_thread.run_sync(hostile.wait_until, lambda: hostile.close_wait(instance) == 0, "connections the clients closed are still held", 600)
        async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{instance.port}{hostile.WS_PATH}") as ws:
            await ws.ping()
        async with httpx.AsyncClient(base_url=instance.base, timeout=10) as client:
            created = await client.post("/posts", json={"text": "after the soak"}, headers={"authorization": f"Bearer {token(['feed:write'])}"})
            assert created.status_code == 201, created.text
        client_h2 = await trio.to_thread.run_sync(raw.H2Client, instance.port)
        try:
            status, _ = await trio.to_thread.run_sync(lambda: client_h2.response(client_h2.request("GET", "/healthz")))
            assert status == 200
        finally:
            client_h2.close()
        failures = [record for record in instance.log_lines() if record.get("event") in ("request.failed", "app.startup_failed")]
        assert not failures, failures[:3]
    finally:
        instance.stop()
