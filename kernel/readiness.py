"""A neutral way for plugins to take part in readiness (`/readyz` of the
health plugin): a `ReadinessCheck` says whether what it watches (a database,
Redis, a message broker) is usable right now."""

from __future__ import annotations

from typing import Protocol


class ReadinessCheck(Protocol):
    #: Shown in the readiness answer, e.g. "redis".
    name: str
    #: Whether a problem makes the instance not ready (503); otherwise it is
    #: only reported.
    required: bool

    def problem(self) -> str | None:
        """None while usable; otherwise what is wrong (one line, no secrets).
        Called on every readiness probe: must not block."""
