"""The real-time benchmark's infrastructure processes: Debian's `redis-server`
and `nginx`, each on a free loopback port with its files in the run's folder
(no root paths, no persistence), stopped with the run.

nginx is configured for WebSocket fan-out (benchmarks/realtime.py): the
`Upgrade`/`Connection` headers are passed upstream, read timeouts exceed the
run, and `worker_connections` covers two sockets (client and upstream) per
subscriber. Upstreams are balanced `least_conn`, which splits long-lived
connections evenly.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import psutil

from benchmarks.servers import SetupFailed, Unavailable, free_port


def binary(name: str) -> str:
    """`name` on PATH or in Debian's sbin/bin folders; `Unavailable` with the install command otherwise."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/sbin")
    if found is None:
        raise Unavailable(f"{name} is not installed (bash scripts/bootstrap.sh apt {name})")
    return found


def _wait_listening(process: subprocess.Popen[bytes], port: int, what: str, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise SetupFailed(f"{what} exited with {process.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SetupFailed(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@attrs.define
class Infra:
    """A started redis-server or nginx; a context manager that stops it."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    stop_signal: int = signal.SIGTERM

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                total += sum(proc.cpu_times()[:2])
            except psutil.NoSuchProcess:
                continue
        return total

    def rss_mb(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total / 2**20

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Infra:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_redis(workdir: Path, cpus: str | None = None) -> Infra:
    """redis-server on a free loopback port, nothing saved to disk."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "redis.log"
    argv = [binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(workdir), "--logfile", str(log), "--daemonize", "no", "--maxclients", "20000"]
    process = subprocess.Popen([*(["taskset", "-c", cpus] if cpus else []), *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_listening(process, port, "redis-server", log)
    return Infra("redis", process, port)


NGINX_CONF = """\
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream wasmkernel {{
        least_conn;
{upstreams}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://wasmkernel;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_buffering off;
        }}
    }}
}}
"""


def start_nginx(upstreams: Sequence[str], workdir: Path, cpus: str | None = None) -> Infra:
    """nginx (one worker process) on a free loopback port in front of `upstreams` ("host:port")."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(f"        server {address};" for address in upstreams)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=workdir, upstreams=servers, port=port))
    log = workdir / "error.log"
    argv = [binary("nginx"), "-p", str(workdir), "-c", str(conf), "-e", str(log)]
    process = subprocess.Popen([*(["taskset", "-c", cpus] if cpus else []), *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_listening(process, port, "nginx", log)
    return Infra("nginx", process, port, stop_signal=signal.SIGQUIT)
