"""WasmKernel plugin `introspect`: the `wasmkernel plugins`, `routes` and `check` commands."""
