"""Outbound HTTP for `http_request`: allow-listed origins only, performed by the host with httpx."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import attrs
import httpx

from wasmkernel_wasm.hostapi import HTTP_FAILED, INVALID, HostDenied, HostFailure
from wasmkernel_wasm.hostapi.grants import HttpGrant

Origin = tuple[str, str, int]
_PORTS = {"http": 80, "https": 443}
#: Headers the host sets itself.
_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of an absolute http(s) URL; `ValueError` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in _PORTS or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url[:200]!r}")
    return parts.scheme, parts.hostname.lower(), parts.port or _PORTS[parts.scheme]


def allowed_origins(grant: HttpGrant) -> frozenset[Origin]:
    """The grant's `allow` list as origins (`ValueError` names a bad entry)."""
    origins = set()
    for entry in grant.allow:
        origin = origin_of(entry)
        if urlsplit(entry).path not in ("", "/"):
            raise ValueError(f"allow entry {entry!r} must be an origin (scheme://host[:port]) without a path")
        origins.add(origin)
    return frozenset(origins)


def show(origin: Origin) -> str:
    return f"{origin[0]}://{origin[1]}:{origin[2]}"


@attrs.frozen
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def fetch(
    client: httpx.Client,
    grant: HttpGrant,
    origins: frozenset[Origin],
    entry: str,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    timeout: float,
) -> Reply:
    """Send the request, following redirects to allowed origins only.
    `HostDenied` if `url` itself is not allowed; `HostFailure` for a refused
    redirect, a network error, a timeout or a response over the size cap."""
    try:
        origin = origin_of(url)
    except ValueError as exc:
        raise HostFailure(INVALID, str(exc)) from None
    if origin not in origins:
        raise HostDenied(f"origin {show(origin)} is not allowed: add it to `http.allow` in its registry entry ({entry})")
    if not method.isalpha() or len(method) > 16:
        raise HostFailure(INVALID, f"bad method {method[:20]!r}")
    sent = [(name, value) for name, value in headers if name.lower() not in _RESERVED]
    for _ in range(grant.max_redirects + 1):
        reply = _once(client, grant, method.upper(), url, sent, body, timeout)
        location = dict(reply.headers).get("location")
        if reply.status not in (301, 302, 303, 307, 308) or location is None:
            return reply
        url = str(httpx.URL(url).join(location))
        try:
            target = origin_of(url)
        except ValueError as exc:
            raise HostFailure(HTTP_FAILED, f"redirect refused: {exc}") from None
        if target not in origins:
            raise HostFailure(HTTP_FAILED, f"redirect to {show(target)} refused: that origin is not allowed")
        if reply.status == 303 or (reply.status in (301, 302) and method.upper() == "POST"):
            method, body = "GET", b""
    raise HostFailure(HTTP_FAILED, f"more than {grant.max_redirects} redirects")


def _once(client: httpx.Client, grant: HttpGrant, method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeout: float) -> Reply:
    try:
        with client.stream(method, url, headers=headers, content=body or None, timeout=timeout, follow_redirects=False) as response:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > grant.max_response_bytes:
                    raise HostFailure(HTTP_FAILED, f"response exceeds max_response_bytes = {grant.max_response_bytes}")
            kept = tuple((name.lower(), value) for name, value in response.headers.items() if name.lower() not in ("content-encoding", "content-length"))
            return Reply(response.status_code, kept, bytes(data))
    except httpx.TimeoutException:
        raise HostFailure(HTTP_FAILED, f"timed out after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise HostFailure(HTTP_FAILED, f"request failed: {type(exc).__name__}") from None
