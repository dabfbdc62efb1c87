"""Kept for tests written before the kit was a pytest plugin: the Redis
server is `wasmkernel.testing.RedisServer`, the fixture `redis_server`."""

from __future__ import annotations

from wasmkernel.testing.redis import RedisServer, redis_binary

__all__ = ["RedisServer", "redis_binary"]
