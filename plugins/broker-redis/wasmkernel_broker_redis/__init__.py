"""WasmKernel plugin `broker-redis`: the channels' broker over Redis pub/sub.

Public API: `RedisBroker` (a `wasmkernel_channels.Broker`). It loads coredis,
so it is imported on first use (PEP 562): a registry without a Redis url
never imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmkernel_broker_redis.broker import RedisBroker

__all__ = ["RedisBroker"]


def __getattr__(name: str) -> Any:
    if name != "RedisBroker":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from wasmkernel_broker_redis.broker import RedisBroker

    return RedisBroker
