"""WasmKernel plugin: JSON Schema (draft 2020-12) validation of request bodies, query and path parameters."""
