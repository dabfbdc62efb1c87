"""Exporting the kernel's neutral `MetricSource`s as Prometheus metric families.

Conventions (see `wasmkernel.metrics.Sample`):

- ``counter``: the family is the sample name without a trailing ``_total``;
  the exported sample is always ``<family>_total``.
- ``gauge``: exported as is.
- ``summary``: the source yields ``<family>_count`` and ``<family>_sum``
  samples (and, optionally, samples named ``<family>`` with a ``quantile``
  label); they are grouped into one summary family.

Samples of one family share its kind; the first non-empty ``help`` wins. A
sample that cannot be exported (invalid name or label, a kind that conflicts
with an earlier sample of the same family, a family name the plugin's own
metrics use) is dropped and logged once per family; a source that raises is
skipped for that scrape and logged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence

import structlog
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from wasmkernel import MetricSource, Sample

log = structlog.get_logger("wasmkernel.metrics")

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

#: The sample names a family of each Prometheus type produces.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}


def produced_names(families: Iterable[Metric]) -> frozenset[str]:
    """Every family and sample name `families` can expose (to detect clashes)."""
    return frozenset(name for family in families for name in (family.name, *(family.name + s for s in _SUFFIXES.get(family.type, ()))))


def _family_of(sample: Sample) -> tuple[str, str]:
    """(family name, exported sample name) for `sample`."""
    if sample.kind == "counter":
        family = sample.name.removesuffix("_total")
        return family, family + "_total"
    if sample.kind == "summary":
        for suffix in ("_count", "_sum"):
            if sample.name.endswith(suffix):
                return sample.name.removesuffix(suffix), sample.name
    return sample.name, sample.name


class SourceCollector(Collector):
    """A prometheus-client collector over the application's metric sources.

    `sources` is read on every scrape (the kernel collects the sources after
    the plugin is configured); `reserved` are names other collectors of the
    same registry already expose.
    """

    def __init__(self, sources: Callable[[], Sequence[MetricSource]], reserved: frozenset[str]) -> None:
        self._sources = sources
        self._reserved = reserved
        self._reported: set[str] = set()

    def describe(self) -> list[Metric]:
        # Names are only known at scrape time: registering must not collect.
        return []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for source in self._sources():
            try:
                samples = list(source.collect())
            except Exception:
                log.exception("metrics.source_failed", source=type(source).__qualname__)
                continue
            for sample in samples:
                self._add(families, sample)
        yield from families.values()

    def _add(self, families: dict[str, Metric], sample: Sample) -> None:
        family_name, sample_name = _family_of(sample)
        problem = self._problem(families.get(family_name), family_name, sample_name, sample)
        if problem is not None:
            if family_name not in self._reported:
                self._reported.add(family_name)
                log.warning("metrics.sample_dropped", metric=sample.name, reason=problem)
            return
        family = families.get(family_name)
        if family is None:
            family = families[family_name] = Metric(family_name, sample.help, sample.kind)
        elif not family.documentation and sample.help:
            family.documentation = sample.help
        family.add_sample(sample_name, {str(k): str(v) for k, v in sample.labels.items()}, float(sample.value))

    def _problem(self, family: Metric | None, family_name: str, sample_name: str, sample: Sample) -> str | None:
        if sample.kind not in ("counter", "gauge", "summary"):
            return f"unknown kind {sample.kind!r}"
        if sample.kind == "summary" and sample_name == family_name and "quantile" not in sample.labels:
            return "a summary sample must end in _count or _sum, or carry a quantile label"
        if not _METRIC_NAME.match(family_name):
            return "invalid metric name"
        if family_name in self._reserved or sample_name in self._reserved:
            return "name already used by the metrics plugin"
        bad_labels = [name for name in sample.labels if not _LABEL_NAME.match(name) or name.startswith("__")]
        if bad_labels:
            return f"invalid label name(s): {', '.join(map(str, bad_labels))}"
        if family is not None and family.type != sample.kind:
            return f"kind {sample.kind!r} conflicts with an earlier {family.type!r} sample"
        return None
