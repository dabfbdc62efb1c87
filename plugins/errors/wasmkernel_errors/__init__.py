"""WasmKernel plugin `errors`: RFC 9457 ``application/problem+json`` error responses."""
