"""The end-to-end benchmark's results as people read them: a Markdown table and two PNG
plots (latency percentiles; throughput against player shards, with the storage floor)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.report import write_results

LATENCIES = (
    ("storage floor: one player write", ("floor", "write")),
    ("ingest (POST, open loop)", ("open_loop", "ingest")),
    ("time to consistency", ("open_loop", "time_to_consistency")),
    ("read, warm grain", ("reads", "warm")),
    ("read, cold grain", ("reads", "cold")),
    ("read, leaderboard page", ("reads", "leaderboard")),
    ("time to consistency, 10% faults", ("faults", "time_to_consistency")),
)


def _get(outcome: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node: Any = outcome
    for key in path:
        node = node[key]
    result: dict[str, Any] = node
    return result


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def table(o: dict[str, Any]) -> str:
    """The Markdown summary."""
    floor, e2e, loop, faults = o["floor"], o["end_to_end"], o["open_loop"], o["faults"]
    rows = [
        "| Throughput | player updates/s | matches/s | note |",
        "|---|---:|---:|---|",
        f"| storage floor (direct group transactions) | {floor['player_updates_per_s']:,.1f} "
        f"| | {floor['client_cpu_ms_per_write']} ms client CPU per write |",
        f"| end to end, sustained | {e2e['player_updates_per_s']:,.1f} | {e2e['matches_per_s']} "
        f"| **{e2e['ratio_to_floor']:.2f} of the floor** |",
    ]
    for p in o["scaling"]:
        rows.append(
            f"| end to end, {p['shards']} player shard{'s' if p['shards'] > 1 else ''} "
            f"| {p['player_updates_per_s']:,.1f} | {p['matches_per_s']} | |"
        )
    rows += [
        "",
        "| Latency (ms) | p50 | p95 | p99 | max | samples |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, path in LATENCIES:
        s = _get(o, path)
        rows.append(
            f"| {label} | {_ms(s['p50_ms'])} | {_ms(s['p95_ms'])} | {_ms(s['p99_ms'])} "
            f"| {_ms(s['max_ms'])} | {s['count']} |"
        )
    reads = o["reads"]
    rows += [
        "",
        f"Open loop at {loop['offered_matches_per_s']} matches/s (half the sustained rate); "
        f"reads: {reads['warm']['reads_per_s']:,.0f}/s warm, "
        f"{reads['cold']['reads_per_s']:,.0f}/s cold, "
        f"{reads['leaderboard']['reads_per_s']:,.0f} leaderboard pages/s (16 readers each; "
        f"boards of up to {reads['leaderboard']['largest_board']:,} players).",
        "",
        f"With {faults['faults']} in the worker and its actors: {faults['matches']} matches, "
        f"converged: {'yes' if faults['converged'] else 'NO'} "
        f"({faults['convergence_after_last_post_s']} s after the last post), "
        f"{faults['player_retries']} player retries, {faults['dead_letters']} dead letters, "
        f"{faults['records_wrong']} of {faults['records_checked']} records wrong.",
    ]
    cores = ", ".join(f"{k} {v}" for k, v in e2e["cores"].items())
    rows += ["", f"Cores busy during the sustained run ({os.cpu_count()} in all): {cores}."]
    w = o["workload"]
    rows += [
        "",
        f"Load: playlist mix 1v1/4v4/8v8/16v16/FFA8 ({w['mean_players_per_match']} players a "
        f"match on average), {w['population']:,} players, Zipf s={w['zipf_s']}, raw events: "
        f"{'yes' if w['events'] else 'no'}. Plan `{o['plan']['name']}`, "
        f"floor {o['plan']['concurrency']} matches at once, worker "
        f"{o['plan'].get('worker_concurrency', o['plan']['concurrency'])} sagas at once; "
        f"whole run {o.get('wall_s', '?')} s.",
    ]
    return "\n".join(rows)


def plot(o: dict[str, Any], latency_png: Path, scaling_png: Path) -> None:
    """Latency percentiles per measure; throughput against shards with the floor."""
    import matplotlib

    matplotlib.use("Agg")  # no screen here, and none needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = [label for label, _ in LATENCIES]
    width = 0.27
    for i, p in enumerate((50, 95, 99)):
        values = [_get(o, path)[f"p{p}_ms"] or 0.0 for _, path in LATENCIES]
        ax.barh([y + (i - 1) * width for y in range(len(labels))], values, width, label=f"p{p}")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log scale)")
    ax.set_title("statsaga latency percentiles")
    ax.legend()
    fig.tight_layout()
    fig.savefig(latency_png, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    shards = [p["shards"] for p in o["scaling"]]
    ax.plot(shards, [p["player_updates_per_s"] for p in o["scaling"]], "o-", label="end to end")
    ax.axhline(o["floor"]["player_updates_per_s"], color="grey", ls="--", label="storage floor")
    ax.set_xscale("log", base=2)
    ax.set_xticks(shards, [str(s) for s in shards])
    ax.set_xlabel("player shards")
    ax.set_ylabel("player updates / s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Throughput against player shards ({o['machine']['cpus']} cores)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(scaling_png, dpi=110)
    plt.close(fig)


def write_all(outcome: dict[str, Any], out: Path, name: str) -> Path:
    """JSON, Markdown and the two plots; returns the JSON's path."""
    path = write_results(name, "statsaga end-to-end benchmark", outcome, table(outcome), out)
    stem = path.with_suffix("")
    plot(outcome, Path(f"{stem}-latency.png"), Path(f"{stem}-scaling.png"))
    md = path.with_suffix(".md")
    md.write_text(
        md.read_text()
        + f"\n![latency]({stem.name}-latency.png)\n![scaling]({stem.name}-scaling.png)\n"
    )
    print(f"plots: {stem}-latency.png, {stem}-scaling.png")
    return path
