"""wasmkernel-server: ``wasmkernel run``, serving under hypercorn's trio worker
(built into the kernel's distribution). See `wasmkernel_server.plugin`."""
