"""WasmKernel plugin `compression`: gzip and brotli response bodies."""
