"""Hostile components: resource misuse, exhaustion, lying response heads, files and
disconnects. Each case is a small hand-written component (wat.py)."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any, cast

import pytest
import trio
from test_host import FILES, FILES_DATA, HELLO
from test_outgoing import FETCH_HELPERS, OUTGOING_IMPORTS
from wat import command, component

from wasmkernel.testing import running


def _host(app: Any) -> Any:
    (host,) = [plugin.instance.host for plugin in app.plugins if plugin.name == "components"]
    return host


#: Builds header fields of one 60,000-byte value each until the host refuses; answers how many (u32 LE).
FIELD_HOARD = """
    (local $count i32) (local $fields i32) (local $stream i32)
    (memory.fill (i32.const 2048) (i32.const 0x61) (i32.const 60000))
    (block $refused
      (loop $more
        (local.set $fields (call $fields))
        (call $append (local.get $fields) (i32.const 400) (i32.const 1) (i32.const 2048) (i32.const 60000) (i32.const 64))
        (br_if $refused (i32.load8_u (i32.const 64)))
        (local.set $count (i32.add (local.get $count) (i32.const 1)))
        (br $more)))
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (i32.store (i32.const 300) (local.get $count))
    (call $send (local.get $stream) (i32.const 300) (i32.const 4))
    (call $end (local.get $stream))
"""
NAME_X = '(data (i32.const 400) "x")'


async def test_header_fields_cannot_exhaust_the_host(make_app: Callable[..., Any]) -> None:
    """Thousands of 60 KB field sets would hold gigabytes: the call's budget refuses them early."""
    from wasmkernel_components.table import Table

    # Copying ~1,000 fields of 60 KB takes seconds on a busy machine: the budget is under test, not the clock.
    async with running(make_app({"hoard": {"path": str(component(FIELD_HOARD, NAME_X)), "timeout": 600.0}})) as client:
        answer = await client.get("/hoard")
    assert answer.status_code == 200
    (count,) = struct.unpack("<I", answer.content)
    assert 0 < count <= Table.BYTES_LIMIT // 60000


def test_outgoing_bodies_are_charged_to_the_call() -> None:
    from wasmkernel_components.table import Table
    from wasmkernel_components.wasi.http import BufferSink
    from wasmkernel_components.wasi.io import Failed

    table = Table()
    sinks = [BufferSink(done=cast(Any, None), table=table) for _ in range(8)]
    chunk = b"b" * (1024 * 1024)
    with pytest.raises(Failed, match="hold more than"):
        for sink in sinks:
            for _ in range(8):
                sink.write(chunk)
    assert table.held <= Table.BYTES_LIMIT
    for sink in sinks:
        sink.release()
    assert table.held == 0


#: Hands 12 requests to /hang (the body is the authority) without waiting; answers how many were refused, as a digit.
IN_FLIGHT = """
    (local $end i32) (local $i i32) (local $req i32) (local $refused i32) (local $stream i32)
    (local.set $end (i32.add (i32.const 1024) (call $read_body (local.get $request))))
    (loop $more
      (local.set $req (call $new_request (call $fields)))
      (drop (call $set_scheme (local.get $req) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))
      (drop (call $set_authority (local.get $req) (i32.const 1) (i32.const 1024) (i32.sub (local.get $end) (i32.const 1024))))
      (drop (call $set_path (local.get $req) (i32.const 1) (i32.const 400) (i32.const 5)))
      (call $send_request (local.get $req) (i32.const 0) (i32.const 0) (i32.const 96))
      (local.set $refused (i32.add (local.get $refused) (i32.load8_u (i32.const 96))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 12))))
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (i32.store8 (i32.const 300) (i32.add (i32.const 48) (local.get $refused)))
    (call $send (local.get $stream) (i32.const 300) (i32.const 1))
    (call $end (local.get $stream))
"""


async def test_outgoing_requests_in_flight_are_bounded(make_app: Callable[..., Any], hostile: Any) -> None:
    from wasmkernel_components.wasi.http import MAX_IN_FLIGHT

    path = component(IN_FLIGHT, FETCH_HELPERS + ' (data (i32.const 400) "/hang")', imports=OUTGOING_IMPORTS)
    app = make_app({"many": {"path": str(path), "http": {"allow": [f"http://127.0.0.1:{hostile.port}"], "timeout": 3600.0}}})
    async with running(app) as client:
        answer = await client.post("/many", content=f"127.0.0.1:{hostile.port}".encode())
        with trio.fail_after(60):  # a deadlock guard, not a timing assertion
            while _host(app).running or hostile.open:  # the call ended: what was in flight is cancelled
                await trio.sleep(0.01)
    assert answer.text == str(12 - MAX_IN_FLIGHT)
    assert hostile.seen <= MAX_IN_FLIGHT


#: Starts a response (its body taken), then asks a second response for a body: '1' if refused.
TWO_BODIES = """
    (local $other i32) (local $stream i32)
    (local.set $other (call $response (call $fields)))
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (call $response_body (local.get $other) (i32.const 80))
    (i32.store8 (i32.const 300) (i32.add (i32.const 48) (i32.load8_u (i32.const 80))))
    (call $send (local.get $stream) (i32.const 300) (i32.const 1))
    (call $end (local.get $stream))
"""


async def test_only_the_response_sent_writes_the_body(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"two": component(TWO_BODIES)})) as client:
        answer = await client.get("/two")
    assert (answer.status_code, answer.text) == (200, "1")


#: Declares Content-Length: 5, writes one byte and finishes the body (the host says the length is wrong).
LENGTH_LIE = """
    (local $fields i32) (local $response i32) (local $stream i32)
    (local.set $fields (call $fields))
    (call $append (local.get $fields) (i32.const 400) (i32.const 14) (i32.const 420) (i32.const 1) (i32.const 64))
    (local.set $response (call $response (local.get $fields)))
    (local.set $stream (call $start (local.get $out) (local.get $response)))
    (call $send (local.get $stream) (i32.const 300) (i32.const 1))
    (call $drop_output (local.get $stream))
    (call $finish (i32.load (i32.const 200)) (i32.const 0) (i32.const 0) (i32.const 24))
    (if (i32.eqz (i32.load8_u (i32.const 24))) (then unreachable))
"""
LENGTH_DATA = '(data (i32.const 400) "content-length") (data (i32.const 420) "5")'


async def test_a_content_length_lie_is_told_to_the_guest(make_app: Callable[..., Any]) -> None:
    """`finish` answers HTTP-response-body-size (the guest is told, not trapped by a
    host bug) and the client never gets the short body as if whole."""
    app = make_app({"lie": component(LENGTH_LIE, LENGTH_DATA), "hello": component(HELLO)})
    async with running(app) as client:
        with pytest.raises(Exception):  # noqa: B017 (the transport's own error for a body cut off)
            response = await client.get("/lie")
            raise AssertionError(f"a cut body was served as whole: {response.content!r}")
        assert (await client.get("/hello")).status_code == 200
    assert not [key for key in _host(app).metrics.errors if key[0] == "lie"]


#: Writes 16 KiB at a time, forever.
FLOOD = """
    (local $stream i32)
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (loop $more
      (call $send (local.get $stream) (i32.const 2048) (i32.const 16384))
      (br $more))
"""


async def test_a_client_leaving_mid_response_stops_the_call(make_app: Callable[..., Any]) -> None:
    """The guest writes forever; the client leaves after the first bytes: the call stops."""
    app = make_app({"flood": {"path": str(component(FLOOD)), "timeout": 3600.0}}, workers=1)
    got_body = trio.Event()
    asked = [False]

    async def receive() -> dict[str, Any]:
        if not asked[0]:
            asked[0] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await got_body.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            got_body.set()

    scope = {"type": "http", "method": "GET", "path": "/flood", "raw_path": b"/flood", "query_string": b"", "headers": [], "http_version": "1.1"}
    async with running(app):
        with trio.fail_after(120):  # a deadlock guard, not a timing assertion
            await app(scope, receive, send)
            while _host(app).running:  # the guest's blocked write trapped: its worker is free
                await trio.sleep(0.01)


#: poll with an empty list (the spec says: trap).
POLL_NONE = "(call $poll (i32.const 2048) (i32.const 0) (i32.const 64))"

#: poll with 10,000 copies of one ready pollable; answers how many indexes came back (u32 LE).
POLL_MANY = """
    (local $pollable i32) (local $i i32) (local $stream i32)
    (local.set $pollable (call $sleep_for (i64.const 0)))
    (loop $fill
      (i32.store (i32.add (i32.const 2048) (i32.shl (local.get $i) (i32.const 2))) (local.get $pollable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 10000))))
    (call $poll (i32.const 2048) (i32.const 10000) (i32.const 64))
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (call $send (local.get $stream) (i32.const 68) (i32.const 4))
    (call $end (local.get $stream))
"""


async def test_poll_with_no_pollables_or_very_many(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"none": component(POLL_NONE), "many": component(POLL_MANY)})) as client:
        none = await client.get("/none")
        many = await client.get("/many")
    assert none.status_code == 500 and "no pollables" in none.text
    assert many.status_code == 200 and struct.unpack("<I", many.content) == (10000,)


def test_dot_dot_never_escapes_a_grant(tmp_path: Any) -> None:
    """Without symlink-follow only the last component is taken as is, but '..' is a
    step up, never a name: 'sub/..' is the root itself, '..' its parent (refused)."""
    from wasmkernel_components.wasi.filesystem import Descriptor, FsError, _resolve

    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    base = Descriptor(root, root, writable=True)
    for follow in (True, False):
        assert _resolve(base, "sub/..", follow) == root
        for name in ("..", "sub/../..", "../data/..", "sub/../../x"):
            with pytest.raises(FsError, match="not-permitted"):
                _resolve(base, name, follow)


def test_the_granted_root_itself_cannot_be_removed(tmp_path: Any) -> None:
    from wasmkernel_components.wasi.filesystem import INTERFACES, Descriptor, FsError, _change

    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    base = Descriptor(root, root, writable=True)
    remove = _change(lambda path: path.rmdir())
    with pytest.raises(FsError, match="not-permitted"):
        remove(base, "sub/..")
    assert root.is_dir() and INTERFACES


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_files_left_open_are_closed_when_the_call_ends(make_app: Callable[..., Any], tmp_path: Any) -> None:
    """The guest never drops what it opened: the host closes it at the end of the call."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hi")
    spec: dict[str, Any] = {"path": str(command(FILES, FILES_DATA)), "kind": "wasi-cli", "args": ["{name}", "{mode}"]}
    spec["dirs"] = [{"host": str(data), "guest": "/data"}]
    app = make_app({"fs": spec}, routes=[{"path": "/fs/{mode}/{name:path}", "module": "fs"}])
    async with running(app) as client:
        assert (await client.get("/fs/r/hello.txt")).text == "hi"
        before = _fd_count()
        for _ in range(30):
            assert (await client.get("/fs/r/hello.txt")).text == "hi"
        after = _fd_count()
    assert after - before < 10


#: Opens argv[1], takes a read stream, drops the descriptor, opens argv[2], then reads
#: the first stream: prints what it read, or "E" if the stream failed.
STALE_STREAM = """
    (local $out i32) (local $args i32) (local $dir i32) (local $stream i32)
    (local.set $out (call $stdout))
    (call $send (local.get $out) (i32.const 400) (i32.const 26))
    (call $arguments (i32.const 64))
    (local.set $args (i32.load (i32.const 64)))
    (call $directories (i32.const 72))
    (local.set $dir (i32.load (i32.load (i32.const 72))))
    (call $open_at (local.get $dir) (i32.const 0) (i32.load (i32.add (local.get $args) (i32.const 8))) (i32.load (i32.add (local.get $args) (i32.const 12)))
      (i32.const 0) (i32.const 1) (i32.const 80))
    (if (i32.load8_u (i32.const 80)) (then unreachable))
    (call $read_via_stream (i32.load (i32.const 84)) (i64.const 0) (i32.const 96))
    (local.set $stream (i32.load (i32.const 100)))
    (call $drop_descriptor (i32.load (i32.const 84)))
    (call $open_at (local.get $dir) (i32.const 0) (i32.load (i32.add (local.get $args) (i32.const 16))) (i32.load (i32.add (local.get $args) (i32.const 20)))
      (i32.const 0) (i32.const 1) (i32.const 80))
    (call $blocking_read (local.get $stream) (i64.const 100) (i32.const 48))
    (if (i32.load8_u (i32.const 48))
      (then (call $send (local.get $out) (i32.const 430) (i32.const 1)))
      (else (call $send (local.get $out) (i32.load (i32.const 52)) (i32.load (i32.const 56)))))
    (i32.const 0)
"""


async def test_a_stream_of_a_dropped_file_never_reads_another(make_app: Callable[..., Any], tmp_path: Any) -> None:
    """The child (a stream) outlives its parent (the descriptor): it fails, rather than
    reading whatever file now has the closed descriptor's number."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("first")
    (data / "b.txt").write_text("second")
    spec: dict[str, Any] = {"path": str(command(STALE_STREAM, FILES_DATA.replace("written", "E"))), "kind": "wasi-cli", "args": ["a.txt", "b.txt"]}
    spec["dirs"] = [{"host": str(data), "guest": "/data"}]
    async with running(make_app({"stale": spec})) as client:
        answer = await client.get("/stale")
    assert answer.text == "E"


#: A fields handle where an output-stream is expected.
WRONG_TYPE = "(call $check_write (call $fields) (i32.const 64))"
#: A handle dropped twice.
DOUBLE_DROP = """
    (local $fields i32)
    (local.set $fields (call $fields))
    (call $drop_fields (local.get $fields))
    (call $drop_fields (local.get $fields))
"""


@pytest.mark.parametrize("handle", [WRONG_TYPE, DOUBLE_DROP], ids=["wrong-type", "double-drop"])
async def test_handle_misuse_traps_only_that_call(make_app: Callable[..., Any], handle: str) -> None:
    async with running(make_app({"bad": component(handle), "hello": component(HELLO)})) as client:
        bad = await client.get("/bad")
        hello = await client.get("/hello")
    assert bad.status_code == 500 and "trapped" in bad.text
    assert hello.text == "hello"


#: Drops the request's body (the parent) and goes on reading its stream (the child); answers what it read.
ORPHAN_STREAM = """
    (local $in i32) (local $stream i32)
    (local.set $in (call $request_body (local.get $request)))
    (call $drop_incoming_body (i32.load (i32.const 36)))
    (call $blocking_read (local.get $in) (i64.const 100) (i32.const 48))
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (if (i32.eqz (i32.load8_u (i32.const 48)))
      (then (call $send (local.get $stream) (i32.load (i32.const 52)) (i32.load (i32.const 56)))))
    (call $end (local.get $stream))
"""


async def test_a_request_body_stream_outliving_its_body_is_harmless(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"orphan": component(ORPHAN_STREAM)})) as client:
        answer = await client.post("/orphan", content=b"still here")
    assert answer.status_code in (200, 500) and "host function" not in answer.text


async def test_a_huge_header_value_is_refused(make_app: Callable[..., Any]) -> None:
    from test_host import HEADER, header_body
    from wat import BODY

    async with running(make_app({"h": component(HEADER, BODY)})) as client:
        answer = await client.post("/h", content=header_body(200, b"x-big", b"v" * 70_000))
    assert (answer.status_code, answer.text) == (422, "1")  # forbidden: over the fields' 64 KiB


#: Writes 1 MiB to stderr (16 writes of 64 KiB), then answers.
STDERR_FLOOD = """
    (local $err i32) (local $i i32) (local $stream i32)
    (local.set $err (call $stderr))
    (memory.fill (i32.const 2048) (i32.const 0x65) (i32.const 65536))
    (loop $more
      (call $send (local.get $err) (i32.const 2048) (i32.const 4096))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 256))))
""" + HELLO.replace("(local $stream i32)", "")


async def test_a_stderr_flood_is_bounded(make_app: Callable[..., Any]) -> None:
    import structlog
    from wasmkernel_components.call import CONSOLE_LIMIT

    with structlog.testing.capture_logs() as logs:
        async with running(make_app({"noisy": component(STDERR_FLOOD, pages=3)})) as client:
            answer = await client.get("/noisy")
    assert answer.text == "hello"
    (line,) = [entry for entry in logs if entry["event"] == "component.stderr"]
    assert len(line["text"]) == CONSOLE_LIMIT


#: Takes a response's body without ever setting the response, and writes to it forever.
UNREAD = """
    (local $response i32) (local $stream i32)
    (local.set $response (call $response (call $fields)))
    (call $response_body (local.get $response) (i32.const 0))
    (call $body_write (i32.load (i32.const 4)) (i32.const 8))
    (local.set $stream (i32.load (i32.const 12)))
    (loop $more
      (call $send (local.get $stream) (i32.const 2048) (i32.const 4096))
      (br $more))
"""


async def test_writes_nobody_reads_end_at_the_deadline(make_app: Callable[..., Any]) -> None:
    """The body pipe is bounded: the guest blocks, and its timeout ends the call (504)."""
    async with running(make_app({"unread": {"path": str(component(UNREAD)), "timeout": 0.5}})) as client:
        answer = await client.get("/unread")
    assert answer.status_code == 504


async def test_a_key_value_operation_ends_with_its_call() -> None:
    """Spin key-value operations run for the call (the host API's `Scope`): a Redis
    operation is cancelled at the call's deadline or when the call is stopped, not left
    holding a worker thread."""
    import time

    from wasmkernel_components.call import Call, bind
    from wasmkernel_components.wasi import spin

    call = Call(component="kv", token=trio.lowlevel.current_trio_token(), deadline=time.monotonic() + 5.0)
    seen: list[Any] = []

    class Services:
        def call(self, module: str, op: str, args: list[bytes], scope: Any = None) -> bytes:
            seen.append(scope)
            return b"v"

    call.state["wasi:http"] = type("Exchange", (), {"services": Services()})()
    bind(call)
    try:
        assert spin._kv("get", b"k").value == b"v"
    finally:
        bind(None)
    assert seen == [call] and call.at == call.deadline
    with trio.fail_after(30), trio.CancelScope() as running_op:
        call.attach(running_op)
        call.stop("the client went away")
        await trio.sleep_forever()  # until the stop reaches the event loop and cancels the operation
    assert running_op.cancelled_caught and call.at == 0.0
    late = trio.CancelScope()
    call.attach(late)
    assert late.cancel_called


def test_a_field_set_never_exceeds_its_bounds_and_deletes_give_back() -> None:
    import math

    from wasmkernel_components.call import Call, bind
    from wasmkernel_components.table import Table
    from wasmkernel_components.values import Err
    from wasmkernel_components.wasi.http import MAX_FIELDS, Fields

    call = Call(component="fields", token=cast(Any, None), deadline=math.inf)
    bind(call)
    try:
        many = Fields()
        answers = [many.append(f"x-{index}", b"v") for index in range(MAX_FIELDS + 5)]
        assert len(many.entries) == MAX_FIELDS and all(isinstance(answer, Err) for answer in answers[MAX_FIELDS:])
        churn = Fields()
        for _ in range(2 * Table.BYTES_LIMIT // 60_000):  # appending and deleting forever holds one value at a time
            assert not isinstance(churn.append("x-big", b"v" * 60_000), Err)
            churn.delete("x-big")
        assert call.table.held == many.charged
    finally:
        bind(None)


async def test_a_command_gets_no_more_body_than_its_entry_allows(make_app: Callable[..., Any]) -> None:
    from test_host import CLI, CLI_DATA

    spec = {"path": str(command(CLI, CLI_DATA)), "kind": "wasi-cli", "max_body_bytes": 10}
    app = make_app({"cli": spec}, routes=[{"path": "/cli", "module": "cli", "methods": ["POST"]}])
    async with running(app) as client:
        small = await client.post("/cli", content=b"0123456789")
        large = await client.post("/cli", content=b"x" * 11)
    assert small.status_code == 200 and large.status_code == 413
