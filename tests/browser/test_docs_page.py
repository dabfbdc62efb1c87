"""The interactive docs page, rendered by a real headless Chromium against a
real server process, with every host but the server unreachable (the page must
work offline).

Driver: Chromium's own command line (`--dump-dom`, `--screenshot`) with a
virtual-time budget that lets the page's scripts fetch the document and
render; no browser driver package is needed. Needs Debian's `chromium`
package; skipped when it is missing.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser.cdp import HEADLESS
from wasmkernel.testing import ServerProcesses

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 900

REGISTRY = """
[kernel]
title = "Browser Test API"
version = "4.5.6"

[plugins.router]
[plugins.health]
[plugins.openapi]
"""

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="headless test needs Chromium: apt-get install chromium"),
    pytest.mark.skipif(
        importlib.util.find_spec("wasmkernel_openapi") is None or importlib.util.find_spec("wasmkernel_health") is None,
        reason="needs the openapi and health plugins installed",
    ),
]


def chromium(profile: Path, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium once; only 127.0.0.1 resolves."""
    command = [
        CHROMIUM,
        *HEADLESS,
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        "--virtual-time-budget=15000",
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, timeout=300, check=True)


def test_docs_page_renders_the_api(start_server: ServerProcesses, tmp_path: Path) -> None:
    base = start_server(REGISTRY, probe="/readyz")
    url = f"{base}/docs"

    dom = chromium(tmp_path / "profile-dom", "--dump-dom", url).stdout.decode()
    assert "Browser Test API" in dom
    assert "4.5.6" in dom
    for path in ("/health", "/healthz", "/readyz"):
        assert f'data-path="{path}"' in dom, f"operation {path} not rendered"
    assert "Service health" in dom
    assert "Failed to load API definition" not in dom
    assert "Unable to render this definition" not in dom

    screenshot = tmp_path / "docs.png"
    chromium(tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 10_000, "screenshot looks blank"
    if importlib.util.find_spec("PIL") is not None:
        from PIL import Image

        with Image.open(screenshot) as image:
            assert image.size == (WIDTH, HEIGHT)
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 50, "screenshot has almost no distinct colours"
    print(f"screenshot: {screenshot}")
