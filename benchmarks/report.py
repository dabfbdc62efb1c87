"""Writing the results: CSV files, PNG charts and REPORT.md."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.client import Cell, Sample
from benchmarks.load import LoadResult
from benchmarks.memory import ProcessMemory, totals
from benchmarks.native import Reference
from benchmarks.quiet import Interval, Thresholds
from benchmarks.startup import StartupSample, median_first, median_of
from benchmarks.startup_phases import ImportTime, Phases
from benchmarks.stats import Anova, Comparison, Summary

WASMKERNEL_FAST = "wasmkernel-fast"
WASMKERNEL_NAIVE = "wasmkernel-naive"


@attrs.define
class Results:
    """Everything one run measured (sections that did not run stay empty)."""

    sizes: list[int]
    reps: int
    warmup: int
    machine: dict[str, str]
    samples: list[Sample] = attrs.field(factory=list)
    cells: list[Cell] = attrs.field(factory=list)
    skipped: dict[str, str] = attrs.field(factory=dict)  # row or section → reason
    failed: dict[str, str] = attrs.field(factory=dict)  # server that should have run and could not → why (the run exits non-zero)
    unavailable: dict[str, str] = attrs.field(factory=dict)  # server whose prerequisite is absent here → which
    notes: list[str] = attrs.field(factory=list)
    summaries: list[Summary] = attrs.field(factory=list)
    comparisons: list[Comparison] = attrs.field(factory=list)
    anovas: list[Anova] = attrs.field(factory=list)
    references: list[Reference] = attrs.field(factory=list)
    startup: list[StartupSample] = attrs.field(factory=list)
    load: list[LoadResult] = attrs.field(factory=list)
    memory: list[ProcessMemory] = attrs.field(factory=list)
    phases: list[Phases] = attrs.field(factory=list)
    imports: list[ImportTime] = attrs.field(factory=list)  # total_s first, then the slowest packages
    naive_peers: list[str] = attrs.field(factory=list)
    aborted: str = ""
    machine_load: list[Interval] = attrs.field(factory=list)  # per section: load average, foreign CPU, steal
    disturbed: list[str] = attrs.field(factory=list)  # sections where the machine was not quiet (never in the README)


def write_csv(path: Path, rows: Sequence[Any]) -> None:
    if not rows:
        return
    fields = [f.name for f in attrs.fields(type(rows[0]))]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            data = attrs.asdict(row)
            writer.writerow({k: ";".join(v) if isinstance(v, tuple) else v for k, v in data.items()})


def _verdict(interval: Interval) -> str:
    if not interval.why:
        return "yes"
    return interval.why + (" (discarded: measured again)" if interval.discarded else "")


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


# -- charts -------------------------------------------------------------------


def _by_server(summaries: Sequence[Summary]) -> dict[str, list[Summary]]:
    grouped: dict[str, list[Summary]] = defaultdict(list)
    for s in summaries:
        grouped[s.server].append(s)
    return {k: sorted(v, key=lambda s: s.n) for k, v in sorted(grouped.items())}


def load_median(results: Results, scenario: str) -> dict[str, LoadResult]:
    """Per server, the round with the median throughput (`load_spread` gives the range)."""
    rounds: dict[str, list[LoadResult]] = defaultdict(list)
    for run in results.load:
        if run.scenario == scenario:
            rounds[run.server].append(run)
    return {server: sorted(runs, key=lambda r: r.requests_per_s)[(len(runs) - 1) // 2] for server, runs in rounds.items()}


def load_spread(results: Results, scenario: str, server: str) -> str:
    """min-max req/s over the rounds of `server`, or "" for a single round."""
    rates = sorted(r.requests_per_s for r in results.load if r.scenario == scenario and r.server == server)
    return f"{rates[0]:.0f}-{rates[-1]:.0f}" if len(rates) > 1 else ""


def round_ratios(results: Results, scenario: str, mine: str, theirs: str) -> list[float]:
    """`mine`/`theirs` throughput, round by round (both ran in each such round)."""
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for run in results.load:
        if run.scenario == scenario and run.server in (mine, theirs):
            by_round[run.round][run.server] = run.requests_per_s
    return [rates[mine] / rates[theirs] for _, rates in sorted(by_round.items()) if mine in rates and theirs in rates and rates[theirs] > 0]


def _ratio_text(ratios: Sequence[float]) -> str:
    ordered = sorted(ratios)
    middle = ordered[(len(ordered) - 1) // 2] if len(ordered) % 2 else (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
    spread = f" (rounds {ordered[0]:.2f}-{ordered[-1]:.2f}x, {len(ordered)} rounds)" if len(ordered) > 1 else " (1 round)"
    return f"{middle:.2f}x{spread}"


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def charts(results: Results, out: Path) -> list[str]:
    made = []
    grouped = _by_server(results.summaries)
    if grouped:
        fig, ax = plt.subplots(figsize=(9, 6))
        for server, rows in grouped.items():
            ns = [r.n for r in rows]
            means = [r.mean_ms for r in rows]
            errors = [[r.mean_ms - r.ci95_low_ms for r in rows], [r.ci95_high_ms - r.mean_ms for r in rows]]
            ax.errorbar(ns, means, yerr=errors, marker="o", capsize=3, label=server, linewidth=2.5 if server.startswith("wasmkernel") else 1.2)
        ax.set(xscale="log", yscale="log", xlabel="matrix size n", ylabel="latency per request (ms, mean ± 95% CI)", title="GET /matmul latency")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        made.append(_save(fig, out / "latency_vs_n.png"))

        fig, ax = plt.subplots(figsize=(9, 6))
        for server, rows in grouped.items():
            ax.plot([r.n for r in rows], [r.gflops for r in rows], marker="o", label=server)
        refs: dict[str, list[Reference]] = defaultdict(list)
        for ref in results.references:
            refs[ref.name].append(ref)
        for name, rows_ in sorted(refs.items()):
            ax.plot([r.n for r in rows_], [r.gflops for r in rows_], linestyle="--", marker="x", label=f"{name} (no HTTP)")
        ax.set(xscale="log", yscale="log", xlabel="matrix size n", ylabel="GFLOP/s (2n³ / request latency)", title="Throughput of the multiply")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        made.append(_save(fig, out / "gflops.png"))

        cells = [c for c in results.cells if c.made or c.stopped]
        if cells:
            servers = sorted({c.server for c in cells})
            sizes = sorted({c.n for c in cells})
            fig, ax = plt.subplots(figsize=(10, 6))
            width = 0.8 / max(1, len(sizes))
            peak = {(c.server, c.n): c.peak_rss_mb for c in cells}
            for index, n in enumerate(sizes):
                xs = [i + index * width for i in range(len(servers))]
                ax.bar(xs, [peak.get((s, n), 0.0) for s in servers], width, label=f"n={n}")
            ax.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(servers))], servers, rotation=30, ha="right")
            ax.set(ylabel="peak RSS of the process tree (MiB)", title="Memory per server")
            ax.legend(fontsize=8)
            made.append(_save(fig, out / "memory.png"))

    speedups = [c for c in results.comparisons if c.a == WASMKERNEL_FAST]
    if speedups:
        fig, ax = plt.subplots(figsize=(9, 6))
        per_peer: dict[str, list[Comparison]] = defaultdict(list)
        for c in speedups:
            per_peer[c.b].append(c)
        for peer, rows__ in sorted(per_peer.items()):
            rows__.sort(key=lambda c: c.n)
            ax.plot([c.n for c in rows__], [c.speedup for c in rows__], marker="o", label=peer)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="matrix size n",
            ylabel="speed-up (peer latency / WasmKernel fast latency)",
            title="Speed-up of WasmKernel (fast kernel)",
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        made.append(_save(fig, out / "speedup.png"))

    if results.startup:
        scenarios = ["cold-cache", "warm-cache", "no-prewarm", "steady"]
        present = [s for s in scenarios if any(x.scenario == s for x in results.startup)]
        fig, ax = plt.subplots(figsize=(8, 5))
        firsts = [median_first(results.startup, s) or 0.0 for s in present]
        ax.bar(present, firsts, color=["#c44", "#4a4", "#aa4", "#44c"][: len(present)])
        n = results.startup[0].n
        ax.set(ylabel=f"first GET /matmul?n={n}&kernel=fast (ms, median)", title="Cold vs warm start")
        made.append(_save(fig, out / "startup.png"))

    hello = list(load_median(results, "hello").values())
    if hello:
        fig, ax = plt.subplots(figsize=(9, 6))
        ordered = sorted(hello, key=lambda r: r.requests_per_s)
        ax.barh([r.server for r in ordered], [r.requests_per_s for r in ordered])
        ax.set(xlabel="requests/s (wrk -t1 -c64 on one core, server on the other)", title="GET /hello throughput")
        made.append(_save(fig, out / "hello_throughput.png"))
    return made


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


# -- targets --------------------------------------------------------------------


def targets(results: Results) -> list[tuple[str, str, str]]:
    """(target, PASS | FAIL | N/A, evidence)."""
    summary = {(s.server, s.n): s for s in results.summaries}
    naive = [p for p in results.naive_peers if any(k[0] == p for k in summary)]
    lines: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    large = [n for n in results.sizes if n >= 200 and (WASMKERNEL_FAST, n) in summary]
    name = "fast kernel faster than every naive peer at n ≥ 200, first request included"
    if large and naive:
        failures = []
        for n in large:
            fast = summary[(WASMKERNEL_FAST, n)]
            worst = max(filter(None, [fast.mean_ms, fast.first_ms]))
            failures += [
                f"n={n}: {p} {summary[(p, n)].mean_ms:.1f} ms ≤ {worst:.1f} ms" for p in naive if (p, n) in summary and summary[(p, n)].mean_ms <= worst
            ]
        lines.append((name, verdict(not failures), "; ".join(failures) or f"sizes {large} vs {', '.join(naive)}"))
    else:
        lines.append((name, "N/A", "no WasmKernel fast row or naive peer at n ≥ 200"))

    name = "n=100 within 1.5x of the fastest naive peer"
    best_peer = min(((summary[(p, 100)].mean_ms, p) for p in naive if (p, 100) in summary), default=None)
    wk = [summary[(s, 100)] for s in (WASMKERNEL_FAST, WASMKERNEL_NAIVE) if (s, 100) in summary]
    if best_peer and wk:
        ours = min(wk, key=lambda s: s.mean_ms)
        ratio = ours.mean_ms / best_peer[0]
        lines.append((name, verdict(ratio <= 1.5), f"{ours.server} {ours.mean_ms:.2f} ms vs {best_peer[1]} {best_peer[0]:.2f} ms: {ratio:.2f}x"))
    else:
        lines.append((name, "N/A", "n=100 not measured for WasmKernel or any naive peer"))

    name = "naive WASM within 1.3x of native naive (time inside the module vs matmul-native)"
    native = {r.n: r for r in results.references if r.name == "rust-native-naive"}
    pairs = [(n, summary[(WASMKERNEL_NAIVE, n)], native[n]) for n in results.sizes if (WASMKERNEL_NAIVE, n) in summary and n in native]
    if pairs:
        ratios = [(n, (s.module_mean_ms or s.mean_ms) / r.best_ms) for n, s, r in pairs]
        worst_n, worst = max(ratios, key=lambda x: x[1])
        lines.append((name, verdict(worst <= 1.3), ", ".join(f"n={n}: {x:.2f}x" for n, x in ratios) + f" (worst n={worst_n})"))
    else:
        lines.append((name, "N/A", "native or WasmKernel naive rows missing"))

    name = "n=2000: fast kernel ≥ 20% of numpy GFLOP/s"
    numpy_2000 = next((r for r in results.references if r.name == "numpy" and r.n == 2000), None)
    if numpy_2000 and (WASMKERNEL_FAST, 2000) in summary:
        share = summary[(WASMKERNEL_FAST, 2000)].gflops / numpy_2000.gflops
        lines.append((name, verdict(share >= 0.2), f"{summary[(WASMKERNEL_FAST, 2000)].gflops:.2f} vs numpy {numpy_2000.gflops:.2f} GFLOP/s: {share:.0%}"))
    else:
        lines.append((name, "N/A", "n=2000 not in this run"))

    name = "a measured Spring row (Spring MVC 4.3 on Tomcat 9)"
    spring = sorted(n for server, n in summary if server == "spring")
    why_not = results.failed.get("spring") or results.unavailable.get("spring") or "not in this run"
    lines.append((name, verdict(bool(spring)), f"sizes {spring}" if spring else why_not))

    name = "n=5000 for every row, or the reason it is not (time budget)"
    if 5000 in results.sizes:
        cells_5000 = {c.server: c for c in results.cells if c.n == 5000}
        rows = list(dict.fromkeys(c.server for c in results.cells))
        measured = [r for r in rows if (r, 5000) in summary]
        reasons = [f"{r}: {results.skipped[f'{r} n=5000']}" for r in rows if f"{r} n=5000" in results.skipped]
        reasons += [f"{r}: 0 reps ({cells_5000[r].stopped})" for r in rows if r in cells_5000 and cells_5000[r].made == 0]
        silent = [r for r in rows if (r, 5000) not in summary and r not in cells_5000 and f"{r} n=5000" not in results.skipped]
        evidence = f"measured: {', '.join(measured) or 'none'}" + (f"; not measured: {'; '.join(reasons)}" if reasons else "")
        lines.append((name, verdict(not silent), evidence + (f"; missing without a reason: {', '.join(silent)}" if silent else "")))
    else:
        lines.append((name, "N/A", "n=5000 not in this run (--full adds it)"))

    name = "warm-cache first request within 2x steady state"
    warm, steady = median_first(results.startup, "warm-cache"), median_first(results.startup, "steady")
    if warm and steady:
        lines.append((name, verdict(warm <= 2 * steady), f"{warm:.2f} ms vs {steady:.2f} ms: {warm / steady:.2f}x"))
    else:
        lines.append((name, "N/A", "initialization section not run"))

    name = "first /hello ≤ 0.6 s after exec with a warm compile cache (full registry, `wasmkernel run` defaults)"
    warm_ready = median_of([s.ready_s for s in results.startup if s.server == "wasmkernel" and s.scenario == "warm-cache"])
    if warm_ready is not None:
        lines.append((name, verdict(warm_ready <= 0.6), f"median {warm_ready:.3f} s"))
    else:
        lines.append((name, "N/A", "initialization section not run"))

    name = "WasmKernel's idle process tree (full registry, `wasmkernel run` defaults) ≤ 90 MiB (Σ RSS), the server process alone ≤ 50 MiB"
    idle = totals(results.memory).get(("wasmkernel", "idle"))
    main = [m.rss_mb for m in results.memory if m.server == "wasmkernel" and m.phase == "idle" and m.role == "main"]
    if idle and main:
        ok = idle[0] <= 90 and main[0] <= 50
        lines.append((name, verdict(ok), f"Σ RSS {idle[0]:.0f} MiB over {idle[3]} processes (Σ PSS {idle[1]:.0f} MiB); server process {main[0]:.0f} MiB"))
    else:
        lines.append((name, "N/A", "WasmKernel's /matmul rows not run"))

    name = "WasmKernel's RSS after each cell below Jetty's, every size"
    ends: dict[tuple[str, int], float] = {(c.server, c.n): c.end_rss_mb for c in results.cells if c.made}
    sizes = [n for n in results.sizes if ("java-jetty", n) in ends and any((w, n) in ends for w in (WASMKERNEL_FAST, WASMKERNEL_NAIVE))]
    if sizes:
        worse = []
        for n in sizes:
            wk_rss = max(ends.get((w, n), 0.0) for w in (WASMKERNEL_FAST, WASMKERNEL_NAIVE))
            if wk_rss >= ends[("java-jetty", n)]:
                worse.append(f"n={n}: {wk_rss:.0f} ≥ {ends[('java-jetty', n)]:.0f} MiB")
        lines.append((name, verdict(not worse), "; ".join(worse) or ", ".join(f"n={n}" for n in sizes)))
    else:
        lines.append((name, "N/A", "no Jetty or WasmKernel cells"))

    name = "full plugin chain ≥ 90% of the bare kernel's /hello throughput (server and wrk pinned apart)"
    shares = round_ratios(results, "hello", "wasmkernel-full", "wasmkernel-bare")
    if shares:
        lines.append((name, verdict(_median(shares) >= 0.9), _ratio_text(shares)))
    else:
        lines.append((name, "N/A", "load section not run"))
    for scenario, label in (("hello", "/hello"), ("post", "authenticated JSON POST /api/matmul")):
        name = f"full plugin chain ≥ 1.0x FastAPI with the equivalent middleware on the same server, {label}"
        shares = round_ratios(results, scenario, "wasmkernel-full", "fastapi-trio-full")
        if shares:
            lines.append((name, verdict(_median(shares) >= 1.0), _ratio_text(shares)))
        else:
            lines.append((name, "N/A", "load section not run"))
    return lines


# -- REPORT.md ------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def markdown(results: Results, images: Sequence[str], files: Mapping[str, str]) -> str:
    parts = ["# WasmKernel /matmul benchmark\n"]
    if results.aborted:
        parts.append(f"**ABORTED:** {results.aborted}\n")
    parts.append(quiet_section(results))
    parts.append(
        f"Sizes {results.sizes}, {results.reps} measured repetitions per cell after {results.warmup} warm-up request(s) "
        "(the first warm-up is reported as the *first request*). Latency is client-side wall time of one "
        "`GET /matmul?n=N&kernel=K` at a time over keep-alive HTTP/1.1 on loopback; every checksum was verified "
        "against the closed form. GFLOP/s = 2n³ / mean latency.\n"
    )
    parts.append("## Machine\n\n" + _table(["", ""], [[k, v] for k, v in results.machine.items()]))
    if results.failed:
        parts.append(
            "## FAILED\n\nThese servers should have been measured and could not be set up or started; the run exited non-zero.\n\n"
            + "\n".join(f"- **{k}**: {v}" for k, v in sorted(results.failed.items()))
            + "\n"
        )
    if results.unavailable:
        parts.append(
            "## Not available on this machine\n\nA prerequisite that cannot be fetched here is absent (toolchain, Debian package, "
            "local Maven jar); install it and re-run to get the row.\n\n" + "\n".join(f"- **{k}**: {v}" for k, v in sorted(results.unavailable.items())) + "\n"
        )
    if results.skipped:
        parts.append("## Skipped\n\n" + "\n".join(f"- **{k}**: skipped: {v}" for k, v in sorted(results.skipped.items())) + "\n")
    if results.notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {note}" for note in results.notes) + "\n")

    parts.append("## Targets\n\n" + "\n".join(f"- **{v}** — {name}: {why}" for name, v, why in targets(results)) + "\n")

    cells = {(c.server, c.n): c for c in results.cells}
    rows = []
    for s in results.summaries:
        cell = cells.get((s.server, s.n))
        made = f"{s.reps}/{cell.requested}" + (f" ({cell.stopped})" if cell and cell.stopped else "") if cell else str(s.reps)
        rows.append(
            [
                s.server,
                str(s.n),
                made,
                _fmt(s.mean_ms),
                _fmt(s.std_ms),
                f"{_fmt(s.ci95_low_ms)} - {_fmt(s.ci95_high_ms)}",
                _fmt(s.median_ms),
                _fmt(s.first_ms),
                _fmt(s.compute_mean_ms),
                _fmt(s.gflops, 3),
            ]
        )
    unfinished = [c for c in results.cells if c.made == 0]
    rows += [[c.server, str(c.n), f"0/{c.requested} ({c.stopped})", "—", "—", "—", "—", "—", "—", "—"] for c in unfinished]
    parts.append("## Latency (ms)\n\n" + _table(["server", "n", "reps", "mean", "std", "95% CI", "median", "first request", "server compute", "GFLOP/s"], rows))

    if results.cells:
        parts.append(
            "## Memory and CPU per cell\n\nPeak RSS is the sum of each process's peak (Linux VmHWM, reset before the cell) over the "
            "server's process tree (hypercorn workers and WebAssembly worker processes included).\n\n"
            + _table(
                ["server", "n", "peak RSS (MiB)", "RSS after (MiB)", "CPU s", "cell s"],
                [[c.server, str(c.n), _fmt(c.peak_rss_mb, 1), _fmt(c.end_rss_mb, 1), _fmt(c.cpu_s), _fmt(c.elapsed_s, 1)] for c in results.cells],
            )
        )
    if results.memory:
        sums = totals(results.memory)
        servers = list(dict.fromkeys(m.server for m in results.memory))
        rows = []
        for server in servers:
            idle, after = sums.get((server, "idle")), sums.get((server, "after"))
            rows.append(
                [
                    server,
                    str(idle[3]) if idle else "—",
                    _fmt(idle[0], 1) if idle else "—",
                    _fmt(idle[1], 1) if idle else "—",
                    _fmt(after[0], 1) if after else "—",
                    _fmt(after[2], 1) if after else "—",
                ]
            )
        parts.append(
            "## Memory per server\n\n*idle*: right after the server answered its first `/hello`, before any measured request; "
            "*after*: after its last /matmul cell (the largest n) or its last wrk run; *peak*: Σ of each process's VmHWM (reset "
            "before each /matmul cell, so for /matmul servers the largest cell's peak). RSS sums count pages shared between "
            "forked processes once per process; PSS sums count them once.\n\n"
            + _table(["server", "processes", "idle Σ RSS (MiB)", "idle Σ PSS (MiB)", "after Σ RSS (MiB)", "peak Σ VmHWM (MiB)"], rows)
        )
        per_process = [m for m in results.memory if m.server.startswith("wasmkernel")]
        if per_process:
            parts.append(
                "### WasmKernel, per process\n\n"
                + _table(
                    ["server", "phase", "process", "pid", "RSS (MiB)", "PSS (MiB)", "peak VmHWM (MiB)"],
                    [[m.server, m.phase, m.role, str(m.pid), _fmt(m.rss_mb, 1), _fmt(m.pss_mb, 1), _fmt(m.peak_mb, 1)] for m in per_process],
                )
            )
    if results.references:
        parts.append(
            "## Native references (no HTTP, same matrices)\n\nGFLOP/s from the best repetition: these rows are the machine's limit.\n\n"
            + _table(
                ["kernel", "n", "reps", "median ms", "best ms", "GFLOP/s (best)"],
                [[r.name, str(r.n), str(r.reps), _fmt(r.median_ms, 3), _fmt(r.best_ms, 3), _fmt(r.gflops)] for r in results.references],
            )
        )
    if results.comparisons:
        parts.append(
            "## Welch t-tests (WasmKernel vs each peer, per size)\n\n"
            + _table(
                ["n", "WasmKernel row", "peer", "mean WK ms", "mean peer ms", "speed-up", "t", "p"],
                [[str(c.n), c.a, c.b, _fmt(c.mean_a_ms), _fmt(c.mean_b_ms), f"{c.speedup:.2f}x", _fmt(c.t), f"{c.p_value:.3g}"] for c in results.comparisons],
            )
        )
    if results.anovas:
        parts.append(
            "## One-way ANOVA per size (all rows with ≥ 2 samples)\n\n"
            + _table(["n", "groups", "F", "p"], [[str(a.n), ", ".join(a.groups), _fmt(a.f), f"{a.p_value:.3g}"] for a in results.anovas])
        )
    if results.startup:
        parts.append(cold_start_section(results))
    if results.load:
        titles = {
            "hello": "GET /hello, every server",
            "post": "authenticated JSON POST /api/matmul (2 by 2 matrices, JWT bearer with scope matrix:compute), same-server stacks",
            "workers": "WasmKernel's hypercorn worker processes (--workers), GET /hello",
            "pool": "WasmKernel's WebAssembly pool, 4 concurrent GET /matmul?n=500&kernel=naive (wrk -t1 -c4)",
        }
        parts.append(
            "## Request overhead (wrk)\n\n`wrk -t1 -c64 --latency` unless noted, every server once per round, rounds interleaved "
            "(the order rotated each round); each row is the server's median round with the range over rounds; *pinning* says whether the server (with every "
            "process it spawns) and wrk ran on separate cores (`taskset`). The bare kernel has no auth plugin, so it serves no "
            "authenticated POST. FastAPI/Starlette rows run on the same server as WasmKernel (hypercorn, trio worker, one worker "
            "process).\n"
        )
        for scenario, title in titles.items():
            runs = load_median(results, scenario)
            if runs:
                parts.append(
                    f"### {title}\n\n"
                    + _table(
                        ["server", "req/s (median round)", "rounds min-max", "p50 ms", "p99 ms", "requests", "socket errors", "pinning"],
                        [
                            [
                                w.server,
                                _fmt(w.requests_per_s, 0),
                                load_spread(results, scenario, w.server) or "—",
                                _fmt(w.p50_ms),
                                _fmt(w.p99_ms),
                                str(w.requests),
                                w.socket_errors or "none",
                                w.pinning,
                            ]
                            for w in runs.values()
                        ],
                    )
                )
    if images:
        parts.append("## Charts\n\n" + "\n".join(f"![{name}]({name})" for name in images) + "\n")
    parts.append("## Files\n\n" + "\n".join(f"- `{name}`: {what}" for name, what in files.items()) + "\n")
    return "\n".join(parts)


WASMKERNEL_SCENARIOS = ("cold-cache", "warm-cache", "no-prewarm")


def quiet_section(results: Results) -> str:
    """Whether the machine was quiet, section by section (a disturbed run is never published)."""
    limits = Thresholds()
    verdict = (
        f"**DISTURBED RUN — not for publication.** {'; '.join(results.disturbed)}."
        if results.disturbed
        else "**Quiet run**: every section stayed within the thresholds."
    )
    return (
        f"## Machine load\n\n{verdict} A run is quiet when, before it starts, the 1-minute load average is ≤ {limits.start_load} "
        f"and a 10 s probe sees ≤ {limits.start_foreign} cores used by other processes, and in every section other processes "
        f"(everything outside the benchmark's own process tree) use ≤ {limits.foreign} cores on average and the hypervisor "
        f"steals ≤ {limits.steal}% (`benchmarks/quiet.py`).\n\n"
        + _table(
            ["section", "seconds", "load avg start", "load avg end", "other processes (cores)", "steal %", "quiet"],
            [
                [i.section, _fmt(i.seconds, 0), _fmt(i.load1_start), _fmt(i.load1_end), _fmt(i.foreign_cores), _fmt(i.steal_pct, 1), _verdict(i)]
                for i in results.machine_load
            ],
        )
    )


def _spread(values: Sequence[float | None], digits: int = 3) -> str:
    present = sorted(v for v in values if v is not None)
    if not present:
        return "—"
    middle = _fmt(median_of(list(present)), digits)
    return middle if len(present) == 1 else f"{middle} ({_fmt(present[0], digits)}-{_fmt(present[-1], digits)})"


def cold_start_section(results: Results) -> str:
    """Exec → first 200 for every server, WasmKernel's phases and import time."""
    startup = results.startup
    n = startup[0].n
    rows = []
    for name in ("cold-cache", "warm-cache", "no-prewarm", "steady"):
        group = [s for s in startup if s.scenario == name and s.server == "wasmkernel"]
        if group:
            first = _fmt(median_first(startup, name))
            rows.append(["wasmkernel (full registry)", name, str(len(group)), _spread([s.ready_s for s in group]), _spread([s.matmul_s for s in group]), first])
    for server in dict.fromkeys(s.server for s in startup if s.server != "wasmkernel"):
        for name in ("first start", "warm"):
            group = [s for s in startup if s.server == server and s.scenario == name]
            if group:
                first = _fmt(median_of([s.first_ms for s in group]))
                rows.append([server, name, str(len(group)), _spread([s.ready_s for s in group]), _spread([s.matmul_s for s in group]), first])
    text = (
        f"## Cold start: exec → first 200\n\nEach start is a new process (`exec` of the server's command, polled every 5 ms). "
        f"*/hello*, */matmul*: seconds from exec to the first 200 of `GET /hello` and of `GET /matmul?n={n}` (WasmKernel: "
        "`&kernel=fast`; peers: their default kernel), median (min-max) over the starts; *first /matmul*: that request's own "
        "latency. WasmKernel: *cold-cache* = empty compile cache, *warm-cache* = the cache filled by an earlier start, "
        "*no-prewarm* = warm cache, no worker started before the first call, *steady* = requests on a warmed server. Peers: "
        "*first start* = the first start of this section, *warm* = restarts. The operating system's page cache stays warm "
        "for every server (dropping it would disturb the other users of a shared machine).\n\n"
        + _table(["server", "scenario", "starts", "/hello (s)", f"/matmul?n={n} (s)", "first /matmul (ms)"], rows)
    )
    if results.phases:
        phase_rows = []
        for name in ("warm-cache", "cold-cache"):
            phased = [p for p in results.phases if p.scenario == name]
            if phased:
                fields = ("interpreter_s", "kernel_import_s", "assembly_s", "loader_start_s", "workers_warm_s", "total_s")
                phase_rows.append([name, str(len(phased)), *(_fmt(median_of([getattr(p, f) for p in phased]), 3) for f in fields)])
        text += (
            "\n### WasmKernel's start-up phases (seconds, median)\n\n`benchmarks/startup_phases.py`: one fresh process per start "
            "that imports what `wasmkernel run` imports, assembles the full registry and starts it (no HTTP server). *interpreter*: "
            "`python -c pass`; *kernel import*: `wasmkernel.cli`; *assembly*: registry, plugin imports and configuration; *loader "
            "start*: application startup (finding the workers' environment, compile or deserialize); *to serving*: the sum so far; *workers "
            "warm*: spawning the WebAssembly workers and loading every module in them, beside serving (the loader's `wasm.workers_warm` log line).\n\n"
            + _table(["scenario", "starts", "interpreter", "kernel import", "assembly", "loader start", "workers warm", "to serving"], phase_rows)
        )
    if results.imports:
        text += (
            "\n### Import time per package (`python -X importtime`, one warm-cache start)\n\nEach module's own import time, "
            "counted to its top-level package; *total_s* is the sum over every module.\n\n"
            + _table(["package", "seconds"], [[i.package, _fmt(i.seconds, 3)] for i in results.imports])
        )
    return text


def write_all(results: Results, out: Path) -> None:
    files = {}
    for name, rows, what in (
        ("raw.csv", results.samples, "every request: phase, status, latency, server-reported times, checksum and its verification"),
        ("summary.csv", results.summaries, "per server and size: mean, std, CI, GFLOP/s"),
        ("cells.csv", results.cells, "per cell: reps made, why it stopped, peak RSS, CPU"),
        ("ttests.csv", results.comparisons, "Welch t-tests"),
        ("anova.csv", results.anovas, "one-way ANOVA per size"),
        ("native.csv", results.references, "native Rust and numpy references"),
        ("startup.csv", results.startup, "initialization overhead"),
        ("phases.csv", results.phases, "WasmKernel's start-up phases per start"),
        ("imports.csv", results.imports, "import time per top-level package (python -X importtime)"),
        ("memory.csv", results.memory, "per process of every server: role, RSS, PSS, peak (VmHWM), idle and after its runs"),
        ("load.csv", results.load, "wrk runs: /hello, authenticated POST, worker and pool scaling; one row per server and round"),
        ("machine_load.csv", results.machine_load, "per section: load average at its start and end, cores used by other processes, steal"),
    ):
        if rows:
            write_csv(out / name, rows)
            files[name] = what
    images = charts(results, out)
    files["logs/"] = "server output"
    (out / "REPORT.md").write_text(markdown(results, images, files))


# -- README section -----------------------------------------------------------------

README_START = "<!-- benchmark-run:start (written by python -m benchmarks --readme; edit benchmarks/report.py instead) -->"
README_END = "<!-- benchmark-run:end -->"


def readme_section(results: Results, folder: str, command: str) -> str:
    """The README's figures from one run: latency per size, memory, cold start, /hello, targets."""
    summary = {(s.server, s.n): s for s in results.summaries}
    cells = {(c.server, c.n): c for c in results.cells}
    servers = list(dict.fromkeys(s.server for s in sorted(results.summaries, key=lambda s: (not s.server.startswith("wasmkernel"), s.server))))
    servers += [c.server for c in results.cells if c.server not in servers]
    rows = []
    for server in dict.fromkeys(servers):
        row = [server]
        for n in results.sizes:
            s, cell = summary.get((server, n)), cells.get((server, n))
            skipped = results.skipped.get(f"{server} n={n}")
            if s is not None:
                made = f" ({s.reps} reps)" if s.reps < results.reps else ""
                row.append(f"{_fmt(s.mean_ms, 1)}{made}")
            elif cell is not None and cell.made == 0:
                row.append(f"— ({cell.stopped})")
            else:
                row.append("skipped (> budget)" if skipped else "—")
        rows.append(row)
    load = [i for i in results.machine_load if i.section == "before the run"]
    seen = f"load average {load[0].load1_start:.2f} before it started" if load else "load not recorded"
    worst = max((i.foreign_cores for i in results.machine_load), default=0.0)
    parts = [
        f"Run: [{folder}/REPORT.md]({folder}/REPORT.md), made by\n\n```bash\n{command}\n```\n\n"
        f"on a quiet machine ({seen}; other processes used at most {worst:.2f} cores in any section; per-section figures in the report).\n",
        "Mean latency of `GET /matmul?n=N`, ms (repetitions made when fewer than "
        f"{results.reps}; a cell stops at its time budget):\n\n" + _table(["server", *(f"n={n}" for n in results.sizes)], rows),
    ]
    sums = totals(results.memory)
    mem_rows = []
    for server in dict.fromkeys(m.server for m in results.memory):
        idle, after = sums.get((server, "idle")), sums.get((server, "after"))
        if idle:
            mem_rows.append([server, str(idle[3]), _fmt(idle[0], 1), _fmt(idle[1], 1), _fmt(after[0], 1) if after else "—"])
    if mem_rows:
        parts.append(
            "Memory of each server's process tree, MiB (Σ RSS; Σ PSS counts shared pages once):\n\n"
            + _table(["server", "processes", "idle RSS", "idle PSS", "RSS after its runs"], mem_rows)
        )
    ready = []
    for server in dict.fromkeys(s.server for s in results.startup):
        scenario = "warm-cache" if server == "wasmkernel" else "warm"
        group = [s for s in results.startup if s.server == server and s.scenario == scenario]
        if group:
            ready.append(
                [
                    server if server != "wasmkernel" else "wasmkernel (warm compile cache)",
                    _spread([s.ready_s for s in group]),
                    _spread([s.matmul_s for s in group]),
                ]
            )
    if ready:
        parts.append("Cold start, seconds from exec to the first 200 (median, min-max):\n\n" + _table(["server", "/hello", "/matmul?n=100"], ready))
    wrk_rows = [
        [r.server, scenario, _fmt(r.requests_per_s, 0), load_spread(results, scenario, r.server) or "—", _fmt(r.p99_ms), r.pinning]
        for scenario in ("hello", "post")
        for r in load_median(results, scenario).values()
    ]
    if wrk_rows:
        parts.append(
            "wrk, rounds interleaved, server and wrk on separate cores where stated (req/s of the median round, range over rounds):\n\n"
            + _table(["server", "scenario", "req/s", "rounds", "p99 ms", "pinning"], wrk_rows)
        )
    parts.append(
        "Targets (benchmark figures, not tests):\n\n" + _table(["target", "result", "evidence"], [[name, f"**{v}**", why] for name, v, why in targets(results)])
    )
    return "\n".join(parts)


def splice_readme(readme: Path, section: str) -> None:
    """Replace the text between the README's benchmark markers with `section`."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme}: the markers {README_START!r} … {README_END!r} are missing")
    readme.write_text(text[: start + len(README_START)] + "\n\n" + section + "\n" + text[end:])
