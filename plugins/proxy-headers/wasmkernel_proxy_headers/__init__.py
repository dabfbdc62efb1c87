"""WasmKernel plugin `proxy-headers`: behind reverse proxies, the client's
address (and scheme) as the trusted proxies report them.

Public API: `TrustedProxies` (which peers may speak for the client) and
`forwarded_client` (the client an ``X-Forwarded-For`` chain names)."""

from wasmkernel_proxy_headers.forwarded import TrustedProxies, forwarded_client

__all__ = ["TrustedProxies", "forwarded_client"]
