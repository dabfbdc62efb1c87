"""deploy/Containerfile without a container engine (none is installed here):
its instructions are read from the file and run the way the engine runs them,
each stage in a fresh virtual environment of the machine's Python standing
in for the base image, the image's paths (/src, /wheels, /app) mapped to
temporary folders, then its CMD as an unprivileged user; the image must serve
the default registry.

Stand-ins, and nothing else: `COPY . .` copies what git tracks (or would:
the build context .dockerignore leaves); a `RUN useradd` is skipped and its
user is `nobody` (or the current user, when not root)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

from tests.conftest import ROOT, free_port, wait_until_serving

pytestmark = pytest.mark.server

CONTAINERFILE = ROOT / "deploy" / "Containerfile"
IMAGE_PATHS = ("/src", "/wheels", "/app")
#: The base image's Python: Debian's when there is one (readable by `nobody`, unlike a per-user pyenv).
BASE_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


@attrs.frozen
class Instruction:
    keyword: str
    argument: str


def instructions(text: str) -> list[Instruction]:
    """The Containerfile's instructions, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [Instruction(*line.strip().split(None, 1)) for line in joined.splitlines() if line.strip()]


@attrs.define
class Stage:
    venv: Path
    workdir: Path
    env: dict[str, str] = attrs.field(factory=dict)
    user: str = "root"


@pytest.fixture
def image_root() -> Iterator[Path]:
    """A folder `nobody` can reach (pytest's tmp_path is private to its user)."""
    root = Path(tempfile.mkdtemp(prefix="wasmkernel-image-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_container_recipe_builds_and_serves_as_a_non_root_user(image_root: Path) -> None:
    steps = instructions(CONTAINERFILE.read_text())
    assert [step.keyword for step in steps].count("FROM") == 2
    runtime_user = "nobody" if os.geteuid() == 0 else None

    def mapped(text: str) -> str:
        return re.sub(r"(?<![\w.-])(/src|/wheels|/app)(?=/|\s|\"|$)", lambda match: str(image_root / match.group(1).lstrip("/")), text)

    stage: Stage | None = None
    for step in steps:
        if step.keyword == "FROM":
            venv = image_root / f"python-{len(list(image_root.glob('python-*')))}"
            subprocess.run([BASE_PYTHON, "-m", "venv", str(venv)], check=True, timeout=300)
            stage = Stage(venv=venv, workdir=image_root)
            continue
        assert stage is not None, "an instruction before FROM"
        env = {**os.environ, **stage.env, "PATH": f"{stage.venv / 'bin'}:/usr/bin:/bin"}
        env = {key: value for key, value in env.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", "WASMKERNEL_REGISTRY")}
        if step.keyword == "WORKDIR":
            stage.workdir = Path(mapped(step.argument))
            stage.workdir.mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY" and step.argument == ". .":
            files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
            archive = subprocess.run(["tar", "--null", "-T", "-", "-cf", "-"], cwd=ROOT, input=files, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-xf", "-"], cwd=stage.workdir, input=archive, check=True)
        elif step.keyword == "COPY":
            source, target = (mapped(part) for part in step.argument.removeprefix("--from=build ").split())
            assert source == target, "a stage's files are where the other stage left them"
        elif step.keyword == "RUN" and step.argument.startswith("useradd "):
            continue  # the user exists: `nobody` (see the module's docstring)
        elif step.keyword == "RUN":
            command = mapped(step.argument)
            if runtime_user:
                command = re.sub(r"(chown (?:-R )?)wasmkernel\b", rf"\g<1>{runtime_user}", command)
            done = subprocess.run(["bash", "-c", command], cwd=stage.workdir, env=env, capture_output=True, text=True, timeout=1800, check=False)
            assert done.returncode == 0, f"RUN {step.argument}\n{done.stdout}\n{done.stderr}"
        elif step.keyword == "ENV":
            stage.env |= dict(pair.split("=", 1) for pair in step.argument.split())
        elif step.keyword == "USER":
            stage.user = step.argument
        elif step.keyword == "CMD":
            assert stage.user == "wasmkernel"
            serve(json.loads(step.argument), stage, env, runtime_user, image_root)
        else:
            assert step.keyword == "EXPOSE" and step.argument == "8000"
    assert not (image_root / "wheels").exists(), "the wheels are not left in the image"


def serve(cmd: list[str], stage: Stage, env: dict[str, str], user: str | None, image_root: Path) -> None:
    """Run the image's CMD (as `user`) and call a module route and a Python route."""
    port = free_port()
    argv = [part.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for part in cmd]
    if user:
        argv = ["setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups", *argv]
    log = image_root / "server.log"
    env = env | {"WASMKERNEL_JWT_SECRET": secrets.token_urlsafe(48), "HOME": str(stage.workdir)}
    with log.open("wb") as output:
        server = subprocess.Popen(argv, cwd=stage.workdir, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/health", server, timeout=300, log=log)
        module = httpx.get(f"http://127.0.0.1:{port}/hello/world", timeout=60)
        python = httpx.get(f"http://127.0.0.1:{port}/hello", timeout=60)
        assert (module.status_code, python.status_code) == (200, 200), log.read_text()
        assert (image_root / "app" / ".wasmkernel" / "cache").is_dir(), "the compiled-module cache is written where the image says"
    finally:
        server.terminate()
        server.wait(timeout=60)
