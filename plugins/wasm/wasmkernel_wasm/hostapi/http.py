"""The outbound-HTTP capability (`http_request`): the grant's origins, checked at assembly.

A module's ``http = { allow = [...], ... }`` is checked at assembly (an
entry that is not an origin stops startup naming the module's registry
entry); the exchange runs in the event loop (`http_client`, loaded only
when a module is granted `http`: a registry without one never imports httpx).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from wasmkernel import StartupError
from wasmkernel_wasm.hostapi.capability import Binding, Context, Granted, Operation
from wasmkernel_wasm.hostapi.grants import HttpGrant


@attrs.frozen
class OutboundHttp:
    """The `http` capability."""

    key: str = "http"
    operations: Mapping[str, Operation] = attrs.field(factory=lambda: {"http": Operation(1, "http_request")})

    def bind(self, granted: Sequence[Granted], context: Context) -> Binding | None:
        if not granted:
            return None
        from wasmkernel_wasm.hostapi.http_client import HttpClient
        from wasmkernel_wasm.hostapi.outbound import allowed_origins

        checked = {}
        for entry in granted:
            assert isinstance(entry.grant, HttpGrant)
            try:
                checked[entry.module] = (entry, entry.grant, allowed_origins(entry.grant))
            except ValueError as exc:
                raise StartupError(f"wasm module '{entry.module}': http.allow: {exc} ({entry.entry})") from None
        return HttpClient(checked)
