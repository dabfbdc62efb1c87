"""WasmKernel plugin `wasm-kv-redis`: the WebAssembly host's key-value backend "redis".

Public API: `RedisBackend` (an asynchronous key-value store) and
`REDIS_STORES` (its `wasmkernel_wasm.hostapi.KvBackendType`)."""

from wasmkernel_wasm_kv_redis.store import REDIS_STORES, RedisBackend

__all__ = ["REDIS_STORES", "RedisBackend"]
