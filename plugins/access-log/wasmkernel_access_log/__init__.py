"""WasmKernel plugin `access-log`: one structured log line per request."""
