"""WasmKernel plugin: enforces routes' authentication and authorization requirements."""
