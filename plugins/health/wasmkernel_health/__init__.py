"""WasmKernel plugin `health`: liveness and readiness endpoints."""
