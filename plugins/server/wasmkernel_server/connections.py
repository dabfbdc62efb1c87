"""hypercorn's trio connection, contained (installed by `wasmkernel_server.patches`).

In hypercorn 0.18 an exception raised by any task of one connection (its
reader, its WebSocket ping task, its protocol's send task, the cleanup after
its application) leaves `TCPServer.run`, reaches `trio.serve_listeners` and
ends the whole server. Three changes:

- `GuardedTCPServer.run` is the last line of defence: whatever one
  connection raises is logged (``server.connection_failed``, with the client)
  and ends that connection only; cancellation and interpreter exits pass.
- A send that meets the connection closing (hypercorn's ``send_eof`` runs
  outside its send lock: `trio.BusyResourceError`) is a closed connection,
  as a broken one already is.
- `GuardedTaskGroup`: queuing the disconnect never waits (when the
  application's queue is full, a task queues it behind what is there), and
  once an application returns, what the client still sends it (body chunks,
  WebSocket messages) is dropped. In hypercorn the reader waited for room in
  the finished application's full queue, and the application's last send
  waited for room for its own disconnect: the connection and its tasks never
  ended (a client sending a body or WebSocket messages that nobody read
  leaked two tasks per connection).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import structlog
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.typing import AppWrapper, ASGIReceiveEvent, ASGISendEvent, Scope

log = structlog.get_logger("wasmkernel.server")


class GuardedTCPServer(TCPServer):
    async def run(self) -> None:
        try:
            await super().run()
        except BaseException as exc:
            failures, rest = _split(exc)
            if failures is not None:
                client = getattr(getattr(self, "protocol", None), "client", None)
                leaves = _leaves(failures)
                log.error("server.connection_failed", client=client, error="; ".join(map(_describe, leaves)), exc_info=leaves[0])
            if rest is not None:
                raise rest from None

    async def protocol_send(self, event: Event) -> None:
        try:
            await super().protocol_send(event)
        except trio.BusyResourceError:  # the connection is being closed meanwhile
            await self.protocol.handle(Closed())


def _split(exc: BaseException) -> tuple[BaseException | None, BaseException | None]:
    """(what a connection may swallow: its `Exception`s, what must propagate)."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(Exception)
    return (exc, None) if isinstance(exc, Exception) else (None, exc)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class GuardedTaskGroup(TaskGroup):
    async def spawn_app(
        self, app: AppWrapper, config: Config, scope: Scope, send: Callable[[ASGISendEvent | None], Awaitable[None]]
    ) -> Callable[[ASGIReceiveEvent], Awaitable[None]]:
        inbox, outbox = trio.open_memory_channel[ASGIReceiveEvent](config.max_app_queue_size)
        assert self._nursery is not None
        self._nursery.start_soon(_run_app, app, config, scope, outbox, send)

        async def put(message: ASGIReceiveEvent) -> None:
            try:
                if message["type"] not in _DISCONNECTS:
                    await inbox.send(message)
                    return
                try:
                    inbox.send_nowait(message)
                except trio.WouldBlock:
                    assert self._nursery is not None
                    self._nursery.start_soon(_queue, inbox, message)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the application has returned

        return put


_DISCONNECTS = frozenset({"http.disconnect", "websocket.disconnect"})


async def _queue(inbox: trio.MemorySendChannel[ASGIReceiveEvent], message: ASGIReceiveEvent) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await inbox.send(message)


async def _run_app(
    app: AppWrapper,
    config: Config,
    scope: Scope,
    outbox: trio.MemoryReceiveChannel[ASGIReceiveEvent],
    send: Callable[[ASGISendEvent | None], Awaitable[None]],
) -> None:
    """hypercorn's `task_group._handle`, closing the application's queue as
    soon as it returns (before the clean-up ``send(None)``, which may queue
    the disconnect)."""
    try:
        await app(scope, outbox.receive, send, trio.to_thread.run_sync, trio.from_thread.run)
    except trio.Cancelled:
        raise
    except BaseExceptionGroup as error:
        _, others = error.split(trio.Cancelled)
        if others is None:
            raise
        await config.log.exception("Error in ASGI Framework")
    except Exception:
        await config.log.exception("Error in ASGI Framework")
    finally:
        outbox.close()
        await send(None)
