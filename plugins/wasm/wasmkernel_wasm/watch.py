"""Hot reload: polling module files for changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
import trio

log = structlog.get_logger("wasmkernel.wasm")


def _stat(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime, st.st_size


async def watch_files(
    paths: Callable[[], Mapping[str, Path]],
    changed: Callable[[str], Awaitable[Any]],
    interval: float = 1.0,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Poll (mtime, size) of each named file every `interval` seconds and
    await `changed(name)` when it changes; errors are logged, never raised.
    Started (`nursery.start`) once the files' first state is taken: a change
    made after that is seen."""
    seen = {name: _stat(path) for name, path in paths().items()}
    task_status.started()
    while True:
        await trio.sleep(interval)
        for name, path in paths().items():
            now = _stat(path)
            if now is None or now == seen.get(name):
                continue
            seen[name] = now
            try:
                await changed(name)
            except Exception as exc:
                log.error("wasm.reload_failed", module=name, error=str(exc), action="the previous version keeps serving")
