"""The bookmarks API written twice — WasmKernel with typed models
(`wasmkernel_app.py` + `registry.toml`) and FastAPI (`fastapi_app.py`) — with
the same features: CRUD, JWT scopes, validation, SQLite, SSE updates.
`python -m benchmarks.bookmarks` compares their size and throughput."""
