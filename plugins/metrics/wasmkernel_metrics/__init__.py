"""WasmKernel plugin `metrics`: Prometheus metrics at `/metrics`."""
