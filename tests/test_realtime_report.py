"""The fan-out benchmark's verdicts (benchmarks/realtime_report.py) from given rows: no servers."""

from __future__ import annotations

from typing import Any

from benchmarks.realtime_report import cpu_ms_per_delivery, percentile, targets


def row(server: str, subscribers: int, p99: float, **extra: Any) -> dict[str, Any]:
    base = {
        "server": server,
        "subscribers": subscribers,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "lost": 0,
        "publish_errors": 0,
        "rss_per_connection_kib": 30.0,
        "deliveries_per_s": 1000.0,
        "loadgen_cpu_pct": 10.0,
        "connections_per_process": "500/500",
    }
    return {**base, **extra}


def verdicts(results: list[dict[str, Any]], failures: dict[str, str] | None = None) -> dict[str, str]:
    return {name: verdict for verdict, name, _ in targets(results, failures or {})}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0 and percentile(values, 100) == 100.0
    assert percentile([], 50) != percentile([], 50)  # NaN


def test_every_target_passes_on_good_rows() -> None:
    results = [
        row("raw-asgi", 5000, 300.0),
        row("starlette", 5000, 400.0, deliveries_per_s=900.0),
        row("wasmkernel", 5000, 330.0),
        row("wasmkernel-2w-redis", 5000, 200.0),
        row("wasmkernel-2x-nginx", 5000, 260.0),
    ]
    assert set(verdicts(results).values()) == {"PASS"}


def test_each_miss_fails_its_own_target() -> None:
    results = [
        row("raw-asgi", 5000, 300.0),
        row("starlette", 5000, 400.0, deliveries_per_s=2000.0),
        row("wasmkernel", 5000, 400.0, rss_per_connection_kib=75.0),
        row("wasmkernel-2w-redis", 5000, 251.0, lost=3),
        row("wasmkernel-2x-nginx", 5000, 260.0, loadgen_cpu_pct=95.0),
    ]
    failed = {name for name, verdict in verdicts(results).items() if verdict == "FAIL"}
    # lost, 1.2x the raw p99, 250 ms with two workers, memory, delivery rate, the load generator (the nginx row is clean)
    assert len(failed) == 6, failed
    assert not any(name.startswith("two instances") for name in failed)


def test_a_failed_configuration_fails_the_no_loss_target_and_unmeasured_ones_are_not_checked() -> None:
    result = verdicts([row("raw-asgi", 1000, 100.0)], {"wasmkernel S=1000": "did not connect"})
    assert result["0 messages lost in every configuration"] == "FAIL"
    assert result["--workers 2 + Redis broker, S=5000: p99 ≤ 250 ms"] == "NOT CHECKED"


def test_cpu_per_delivery() -> None:
    assert cpu_ms_per_delivery({"deliveries": 1000, "server_cpu_pct": 50.0, "wall_s": 2.0}) == 1.0
