"""The wasm-kv-redis plugin: contributes the key-value backend "redis" to the WebAssembly host.

A module granted ``kv = { backend = "redis", ... }`` keeps its namespace in
the Redis the redis plugin connects to (its `url`, WASMKERNEL_REDIS_URL),
shared by every worker and every server instance. It lives apart from both
plugins because it needs both: the redis plugin serves plugins that know
nothing of WebAssembly (limits, broker-redis), and the WebAssembly host
must not depend on Redis. The host finds it through its
`wasmkernel_kv_backends` hook; each module host (a loader, components)
asks for the redis plugin's `REDIS_LINK` service when it binds its modules'
grants, so Redis starts before it and stops after it.

Config: none (unknown keys are refused). Requires the wasm and redis
plugins (enabling this one brings them in when installed).
"""

from __future__ import annotations

from wasmkernel_wasm.hostapi import KvBackendType

from wasmkernel import Application, ConfiguredPlugin, NoConfig, hookimpl
from wasmkernel_wasm_kv_redis.store import REDIS_STORES


class Plugin(ConfiguredPlugin[NoConfig]):
    config_class = NoConfig
    requires = ("wasm", "redis")

    @hookimpl(optionalhook=True)
    def wasmkernel_kv_backends(self, app: Application) -> list[KvBackendType]:
        return [REDIS_STORES]
