"""Retry delays for the plugins that reconnect to Redis."""

from __future__ import annotations

import attrs
import trio

from wasmkernel import ConfigError


@attrs.define
class Backoff:
    """Exponential delays between retries: `first` seconds, doubling up to
    `most`; `reset()` after a success."""

    first: float = 0.1
    most: float = 5.0
    _delay: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._delay = self.first

    @classmethod
    def configured(cls, min_backoff: float, max_backoff: float) -> Backoff:
        """From a plugin's ``min_backoff``/``max_backoff`` config keys (`ConfigError` if reversed)."""
        if min_backoff > max_backoff:
            raise ConfigError("min_backoff", f"must not exceed max_backoff ({max_backoff:g})")
        return cls(min_backoff, max_backoff)

    def reset(self) -> None:
        self._delay = self.first

    async def wait(self) -> None:
        """Sleep the current delay, then double it (up to `most`)."""
        await trio.sleep(self._delay)
        self._delay = min(self.most, self._delay * 2)
