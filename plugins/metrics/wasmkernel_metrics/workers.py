"""Metrics of several worker processes as one (prometheus-client's
multiprocess mode).

With ``wasmkernel run --workers N`` each worker is its own process with its
own counters, and a scrape reaches one of them: a counter read 11, 9, 11 …
and Prometheus saw resets. The server gives its workers one fresh directory
per run in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's own switch, read
when it is imported): every worker's metrics then live in memory-mapped files
there, and a scrape, whichever worker answers it, reads them all
(`prometheus_client.multiprocess.MultiProcessCollector`):

- request metrics: counters and histograms are summed over the workers (a
  worker that ended keeps counting), gauges (in progress, WebSocket
  connections) are summed over the live ones;
- the plugins' metric sources (`wasmkernel.MetricSource`) live in each
  worker's memory: `SourceMirror` writes this worker's samples there every
  `MIRROR_INTERVAL` seconds and before each scrape it answers (counters and
  summaries summed, gauges summed over the live workers);
- process, platform and garbage-collector metrics are per process and are
  left out (each scrape would show another process's).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Final, Literal

from prometheus_client import CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

#: prometheus-client's switch (set by the server for its workers).
DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds between two writes of a worker's metric sources.
MIRROR_INTERVAL = 1.0
#: How a gauge of several processes is aggregated: the sum of the live ones.
GAUGES: Final[Literal["livesum"]] = "livesum"


def shared() -> bool:
    """Whether this process is one of several sharing their metrics."""
    return bool(os.environ.get(DIRECTORY_ENV))


def all_workers() -> CollectorRegistry:
    """A registry holding every worker's metrics, read now."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def worker_ended() -> None:
    """Forget this worker's live gauges (its counters keep counting)."""
    mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class SourceMirror:
    """Writes this worker's metric-source families (as `SourceCollector`
    yields them: valid, grouped) where every worker's scrape reads them."""

    def __init__(self) -> None:
        # The class prometheus-client's own metrics use in this process (one
        # writer per file: a second `MultiProcessValue()` would open the
        # same files again and the two would overwrite each other's entries).
        self._value_class: Any = values.ValueClass
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, Any]] = {}

    def write(self, families: Iterable[Metric]) -> None:
        seen = set()
        for family in families:
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                seen.add(key)
                self._value(family, key).set(sample.value)
        for key, (kind, value) in self._values.items():
            if kind == "gauge" and key not in seen:
                value.set(0.0)  # a gauge series that is gone reads 0, not its last value

    def _value(self, family: Metric, key: tuple[str, tuple[tuple[str, str], ...]]) -> Any:
        found = self._values.get(key)
        if found is None:
            name, labels = key
            names, values = [label for label, _ in labels], [value for _, value in labels]
            mode = GAUGES if family.type == "gauge" else ""
            value = self._value_class(family.type, family.name, name, names, values, family.documentation, multiprocess_mode=mode)
            found = self._values[key] = (family.type, value)
        return found[1]
