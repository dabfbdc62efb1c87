"""WasmKernel plugin `limits`: body size limits, timeouts and rate limits."""
