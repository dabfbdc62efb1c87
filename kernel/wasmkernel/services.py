"""Services between plugins: one plugin offers an object under a typed key
(``BROKER: ServiceKey[Broker] = ServiceKey("message broker", hint="enable
broker-redis")``, returned by its `wasmkernel_services`), others ask for it
(``app.services.get(BROKER, needed_by="feed")``); no field on `Application`
per kind of service.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import attrs

from wasmkernel.errors import StartupError

T = TypeVar("T")


@attrs.frozen(eq=False)
class ServiceKey(Generic[T]):
    """Names one kind of service; compared by identity. `hint` tells a user
    what to enable when nobody offers it."""

    name: str
    hint: str = ""


@attrs.define
class Services:
    """The services of one application. Consumers that `get` a service are
    recorded: the kernel starts a provider before its consumers."""

    _offered: dict[ServiceKey[Any], tuple[str, Any]] = attrs.field(factory=dict)
    #: (provider, consumer) plugin names.
    dependencies: set[tuple[str, str]] = attrs.field(factory=set)

    def offer(self, key: ServiceKey[T], service: T, provider: str) -> None:
        if key in self._offered:
            raise StartupError(f"plugins '{self._offered[key][0]}' and '{provider}' both offer a {key.name}: enable only one")
        self._offered[key] = (provider, service)

    def get(self, key: ServiceKey[T], needed_by: str) -> T:
        """The service, or a `StartupError` saying who needs it and what to enable."""
        if key not in self._offered:
            raise StartupError(f"plugin '{needed_by}' needs a {key.name}" + (f": {key.hint}" if key.hint else ""))
        provider, service = self._offered[key]
        if provider != needed_by:
            self.dependencies.add((provider, needed_by))
        return service  # type: ignore[no-any-return]

    def find(self, key: ServiceKey[T]) -> T | None:
        """The service, or None when nobody offers it (for optional uses)."""
        offered = self._offered.get(key)
        return offered[1] if offered else None
