"""A neutral way for plugins to expose metrics without depending on a metrics
library: a `MetricSource` yields `Sample`s, the metrics plugin exports them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, Protocol

import attrs


@attrs.frozen
class Sample:
    """One metric value. `kind` follows Prometheus: a counter only grows, a
    gauge goes up and down, a summary is reported as `<name>_count` and
    `<name>_sum` samples by its source."""

    name: str
    value: float
    kind: Literal["counter", "gauge", "summary"] = "counter"
    labels: Mapping[str, str] = attrs.field(factory=dict)
    help: str = ""


class MetricSource(Protocol):
    def collect(self) -> Iterable[Sample]:
        """Current values; called on every scrape."""
