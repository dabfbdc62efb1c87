"""The Python 3.10 the Wasmer loader's workers run on, and their environment.

wasmer 1.1 has native wheels only for CPython 3.10, so everything wasmer does
(compiling, deserializing, calls) happens in processes of a 3.10
interpreter of its own; the server never imports wasmer. One mechanism, for
the bootstrap (``python -m wasmkernel_wasmer_loader.environment``, run by
`make run`/`make test`) and for the loader at startup (a user who
pip-installed the packages):

1. **the interpreter**: the loader's `python` key, else
   ``$WASMKERNEL_WASMER_PYTHON`` (either one must be a working CPython 3.10),
   else ``python3.10`` on PATH, else pyenv's newest 3.10.x. None: a
   `StartupError` of one line saying what to install, and that the wasmtime
   loader needs none;
2. **the environment**: a venv of that interpreter holding
   `worker/requirements.txt` (wasmer 1.1.0, its compilers, attrs), in the
   loader's `environment` key, else ``$WASMKERNEL_WASMER_ENV``, else
   ``~/.cache/wasmkernel/wasmer-py3.10-<hash>`` ($XDG_CACHE_HOME is honoured).
   Created once, under a lock (server processes may start together), and
   created again when the interpreter or the pins change;
   the interpreter found by searching (step 1 without `python` or the
   variable) is remembered in ``<cache>/wasmkernel/wasmer-python.json``:
   later starts whose remembered interpreter and environment are still
   there start no process to find them (delete the file to search again);
3. **the worker code**: `wasmkernel_wasm`'s portable modules and this
   plugin's `worker` package, copied into ``<cache_dir>/wasmer-worker/<hash>``,
   the workers' only WasmKernel code: they cannot import the kernel.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import structlog
from wasmkernel_wasm.portable import portable_files

from wasmkernel import StartupError

log = structlog.get_logger("wasmkernel.wasmer_loader")

PYTHON_VAR = "WASMKERNEL_WASMER_PYTHON"
ENVIRONMENT_VAR = "WASMKERNEL_WASMER_ENV"
WORKER = Path(__file__).resolve().parent / "worker"
REQUIREMENTS = WORKER / "requirements.txt"
#: The wasmer release the environment pins (part of the compile cache's key).
WASMER_VERSION = re.search(r"^wasmer==(\S+)$", REQUIREMENTS.read_text(), re.M).group(1)  # type: ignore[union-attr]
#: How a worker starts: ``python -I -c BOOT CODE_DIR FD`` (isolated: no user
#: site, no $PYTHON* variables, no current directory on the path).
BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from wasmkernel_wasmer_loader.worker.serve import main; main()"
#: A worker's whole environment: none of the server's variables (its secrets
#: among them) reach a process that runs guest code.
WORKER_VARIABLES = {"PATH": os.defpath}
MARKER = "wasmkernel-worker-env.json"
INSTALL_HINT = (
    "install CPython 3.10 (`pyenv install 3.10.13`, or your distribution's python3.10; name it with "
    f"${PYTHON_VAR} or the loader's `python` key unless it is on PATH or in pyenv); the wasmtime loader needs none (enable wasmtime-loader instead)"
)


@attrs.frozen
class Interpreter:
    """A CPython 3.10 and where it was found."""

    path: str
    version: str
    where: str


@attrs.frozen
class WorkerEnvironment:
    """The workers' venv: its interpreter runs `BOOT` with the worker code."""

    python: str
    interpreter: Interpreter
    directory: Path

    def command(self, code: Path, fd: int) -> list[str]:
        """A worker's command line: it talks to the server on inherited socket `fd`."""
        return [self.python, "-I", "-c", BOOT, str(code), str(fd)]

    def describe(self) -> str:
        return f"Python {self.interpreter.version} ({self.interpreter.where}), environment {self.directory}"


def _probe(path: str) -> str | None:
    """The version of the CPython 3.10 at `path`, or None if it is not one that runs."""
    try:
        done = subprocess.run(
            [path, "-I", "-c", "import platform; print(platform.python_implementation(), platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    words = done.stdout.split()
    if done.returncode != 0 or len(words) != 2 or words[0] != "CPython" or not words[1].startswith("3.10."):
        return None
    return words[1]


def _pyenv_pythons() -> list[str]:
    """pyenv's 3.10.x interpreters, newest first."""
    root = os.environ.get("PYENV_ROOT", "")
    if shutil.which("pyenv") is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    versions = Path(root or Path.home() / ".pyenv") / "versions"
    found = [path for path in versions.glob("3.10.*") if re.fullmatch(r"3\.10\.\d+", path.name)]
    found.sort(key=lambda path: int(path.name.split(".")[2]), reverse=True)
    return [str(path / "bin" / "python3.10") for path in found]


def find_interpreter(configured: str = "") -> Interpreter:
    """The workers' Python 3.10 (see the module's docstring); `StartupError` if there is none."""
    explicit = [(configured, "the loader's `python` key"), (os.environ.get(PYTHON_VAR, ""), f"${PYTHON_VAR}")]
    for path, where in explicit:
        if path:
            version = _probe(path)
            if version is None:
                raise StartupError(f"{where} = {path!r} is not a working CPython 3.10, which the Wasmer loader's workers need: {INSTALL_HINT}")
            return Interpreter(path, version, where)
    candidates = [(shutil.which("python3.10") or "", "PATH"), *((path, "pyenv") for path in _pyenv_pythons())]
    for path, where in candidates:
        version = _probe(path) if path else None
        if version is not None:
            return Interpreter(path, version, where)
    raise StartupError(f"the Wasmer loader's workers need CPython 3.10 (wasmer 1.1 has wheels for no other Python) and none was found: {INSTALL_HINT}")


def _digest(interpreter: Interpreter) -> str:
    key = "\n".join((REQUIREMENTS.read_text(), os.path.realpath(interpreter.path), interpreter.version))
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def default_directory(interpreter: Interpreter) -> Path:
    return _cache_home() / "wasmkernel" / f"wasmer-py{interpreter.version.rsplit('.', 1)[0]}-{_digest(interpreter)}"


def _directory(interpreter: Interpreter, configured: str) -> Path:
    return Path(configured or os.environ.get(ENVIRONMENT_VAR, "") or default_directory(interpreter)).expanduser().absolute()


def _ready(directory: Path, digest: str) -> bool:
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("digest") == digest and (directory / "bin" / "python").exists()


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(step: str, directory: Path, command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        raise StartupError(f"cannot create the Wasmer workers' environment in {directory}: {step} failed: {detail}")
    return done.stdout


def _create(interpreter: Interpreter, directory: Path, digest: str) -> None:
    if directory.exists():
        if not ((directory / MARKER).exists() or (directory / "pyvenv.cfg").exists() or not any(directory.iterdir())):
            raise StartupError(
                f"{directory} exists and is not a Wasmer worker environment: name another directory ({ENVIRONMENT_VAR} or the loader's `environment` key)"
            )
        shutil.rmtree(directory)
    log.info("wasm.worker_env_creating", directory=str(directory), python=interpreter.path, version=interpreter.version)
    _run("python -m venv", directory, [interpreter.path, "-m", "venv", str(directory)])
    python = str(directory / "bin" / "python")
    _run("pip install", directory, [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q", "-r", str(REQUIREMENTS)])
    probe = "import attrs, wasmer, wasmer_compiler_cranelift, wasmer_compiler_singlepass; print(wasmer.__version__)"
    wasmer = _run("import wasmer", directory, [python, "-I", "-c", probe]).strip()
    (directory / MARKER).write_text(json.dumps({"digest": digest, "python": interpreter.path, "version": interpreter.version, "wasmer": wasmer}))


def ensure_environment(interpreter: Interpreter, configured: str = "") -> WorkerEnvironment:
    """The workers' venv for `interpreter` (see the module's docstring), created if missing or stale."""
    directory = _directory(interpreter, configured)
    digest = _digest(interpreter)
    if not _ready(directory, digest):
        with _locked(directory):
            if not _ready(directory, digest):
                _create(interpreter, directory, digest)
    return WorkerEnvironment(str(directory / "bin" / "python"), interpreter, directory)


def _discovery_record() -> Path:
    return _cache_home() / "wasmkernel" / "wasmer-python.json"


def _remembered(environment: str) -> WorkerEnvironment | None:
    """The searched-for interpreter an earlier start found, if it and its environment are still there."""
    try:
        record = json.loads(_discovery_record().read_text())
        interpreter = Interpreter(str(record["path"]), str(record["version"]), str(record["where"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not interpreter.version.startswith("3.10.") or not os.access(interpreter.path, os.X_OK):
        return None
    directory = _directory(interpreter, environment)
    if not _ready(directory, _digest(interpreter)):
        return None
    return WorkerEnvironment(str(directory / "bin" / "python"), interpreter, directory)


def _remember(interpreter: Interpreter) -> None:
    record = _discovery_record()
    with contextlib.suppress(OSError):
        record.parent.mkdir(parents=True, exist_ok=True)
        staging = record.with_name(f".{record.name}.{os.getpid()}")
        staging.write_text(json.dumps(attrs.asdict(interpreter)))
        staging.replace(record)


def worker_environment(python: str = "", environment: str = "") -> WorkerEnvironment:
    """Find the interpreter and find or create its environment: what the loader and the bootstrap run."""
    if python or os.environ.get(PYTHON_VAR):
        return ensure_environment(find_interpreter(python), environment)
    found = _remembered(environment)
    if found is not None:
        return found
    interpreter = find_interpreter()
    found = ensure_environment(interpreter, environment)
    _remember(interpreter)
    return found


def _worker_code_files() -> dict[str, Path]:
    files = portable_files()
    files["wasmkernel_wasmer_loader/__init__.py"] = WORKER.parent / "__init__.py"
    files.update({f"wasmkernel_wasmer_loader/worker/{path.name}": path for path in sorted(WORKER.glob("*.py"))})
    return files


def install_worker_code(cache_dir: Path) -> Path:
    """The directory holding exactly the workers' code (a copy, named by its content)."""
    contents = {name: path.read_bytes() for name, path in _worker_code_files().items()}
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + data + b"\0" for name, data in sorted(contents.items()))).hexdigest()[:16]
    target = cache_dir / "wasmer-worker" / digest
    if target.is_dir():
        return target
    staging = cache_dir / "wasmer-worker" / f".{digest}.{os.getpid()}.tmp"
    for name, data in contents.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
    try:
        staging.rename(target)
    except OSError:  # another process installed the same code first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m wasmkernel_wasmer_loader.environment``: find or create the
    workers' environment and say which (one line); exit 1 with one line if impossible."""
    del argv
    try:
        environment = worker_environment()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wasmer workers: {environment.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
