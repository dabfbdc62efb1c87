"""Per-module and per-function call metrics."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

import attrs

from wasmkernel import Sample


@attrs.define
class CallMetrics:
    """Calls, errors by kind and time spent, per module and function."""

    calls: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    errors: Counter[tuple[str, str, str]] = attrs.field(factory=Counter)
    seconds: defaultdict[tuple[str, str], float] = attrs.field(factory=lambda: defaultdict(float))

    def record(self, module: str, function: str, seconds: float, error: str | None = None) -> None:
        self.calls[module, function] += 1
        self.seconds[module, function] += seconds
        if error is not None:
            self.errors[module, function, error] += 1

    def collect(self) -> Iterable[Sample]:
        for (module, function), count in self.calls.items():
            labels = {"module": module, "function": function}
            yield Sample("wasm_calls_total", count, "counter", labels, "WebAssembly calls")
            yield Sample("wasm_call_seconds_count", count, "summary", labels, "WebAssembly call duration")
            yield Sample("wasm_call_seconds_sum", self.seconds[module, function], "summary", labels, "WebAssembly call duration")
        for (module, function, kind), count in self.errors.items():
            yield Sample("wasm_errors_total", count, "counter", {"module": module, "function": function, "kind": kind}, "Failed WebAssembly calls")
