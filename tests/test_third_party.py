"""A third-party plugin, from `wasmkernel new-plugin` to a served route:
scaffold, run its own tests, build a wheel, install it into a fresh virtual
environment beside the kernel, enable it, serve, and call it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from wasmkernel.testing import free_port, project_root, wait_until_serving

pytestmark = pytest.mark.server


def run(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_scaffolded_plugin_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    plugin_dir = tmp_path / "hello-world"
    run(bin_dir / "wasmkernel", "new-plugin", "hello-world", "--directory", plugin_dir)

    # The scaffold passes its own tests as generated.
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", plugin_dir, plugin_dir / "tests", cwd=plugin_dir, env=env)

    # Build its wheel, then a fresh venv with the kernel (its built-in plugins: run, plugins), the router and the wheel.
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "build", "--wheel", "--outdir", wheels, plugin_dir)
    (wheel,) = wheels.glob("wasmkernel_hello_world-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    plugins = project_root() / "plugins"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", project_root(), plugins / "router", wheel)

    registry = tmp_path / "registry.toml"
    registry.write_text('[plugins.router]\n[plugins.hello-world]\n[plugins.hello-world.config]\ngreeting = "Bonjour"\n')
    listing = run(venv / "bin" / "wasmkernel", "plugins", "--registry", registry)
    assert "hello-world" in listing

    port = free_port()
    server = subprocess.Popen(
        [venv / "bin" / "wasmkernel", "run", "--registry", registry, "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/hello-world/x", server)
        response = httpx.get(f"http://127.0.0.1:{port}/hello-world/ada")
        assert (response.status_code, response.json()) == (200, {"message": "Bonjour, ada!"})
    finally:
        server.terminate()
        server.wait(timeout=10)
