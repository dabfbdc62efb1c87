"""WasmKernel's WebAssembly module loader backed by Wasmtime."""
