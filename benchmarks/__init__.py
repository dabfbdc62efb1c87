"""The /matmul benchmark: WasmKernel against peer web stacks (``python -m benchmarks``).

Reproduces the study in ``/work/shared/seed``: matrix sizes 100..5000, 30
repetitions per cell, mean/std/95% CI, Welch t-tests and one-way ANOVA, peak
memory per server, log-scale charts and the initialization overhead of the
WebAssembly path. See ``benchmarks/README.md``.
"""
