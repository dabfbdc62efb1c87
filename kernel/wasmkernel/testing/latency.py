"""Latency checks that hold on a busy machine: a latency is compared with a
baseline measured in the same test (before and after the disturbance, the
slower one counts), never with a fixed number of milliseconds alone. Mark
such tests ``@pytest.mark.latency`` so they can be run on their own
(``pytest -m latency``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import httpx


@attrs.frozen
class Latencies:
    """Seconds per request of one series."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def worst(self) -> float:
        return max(self.samples)


async def time_calls(call: Callable[[], Awaitable[object]], count: int = 20) -> Latencies:
    """Await `call()` `count` times, one after the other; their durations."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return Latencies(tuple(samples))


async def time_requests(client: httpx.AsyncClient, path: str, count: int = 20, status: int = 200) -> Latencies:
    """GET `path` `count` times (each must answer `status`); their durations."""

    async def get() -> None:
        response = await client.get(path)
        assert response.status_code == status, (path, response.status_code, response.text[:200])

    return await time_calls(get, count)


def assert_not_slowed(
    during: Latencies, baselines: Sequence[Latencies], *, factor: float = 3.0, slack: float = 0.010, worst: float = 0.5, worst_factor: float = 25.0
) -> None:
    """`during`'s median within `factor` times the slowest baseline median
    (+ `slack` seconds), and its slowest request under `worst` seconds or
    `worst_factor` baseline medians, whichever is larger (on a quiet machine
    the fixed figure decides; under load the baseline grows with the load)."""
    base = max(baseline.median for baseline in baselines)
    assert during.median < factor * base + slack, f"median {during.median:.4f} s vs baseline median {base:.4f} s (x{factor} + {slack} s allowed)"
    limit = max(worst, worst_factor * base)
    assert during.worst < limit, f"slowest {during.worst:.4f} s vs {limit:.4f} s allowed (baseline median {base:.4f} s)"
