"""WasmKernel plugin `broker-redis`: the channels' broker over Redis pub/sub.

Public API: `RedisBroker` (a `wasmkernel_channels.Broker`)."""

from wasmkernel_broker_redis.broker import RedisBroker

__all__ = ["RedisBroker"]
