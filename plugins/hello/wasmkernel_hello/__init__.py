"""WasmKernel hello plugin."""
