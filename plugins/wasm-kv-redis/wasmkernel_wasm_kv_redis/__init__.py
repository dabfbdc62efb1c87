"""WasmKernel plugin `wasm-kv-redis`: the WebAssembly host's key-value backend "redis".

Public API: `RedisBackend` (an asynchronous key-value store) and
`RedisStores` (its `wasmkernel_wasm.hostapi.KvBackendType`)."""

from wasmkernel_wasm_kv_redis.store import RedisBackend, RedisStores

__all__ = ["RedisBackend", "RedisStores"]
