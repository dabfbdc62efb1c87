"""The repository's suite takes its fixtures from the kernel's test kit
(`wasmkernel.testing`, a pytest plugin: `run_app`, `serve_app`,
`start_server`, `redis_server`, `wait_until`, `project_root`, ...).

The names below are kept for tests written before the kit was a plugin;
new tests import from `wasmkernel.testing` or take the fixtures."""

from __future__ import annotations

from wasmkernel.testing import ServerProcesses, free_port, project_root, wait_until_serving
from wasmkernel.testing.processes import BIN

ROOT = project_root()
ServerFactory = ServerProcesses

__all__ = ["BIN", "ROOT", "ServerFactory", "free_port", "wait_until_serving"]
