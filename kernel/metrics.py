"""A neutral way for plugins to expose metrics without depending on a metrics
library: a `MetricSource` yields `Sample`s, the metrics plugin exports them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, Protocol

import attrs


@attrs.frozen
class Sample:
    """One metric value; `kind` follows Prometheus.

    A counter only grows; its family is its name without `_total` (exported
    as `<name>_total`). A gauge goes up and down. A summary is reported by its
    source as `<name>_count` and `<name>_sum` samples (optionally `<name>`
    samples with a `quantile` label). Samples of one family share their kind.
    """

    name: str
    value: float
    kind: Literal["counter", "gauge", "summary"] = "counter"
    labels: Mapping[str, str] = attrs.field(factory=dict)
    help: str = ""


class MetricSource(Protocol):
    def collect(self) -> Iterable[Sample]:
        """Current values; called on every scrape."""
