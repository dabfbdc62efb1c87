"""WasmKernel plugin: JWT bearer authentication (PyJWT) and a token-minting command."""
