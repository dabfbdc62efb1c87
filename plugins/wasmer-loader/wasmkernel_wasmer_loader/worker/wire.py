"""The messages between the Wasmer loader and its worker processes, and their framing.

Both sides import this module: the server (Python ≥ 3.11) and the workers
(Python 3.10). A frame is an 8-byte little-endian length, then a pickle
(protocol 5) of builtins only: tuples, dicts, str, bytes, int, float, bool
and None. Classes never cross (the two interpreters have their own attrs
releases): `to_wire` turns a `ModuleRef`, `ArrayIn` or `ArrayOut` into
tagged builtins and `from_wire` rebuilds it in the worker; a worker's
`Outcome` crosses as a dict that the server checks field by field
(`decode_outcome`). Every frame is unpickled with all globals refused, so a
worker that a guest subverted cannot run code in the server through a reply.

    request : (job, args, CPU seconds: a backstop limit, 0 for none; see `serve`)
    reply   : ("ok", value) | ("error", message)
    a worker's first frame: ("ready", {"pid": int, "python": str, "wasmer": str})
"""

from __future__ import annotations

import enum
import io
import pickle
import socket
import struct
from collections.abc import Callable
from typing import Any

import attrs
from wasmkernel_wasm import ArrayIn, ArrayOut
from wasmkernel_wasm.portable import DEFAULT_EXPORTS, LEVELS, ExportNames, Grants, Outcome

HEADER = struct.Struct("<Q")
PROTOCOL = 5
#: Largest frame a worker accepts from the server (arrays of a large compute call).
MAX_REQUEST = 1 << 34


class Job(enum.Enum):
    """What a worker does for one request; its args and the value it replies."""

    #: (refs,) → the worker's pid, once every module is deserialized
    preload = "preload"
    #: (ref, function, args) → outcome
    call = "call"
    #: (ref, request, export) → outcome
    handle = "handle"
    #: (ref, stdin, env, argv, scratch) → outcome
    run_wasi = "run_wasi"
    #: (wasm, compiler) → the serialized artifact
    compile = "compile"


@attrs.frozen
class ModuleRef:
    """What a worker needs to run one generation of a module."""

    name: str
    generation: int
    artifact: str
    stateful: bool
    memory_limit: int
    env: tuple[tuple[str, str], ...] = ()
    dirs: tuple[tuple[str, str, bool], ...] = ()
    exports: ExportNames = DEFAULT_EXPORTS
    #: The module imports WASI (linked, granting nothing, for http and compute modules too).
    wasi: bool = False
    #: A fresh writable directory per call at this guest path.
    scratch: str | None = None
    grants: Grants | None = None
    #: The server's host-API socket ("" when no module is granted shared state).
    host_socket: str = ""
    #: (module, name) function imports linked as stubs that trap when called.
    stubs: tuple[tuple[str, str], ...] = ()


class WireError(Exception):
    """A frame that breaks the protocol: too large, truncated, not builtins, the wrong shape."""


def _fields(value: Any) -> dict[str, Any]:
    return {field.name: getattr(value, field.name) for field in attrs.fields(type(value))}


def to_wire(value: Any) -> Any:
    """`value` as builtins: refs and arrays tagged, sequences as tuples."""
    if isinstance(value, ModuleRef):
        fields = _fields(value)
        fields["exports"] = _fields(value.exports)
        fields["grants"] = None if value.grants is None else _fields(value.grants)
        return {"ref": fields}
    if isinstance(value, ArrayIn):
        return {"in": (value.data, value.dtype)}
    if isinstance(value, ArrayOut):
        return {"out": (value.length, value.dtype)}
    if isinstance(value, (tuple, list)):
        return tuple(to_wire(item) for item in value)
    return value


def from_wire(value: Any) -> Any:
    """The inverse of `to_wire` (in a worker: the server's requests are trusted)."""
    if isinstance(value, dict):
        ((tag, body),) = value.items()
        if tag == "ref":
            grants = body["grants"]
            return ModuleRef(**{**body, "exports": ExportNames(**body["exports"]), "grants": None if grants is None else Grants(**grants)})
        return ArrayIn(*body) if tag == "in" else ArrayOut(*body)
    if isinstance(value, tuple):
        return tuple(from_wire(item) for item in value)
    return value


def encode_outcome(outcome: Outcome) -> dict[str, Any]:
    return _fields(outcome)


_ERRORS = (None, "trap", "memory", "abi", "exit", "timeout", "denied")


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise WireError(f"malformed outcome: {what}")


def _strings(value: Any, count: int) -> bool:
    return isinstance(value, tuple) and len(value) == count and all(isinstance(item, str) for item in value)


def decode_outcome(value: Any) -> Outcome:
    """A worker's outcome, every field checked (`WireError` if anything is off)."""
    _check(isinstance(value, dict) and set(value) <= {field.name for field in attrs.fields(Outcome)}, "fields")
    result = value.get("value")
    _check(result is None or type(result) in (int, float, bytes), "value")
    outputs = value.get("outputs", ())
    _check(isinstance(outputs, tuple) and all(type(item) is bytes for item in outputs), "outputs")
    _check(type(value.get("duration_ms", 0.0)) in (int, float), "duration_ms")
    _check(value.get("error") in _ERRORS, "error")
    _check(type(value.get("message", "")) is str and type(value.get("stderr", b"")) is bytes, "message")
    _check(type(value.get("exit_status", 0)) is int, "exit_status")
    logs = value.get("logs", ())
    _check(isinstance(logs, tuple), "logs")
    for line in logs:
        _check(isinstance(line, tuple) and len(line) == 4 and _strings(line[:3], 3) and line[0] in LEVELS, "log line")
        _check(isinstance(line[3], tuple) and all(_strings(pair, 2) for pair in line[3]), "log fields")
    return Outcome(**value)


class _BuiltinsOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise WireError(f"frame refers to {module}.{name}: only builtins may cross")


def dumps(message: Any) -> tuple[bytes, bytes]:
    """A frame's header and body (sent one after the other: a body may be large)."""
    body = pickle.dumps(message, protocol=PROTOCOL)
    return HEADER.pack(len(body)), body


def loads(body: bytes) -> Any:
    try:
        return _BuiltinsOnly(io.BytesIO(body)).load()
    except WireError:
        raise
    except Exception as exc:  # any malformed pickle
        raise WireError(f"undecodable frame: {type(exc).__name__}") from None


def frame_size(header: bytes, limit: int) -> int:
    (size,) = HEADER.unpack(header)
    if size > limit:
        raise WireError(f"frame of {size} bytes exceeds the limit of {limit}")
    return int(size)


# -- blocking sockets (a worker's side, and the compile helper's) ---------------


def send(sock: socket.socket, message: Any) -> None:
    for part in dumps(message):
        sock.sendall(part)


def _exactly(sock: socket.socket, size: int, waiting: Callable[[], None] | None) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    done = 0
    while done < size:
        try:
            received = sock.recv_into(view[done:], min(size - done, 1 << 20))
        except TimeoutError:  # only with a socket timeout: report, keep waiting
            if waiting is None:
                raise
            waiting()
            continue
        if received == 0:
            raise EOFError("the other side closed the connection")
        done += received
    return buffer


def receive(sock: socket.socket, limit: int, waiting: Callable[[], None] | None = None) -> Any:
    """One frame; `EOFError` at a clean end, `WireError` if malformed. With a
    socket timeout, `waiting` is called each time it expires."""
    size = frame_size(bytes(_exactly(sock, HEADER.size, waiting)), limit)
    return loads(bytes(_exactly(sock, size, waiting)))
