"""Behind the documented nginx (deploy/nginx.conf.template, a real nginx on
loopback): h2c upgrade smuggling (issue 22, class 6) and the client's
address (class 7).

- The template forwards only WebSocket upgrades: an ``Upgrade: h2c`` reaches
  the server as a plain HTTP/1.1 request, so no HTTP/2 tunnel can carry
  requests past nginx's rules (its ``/metrics`` deny). The server, run with
  ``--behind-proxy``, refuses h2c upgrades by itself too.
- With the proxy-headers plugin trusting nginx, the server sees each client
  behind it: separate rate-limit buckets, the metrics allow-list applied to
  the client; a peer that is not a trusted proxy cannot choose its address.
  Clients bind distinct loopback addresses (127.0.0.5, 127.0.0.6) so that
  nginx (connecting from 127.0.0.1) and they differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability import raw_clients as raw
from tests.reliability.harness import Instance, Nginx, full_plugins, installed, nginx_binary, registry_toml, spawn, spawn_nginx

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (apt-get install -y nginx; `make test` does it)"),
    pytest.mark.skipif(not installed("proxy-headers", "metrics", "limits", "channels", "feed"), reason="needs proxy-headers, metrics, limits and feed"),
]

BURST = 3


def registry(workdir: Path) -> str:
    plugins = full_plugins(workdir, with_wasm=False, limits={"rate": 0.01, "burst": BURST})
    return registry_toml(
        {
            "proxy-headers": {"trusted_proxies": ["127.0.0.1"]},
            **plugins,
            "metrics": {"allow_networks": ["127.0.0.1/32"]},
            "channels": {},
            "feed": {"database": str(workdir / "feed.db")},
        }
    )


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Nginx]]:
    """A server (without --behind-proxy: the template alone must hold) behind nginx."""
    workdir = tmp_path_factory.mktemp("proxied")
    instance = spawn(registry(workdir / "server"), workdir / "server")
    proxy = spawn_nginx([f"127.0.0.1:{instance.port}"], workdir / "nginx")
    yield instance, proxy
    proxy.stop()
    instance.stop()


def h2c_upgrade(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n".encode()


def smuggle(port: int) -> tuple[int, int | None]:
    """Ask `port` for an h2c upgrade; if it switches, ask /metrics inside the
    tunnel. (status of the upgrade request, status of the smuggled request)."""
    with raw.connect(port) as sock:
        sock.sendall(h2c_upgrade("/healthz"))
        head, _ = raw.read_head(sock)
        status = raw.status_of(head)
        if status != 101:
            return status, None
        request = raw.h2_frame(raw.HEADERS, raw.END_STREAM | raw.END_HEADERS, 3, raw.header_block("GET", "/metrics"))
        sock.sendall(raw.PREFACE + raw.h2_frame(raw.SETTINGS, 0, 0) + request)
        answer = raw.read_until_closed(sock, limit=1 << 16, may_stay_open=True)
        return status, 200 if b"wasmkernel_requests_total" in answer else 0


def test_the_template_forwards_only_websocket_upgrades(behind_nginx: tuple[Instance, Nginx]) -> None:
    proxy = behind_nginx[1]
    assert smuggle(proxy.port) == (200, None)  # answered over HTTP/1.1 by the server, through nginx
    assert httpx.get(proxy.base + "/metrics").status_code == 403  # nginx's rule holds
    with raw.connect(proxy.port) as sock:  # a WebSocket still upgrades
        sock.sendall(raw.websocket_handshake("/feed/ws"))
        assert raw.status_of(raw.read_head(sock)[0]) == 101
    for path in ("/metrics", "//metrics", "/./metrics", "/%6Detrics", "/metrics?x=1", "/metrics/", "/x/../metrics"):
        answer = httpx.get(proxy.base + path)
        assert answer.status_code != 200 and "wasmkernel_requests_total" not in answer.text, path


def test_the_server_behind_a_proxy_refuses_h2c_upgrades(tmp_path: Path) -> None:
    """Without the option, hypercorn's default: the upgrade is taken (and a
    proxy forwarding it would be bypassed); with it, HTTP/1.1."""
    for args, expected in (((), 101), (("--behind-proxy",), 200)):
        instance = spawn(registry(tmp_path / str(expected)), tmp_path / str(expected), workers=0, args=args)
        try:
            assert smuggle(instance.port)[0] == expected
        finally:
            instance.stop()


def client(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_each_client_behind_nginx_has_its_own_rate_limit(behind_nginx: tuple[Instance, Nginx]) -> None:
    instance, proxy = behind_nginx
    with client("127.0.0.5") as first, client("127.0.0.6") as second:
        assert [first.get(proxy.base + "/hello").status_code for _ in range(BURST + 1)] == [200] * BURST + [429]
        assert [second.get(proxy.base + "/hello").status_code for _ in range(BURST)] == [200] * BURST
    clients = {record.get("client") for record in instance.log_lines() if record.get("event") == "request" and record.get("path") == "/hello"}
    assert {"127.0.0.5", "127.0.0.6"} <= {str(c).split(":")[0] for c in clients if c}, clients


def test_only_trusted_proxies_choose_the_client_address(behind_nginx: tuple[Instance, Nginx]) -> None:
    """The metrics allow-list (127.0.0.1/32) sees the client: 127.0.0.5 may
    not scrape, even claiming to be 127.0.0.1; nginx's own address may."""
    instance, _ = behind_nginx
    with client("127.0.0.5") as outsider:
        assert outsider.get(instance.base + "/metrics", headers={"x-forwarded-for": "127.0.0.1"}).status_code == 403
    with client("127.0.0.1") as proxy_host:
        assert proxy_host.get(instance.base + "/metrics").status_code == 200
        assert proxy_host.get(instance.base + "/metrics", headers={"x-forwarded-for": "127.0.0.5"}).status_code == 403
