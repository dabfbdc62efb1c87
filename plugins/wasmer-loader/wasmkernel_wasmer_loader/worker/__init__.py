"""What runs in the Wasmer loader's worker processes, on Python 3.10.

wasmer 1.1 has native wheels only for CPython 3.10, so its workers run on a
3.10 interpreter of their own, in an environment that holds wasmer, its
compilers and attrs and nothing else (`requirements.txt`; see
`wasmkernel_wasmer_loader.environment`). The server (Python ≥ 3.11) never
imports wasmer: it starts these processes and talks to them through `wire`.

Modules here keep to Python 3.10 and import only the standard library,
attrs, wasmer and the portable modules of `wasmkernel_wasm`
(`wasmkernel_wasm.portable`), never the kernel, trio or another plugin:

- `wire`: the messages and their framing (imported by both sides);
- `jobs`: compiling, deserializing and calling modules with wasmer;
- `serve`: a worker's main loop (``-c`` bootstrap in `environment.BOOT`).
"""
