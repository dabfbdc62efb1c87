"""WasmKernel plugin `redis`: one shared Redis client offered to other plugins."""
