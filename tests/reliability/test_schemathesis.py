"""Schemathesis against the server's own /openapi.json: every documented
operation is exercised (coverage + fuzzing phases, bounded examples) with all
checks — no 5xx, status codes, content types, and response bodies valid
against the schemas the routes declare (`response_schema_conformance`: the
typed routes' models, the problem+json errors).

`/faults/*` is left out: its module fails on purpose (500/504/507);
`/feed/events` too: a Server-Sent Events stream never ends. The
`positive_data_acceptance` check is skipped: `POST /api/matmul`'s schema
cannot say that rows have equal lengths and inner dimensions agree, so
schema-valid but non-multipliable matrices rightly get 422.
Needs the dev dependency `schemathesis` (`pip install schemathesis`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import Instance, full_plugins, installed, registry_toml, spawn, token
from wasmkernel.testing import BIN

pytestmark = [pytest.mark.server, pytest.mark.skipif(not installed("openapi"), reason="openapi plugin not installed")]

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    workdir: Path = tmp_path_factory.mktemp("schemathesis")
    plugins = full_plugins(workdir)
    if installed("channels", "feed"):  # typed routes with bodies in and out
        plugins.update(channels={}, feed={"database": str(workdir / "feed.sqlite3")})
    instance = spawn(registry_toml(plugins), workdir)
    yield instance
    instance.stop()


def test_openapi_document_holds_under_schemathesis(server: Instance) -> None:
    st = shutil.which("st", path=str(BIN))
    if st is None:
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    command = [
        st,
        "run",
        f"{server.base}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--exclude-path-regex",
        "^/faults/|^/feed/events$",
        "--header",
        f"Authorization: Bearer {token(('matrix:compute', 'feed:write'))}",
        "--request-timeout",
        "20",
        "--generation-deterministic",
        "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
