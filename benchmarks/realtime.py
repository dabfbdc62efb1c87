"""WebSocket fan-out benchmark (issue 13): S subscribers, a publisher posting
M messages at a fixed rate, the time from publish to arrival at every
subscriber, messages lost, server memory per idle connection and CPU.

    .venv/bin/python -m benchmarks.realtime                      # S = 1000 and 5000, every row
    .venv/bin/python -m benchmarks.realtime --smoke              # S = 50, 5 messages (CI)
    .venv/bin/python -m benchmarks.realtime --subscribers 2000 --messages 60 --rate 2 --servers raw-asgi,wasmkernel

Rows (`--servers`, see `ROWS`): the raw ASGI broadcast and Starlette's on
hypercorn's trio worker (one worker), Node.js with `ws`, WasmKernel with one
worker (in-process broker), with `--workers 2` and the Redis broker, and two
instances behind nginx with the Redis broker (subscribers split over both
through nginx, the publisher posting to the first instance directly).

Each (row, S) gets a fresh server. The load generator
(`peers/ws-node/loadgen.js`: one Node.js process, S `ws` clients and the
publisher, one monotonic clock) opens the S connections, the runner reads the
server's resident memory before and after (idle), then the publisher posts M
messages at `--rate` per second; every delivery's latency is publish →
arrival. Single-process rows pin the server to `--server-cpus` and the load
generator to `--loadgen-cpus` with taskset; multi-process rows need both
cores, so nothing is pinned there (the report says so per row).

Writes `benchmarks/results/<date>-realtime/` (or `--out`): `realtime.csv`
(one row per configuration), `messages.csv` (one row per published message),
`fanout.png`, `REPORT.md` (PASS/FAIL for the issue's targets) and the logs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import jwt
import psutil

from benchmarks import realtime_report
from benchmarks.infra import Infra, start_nginx, start_redis
from benchmarks.servers import ROOT, ProcessSpec, RunningServer, SetupFailed, run_setup, start

WS_NODE = ROOT / "benchmarks" / "peers" / "ws-node"
REGISTRY = ROOT / "benchmarks" / "registries" / "realtime.toml"
SECRET_ENV = "WASMKERNEL_JWT_SECRET"
REDIS_ENV = "WASMKERNEL_REDIS_URL"
NODE_SETUP = ProcessSpec(
    "ws-node", "JavaScript (Node.js)", "ws", WS_NODE, "exec node server.js", setup="npm ci --silent --no-audit --no-fund", requires=("node", "npm")
)
IDLE_SETTLE_S = 2.0
#: How long the S handshakes may take (generous: a loaded 2-core machine made
#: WasmKernel's handshakes take ~9 ms of CPU each, and the rate falls as S grows).
CONNECT_BASE_S = 60.0
CONNECT_PER_SUBSCRIBER_S = 0.12
SAMPLE_S = 0.5


@attrs.frozen
class Options:
    subscribers: tuple[int, ...]
    messages: int
    rate: float
    drain_s: float
    server_cpus: str
    loadgen_cpus: str
    out: Path


@attrs.define
class Deployment:
    """What a row started: the servers measured, the helpers beside them
    (Redis, nginx: their CPU and memory are reported apart) and how the load
    generator reaches them."""

    servers: list[RunningServer]
    infra: list[Infra]
    subscribe_urls: list[str]
    publish_url: str
    publish_headers: dict[str, str]
    json_text: bool
    pinned: bool
    path: str  # what was measured, in words

    def server_processes(self) -> list[psutil.Process]:
        return [proc for server in self.servers for proc in server.processes()]

    def server_rss_mb(self) -> float:
        return sum(server.rss_mb() for server in self.servers)

    def server_cpu_s(self) -> float:
        return sum(server.cpu_seconds() for server in self.servers)

    def infra_cpu_s(self) -> float:
        return sum(helper.cpu_seconds() for helper in self.infra)

    def infra_rss_mb(self) -> float:
        return sum(helper.rss_mb() for helper in self.infra)

    def connections_per_process(self) -> list[int]:
        """Established TCP connections each server process holds on its server's port
        (the subscribers, plus a few keep-alive ones), for the processes holding any."""
        counts = []
        for server in self.servers:
            for proc in server.processes():
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    held = sum(1 for c in proc.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == server.port)
                    if held:
                        counts.append(held)
        return counts


@attrs.frozen
class Row:
    name: str
    what: str
    deploy: Callable[[Options, Path, dict[str, str]], contextlib.AbstractContextManager[Deployment]]


# -- rows -------------------------------------------------------------------------------------


def _hypercorn(app: str) -> str:
    return f"exec {sys.executable} -m hypercorn --worker-class trio --workers 1 --bind 127.0.0.1:$PORT benchmarks.reference.broadcast:{app}"


def _single(spec: ProcessSpec, options: Options, logs: Path, *, path: str) -> contextlib.AbstractContextManager[Deployment]:
    @contextlib.contextmanager
    def deployed() -> Iterator[Deployment]:
        with start(spec, logs, cpus=options.server_cpus) as server:
            base = f"127.0.0.1:{server.port}"
            yield Deployment([server], [], [f"ws://{base}/ws"], f"http://{base}/publish", {}, False, True, path)

    return deployed()


def raw_asgi(options: Options, logs: Path, env: dict[str, str]) -> contextlib.AbstractContextManager[Deployment]:
    spec = ProcessSpec("raw-asgi", "Python", "raw ASGI app on hypercorn (trio worker)", ROOT, _hypercorn("raw"))
    return _single(spec, options, logs, path="POST /publish awaits websocket.send for each subscriber in turn")


def starlette(options: Options, logs: Path, env: dict[str, str]) -> contextlib.AbstractContextManager[Deployment]:
    spec = ProcessSpec("starlette", "Python", "Starlette on hypercorn (trio worker)", ROOT, _hypercorn("starlette"))
    return _single(spec, options, logs, path="POST /publish awaits WebSocket.send_text for each subscriber in turn")


def node_ws(options: Options, logs: Path, env: dict[str, str]) -> contextlib.AbstractContextManager[Deployment]:
    spec = attrs.evolve(NODE_SETUP, name="node-ws")
    return _single(spec, options, logs, path="POST /publish calls ws.send for each client (ws queues the frames)")


def _wasmkernel_spec(name: str, env: dict[str, str], workers: int) -> ProcessSpec:
    wasmkernel = Path(sys.executable).parent / "wasmkernel"
    command = f"exec {wasmkernel} run --registry {REGISTRY} --bind 127.0.0.1:$PORT --workers {workers}"
    return ProcessSpec(name, "Python", "WasmKernel (hypercorn trio worker)", ROOT, command, env=env)


FEED_PATH = "POST /posts (JWT scope feed:write) → channels → the feed's WebSocket /feed/ws"


def _wasmkernel_endpoints(publish_base: str, subscribe_bases: list[str], env: dict[str, str]) -> tuple[list[str], str, dict[str, str]]:
    claims = {"sub": "realtime-benchmark", "scope": "feed:write", "exp": int(time.time()) + 24 * 3600}
    token = jwt.encode(claims, env[SECRET_ENV], algorithm="HS256")
    return [f"ws://{base}/feed/ws" for base in subscribe_bases], f"http://{publish_base}/posts", {"authorization": f"Bearer {token}"}


def wasmkernel(options: Options, logs: Path, env: dict[str, str]) -> contextlib.AbstractContextManager[Deployment]:
    @contextlib.contextmanager
    def deployed() -> Iterator[Deployment]:
        spec = _wasmkernel_spec("wasmkernel", {**env, REDIS_ENV: ""}, workers=1)
        with start(spec, logs, probe="/healthz", cpus=options.server_cpus) as server:
            base = f"127.0.0.1:{server.port}"
            subscribe, publish, headers = _wasmkernel_endpoints(base, [base], env)
            yield Deployment([server], [], subscribe, publish, headers, True, True, FEED_PATH + ", in-process broker, one worker")

    return deployed()


def wasmkernel_2w_redis(options: Options, logs: Path, env: dict[str, str]) -> contextlib.AbstractContextManager[Deployment]:
    @contextlib.contextmanager
    def deployed() -> Iterator[Deployment]:
        with start_redis(logs / "redis-2w") as redis:
            spec = _wasmkernel_spec("wasmkernel-2w-redis", {**env, REDIS_ENV: f"redis://127.0.0.1:{redis.port}/0"}, workers=2)
            with start(spec, logs, probe="/healthz") as server:
                base = f"127.0.0.1:{server.port}"
                subscribe, publish, headers = _wasmkernel_endpoints(base, [base], env)
                path = FEED_PATH + ", Redis broker, --workers 2 (both workers accept on one listening socket; the kernel decides nothing about the split)"
                yield Deployment([server], [redis], subscribe, publish, headers, True, False, path)

    return deployed()


def wasmkernel_2x_nginx(options: Options, logs: Path, env: dict[str, str]) -> contextlib.AbstractContextManager[Deployment]:
    @contextlib.contextmanager
    def deployed() -> Iterator[Deployment]:
        with contextlib.ExitStack() as stack:
            redis = stack.enter_context(start_redis(logs / "redis-2x"))
            instance_env = {**env, REDIS_ENV: f"redis://127.0.0.1:{redis.port}/0"}
            servers = [stack.enter_context(start(_wasmkernel_spec(f"wasmkernel-2x-{i}", instance_env, workers=1), logs, probe="/healthz")) for i in (1, 2)]
            nginx = stack.enter_context(start_nginx([f"127.0.0.1:{s.port}" for s in servers], logs / "nginx"))
            subscribe, publish, headers = _wasmkernel_endpoints(f"127.0.0.1:{servers[0].port}", [f"127.0.0.1:{nginx.port}"], env)
            path = FEED_PATH + ", Redis broker, two instances (one worker each): subscribers through nginx (least_conn), the publisher on instance 1"
            yield Deployment(servers, [redis, nginx], subscribe, publish, headers, True, False, path)

    return deployed()


ROWS = {
    row.name: row
    for row in (
        Row("raw-asgi", "raw ASGI broadcast, hypercorn trio, 1 worker (baseline)", raw_asgi),
        Row("starlette", "Starlette WebSocket broadcast, hypercorn trio, 1 worker", starlette),
        Row("node-ws", "Node.js + ws", node_ws),
        Row("wasmkernel", "WasmKernel, 1 worker, in-process broker", wasmkernel),
        Row("wasmkernel-2w-redis", "WasmKernel, --workers 2, Redis broker", wasmkernel_2w_redis),
        Row("wasmkernel-2x-nginx", "WasmKernel, 2 instances behind nginx, Redis broker", wasmkernel_2x_nginx),
    )
}


# -- one measurement --------------------------------------------------------------------------


class LoadGenerator:
    """`loadgen.js` as a child process speaking JSON lines (see its header)."""

    def __init__(self, config: dict[str, Any], cpus: str | None, log: IO[bytes]) -> None:
        argv = ["node", str(WS_NODE / "loadgen.js"), json.dumps(config)]
        self.popen = subprocess.Popen(
            [*(["taskset", "-c", cpus] if cpus else []), *argv], cwd=WS_NODE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
        )
        self.process = psutil.Process(self.popen.pid)

    def cpu_s(self) -> float:
        with contextlib.suppress(psutil.NoSuchProcess):
            return float(sum(self.process.cpu_times()[:2]))
        return 0.0

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()

    def expect(self, event: str, timeout: float, tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """The next line (a JSON object whose "event" is `event`); `tick` runs every SAMPLE_S meanwhile."""
        assert self.popen.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.popen.stdout], [], [], SAMPLE_S)
            tick()
            if not ready:
                continue
            line = self.popen.stdout.readline()
            if not line:
                raise SetupFailed(f"the load generator exited with {self.popen.wait()} before '{event}' (see logs/loadgen.log)")
            message: dict[str, Any] = json.loads(line)
            if message.get("event") != event:
                raise SetupFailed(f"the load generator said {message.get('event')!r}, expected {event!r}")
            return message
        raise SetupFailed(f"the load generator did not report '{event}' within {timeout:.0f} s")

    def close(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(OSError):
                self.send("close")
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@attrs.define
class CpuSampler:
    """Peak CPU (% of one core) of the server and the load generator over SAMPLE_S windows."""

    deployment: Deployment
    loadgen: LoadGenerator
    last: tuple[float, float, float] = (0.0, 0.0, 0.0)
    server_peak: float = 0.0
    loadgen_peak: float = 0.0

    def start(self) -> None:
        self.last = (time.monotonic(), self.deployment.server_cpu_s(), self.loadgen.cpu_s())

    def __call__(self) -> None:
        now, server, loadgen = time.monotonic(), self.deployment.server_cpu_s(), self.loadgen.cpu_s()
        elapsed = now - self.last[0]
        if elapsed >= SAMPLE_S * 0.9:
            self.server_peak = max(self.server_peak, 100 * (server - self.last[1]) / elapsed)
            self.loadgen_peak = max(self.loadgen_peak, 100 * (loadgen - self.last[2]) / elapsed)
            self.last = (now, server, loadgen)


def measure(row: Row, subscribers: int, options: Options, env: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One configuration: a fresh deployment, S subscribers, M messages. The CSV row and the per-message rows."""
    logs = options.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # The feed's database is scratch, not a result: a temporary folder, removed afterwards.
    with (
        tempfile.TemporaryDirectory(prefix="wasmkernel-realtime-") as scratch,
        row.deploy(options, logs, {**env, "WASMKERNEL_FEED_DATABASE": str(Path(scratch) / "feed.sqlite3")}) as deployment,
        (logs / f"loadgen-{row.name}-{subscribers}.log").open("ab") as log,
    ):
        split = [
            subscribers // len(deployment.subscribe_urls) + (i < subscribers % len(deployment.subscribe_urls)) for i in range(len(deployment.subscribe_urls))
        ]
        config = {
            "subscribers": [[url, count] for url, count in zip(deployment.subscribe_urls, split)],
            "publish": {"url": deployment.publish_url, "headers": deployment.publish_headers, "json_text": deployment.json_text},
            "messages": options.messages,
            "rate": options.rate,
            "drain_seconds": options.drain_s,
            "connect_concurrency": 50,
            "nonce": secrets.token_hex(4),
        }
        time.sleep(0.5)
        rss_before = deployment.server_rss_mb()
        loadgen = LoadGenerator(config, options.loadgen_cpus if deployment.pinned else None, log)
        try:
            connected = loadgen.expect("connected", timeout=CONNECT_BASE_S + subscribers * CONNECT_PER_SUBSCRIBER_S)
            if connected["connect_failures"]:
                raise SetupFailed(f"{connected['connect_failures']} of {subscribers} subscribers could not connect: {connected['connect_errors']}")
            time.sleep(IDLE_SETTLE_S)
            rss_idle = deployment.server_rss_mb()
            per_process = deployment.connections_per_process()
            sampler = CpuSampler(deployment, loadgen)
            cpu_server, cpu_infra, cpu_loadgen, started = deployment.server_cpu_s(), deployment.infra_cpu_s(), loadgen.cpu_s(), time.monotonic()
            sampler.start()
            loadgen.send("go")
            done = loadgen.expect("done", timeout=options.messages / options.rate + options.drain_s + 30, tick=sampler)
            wall = time.monotonic() - started
            cpu_server, cpu_infra, cpu_loadgen = deployment.server_cpu_s() - cpu_server, deployment.infra_cpu_s() - cpu_infra, loadgen.cpu_s() - cpu_loadgen
            infra_rss = deployment.infra_rss_mb()
            alive = all(server.alive() for server in deployment.servers)
        finally:
            loadgen.close()
    messages = done["per_message"]
    last = sorted(m["last_arrival_ms"] for m in messages if m["last_arrival_ms"] is not None)
    published = [m for m in messages if isinstance(m["publish_status"], int) and 200 <= m["publish_status"] < 300]
    result = {
        "server": row.name,
        "subscribers": subscribers,
        "messages": options.messages,
        "rate_per_s": options.rate,
        "deliveries_expected": done["expected"],
        "deliveries": done["received"],
        "lost": done["lost"],
        "duplicates": done["duplicates"],
        "publish_errors": options.messages - len(published),
        "closed_before_run": done["closed_before_run"],
        "closed_during_run": done["closed_during_run"],
        "p50_ms": done["latency_ms"]["p50"],
        "p90_ms": done["latency_ms"]["p90"],
        "p99_ms": done["latency_ms"]["p99"],
        "max_ms": done["latency_ms"]["max"],
        "mean_ms": done["latency_ms"]["mean"],
        "all_arrived_p50_ms": realtime_report.percentile(last, 50),
        "all_arrived_max_ms": last[-1] if last else float("nan"),
        "deliveries_per_s": subscribers / (realtime_report.percentile(last, 50) / 1000) if last else float("nan"),
        "connect_s": connected["connect_ms"] / 1000,
        "rss_before_mb": rss_before,
        "rss_idle_mb": rss_idle,
        "rss_per_connection_kib": (rss_idle - rss_before) * 1024 / subscribers,
        "connections_per_process": "/".join(map(str, per_process)),
        "server_cpu_pct": 100 * cpu_server / wall,
        "server_cpu_peak_pct": sampler.server_peak,
        "infra_cpu_pct": 100 * cpu_infra / wall,
        "infra_rss_mb": infra_rss,
        "loadgen_cpu_pct": 100 * cpu_loadgen / wall,
        "loadgen_cpu_peak_pct": sampler.loadgen_peak,
        "loadgen_loop_delay_p99_ms": done["loadgen"]["event_loop_delay_ms"]["p99"],
        "loadgen_loop_delay_max_ms": done["loadgen"]["event_loop_delay_ms"]["max"],
        "loadgen": done["loadgen"]["what"],
        "server_alive": alive,
        "pinning": f"server cpu {options.server_cpus}, load generator cpu {options.loadgen_cpus}" if deployment.pinned else "none (the row needs both cores)",
        "path": deployment.path,
        "wall_s": wall,
    }
    rows = [{"server": row.name, "subscribers": subscribers, **m} for m in messages]
    return result, rows


# -- the run ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[Options, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.realtime", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", default="1000,5000", help="comma-separated S values (default 1000,5000)")
    parser.add_argument("--messages", type=int, default=30, help="M messages per configuration (default 30)")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second, fixed schedule (default 1)")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for late deliveries after the last publish (default 30)")
    parser.add_argument("--servers", default=",".join(ROWS), help=f"rows to run (default all: {','.join(ROWS)})")
    parser.add_argument("--server-cpus", default="0", help="taskset cpu list of single-process servers (default 0)")
    parser.add_argument("--loadgen-cpus", default="1", help="taskset cpu list of the load generator beside them (default 1)")
    parser.add_argument("--out", default=None, help="output folder (default benchmarks/results/<date>-realtime)")
    parser.add_argument("--smoke", action="store_true", help="CI size: 50 subscribers, 5 messages at 5/s, 10 s drain")
    parser.add_argument("--render", metavar="DIR", default=None, help="only rewrite DIR's chart and REPORT.md from its realtime.csv and run.json")
    args = parser.parse_args(argv)
    if args.render:
        realtime_report.render(Path(args.render))
        raise SystemExit(0)
    if args.smoke:
        args.subscribers, args.messages, args.rate, args.drain = "50", 5, 5.0, 10.0
    subscribers = tuple(int(s) for s in args.subscribers.split(",") if s.strip())
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = sorted(set(servers) - set(ROWS))
    if unknown or not subscribers or min(subscribers) < 1 or args.messages < 1 or args.rate <= 0:
        parser.error(f"unknown rows {unknown} (known: {', '.join(ROWS)})" if unknown else "subscribers, messages and rate must be positive")
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%d')}-realtime"
    return Options(subscribers, args.messages, args.rate, args.drain, args.server_cpus, args.loadgen_cpus, out.resolve()), servers


def main(argv: list[str] | None = None) -> int:
    options, servers = parse_args(argv)
    options.out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.realtime " + " ".join(sys.argv[1:] if argv is None else argv)
    env = {SECRET_ENV: os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)}
    run_setup(NODE_SETUP)  # the load generator and the Node.js peer need ws
    started = {"load_average": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    results: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    for subscribers in options.subscribers:
        for name in servers:
            label = f"{name} S={subscribers}"
            print(f"[realtime] {label} ...", flush=True)
            try:
                result, rows = measure(ROWS[name], subscribers, options, env)
            except SetupFailed as exc:
                failures[label] = str(exc)
                print(f"[realtime] {label}: FAILED: {exc}", flush=True)
                continue
            results.append(result)
            messages.extend(rows)
            print(
                f"[realtime] {label}: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms, "
                f"lost {result['lost']}, {result['rss_per_connection_kib']:.1f} KiB/conn, server CPU {result['server_cpu_pct']:.0f}%, "
                f"load generator CPU {result['loadgen_cpu_pct']:.0f}% (peak {result['loadgen_cpu_peak_pct']:.0f}%)",
                flush=True,
            )
    finished = {"load_average": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    realtime_report.write(options.out, results, messages, failures, command=command, options=attrs.asdict(options), started=started, finished=finished)
    print(f"[realtime] wrote {options.out}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
