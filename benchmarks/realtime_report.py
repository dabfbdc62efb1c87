"""CSV, chart and REPORT.md of the WebSocket fan-out benchmark (benchmarks/realtime.py).

The targets are issue 13's, reported PASS/FAIL (benchmark figures, not
tests); a target whose rows were not measured is reported as not checked.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks import machine

#: Issue 13's figures.
RAW_RATIO = 1.2  # one worker: p99 within 1.2x of the raw ASGI broadcast
TWO_WORKERS_P99_MS = 250.0  # --workers 2 + Redis, 5000 subscribers
TWO_WORKERS_S = 5000
MAX_KIB_PER_CONNECTION = 50.0
LOADGEN_BUSY_PCT = 85.0  # a load generator above this (mean CPU of its core) may be the bottleneck

WASMKERNEL_ROWS = ("wasmkernel", "wasmkernel-2w-redis", "wasmkernel-2x-nginx")


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN if empty)."""
    if not sorted_values:
        return float("nan")
    rank = math.ceil(p / 100 * len(sorted_values)) - 1
    return float(sorted_values[min(len(sorted_values) - 1, max(0, rank))])


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def chart(path: Path, results: Sequence[Mapping[str, Any]]) -> None:
    """Latency (p50/p99/max, log scale), memory per idle connection and CPU, per row and S."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({int(r["subscribers"]) for r in results})
    servers = list(dict.fromkeys(r["server"] for r in results))
    by = {(r["server"], int(r["subscribers"])): r for r in results}
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    width = 0.8 / max(1, len(servers))
    for i, server in enumerate(servers):
        xs = [k + i * width for k in range(len(sizes))]
        rows = [by.get((server, s)) for s in sizes]
        p99 = [r["p99_ms"] if r else float("nan") for r in rows]
        bars = axes[0].bar(xs, p99, width, label=server)
        axes[0].scatter(xs, [r["p50_ms"] if r else float("nan") for r in rows], color="black", marker="_", s=120, zorder=3)
        axes[0].scatter(xs, [r["max_ms"] if r else float("nan") for r in rows], color=bars.patches[0].get_facecolor(), marker="^", s=30, zorder=3)
        axes[1].bar(xs, [r["rss_per_connection_kib"] if r else float("nan") for r in rows], width, label=server)
        axes[2].bar(xs, [r["server_cpu_pct"] if r else float("nan") for r in rows], width, label=server)
        axes[2].scatter(xs, [r["loadgen_cpu_pct"] if r else float("nan") for r in rows], color="black", marker="x", s=30, zorder=3)
    for ax in axes:
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(sizes))], [f"S = {s}" for s in sizes])
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("publish → arrival, ms (bar p99, dash p50, triangle max)")
    axes[0].set_title("Delivery latency")
    axes[1].axhline(MAX_KIB_PER_CONNECTION, color="red", linestyle="--", linewidth=1, label=f"target ≤ {MAX_KIB_PER_CONNECTION:g} KiB")
    axes[1].set_ylabel("server RSS per idle connection, KiB")
    axes[1].set_title("Memory")
    axes[2].set_ylabel("% of one core over the run (bar server, x load generator)")
    axes[2].set_title("CPU")
    axes[1].legend(fontsize=8)
    fig.suptitle("WebSocket fan-out: one publisher, S subscribers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def targets(results: Sequence[Mapping[str, Any]], failures: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(PASS | FAIL | NOT CHECKED, target, evidence) for each of issue 13's targets."""
    by = {(r["server"], int(r["subscribers"])): r for r in results}
    sizes = sorted({int(r["subscribers"]) for r in results})
    out: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    lossy = [f"{r['server']} S={r['subscribers']}: {r['lost']} lost, {r['publish_errors']} publish errors" for r in results if r["lost"] or r["publish_errors"]]
    lossy += [f"{label}: not measured to the end ({reason})" for label, reason in failures.items()]
    out.append(
        (
            verdict(not lossy) if results else "NOT CHECKED",
            "0 messages lost in every configuration",
            "; ".join(lossy) or f"{len(results)} configurations, 0 lost",
        )
    )

    for s in sizes:
        wk, raw = by.get(("wasmkernel", s)), by.get(("raw-asgi", s))
        name = f"one worker, S={s}: WasmKernel p99 ≤ {RAW_RATIO}x the raw ASGI broadcast's (same run)"
        if wk and raw:
            ratio = wk["p99_ms"] / raw["p99_ms"]
            out.append((verdict(ratio <= RAW_RATIO), name, f"{wk['p99_ms']:.1f} ms vs {raw['p99_ms']:.1f} ms = {ratio:.2f}x"))
        else:
            out.append(("NOT CHECKED", name, "wasmkernel or raw-asgi not measured"))

    two = by.get(("wasmkernel-2w-redis", TWO_WORKERS_S))
    name = f"--workers 2 + Redis broker, S={TWO_WORKERS_S}: p99 ≤ {TWO_WORKERS_P99_MS:g} ms"
    out.append((verdict(two["p99_ms"] <= TWO_WORKERS_P99_MS), name, f"p99 {two['p99_ms']:.1f} ms") if two else ("NOT CHECKED", name, "not measured"))

    nginx = [r for r in results if r["server"] == "wasmkernel-2x-nginx"]
    name = "two instances behind nginx + Redis: 0 lost, p99 reported"
    evidence = "; ".join(
        f"S={r['subscribers']}: {r['lost']} lost, p99 {r['p99_ms']:.1f} ms, connections per instance {r['connections_per_process']}" for r in nginx
    )
    out.append((verdict(all(r["lost"] == 0 and r["publish_errors"] == 0 for r in nginx)), name, evidence) if nginx else ("NOT CHECKED", name, "not measured"))

    wk_rows = [r for r in results if r["server"] in WASMKERNEL_ROWS]
    name = f"≤ {MAX_KIB_PER_CONNECTION:g} KiB server RSS per idle connection (WasmKernel rows)"
    evidence = "; ".join(f"{r['server']} S={r['subscribers']}: {r['rss_per_connection_kib']:.1f} KiB" for r in wk_rows)
    out.append(
        (verdict(all(r["rss_per_connection_kib"] <= MAX_KIB_PER_CONNECTION for r in wk_rows)), name, evidence)
        if wk_rows
        else ("NOT CHECKED", name, "not measured")
    )

    for s in sizes:
        wk, star = by.get(("wasmkernel", s)), by.get(("starlette", s))
        name = f"S={s}: delivery rate (subscribers / median time for a message to reach all) ≥ Starlette's on the same server"
        if wk and star:
            out.append(
                (verdict(wk["deliveries_per_s"] >= star["deliveries_per_s"]), name, f"{wk['deliveries_per_s']:.0f}/s vs {star['deliveries_per_s']:.0f}/s")
            )
        else:
            out.append(("NOT CHECKED", name, "wasmkernel or starlette not measured"))

    busy = [f"{r['server']} S={r['subscribers']}: {r['loadgen_cpu_pct']:.0f}%" for r in results if r["loadgen_cpu_pct"] > LOADGEN_BUSY_PCT]
    name = f"the load generator is not the bottleneck (its mean CPU ≤ {LOADGEN_BUSY_PCT:g}% of a core in every row)"
    highest = max((r["loadgen_cpu_pct"] for r in results), default=float("nan"))
    out.append((verdict(not busy), name, "; ".join(busy) or f"highest {highest:.0f}%") if results else ("NOT CHECKED", name, "nothing measured"))
    return out


_TABLE = (
    ("server", "server", "{}"),
    ("S", "subscribers", "{}"),
    ("p50 ms", "p50_ms", "{:.1f}"),
    ("p99 ms", "p99_ms", "{:.1f}"),
    ("max ms", "max_ms", "{:.1f}"),
    ("all arrived, median ms", "all_arrived_p50_ms", "{:.1f}"),
    ("lost", "lost", "{}"),
    ("KiB/conn", "rss_per_connection_kib", "{:.1f}"),
    ("server CPU % (peak)", None, ""),
    ("server CPU ms per delivery", None, ""),
    ("connect s", "connect_s", "{:.1f}"),
    ("Redis+nginx CPU %", "infra_cpu_pct", "{:.0f}"),
    ("load gen CPU % (peak)", None, ""),
    ("load gen loop delay p99 ms", "loadgen_loop_delay_p99_ms", "{:.1f}"),
    ("connections per process", "connections_per_process", "{}"),
)


def _cell(row: Mapping[str, Any], header: str, key: str | None, fmt: str) -> str:
    if header == "server CPU ms per delivery":
        return f"{cpu_ms_per_delivery(row):.3f}"
    if header.startswith("server CPU"):
        return f"{row['server_cpu_pct']:.0f} ({row['server_cpu_peak_pct']:.0f})"
    if header.startswith("load gen CPU"):
        return f"{row['loadgen_cpu_pct']:.0f} ({row['loadgen_cpu_peak_pct']:.0f})"
    assert key is not None
    return fmt.format(row[key])


def cpu_ms_per_delivery(row: Mapping[str, Any]) -> float:
    """Server CPU time over the publish phase divided by the deliveries made (every process of the server)."""
    deliveries = int(row["deliveries"])
    return float(row["server_cpu_pct"]) * float(row["wall_s"]) * 10 / deliveries if deliveries else float("nan")


def markdown_table(results: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| " + " | ".join(h for h, _, _ in _TABLE) + " |", "|" + "---|" * len(_TABLE)]
    lines += ["| " + " | ".join(_cell(r, h, k, f) for h, k, f in _TABLE) + " |" for r in results]
    return "\n".join(lines)


def _load(moment: Mapping[str, Any]) -> str:
    return ", ".join(f"{x:.2f}" for x in moment["load_average"])


def write(
    out: Path,
    results: Sequence[Mapping[str, Any]],
    messages: Sequence[Mapping[str, Any]],
    failures: Mapping[str, str],
    *,
    command: str,
    options: Mapping[str, Any],
    started: Mapping[str, Any],
    finished: Mapping[str, Any],
) -> None:
    """The CSVs, `run.json` (what `render` needs besides the CSV), the chart and REPORT.md."""
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "realtime.csv", results)
    _write_csv(out / "messages.csv", messages)
    run = {"command": command, "options": dict(options), "started": dict(started), "finished": dict(finished), "failures": dict(failures)}
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    render(out)


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return {"True": True, "False": False}.get(text, text)


def render(out: Path) -> None:
    """The chart and REPORT.md from `out`'s realtime.csv and run.json (re-run after changing this module:
    `python -m benchmarks.realtime --render DIR`)."""
    run = json.loads((out / "run.json").read_text())
    with (out / "realtime.csv").open() as handle:
        results = [{key: _value(value) for key, value in row.items()} for row in csv.DictReader(handle)]
    command, options, started, finished, failures = run["command"], run["options"], run["started"], run["finished"], run["failures"]
    if results:
        chart(out / "fanout.png", results)
    facts = machine.facts()
    lines = [
        "# WebSocket fan-out benchmark",
        "",
        f"Command: `{command}` (from the repository root, `.venv/bin/python`).",
        f"Started {started['time']}, finished {finished['time']}. Options: " + ", ".join(f"{k} = {v}" for k, v in options.items() if k != "out") + ".",
        "",
        "## Machine and noise",
        "",
        *(f"- {k}: {v}" for k, v in facts.items() if k in ("cpu", "logical cores", "memory", "os", "python", "node", "hypercorn", "trio")),
        f"- load average (1, 5, 15 min) at start {_load(started)}, at the end {_load(finished)}.",
        "- The machine's 2 cores are shared with other sessions running tests: figures vary from run to run (see the load averages); "
        "compare rows within this run, not with other machines.",
        "",
        "## Targets (issue 13)",
        "",
        *(f"- **{v}** {name}: {evidence}" for v, name, evidence in targets(results, failures)),
        "",
    ]
    if failures:
        lines += ["## FAILED configurations", "", *(f"- {label}: {reason}" for label, reason in failures.items()), ""]
    lines += [
        "## Results",
        "",
        "Latency: publish (the publisher's clock, just before its POST) → arrival at a subscriber, over every delivery "
        "(S x M); *all arrived*: per message, until the last subscriber had it. KiB/conn: (server RSS with S idle "
        "subscribers - RSS before) / S, over every process of the server (workers included; Redis and nginx not). "
        "CPU: % of one core, mean over the publish phase (peak over 0.5 s windows). Lost: deliveries that had not "
        "arrived when the drain time (`--drain` seconds after the last publish) ran out: later than that, never sent "
        "(a publish answered non-2xx, counted in `publish_errors` of realtime.csv) or gone with a closed connection "
        "(`closed_during_run`).",
        "",
        markdown_table(results),
        "",
        "![fan-out](fanout.png)",
        "",
        "## What each row measured",
        "",
        *(f"- `{r['server']}` S={r['subscribers']}: {r['path']}; pinning: {r['pinning']}" for r in results),
        "",
        "## Load generator",
        "",
        (f"{results[0]['loadgen']}: " if results else "")
        + "`benchmarks/peers/ws-node/loadgen.js`. Node.js `ws` clients, as in the baselines of facts.md; one process holds "
        "every subscriber and the publisher, so publish and arrival times come from one monotonic clock (no cross-process "
        "clock skew). Its CPU (table: mean and peak, of one core) and its event-loop delay (a busy loop would delay "
        "arrival timestamps) show whether it kept up.",
        "",
        "Files: `realtime.csv` (one row per configuration, every column above and more), `messages.csv` (per message: "
        "publish time, arrivals, time until all arrived, publish status and latency), `logs/`.",
        "",
    ]
    notes = out / "NOTES.md"  # hand-written reading of a run, kept beside it
    if notes.exists():
        lines += ["## Notes on this run (written after it)", "", notes.read_text().strip(), ""]
    (out / "REPORT.md").write_text("\n".join(lines))
