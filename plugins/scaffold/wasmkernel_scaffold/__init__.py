"""WasmKernel plugin `scaffold`: the `wasmkernel new-plugin` command."""
