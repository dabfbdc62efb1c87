"""WasmKernel plugin `router`: compiles every plugin's routes into one table."""
