"""The test kit: applications assembled from a registry dict, run in-process
or served on a loopback port, with HTTP, SSE and WebSocket clients; a fake
identity, polling waits, real server and Redis processes, latency checks
against a baseline. Needs the test extra: ``pip install wasmkernel[test]``.

Its pytest plugin (`wasmkernel.testing.plugin`, loaded automatically) offers
the same as fixtures: `build_app`, `run_app`, `serve_app`, `fake_identity`,
`wait_until`, `start_server`, `redis_server`, `project_root`.

Importing this package imports neither httpx nor trio-websocket: the
functions that use them import them when called.
"""

from __future__ import annotations

from wasmkernel.testing.apps import app_from, as_app, registry_from
from wasmkernel.testing.identity import FakeIdentity
from wasmkernel.testing.inprocess import RunApp, WebSocketClient, WebSocketDenied, running, websocket_connect
from wasmkernel.testing.latency import Latencies, assert_not_slowed, time_calls, time_requests
from wasmkernel.testing.paths import project_root
from wasmkernel.testing.processes import BIN, PortTaken, ServerProcesses, answers, free_port, listens_on, start_on_free_port, stop_process, wait_until_serving
from wasmkernel.testing.redis import RedisServer, redis_binary
from wasmkernel.testing.served import ServeApp, ServedApp, served, serving
from wasmkernel.testing.sse import EventStream, EventStreamParser, ServerEvent, next_event, sse_events
from wasmkernel.testing.waiting import wait_until, wait_until_sync

__all__ = [
    "BIN",
    "EventStream",
    "EventStreamParser",
    "FakeIdentity",
    "Latencies",
    "PortTaken",
    "RedisServer",
    "RunApp",
    "ServeApp",
    "ServedApp",
    "ServerEvent",
    "ServerProcesses",
    "WebSocketClient",
    "WebSocketDenied",
    "answers",
    "app_from",
    "as_app",
    "assert_not_slowed",
    "free_port",
    "listens_on",
    "next_event",
    "project_root",
    "redis_binary",
    "registry_from",
    "running",
    "served",
    "serving",
    "sse_events",
    "start_on_free_port",
    "stop_process",
    "time_calls",
    "time_requests",
    "wait_until",
    "wait_until_serving",
    "wait_until_sync",
    "websocket_connect",
]
