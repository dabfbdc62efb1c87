"""The proxy-headers plugin: who may speak for the client, and what the other
plugins (metrics' allow-list, limits' buckets) then see. Behind a real nginx:
tests/reliability/test_proxies.py."""

from __future__ import annotations

import pytest
from wasmkernel_proxy_headers import TrustedProxies, forwarded_client

from wasmkernel import Application, RegistryError, Request, Route, WebSocket, hookimpl
from wasmkernel.testing import app_from, running, websocket_connect

TRUSTED = TrustedProxies.parse(["127.0.0.1", "10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("chain", "client"),
    [
        (["203.0.113.7"], "203.0.113.7"),
        (["203.0.113.7", "10.1.2.3"], "203.0.113.7"),  # a second trusted hop
        (["6.6.6.6", "203.0.113.7", "10.1.2.3"], "203.0.113.7"),  # the client's own prefix is not believed
        (["10.9.9.9", "10.1.2.3"], "10.9.9.9"),  # only proxies: the leftmost
        (["garbage", "203.0.113.7"], "203.0.113.7"),
        (["203.0.113.7", "not-an-address"], None),  # the trusted hop wrote nonsense: nothing learnt
        (["203.0.113.7", "garbage", "10.1.2.3"], "10.1.2.3"),
        ([" [2001:db8::1]:443 "], "2001:db8::1"),
        (["203.0.113.7:5678"], "203.0.113.7"),
        (["::ffff:203.0.113.7"], "203.0.113.7"),
        ([], None),
        ([""], None),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(chain: list[str], client: str | None) -> None:
    assert forwarded_client(chain, TRUSTED) == client


def test_peers() -> None:
    assert TRUSTED.trusts("127.0.0.1") and TRUSTED.trusts("10.200.0.1") and TRUSTED.trusts("::1")
    assert not TRUSTED.trusts("127.0.0.2") and not TRUSTED.trusts("") and not TRUSTED.trusts("unix-socket")


class Who:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def who(request: Request) -> dict[str, object]:
            return {"client": request.client_host, "scheme": request.scheme}

        async def who_ws(ws: WebSocket) -> None:
            await ws.accept()
            await ws.send_json({"client": ws.client_host, "scheme": ws.scheme})

        return [Route("/who", who), Route("/who/ws", who_ws, websocket=True)]


def app(**config: object) -> Application:
    return app_from(
        {
            "proxy-headers": {"config": dict(config)},
            "metrics": {"config": {"allow_networks": ["127.0.0.1/32"]}},
            "limits": {"config": {"rate": 0.001, "burst": 2}},
            "router": {},
            "who": {},
        },
        extra_plugins={"who": Who()},
    )


async def test_a_trusted_proxy_names_the_client_and_the_scheme() -> None:
    async with running(app(), client=("127.0.0.1", 4000)) as http:
        answer = await http.get("/who", headers={"x-forwarded-for": "6.6.6.6, 203.0.113.7", "x-forwarded-proto": "https"})
        assert answer.json() == {"client": "203.0.113.7", "scheme": "https"}
        assert (await http.get("/who", headers={"x-forwarded-proto": "gopher"})).json() == {"client": "127.0.0.1", "scheme": "http"}


async def test_an_untrusted_peer_is_not_believed() -> None:
    async with running(app(), client=("198.51.100.9", 4000)) as http:
        answer = await http.get("/who", headers={"x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "https"})
        assert answer.json() == {"client": "198.51.100.9", "scheme": "http"}
        assert (await http.get("/metrics", headers={"x-forwarded-for": "127.0.0.1"})).status_code == 403


async def test_metrics_and_rate_limits_see_the_client_behind_the_proxy() -> None:
    """The proxy (loopback) may scrape; a client through it may not; each
    client through the proxy has its own rate-limit bucket."""
    async with running(app(), client=("127.0.0.1", 4000)) as http:
        assert (await http.get("/metrics", headers={"x-forwarded-for": "203.0.113.7"})).status_code == 403
        assert (await http.get("/metrics")).status_code == 200
        first = [(await http.get("/who", headers={"x-forwarded-for": "203.0.113.7"})).status_code for _ in range(3)]
        second = [(await http.get("/who", headers={"x-forwarded-for": "203.0.113.8"})).status_code for _ in range(2)]
        assert first == [200, 200, 429] and second == [200, 200]


async def test_websockets_see_the_client_too() -> None:
    """The WebSocket chain (limits' per-client connection counts) sees the
    client a trusted proxy names, and wss for https."""
    application = app()
    async with running(application, client=("127.0.0.1", 4000)):
        headers = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
        async with websocket_connect(application, "/who/ws", headers=headers, client=("127.0.0.1", 4000)) as ws:
            assert await ws.receive_json() == {"client": "203.0.113.7", "scheme": "wss"}
        async with websocket_connect(application, "/who/ws", headers=headers, client=("198.51.100.9", 4000)) as ws:
            assert await ws.receive_json() == {"client": "198.51.100.9", "scheme": "ws"}


async def test_forwarded_proto_can_be_ignored() -> None:
    async with running(app(forwarded_proto=False), client=("127.0.0.1", 4000)) as http:
        assert (await http.get("/who", headers={"x-forwarded-proto": "https"})).json()["scheme"] == "http"


@pytest.mark.parametrize(("proxies", "message"), [([], "at least one proxy"), (["10.0.0.0/8", "nginx"], "'nginx' is not an IP address or network")])
def test_a_selector_that_selects_nothing_is_a_startup_error(proxies: list[str], message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        app(trusted_proxies=proxies)
