"""A neutral way for plugins to expose metrics without depending on a metrics
library: a `MetricSource` yields `Sample`s, the metrics plugin exports them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, Protocol

import attrs


@attrs.frozen
class Sample:
    """One metric value, of a Prometheus `kind`: a counter only grows (family:
    its name without `_total`); a gauge goes up and down; a summary comes as
    `<name>_count` and `<name>_sum` samples (and optionally `<name>` ones with
    a `quantile` label). Samples of one family share their kind."""

    name: str
    value: float
    kind: Literal["counter", "gauge", "summary"] = "counter"
    labels: Mapping[str, str] = attrs.field(factory=dict)
    help: str = ""


class MetricSource(Protocol):
    def collect(self) -> Iterable[Sample]:
        """Current values; called on every scrape."""
