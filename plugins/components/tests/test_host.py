"""The component host's edge cases, on small hand-written components (wat.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wat import component

from wasmkernel.testing import running

HELLO = """
    (local $stream i32)
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (i32.store (i32.const 300) (i32.const 0x6c6c6568)) (i32.store8 (i32.const 304) (i32.const 0x6f))
    (call $send (local.get $stream) (i32.const 300) (i32.const 5))
    (call $end (local.get $stream))
"""

#: Copies the request body to the response body, chunk by chunk as it arrives.
ECHO = """
    (local $in i32) (local $stream i32)
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (local.set $in (call $request_body (local.get $request)))
    (block $closed
      (loop $copy
        (call $blocking_read (local.get $in) (i64.const 65536) (i32.const 48))
        (br_if $closed (i32.load8_u (i32.const 48)))
        (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
        (call $send (local.get $stream) (i32.load (i32.const 52)) (i32.load (i32.const 56)))
        (br $copy)))
    (call $drop_input (local.get $in))
    (call $end (local.get $stream))
"""


async def test_a_component_answers(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"hello": component(HELLO)})) as client:
        response = await client.get("/hello")
    assert response.status_code == 200 and response.text == "hello"


async def test_the_request_body_is_streamed_through_and_back(make_app: Callable[..., Any]) -> None:
    body = bytes(range(256)) * 4096 * 2  # 2 MiB: more than the guest reads at once
    async with running(make_app({"echo": component(ECHO)})) as client:
        response = await client.post("/echo", content=body)
    assert response.status_code == 200 and response.content == body
