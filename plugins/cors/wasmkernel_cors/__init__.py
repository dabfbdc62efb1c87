"""WasmKernel plugin `cors`: Cross-Origin Resource Sharing."""
