"""WasmKernel plugin `logging`: structlog for the kernel, plugins, the standard library and hypercorn."""
