"""The WASI 0.2 interfaces the component host implements in Python.

Each module declares `INTERFACES`: interface name (without version) ->
`Interface` (its resources and functions). A function takes the store
context and wasmtime-py's argument values and answers in the explicit shape
of `wasmkernel_components.values`; the linker lowers it to the imported
function's exact type.
"""
