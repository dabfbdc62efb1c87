"""The test kit's pytest plugin (entry point ``pytest11`` of the `wasmkernel`
distribution: active wherever the kernel is installed with pytest). Async
fixtures need pytest-trio (``trio_mode = true``).

Fixtures:

- `build_app(plugins, extra_plugins=None, kernel=None)`: an `Application` from
  a registry dict (`wasmkernel.testing.app_from`);
- `run_app(app_or_plugins, ...)`: starts the application in-process inside the
  test's nursery and returns an httpx client talking to it through ASGI; shut
  down when the test ends;
- `serve_app(app_or_plugins, ...)`: serves it with hypercorn's trio worker on a
  free loopback port inside the test's nursery; returns a `ServedApp` (its
  `http` client, `sse(path)` and `websocket(path)` clients); stopped when the
  test ends;
- `fake_identity`: a `FakeIdentity` authentication plugin (the request says
  who it is: ``headers=fake_identity.headers("ada", scopes=[...])``);
- `wait_until(predicate, timeout=..., what=...)`: the polling wait;
- `start_server(registry_text, ...)`: a real `wasmkernel run` process;
- `redis_server`: a real redis-server on a free port (skips without one);
- `project_root`: the project's root folder (pytest's rootdir).

Modules and functions need no fixture: ``from wasmkernel.testing import ...``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs
import pytest
import trio

from wasmkernel import Application
from wasmkernel.testing import paths, waiting
from wasmkernel.testing.apps import app_from, as_app
from wasmkernel.testing.identity import FakeIdentity
from wasmkernel.testing.processes import ServerProcesses
from wasmkernel.testing.redis import RedisServer, redis_binary

if TYPE_CHECKING:
    from wasmkernel.testing.inprocess import RunApp
    from wasmkernel.testing.served import ServeApp

T = TypeVar("T")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Record the project's root before the first conftest is imported."""
    paths.set_project_root(early_config.rootpath)


def pytest_configure(config: pytest.Config) -> None:
    """The same, when the plugin is registered later (``-p``, ``pytest_plugins``)."""
    paths.set_project_root(config.rootpath)


@attrs.define
class _Host:
    """Holds context managers open, each in a task of its own in `nursery`
    (the fixture's), until `close()` exits them, the last first. A context
    that opens a nursery must be exited by the task that entered it: the test
    calls `enter`, the fixture's teardown calls `close`."""

    nursery: trio.Nursery
    _held: list[tuple[trio.Event, trio.Event]] = attrs.field(factory=list)

    async def enter(self, context: AbstractAsyncContextManager[T]) -> T:
        async def hold(task_status: trio.TaskStatus[tuple[T, trio.Event, trio.Event]]) -> None:
            stop, exited = trio.Event(), trio.Event()
            try:
                async with context as value:
                    task_status.started((value, stop, exited))
                    await stop.wait()
            finally:
                exited.set()

        value, stop, exited = await self.nursery.start(hold)
        self._held.append((stop, exited))
        return cast(T, value)

    async def close(self) -> None:
        while self._held:
            stop, exited = self._held.pop()
            stop.set()
            await exited.wait()


@pytest.fixture
def build_app() -> Callable[..., Application]:
    """`wasmkernel.testing.app_from`: an application from a registry dict."""
    return app_from


@asynccontextmanager
async def _hosting(open_app: Callable[[Application], AbstractAsyncContextManager[T]]) -> AsyncIterator[Callable[..., Awaitable[T]]]:
    """A function entering `open_app(app)` for the rest of the test (the
    application assembled from a registry dict if it is one); all of them are
    exited when the block ends, the last first."""
    async with trio.open_nursery() as nursery:
        host = _Host(nursery)

        async def start(
            app: Application | Mapping[str, Mapping[str, Any]], extra_plugins: Mapping[str, Any] | None = None, kernel: Mapping[str, Any] | None = None
        ) -> T:
            return await host.enter(open_app(as_app(app, extra_plugins, kernel)))

        yield start
        await host.close()


@pytest.fixture
async def run_app() -> AsyncIterator[RunApp]:
    """Start applications in-process for the test (see the module docstring)."""
    from wasmkernel.testing.inprocess import running

    async with _hosting(running) as run:
        yield cast("RunApp", run)


@pytest.fixture
async def serve_app() -> AsyncIterator[ServeApp]:
    """Serve applications on loopback ports for the test (see the module docstring)."""
    from wasmkernel.testing.served import served

    async with _hosting(served) as serve:
        yield cast("ServeApp", serve)


@pytest.fixture
def fake_identity() -> FakeIdentity:
    """A fresh `FakeIdentity` plugin (authenticator of scheme "test")."""
    return FakeIdentity()


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    """`wasmkernel.testing.wait_until`: poll until a predicate holds."""
    return waiting.wait_until


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerProcesses]:
    """Start real `wasmkernel run` processes; stopped at teardown (see `ServerProcesses`)."""
    processes = ServerProcesses(tmp_path)
    yield processes
    processes.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running redis-server on a free loopback port; stopped at teardown."""
    if redis_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server; `make test` does it)")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="project_root")
def project_root_fixture(pytestconfig: pytest.Config) -> Path:
    """The project's root folder (pytest's rootdir)."""
    return pytestconfig.rootpath
