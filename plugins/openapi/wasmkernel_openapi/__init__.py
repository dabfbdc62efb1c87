"""WasmKernel plugin `openapi`: OpenAPI 3.1 document and offline interactive docs."""
