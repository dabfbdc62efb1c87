"""WasmKernel matmul plugin: matrix multiplication served from a WebAssembly module."""
