from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from wasmkernel import Application, BadRequest, ConfigError, RegistryError, Request, Route, Sample, hookimpl
from wasmkernel.testing import app_from, running


class Source:
    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def collect(self) -> Iterable[Sample]:
        return self.samples


class BrokenSource:
    def collect(self) -> Iterable[Sample]:
        raise RuntimeError("source is broken")


class Routes:
    """Test routes, plus metric sources."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def ok(request: Request) -> dict[str, bool]:
            return {"ok": True}

        async def bad(request: Request) -> None:
            raise BadRequest("nope")

        async def boom(request: Request) -> None:
            raise RuntimeError("kaboom")

        async def item(request: Request) -> dict[str, int]:
            return {"id": request.path_params["id"]}

        return [
            Route("/ok", ok, name="ok"),
            Route("/bad", bad, name="bad"),
            Route("/boom", boom, name="boom"),
            Route("/items/{id:int}", item, name="item", methods=("GET", "DELETE")),
        ]

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> tuple[Any, ...]:
        return self.sources


def make_app(config: dict[str, Any] | None = None, *sources: Any) -> Application:
    return app_from({"metrics": {"config": config or {}}, "router": {}, "t": {}}, extra_plugins={"t": Routes(*sources)})


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) → value."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_requests_are_counted_by_route_name_and_status() -> None:
    app = make_app()
    async with running(app) as client:
        for _ in range(3):
            assert (await client.get("/ok")).status_code == 200
        assert (await client.get("/items/7")).status_code == 200
        assert (await client.delete("/items/8")).status_code == 200
        assert (await client.get("/bad")).status_code == 400
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/no/such/path")).status_code == 404
        assert (await client.get("/no/such/other/path")).status_code == 404
        assert (await client.post("/ok")).status_code == 405
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = parse(response.text)
    assert value(samples, "wasmkernel_requests_total", method="GET", route="ok", status="200") == 3
    assert value(samples, "wasmkernel_requests_total", method="GET", route="item", status="200") == 1
    assert value(samples, "wasmkernel_requests_total", method="DELETE", route="item", status="200") == 1
    assert value(samples, "wasmkernel_requests_total", method="GET", route="bad", status="400") == 1
    assert value(samples, "wasmkernel_requests_total", method="GET", route="boom", status="500") == 1
    assert value(samples, "wasmkernel_requests_total", method="GET", route="<unmatched>", status="404") == 2
    assert value(samples, "wasmkernel_requests_total", method="POST", route="<unmatched>", status="405") == 1
    assert value(samples, "wasmkernel_request_duration_seconds_count", method="GET", route="ok") == 3
    assert value(samples, "wasmkernel_request_duration_seconds_bucket", method="GET", route="ok", le="10.0") == 3
    assert value(samples, "wasmkernel_request_duration_seconds_bucket", method="GET", route="ok", le="0.0005") is not None
    # The scrape itself is in progress while it renders.
    assert value(samples, "wasmkernel_requests_in_progress", method="GET", route="metrics") == 1
    assert value(samples, "wasmkernel_requests_in_progress", method="GET", route="ok") == 0
    assert not any("/no/such" in label for (_, labels) in samples for (_, label) in labels)
    assert any(name.startswith("process_") for name, _ in samples)
    assert any(name.startswith("python_info") for name, _ in samples)


async def test_unknown_methods_are_recorded_as_other() -> None:
    app = make_app()
    async with running(app) as client:
        assert (await client.request("BREW", "/ok")).status_code == 405
        samples = parse((await client.get("/metrics")).text)
    assert value(samples, "wasmkernel_requests_total", method="OTHER", route="<unmatched>", status="405") == 1


async def test_metric_sources_are_exported() -> None:
    source = Source(
        [
            Sample("cache_hits_total", 5, "counter", {"cache": "modules"}, help="Cache hits."),
            Sample("cache_hits", 2, "counter", {"cache": "schemas"}),
            Sample("queue_depth", 3, "gauge", help="Queued jobs."),
            Sample("job_seconds_count", 4, "summary", {"queue": "a"}, help="Job time."),
            Sample("job_seconds_sum", 1.5, "summary", {"queue": "a"}),
        ]
    )
    app = make_app({}, source, BrokenSource())
    async with running(app) as client:
        text = (await client.get("/metrics")).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["cache_hits"].type == "counter"
    assert families["cache_hits"].documentation == "Cache hits."
    assert families["queue_depth"].type == "gauge"
    assert families["job_seconds"].type == "summary"
    samples = parse(text)
    assert value(samples, "cache_hits_total", cache="modules") == 5
    assert value(samples, "cache_hits_total", cache="schemas") == 2
    assert value(samples, "queue_depth") == 3
    assert value(samples, "job_seconds_count", queue="a") == 4
    assert value(samples, "job_seconds_sum", queue="a") == 1.5


async def test_unexportable_samples_are_dropped_not_fatal() -> None:
    source = Source(
        [
            Sample("bad-name", 1, "gauge"),
            Sample("wasmkernel_requests_total", 1, "gauge"),
            Sample("mixed", 1, "gauge"),
            Sample("mixed", 2, "counter"),
            Sample("latency", 1, "summary"),
            Sample("labelled", 1, "gauge", {"bad-label": "x"}),
            Sample("fine", 1, "gauge"),
        ]
    )
    app = make_app({}, source)
    async with running(app) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    samples = parse(response.text)
    assert value(samples, "fine") == 1
    assert value(samples, "mixed") == 1
    assert value(samples, "mixed_total") is None
    assert value(samples, "latency") is None
    assert value(samples, "labelled", **{"bad-label": "x"}) is None
    assert value(samples, "wasmkernel_requests_total") is None


async def test_two_applications_do_not_share_metrics() -> None:
    first, second = make_app(), make_app()
    async with running(first) as one, running(second) as two:
        await one.get("/ok")
        await one.get("/ok")
        await two.get("/ok")
        first_samples = parse((await one.get("/metrics")).text)
        second_samples = parse((await two.get("/metrics")).text)
    assert value(first_samples, "wasmkernel_requests_total", method="GET", route="ok", status="200") == 2
    assert value(second_samples, "wasmkernel_requests_total", method="GET", route="ok", status="200") == 1
    assert "wasmkernel_requests" not in {family.name for family in REGISTRY.collect()}


async def test_custom_path_buckets_and_openmetrics() -> None:
    app = make_app({"path": "/internal/metrics", "buckets": [0.1, 1]})
    async with running(app) as client:
        assert (await client.get("/metrics")).status_code == 404
        await client.get("/ok")
        response = await client.get("/internal/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    buckets = {
        sample.labels["le"]
        for family in text_string_to_metric_families(response.text.replace("# EOF", ""))
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }
    assert buckets == {"0.1", "1.0", "+Inf"}


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"path": "metrics"}, "path"),
        ({"buckets": []}, "buckets"),
        ({"buckets": [1, 0.5]}, "buckets"),
        ({"buckets": ["fast"]}, "buckets"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_config_is_refused(config: dict[str, Any], key: str) -> None:
    with pytest.raises((ConfigError, RegistryError), match=key):
        make_app(config)
