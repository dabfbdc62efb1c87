"""`wasi:filesystem`: no preopened directory unless the registry grants one.

Without `dirs`, `get-directories` is empty and no descriptor exists, so
every other function is unreachable (each fails the call if reached).
"""

from __future__ import annotations

from wasmkernel_components.interface import Interface, denied

_WHY = "no directory is granted to this component (`dirs` in its registry entry)"

INTERFACES = {
    "wasi:filesystem/preopens": Interface({}, {"get-directories": lambda store: []}),
    "wasi:filesystem/types": Interface({"descriptor": object, "directory-entry-stream": object}, {}),
}
DENIED = denied("wasi:filesystem/types", _WHY)
