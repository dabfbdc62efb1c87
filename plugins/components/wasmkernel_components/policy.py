"""Which interfaces each kind of component is given."""

from __future__ import annotations

from wasmkernel_components.linking import Policy
from wasmkernel_components.wasi import filesystem, http, io, spin, system

_SOCKETS = "sockets are not granted to components; reach other services with outgoing HTTP (`http = { allow = [...] }` in the registry)"
_SPIN = "WasmKernel serves Spin's key-value (fermyon:spin/key-value) and variables only"

_COMMON = {**io.INTERFACES, **system.INTERFACES, **filesystem.INTERFACES}

#: A `wasi:http/proxy` component (and a Spin SDK 3 app).
HTTP = Policy(
    {**_COMMON, **http.INTERFACES, **spin.INTERFACES},
    {"wasi:sockets/": _SOCKETS, "fermyon:spin/": _SPIN, "spin:": _SPIN, "wasi:keyvalue/": _SPIN, "wasi:config/": _SPIN},
)

#: A `wasi:cli/command` component.
CLI = Policy(_COMMON, {"wasi:sockets/": _SOCKETS, "wasi:http/": "outgoing HTTP is granted to kind = 'wasi-http' components only"})
