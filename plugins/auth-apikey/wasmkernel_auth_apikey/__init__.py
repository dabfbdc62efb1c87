"""WasmKernel plugin: API-key authentication (SHA-256 digests, constant-time comparison)."""
