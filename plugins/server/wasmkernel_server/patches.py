"""What the server plugin changes in hypercorn, in one place.

hypercorn's trio worker has no extension points for these, so the plugin
replaces four of its classes with subclasses (each module says why):

| hypercorn name                      | replaced by                                 |
| ----------------------------------- | ------------------------------------------- |
| `hypercorn.trio.run.TCPServer`       | `connections.GuardedTCPServer`              |
| `hypercorn.trio.tcp_server.TaskGroup`| `connections.GuardedTaskGroup`              |
| `hypercorn.protocol.H11Protocol`     | `http11.H11` (100-continue, h2c refusal)    |
| `hypercorn.protocol.H2Protocol`      | `http2.H2`                                  |
| `hypercorn.protocol.h11.WSStream`, `hypercorn.protocol.h2.WSStream` | `websocket.GuardedWSStream` |

They rely on hypercorn's private structure, read in 0.18 only: `check`
refuses any other version at startup (and the kernel's distribution requires
``hypercorn>=0.18,<0.19``). Installed at startup in whichever process serves
(``wasmkernel run``, its workers, ``hypercorn --worker-class trio
wasmkernel.asgi:app``); classes are looked up when a connection starts, so
connections accepted after `install` get them.
"""

from __future__ import annotations

import importlib.metadata

import hypercorn.protocol
import hypercorn.protocol.h2
import hypercorn.protocol.h11
import hypercorn.trio.run
import hypercorn.trio.tcp_server

from wasmkernel import StartupError
from wasmkernel_server.connections import GuardedTaskGroup, GuardedTCPServer
from wasmkernel_server.http2 import H2
from wasmkernel_server.http11 import H11
from wasmkernel_server.websocket import GuardedWSStream

#: hypercorn releases whose internals these patches were written against.
SUPPORTED = "0.18"


def check(version: str | None = None) -> None:
    """`StartupError` in one line unless hypercorn is a `SUPPORTED` release."""
    version = version or importlib.metadata.version("hypercorn")
    if version.split(".")[:2] != SUPPORTED.split("."):
        wanted = f"hypercorn>={SUPPORTED},<{_next_minor(SUPPORTED)}"
        raise StartupError(f"server: hypercorn {version} is not supported (the server plugin patches {SUPPORTED}.x internals): pip install '{wanted}'")


def _next_minor(release: str) -> str:
    major, minor = release.split(".")
    return f"{major}.{int(minor) + 1}"


def install(*, refuse_h2c: bool = False) -> None:
    """Install the classes above in this process (idempotent); `refuse_h2c`
    when the server sits behind a proxy (``wasmkernel run --behind-proxy``)."""
    check()
    H11.refuse_h2c = refuse_h2c
    hypercorn.trio.run.TCPServer = GuardedTCPServer  # type: ignore[attr-defined]
    hypercorn.trio.tcp_server.TaskGroup = GuardedTaskGroup  # type: ignore[attr-defined]
    hypercorn.protocol.H11Protocol = H11  # type: ignore[attr-defined]
    hypercorn.protocol.H2Protocol = H2  # type: ignore[attr-defined]
    hypercorn.protocol.h11.WSStream = GuardedWSStream  # type: ignore[attr-defined]
    hypercorn.protocol.h2.WSStream = GuardedWSStream  # type: ignore[attr-defined]
