"""A Lua script run by its SHA1 (EVALSHA), sent in full (EVAL) only when Redis lacks it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import coredis


class Script:
    """`await script(client, keys, args)`: Redis runs a script atomically, one at a time."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._loaded = False

    async def __call__(self, client: coredis.Redis[bytes], keys: Sequence[str], args: Sequence[Any]) -> Any:
        if self._loaded:
            try:
                return await client.evalsha(self.sha, keys, args)
            except coredis.exceptions.NoScriptError:
                pass  # a restarted or flushed server
        answer = await client.eval(self.source, keys, args)
        self._loaded = True
        return answer
