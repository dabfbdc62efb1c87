"""Real server processes for the reliability tests and stress runs.

Everything listens on 127.0.0.1 only; paths are under the project's root
(`wasmkernel.testing.project_root`: pytest's rootdir, or the current
directory for the stress scripts run from the repository). A server's stdout/stderr go to a file
(never a pipe nobody reads: a busy server would block on a full pipe), so a
run can count one instance's access-log lines afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import attrs
import jwt
import psutil

from wasmkernel.testing import BIN, answers, project_root, start_on_free_port

ROOT = project_root()
DIST = ROOT / "wasm_modules" / "dist"
WASM_MODULES = ("hello", "faults", "wagi_echo", "matmul", "mirror", "mirror_wagi")

#: Development credentials handed to servers through their environment.
JWT_SECRET = "reliability-" + "k" * 52
API_KEY = "reliability-api-key-0123456789"
ENV = {"WASMKERNEL_JWT_SECRET": JWT_SECRET, "WASMKERNEL_API_KEYS": f"ci:{API_KEY}"}


def installed(*plugins: str) -> bool:
    """Whether every `wasmkernel-<plugin>` distribution is installed."""
    try:
        for name in plugins:
            distribution(f"wasmkernel-{name}")
    except PackageNotFoundError:
        return False
    return True


def wasm_built() -> bool:
    return all((DIST / f"{name}.wasm").is_file() for name in WASM_MODULES)


def token(scopes: Sequence[str] = ("matrix:compute",), ttl: int = 3600, secret: str = JWT_SECRET, **claims: Any) -> str:
    """An HS256 token the reliability registry accepts (unless claims spoil it)."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": "reliability", "scope": " ".join(scopes), "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def _toml(value: Any) -> str:
    """TOML for the scalars, lists and inline tables used here (JSON-compatible)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def registry_toml(plugins: Mapping[str, Mapping[str, Any]]) -> str:
    """A registry file: `{"router": {}, "limits": {"rate": 5}}` → one
    `[plugins.<name>]` table each (enabled, file order), config as given."""
    lines = ['[kernel]\ntitle = "WasmKernel reliability"\nversion = "0.1.0"\n']
    for name, config in plugins.items():
        lines.append(f"[plugins.{name}]\nenabled = true")
        if config:
            lines.append(f"[plugins.{name}.config]")
            lines += [f"{key} = {_toml(value)}" for key, value in config.items()]
        lines.append("")
    return "\n".join(lines)


def wasm_config(cache_dir: Path, *, dist: Path = DIST, faults_timeout: float = 1.0, workers: int = 2, watch: bool = False, **extra: Any) -> dict[str, Any]:
    """The wasmer-loader config serving every guest module of wasm_modules/."""
    return {
        "cache_dir": str(cache_dir),
        "workers": workers,
        "default_timeout": 5.0,
        "watch": watch,
        "watch_interval": 0.2,
        "modules": [
            {"name": "matmul", "path": str(dist / "matmul.wasm")},
            {"name": "hello", "path": str(dist / "hello.wasm"), "kind": "http"},
            {"name": "faults", "path": str(dist / "faults.wasm"), "kind": "http", "timeout": faults_timeout, "memory_limit_mb": 32},
            {"name": "wagi", "path": str(dist / "wagi_echo.wasm"), "kind": "wasi"},
        ],
        "routes": [
            {"path": "/wasm/hello/{name}", "module": "hello"},
            {"path": "/faults/{what}", "module": "faults"},
            {"path": "/wagi/{rest:path}", "module": "wagi", "methods": ["GET", "POST"]},
        ],
        **extra,
    }


def full_plugins(
    workdir: Path,
    *,
    limits: Mapping[str, Any] | None = None,
    wasm: Mapping[str, Any] | None = None,
    with_wasm: bool = True,
    redis: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every installed feature plugin, in the recommended middleware order,
    configured for the reliability runs (JWT + API keys from `ENV`); the WASM
    plugins only when `with_wasm` and the guest modules are built; the redis
    plugin with the config `redis` (e.g. ``{"url": server.url}``) when given."""
    wanted: dict[str, dict[str, Any]] = {
        **({"redis": dict(redis)} if redis is not None else {}),
        "request-id": {},
        "logging": {"format": "json", "level": "info"},
        "access-log": {"skip_paths": []},
        "metrics": {},
        "compression": {},
        "errors": {},
        "cors": {"allow_origins": ["https://app.example.com"]},
        "limits": dict(limits or {}),
        "auth-jwt": {"secret": {"env": "WASMKERNEL_JWT_SECRET"}},
        "auth-apikey": {"keys": {"env": "WASMKERNEL_API_KEYS"}, "scopes": ["matrix:compute"]},
        "authz": {},
        "validation": {},
        "router": {},
        "health": {},
        "hello": {},
        "openapi": {},
    }
    if with_wasm and wasm_built() and installed("wasmer-loader", "matmul"):
        from wasmkernel_wasm.testing import wasm_plugins

        wanted.update({name: table["config"] for name, table in wasm_plugins("wasmer-loader", wasm or wasm_config(workdir / "cache")).items()})
        wanted["matmul"] = {"max_n": 300}
    return {name: config for name, config in wanted.items() if installed(name)}


@attrs.define
class Instance:
    """One `wasmkernel run` process on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines the server logged so far (other lines skipped)."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def in_progress(self, route_fragment: str) -> float:
        """Requests in progress now on routes whose name contains
        `route_fragment` (the metrics plugin's gauge, read from /metrics)."""
        import httpx

        text = httpx.get(self.base + "/metrics", timeout=30).text
        gauge = "wasmkernel_requests_in_progress{"
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(gauge) and route_fragment in line)

    def access_count(self, path: str | None = None) -> int:
        """Access-log lines (event "request"), optionally for one path."""
        return sum(1 for r in self.log_lines() if r.get("event") == "request" and (path is None or r.get("path") == path))

    def processes(self) -> list[psutil.Process]:
        """The server process and all its descendants (hypercorn workers, WASM workers)."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the whole process group (server, workers, WASM workers)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # Leftover children (e.g. WASM workers) of a server that exited.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def spawn(
    registry: str,
    workdir: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    probe: str = "/healthz",
    timeout: float = 60.0,
    args: Sequence[str] = (),
) -> Instance:
    """Write `registry` to `workdir`, start `wasmkernel run` (with `args`
    besides its registry, bind and workers) on a free loopback port in its own
    process group, and wait until `probe` answers."""
    workdir.mkdir(parents=True, exist_ok=True)

    def log_path(port: int) -> Path:
        return workdir / f"server-{port}.log"

    def start(port: int) -> subprocess.Popen[bytes]:
        registry_file = workdir / f"registry-{port}.toml"
        registry_file.write_text(registry)
        with log_path(port).open("wb") as log:
            return subprocess.Popen(
                [str(BIN / "wasmkernel"), "run", "--registry", str(registry_file), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *args],
                cwd=workdir,
                env={**os.environ, **ENV, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    process, port = start_on_free_port(
        start,
        lambda port: log_path(port).read_text(errors="replace"),
        lambda port: answers(f"http://127.0.0.1:{port}{probe}"),
        stop=lambda process: Instance(process, 0, Path()).stop(),
        timeout=timeout,
    )
    return Instance(process, port, log_path(port))


@attrs.define
class Nginx:
    """nginx on a loopback port, load-balancing `upstreams` (no root paths:
    prefix, pid, temp and logs all live in `workdir`)."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.template"


def nginx_conf(listen: str, upstreams: Sequence[str], workdir: Path, *, daemon: bool = False) -> str:
    """deploy/nginx.conf.template filled in for a test or local run."""
    servers = "\n".join(f"        server {address} max_fails=1 fail_timeout=5s;" for address in upstreams)
    return (
        NGINX_TEMPLATE.read_text()
        .replace("@LISTEN@", listen)
        .replace("@UPSTREAMS@", servers)
        .replace("@PREFIX@", str(workdir))
        .replace("@DAEMON@", "on" if daemon else "off")
    )


def nginx_binary() -> str | None:
    """nginx on PATH, or Debian's /usr/sbin/nginx (not on a user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def spawn_nginx(upstreams: Sequence[str], workdir: Path) -> Nginx:
    nginx = nginx_binary()
    if nginx is None:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    conf = workdir / "nginx.conf"
    error_log = workdir / "logs" / "error.log"

    def start(port: int) -> subprocess.Popen[bytes]:
        conf.write_text(nginx_conf(f"127.0.0.1:{port}", upstreams, workdir))
        return subprocess.Popen([nginx, "-p", str(workdir), "-c", str(conf), "-e", str(error_log)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def output(port: int) -> str:
        return error_log.read_text(errors="replace") if error_log.exists() else ""

    process, port = start_on_free_port(start, output, stop=lambda process: Nginx(process, 0, workdir).stop())
    return Nginx(process, port, workdir)
