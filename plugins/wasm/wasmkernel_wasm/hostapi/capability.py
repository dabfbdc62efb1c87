"""Host capabilities as units: what a plugin contributes through `wasmkernel_host_capabilities`.

A `Capability` names the key of a module's registry entry that grants it
(`log`, `vars`, `kv`, `http`), the operations its host functions ask the
main process for (none for `log` and `vars`: the guest's side, `abi`, runs
them from the call's `Grants`), and binds itself to the modules granted it
(`bind`, at assembly: checks each grant, a bad one stopping startup with the
registry key). The host API's functions and wire format are fixed (ABI v1):
a capability contributes the main process's side of host functions the ABI
has. `HostCapabilities` is the table the wasm plugin builds once from every
plugin's contributions; a grant no contributed capability serves stops
startup (deny by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import attrs
import trio

from wasmkernel import StartupError
from wasmkernel_wasm.hostapi.grants import CAPABILITIES

if TYPE_CHECKING:
    from wasmkernel import Application

#: How a module's operations run: "inline" (quick, from any thread), "thread"
#: (blocking: off the event loop), "loop" (awaited in the event loop).
Mode = Literal["inline", "thread", "loop"]


@attrs.frozen
class Operation:
    """One operation a capability serves: how many buffers it takes and the
    host function a denial names (``kv_get``)."""

    buffers: int
    function: str


@attrs.frozen
class Granted:
    """One module's grant of a capability: the module, its registry entry
    (``plugins.wasm.config.modules[3]``) and the parsed grant (`KvGrant`, ...)."""

    module: str
    entry: str
    grant: object

    def key(self, capability: str, *more: str) -> str:
        """The registry key of this grant (``plugins.wasm.config.modules[3].kv.path``)."""
        return ".".join((self.entry, capability, *more))


@attrs.frozen
class Context:
    """What a capability may use when it binds: the application (its
    services: ask them with `needed_by`), the registry's directory and the
    host's threads for blocking operations."""

    app: Application
    needed_by: str
    base: Path
    threads: trio.CapacityLimiter


class Binding(Protocol):
    """A capability bound to the modules granted it (see `Capability.bind`)."""

    def mode(self, module: str) -> Mode | None:
        """How `module`'s operations run; None when it may not use them (not granted, or not started)."""

    def run(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
        """Run an "inline" or "thread" operation; `HostFailure` for a clean failure."""

    async def arun(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
        """Run a "loop" operation in the event loop; `HostFailure` for a clean failure."""

    def start(self) -> None:
        """Open what the operations need, in the event loop (`StartupError` stops startup)."""

    async def stop(self) -> None:
        """Close it; never raises."""


class Capability(Protocol):
    """One host capability (see the module docstring)."""

    @property
    def key(self) -> str:
        """The module entry's key that grants it, one of `grants.CAPABILITIES`."""

    @property
    def operations(self) -> Mapping[str, Operation]:
        """The operations its host functions ask the main process for, by name."""

    def bind(self, granted: Sequence[Granted], context: Context) -> Binding | None:
        """At assembly, for the modules granted this capability: check each
        grant (`StartupError` naming `Granted.key`) and take what the
        operations need from other plugins; None if nothing is served."""


@attrs.frozen
class GuestSide:
    """A capability the guest's side serves from the call's `Grants` alone (`log`, `vars`)."""

    key: str
    operations: Mapping[str, Operation] = attrs.field(factory=dict)

    def bind(self, granted: Sequence[Granted], context: Context) -> Binding | None:
        return None


@attrs.frozen
class HostCapabilities:
    """Every contributed capability by key, with the plugin that contributed it."""

    by_key: Mapping[str, tuple[str, Capability]]

    @classmethod
    def collect(cls, contributed: Iterable[tuple[str, Capability]]) -> HostCapabilities:
        """The table of (plugin, capability) pairs; two plugins contributing
        one key, an unknown key or one operation twice stop startup."""
        by_key: dict[str, tuple[str, Capability]] = {}
        operations: dict[str, str] = {}
        for plugin, capability in contributed:
            if capability.key not in CAPABILITIES:
                raise StartupError(f"plugin '{plugin}' contributes host capability {capability.key!r}, which the host API has no functions for")
            if capability.key in by_key:
                raise StartupError(f"plugins '{by_key[capability.key][0]}' and '{plugin}' both contribute host capability {capability.key!r}: enable one")
            for op in capability.operations:
                if op in operations:
                    raise StartupError(f"host capabilities {operations[op]!r} and {capability.key!r} both serve operation {op!r}")
                operations[op] = capability.key
            by_key[capability.key] = (plugin, capability)
        return cls(by_key)

    def capability(self, granted: Granted, key: str) -> Capability:
        """The capability `key` that `granted`'s module is granted; a
        `StartupError` naming the registry key when no plugin contributes it."""
        found = self.by_key.get(key)
        if found is None:
            what, _ = CAPABILITIES[key]
            enabled = ", ".join(sorted(self.by_key)) or "none"
            raise StartupError(f"{granted.key(key)}: no enabled plugin contributes the {what} capability ({key!r}; contributed: {enabled})")
        return found[1]
