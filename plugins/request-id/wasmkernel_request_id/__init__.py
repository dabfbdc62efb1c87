"""WasmKernel plugin `request-id`: one id per request, from the client or generated, echoed and logged."""
