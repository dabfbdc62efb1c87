"""The component host's edge cases, on small hand-written components (wat.py)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
import trio
from wasmkernel_wasm.testing import wasm_plugins
from wat import BODY, component

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
        (call $send (local.get $stream) (i32.load (i32.const 52)) (i32.load (i32.const 56)))
        (br $copy)))
    (call $drop_input (local.get $in))
    (call $end (local.get $stream))
"""

#: The body is [status u16 LE][header name] NUL [header value]: the component appends that
#: header to its response's fields and answers with that status; if the host refuses the
#: header, it answers 422 with the header-error case ('0' invalid-syntax, '1' forbidden).
HEADER = """
    (local $len i32) (local $nul i32) (local $fields i32) (local $response i32) (local $stream i32)
    (local.set $len (call $read_body (local.get $request)))
    (local.set $nul (i32.const 1026))
    (block $found
      (loop $scan
        (br_if $found (i32.ge_u (local.get $nul) (i32.add (i32.const 1024) (local.get $len))))
        (br_if $found (i32.eqz (i32.load8_u (local.get $nul))))
        (local.set $nul (i32.add (local.get $nul) (i32.const 1)))
        (br $scan)))
    (local.set $fields (call $fields))
    (call $append (local.get $fields) (i32.const 1026) (i32.sub (local.get $nul) (i32.const 1026))
      (i32.add (local.get $nul) (i32.const 1)) (i32.sub (i32.add (i32.const 1023) (local.get $len)) (local.get $nul)) (i32.const 64))
    (if (i32.load8_u (i32.const 64))
      (then
        (local.set $stream (call $respond (local.get $out) (i32.const 422)))
        (i32.store8 (i32.const 300) (i32.add (i32.const 48) (i32.load8_u (i32.const 65))))
        (call $send (local.get $stream) (i32.const 300) (i32.const 1))
        (call $end (local.get $stream))
        (return)))
    (local.set $response (call $response (local.get $fields)))
    (drop (call $set_status (local.get $response) (i32.load16_u (i32.const 1024))))
    (local.set $stream (call $start (local.get $out) (local.get $response)))
    (call $end (local.get $stream))
"""

#: Answers the number of requests this instance has served (a global counter), as one byte.
COUNTER = """
    (local $stream i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (i32.store8 (i32.const 300) (i32.add (i32.const 48) (global.get $counter)))
    (call $send (local.get $stream) (i32.const 300) (i32.const 1))
    (call $end (local.get $stream))
"""

SPIN = "(loop $forever (br $forever))"

#: Waits on a clock pollable for 20 ms: 200 if it was not ready before and is after, else 500.
POLL = """
    (local $pollable i32) (local $before i32)
    (local.set $pollable (call $sleep_for (i64.const 20000000)))
    (local.set $before (call $ready (local.get $pollable)))
    (call $block (local.get $pollable))
    (if (i32.and (i32.eqz (local.get $before)) (call $ready (local.get $pollable)))
      (then (call $end (call $respond (local.get $out) (i32.const 200))))
      (else (call $end (call $respond (local.get $out) (i32.const 500)))))
"""

#: Blocks for an hour on a clock pollable (a host call, not guest code).
SLEEP = "(call $block (call $sleep_for (i64.const 3600000000000)))"

#: Grows memory a page at a time until refused; answers the pages it ended with (u32 LE).
GROW = """
    (local $stream i32)
    (block $refused (loop $grow (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $grow)))
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (i32.store (i32.const 300) (memory.size))
    (call $send (local.get $stream) (i32.const 300) (i32.const 4))
    (call $end (local.get $stream))
"""

#: Says it ran out of memory on stderr, then traps (what language runtimes do).
OOM_DATA = '(data (i32.const 400) "out of memory")'
OOM = """
    (local $err i32)
    (local.set $err (call $stderr))
    (call $send (local.get $err) (i32.const 400) (i32.const 13))
    unreachable
"""

#: Drops a fields handle, then uses it.
USE_AFTER_DROP = """
    (local $fields i32)
    (local.set $fields (call $fields))
    (call $drop_fields (local.get $fields))
    (call $append (local.get $fields) (i32.const 300) (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 64))
"""

#: Creates host resources without end.
HOARD = "(loop $more (drop (call $fields)) (br $more))"

#: Starts a response, writes a byte, drops the body without finishing it.
UNFINISHED = """
    (local $stream i32)
    (local.set $stream (call $respond (local.get $out) (i32.const 200)))
    (call $send (local.get $stream) (i32.const 300) (i32.const 1))
    (call $drop_output (local.get $stream))
    (call $drop_outgoing_body (i32.load (i32.const 200)))
"""

#: Returns without setting a response.
SILENT = "(nop)"


def header_body(status: int, name: bytes, value: bytes) -> bytes:
    return struct.pack("<H", status) + name + b"\0" + value


async def test_a_component_answers(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"hello": component(HELLO)})) as client:
        response = await client.get("/hello")
    assert response.status_code == 200 and response.text == "hello"


async def test_the_request_body_is_streamed_through_and_back(make_app: Callable[..., Any]) -> None:
    body = bytes(range(256)) * 4096 * 2  # 2 MiB: more than the guest reads at once
    async with running(make_app({"echo": component(ECHO)})) as client:
        response = await client.post("/echo", content=body)
    assert response.status_code == 200 and response.content == body


async def test_response_bytes_flow_before_the_request_body_ends(make_app: Callable[..., Any]) -> None:
    """Streamed both ways: the echo's first bytes reach the client while the
    client still holds back the rest of its body (a buffering host would hang)."""
    app = make_app({"echo": component(ECHO)})
    first_out = trio.Event()
    sent: list[bytes] = []
    parts = [{"type": "http.request", "body": b"first", "more_body": True}, {"type": "http.request", "body": b"second", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if parts:
            if len(parts) == 1:
                await first_out.wait()  # the rest of the body only once the first echo came back
            return parts.pop(0)
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            sent.append(message["body"])
            first_out.set()

    scope = {"type": "http", "method": "POST", "path": "/echo", "raw_path": b"/echo", "query_string": b"", "headers": [], "http_version": "1.1"}
    async with running(app):
        with trio.fail_after(120):  # a deadlock guard, not a timing assertion
            await app(scope, receive, send)
    assert b"".join(sent) == b"firstsecond"


@pytest.mark.parametrize(
    ("name", "value", "case"),
    [
        (b"bad name", b"x", "0"),
        (b":path", b"/", "0"),
        (b"x-ok", b"a\r\nb", "0"),
        (b"x-ok", b"nul\0", "0"),
        (b"connection", b"close", "1"),
        (b"transfer-encoding", b"chunked", "1"),
        (b"proxy-authorization", b"x", "1"),
    ],
)
async def test_header_fields_follow_the_response_rules(make_app: Callable[..., Any], name: bytes, value: bytes, case: str) -> None:
    async with running(make_app({"h": component(HEADER, BODY)})) as client:
        refused = await client.post("/h", content=header_body(200, name, value))
        accepted = await client.post("/h", content=header_body(201, b"X-Fine", b"yes"))
    assert (refused.status_code, refused.text) == (422, case)
    assert accepted.status_code == 201 and accepted.headers["x-fine"] == "yes"


async def test_an_unsendable_status_is_a_502(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"h": component(HEADER, BODY)})) as client:
        interim = await client.post("/h", content=header_body(101, b"x-a", b"b"))
        fine = await client.post("/h", content=header_body(299, b"x-a", b"b"))
    assert interim.status_code == 502 and "status 101" in interim.text
    assert fine.status_code == 299


async def test_no_state_is_shared_between_two_requests(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"count": component(COUNTER)})) as client:
        answers = [(await client.get("/count")).text for _ in range(3)]
    assert answers == ["1", "1", "1"]


async def test_pollables_are_really_ready_or_not(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"poll": component(POLL)})) as client:
        assert (await client.get("/poll")).status_code == 200


@pytest.mark.parametrize("handle", [SPIN, SLEEP], ids=["guest-loop", "blocked-host-call"])
async def test_a_timeout_is_a_504_and_the_next_call_is_served(make_app: Callable[..., Any], handle: str) -> None:
    app = make_app({"slow": {"path": str(component(handle)), "timeout": 0.3}, "hello": component(HELLO)})
    async with running(app) as client:
        slow = await client.get("/slow")
        again = await client.get("/slow")
        hello = await client.get("/hello")
    assert slow.status_code == again.status_code == 504 and "time limit" in slow.text
    assert hello.status_code == 200


async def test_memory_growth_stops_at_the_limit(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"grow": {"path": str(component(GROW)), "memory_limit_mb": 2}})) as client:
        response = await client.get("/grow")
    assert response.status_code == 200
    (pages,) = struct.unpack("<I", response.content)
    assert pages * 65536 <= 2 * 1024 * 1024


async def test_running_out_of_memory_is_a_507(make_app: Callable[..., Any]) -> None:
    async with running(make_app({"oom": component(OOM, OOM_DATA), "hello": component(HELLO)})) as client:
        response = await client.get("/oom")
        assert (await client.get("/hello")).status_code == 200
    assert response.status_code == 507 and "memory limit" in response.text


@pytest.mark.parametrize(("handle", "expected"), [(USE_AFTER_DROP, "trapped"), (HOARD, "host resources"), (SILENT, "without setting a response")])
async def test_resource_misuse_fails_only_that_call(make_app: Callable[..., Any], handle: str, expected: str) -> None:
    async with running(make_app({"bad": component(handle), "hello": component(HELLO)})) as client:
        response = await client.get("/bad")
        hello = await client.get("/hello")
    assert response.status_code == 500 and expected in response.text
    assert hello.status_code == 200


async def test_a_dropped_unfinished_body_cuts_the_response(make_app: Callable[..., Any]) -> None:
    import httpx

    async with running(make_app({"cut": component(UNFINISHED), "hello": component(HELLO)})) as client:
        with pytest.raises((httpx.HTTPError, Exception)):  # the response is cut off, never completed as if whole
            response = await client.get("/cut")
            assert response.status_code != 200 or len(response.content) != 1
            raise RuntimeError("cut")
        assert (await client.get("/hello")).status_code == 200


async def test_a_client_leaving_stops_the_call(make_app: Callable[..., Any]) -> None:
    """The guest waits for more body; the client goes away: the call stops and its worker is free."""
    app = make_app({"echo": component(ECHO)}, workers=1)
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": b"part", "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": "/echo", "raw_path": b"/echo", "query_string": b"", "headers": [], "http_version": "1.1"}
    async with running(app) as client:
        with trio.fail_after(120):  # a deadlock guard, not a timing assertion
            await app(scope, receive, send)
            # The one worker is free again: the next request is served.
            assert (await client.post("/echo", content=b"next")).content == b"next"


#: A WAGI command: writes a CGI header, its first argument, then stdin; fails (exit 1) on an empty stdin.
CLI = """
    (local $out i32) (local $in i32) (local $total i32)
    (local.set $out (call $stdout))
    (call $send (local.get $out) (i32.const 400) (i32.const 26))
    (call $arguments (i32.const 64))
    (if (i32.gt_u (i32.load (i32.const 68)) (i32.const 1))
      (then (call $send (local.get $out)
        (i32.load (i32.add (i32.load (i32.const 64)) (i32.const 8)))
        (i32.load (i32.add (i32.load (i32.const 64)) (i32.const 12))))))
    (local.set $in (call $stdin))
    (block $closed
      (loop $copy
        (call $blocking_read (local.get $in) (i64.const 65536) (i32.const 48))
        (br_if $closed (i32.load8_u (i32.const 48)))
        (local.set $total (i32.add (local.get $total) (i32.load (i32.const 56))))
        (call $send (local.get $out) (i32.load (i32.const 52)) (i32.load (i32.const 56)))
        (br $copy)))
    (i32.eqz (local.get $total))
"""
CLI_DATA = '(data (i32.const 400) "content-type: text/plain\\n\\n")'


async def test_a_wasi_cli_component_serves_wagi_style(make_app: Callable[..., Any]) -> None:
    from wat import command

    spec = {"path": str(command(CLI, CLI_DATA)), "kind": "wasi-cli", "args": ["{word}"], "exit_status": {"1": 422}}
    app = make_app({"cli": spec}, routes=[{"path": "/cli/{word}", "module": "cli", "methods": ["POST"]}])
    async with running(app) as client:
        answer = await client.post("/cli/hi", content=b" there")
        failed = await client.post("/cli/hi", content=b"")
    assert answer.status_code == 200 and answer.text == "hi there" and answer.headers["content-type"] == "text/plain"
    assert failed.status_code == 422


async def test_loaders_and_the_host_refuse_each_others_binaries(make_app: Callable[..., Any], tmp_path: Any) -> None:
    """A component given to a core-module loader, or a core module to the component host, stops startup naming the plugin that serves it."""
    import wasmtime

    from wasmkernel import StartupError
    from wasmkernel.testing import app_from

    core = tmp_path / "core.wasm"
    core.write_bytes(wasmtime.wat2wasm("(module)"))
    loader = {"cache_dir": str(tmp_path / "c"), "modules": [{"name": "x", "path": str(component(HELLO)), "kind": "http"}]}
    with pytest.raises(StartupError, match=r"is a WebAssembly component .* serve it with the components plugin"):
        async with running(app_from({"router": {}, **wasm_plugins("wasmtime-loader", loader)})):
            pass
    with pytest.raises(StartupError, match=r"not a WebAssembly component .* wasmtime-loader"):
        async with running(make_app({"x": core})):
            pass


def test_relative_guest_directories_and_wasi_03_are_refused(tmp_path: Any) -> None:
    from wasmkernel_components import ComponentsConfig
    from wasmkernel_components.config import ComponentSpec
    from wasmkernel_components.linking import wasi_03
    from wasmkernel_wasm.config import DirSpec

    from wasmkernel import ConfigError

    config = ComponentsConfig(modules=[ComponentSpec(name="x", path="x.wasm", dirs=[DirSpec(host="data", guest="data")])])
    with pytest.raises(ConfigError, match="absolute guest path"):
        config.check()
    assert wasi_03("wasi:http/types@0.3.0-rc-2025-09-16") and not wasi_03("wasi:http/types@0.2.10")


#: Opens argv[1] in the first preopened directory, to read (argv[2] = "r": copied to stdout)
#: or to write (argv[2] = "w": "written" is written to it); an error-code is printed as one
#: letter, "A" + its index in FS_ERRORS.
FILES = """
    (local $out i32) (local $args i32) (local $write i32) (local $file i32) (local $in i32) (local $stream i32)
    (local.set $out (call $stdout))
    (call $send (local.get $out) (i32.const 400) (i32.const 26))
    (call $arguments (i32.const 64))
    (local.set $args (i32.load (i32.const 64)))
    (local.set $write (i32.eq (i32.load8_u (i32.load (i32.add (local.get $args) (i32.const 16)))) (i32.const 0x77)))
    (call $directories (i32.const 72))
    (call $open_at (i32.load (i32.load (i32.const 72))) (i32.const 1)
      (i32.load (i32.add (local.get $args) (i32.const 8))) (i32.load (i32.add (local.get $args) (i32.const 12)))
      (select (i32.const 9) (i32.const 0) (local.get $write)) (select (i32.const 2) (i32.const 1) (local.get $write)) (i32.const 80))
    (if (i32.load8_u (i32.const 80))
      (then
        (i32.store8 (i32.const 300) (i32.add (i32.const 65) (i32.load8_u (i32.const 84))))
        (call $send (local.get $out) (i32.const 300) (i32.const 1))
        (return (i32.const 0))))
    (local.set $file (i32.load (i32.const 84)))
    (if (local.get $write)
      (then
        (call $write_via_stream (local.get $file) (i64.const 0) (i32.const 96))
        (if (i32.load8_u (i32.const 96))
          (then
            (i32.store8 (i32.const 300) (i32.add (i32.const 65) (i32.load8_u (i32.const 100))))
            (call $send (local.get $out) (i32.const 300) (i32.const 1))
            (return (i32.const 0))))
        (call $send (i32.load (i32.const 100)) (i32.const 430) (i32.const 7))
        (call $send (local.get $out) (i32.const 430) (i32.const 7))
        (return (i32.const 0))))
    (call $read_via_stream (local.get $file) (i64.const 0) (i32.const 96))
    (local.set $in (i32.load (i32.const 100)))
    (block $closed
      (loop $copy
        (call $blocking_read (local.get $in) (i64.const 65536) (i32.const 48))
        (br_if $closed (i32.load8_u (i32.const 48)))
        (call $send (local.get $out) (i32.load (i32.const 52)) (i32.load (i32.const 56)))
        (br $copy)))
    (i32.const 0)
"""
FILES_DATA = CLI_DATA + ' (data (i32.const 430) "written")'
FS_ERRORS = [
    "access",
    "would-block",
    "already",
    "bad-descriptor",
    "busy",
    "deadlock",
    "quota",
    "exist",
    "file-too-large",
    "illegal-byte-sequence",
    "in-progress",
    "interrupted",
    "invalid",
    "io",
    "is-directory",
    "loop",
    "too-many-links",
    "message-size",
    "name-too-long",
    "no-device",
    "no-entry",
    "no-lock",
    "insufficient-memory",
    "insufficient-space",
    "not-directory",
    "not-empty",
    "not-recoverable",
    "unsupported",
    "no-tty",
    "no-such-device",
    "overflow",
    "not-permitted",
    "pipe",
    "read-only",
    "invalid-seek",
    "text-file-busy",
    "cross-device",
]


def fs_error(code: str) -> str:
    return chr(65 + FS_ERRORS.index(code))


@pytest.mark.parametrize("writable", [False, True])
async def test_files_only_in_granted_directories(make_app: Callable[..., Any], tmp_path: Any, writable: bool) -> None:
    from wat import command

    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hi from a file")
    (tmp_path / "secret.txt").write_text("secret")
    (data / "link").symlink_to(tmp_path / "secret.txt")
    spec: dict[str, Any] = {"path": str(command(FILES, FILES_DATA)), "kind": "wasi-cli", "args": ["{name}", "{mode}"]}
    spec["dirs"] = [{"host": str(data), "guest": "/data", "writable": writable}]
    app = make_app({"fs": spec}, routes=[{"path": "/fs/{mode}/{name:path}", "module": "fs"}])
    async with running(app) as client:
        read = await client.get("/fs/r/hello.txt")
        escape = await client.get("/fs/r/..%2Fsecret.txt")
        through_link = await client.get("/fs/r/link")
        missing = await client.get("/fs/r/nothing.txt")
        write = await client.get("/fs/w/new.txt")
    assert read.text == "hi from a file"
    assert escape.text == through_link.text == fs_error("not-permitted")
    assert missing.text == fs_error("no-entry")
    if writable:
        assert write.text == "written" and (data / "new.txt").read_text() == "written"
    else:
        assert write.text == fs_error("read-only") and not (data / "new.txt").exists()


async def test_concurrency_and_queue_bounds_answer_503(make_app: Callable[..., Any]) -> None:
    """One call at a time for the component, one waiting: a third is refused at once with Retry-After."""
    app = make_app({"sleep": {"path": str(component(SLEEP)), "max_concurrency": 1, "timeout": 30.0}}, max_queued=1)
    (host,) = [plugin.instance.host for plugin in app.plugins if plugin.name == "components"]
    answers: list[Any] = []
    async with running(app) as client, trio.open_nursery() as nursery:

        async def call() -> None:
            answers.append(await client.get("/sleep"))

        nursery.start_soon(call)
        while host.running < 1:  # the first call runs (polling, no sleep barrier)
            await trio.sleep(0.01)
        nursery.start_soon(call)
        while host.queued < 1:  # the second waits for the component
            await trio.sleep(0.01)
        refused = await client.get("/sleep")
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        nursery.cancel_scope.cancel()


#: Drops the response body without finishing it, then keeps running (an hour-long wait).
DROP_THEN_WAIT = UNFINISHED + SLEEP


async def test_dropping_the_body_cuts_the_response_at_once(make_app: Callable[..., Any]) -> None:
    """The client learns the body is incomplete when the guest drops it, not when the call ends."""
    app = make_app({"cut": {"path": str(component(DROP_THEN_WAIT)), "timeout": 60.0}})
    (host,) = [plugin.instance.host for plugin in app.plugins if plugin.name == "components"]
    async with running(app) as client:
        with pytest.raises(Exception):  # noqa: B017 (the transport's own error for a body cut off)
            await client.get("/cut")
        assert host.running == 1  # the guest is still waiting: the cut came from the drop


async def test_head_requests_drop_the_body_without_blocking_the_guest(make_app: Callable[..., Any]) -> None:
    """A HEAD answer has no body: the guest's writes (more than the pipe holds) are dropped, its call ends normally."""
    app = make_app({"echo": component(ECHO)}, routes=[{"prefix": "/echo", "module": "echo", "methods": ["POST", "HEAD"]}])
    (host,) = [plugin.instance.host for plugin in app.plugins if plugin.name == "components"]
    async with running(app) as client:
        head = await client.request("HEAD", "/echo", content=b"x" * 1_000_000)
        while host.running:  # the call ends by itself (polling, no sleep barrier)
            await trio.sleep(0.01)
    assert head.status_code == 200 and head.content == b""
    assert not [key for key in host.metrics.errors if key[0] == "echo"]


async def test_a_component_over_its_memory_limit_stops_startup(make_app: Callable[..., Any]) -> None:
    from wasmkernel import StartupError

    path = component(HELLO, pages=64)  # 4 MiB at start
    with pytest.raises(StartupError, match="needs more memory than its memory_limit_mb of 2"):
        async with running(make_app({"big": {"path": str(path), "memory_limit_mb": 2}})):
            pass
