"""The repository's suite takes its fixtures from the kernel's test kit
(`wasmkernel.testing`, a pytest plugin: `run_app`, `serve_app`,
`start_server`, `redis_server`, `wait_until`, `project_root`, ...).

The names below are kept for tests written before the kit was a plugin;
new tests import from `wasmkernel.testing` or take the fixtures.

`make test` runs the suite on two pytest-xdist workers, a test file at a time
(``--dist loadfile``: a file's module fixtures, servers and builds, are set up
once, on one worker). The files that hold the long tests come first, so that
the workers do not end with one of them alone (see `expensive_first`)."""

from __future__ import annotations

import pytest

from wasmkernel.testing import ServerProcesses, free_port, project_root, wait_until_serving
from wasmkernel.testing.processes import BIN

ROOT = project_root()
ServerFactory = ServerProcesses

__all__ = ["BIN", "ROOT", "ServerFactory", "free_port", "wait_until_serving"]

#: Markers of the long tests, costliest first: builds, installs and the soak
#: (minutes), then real server processes (seconds each).
EXPENSIVE = (("slow", "soak"), ("server",))


def expensive_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """`items` with the files that hold an `EXPENSIVE` test first, the costliest
    kind first; a file's tests stay together and in their order, and so do the
    files of one kind."""

    def rank(item: pytest.Item) -> int:
        marked = {mark.name for mark in item.iter_markers()}
        return next((index for index, names in enumerate(EXPENSIVE) if marked.intersection(names)), len(EXPENSIVE))

    def file_of(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    files: dict[str, int] = {}
    for item in items:
        files[file_of(item)] = min(files.get(file_of(item), len(EXPENSIVE)), rank(item))
    return sorted(items, key=lambda item: files[file_of(item)])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = expensive_first(items)
