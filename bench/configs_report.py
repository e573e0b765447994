#!/usr/bin/env python3
"""The targets of issue 16 next to a configuration's figures: ratio to the ceiling per scenario, met or not.

Reads RUN_DIR/results.jsonl (the harness's records, project and ceiling of the same run) and prints,
per scenario: the project's and the ceiling's median req/s, their ratio, the p99 ratio, the
target and whether it is met, and where the CPU went (server, PostgreSQL of the run's database,
PostgreSQL's share of the two). For workers-2 it also compares the project's req/s with the latest
production run's (PRODUCTION_RUN, default the newest bench/runs/*-production): the target is 1.6x.

usage: configs_report.py RUN_DIR CONFIG
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

SCENARIOS = ("s1_list", "s2_get", "s3_create", "s4_mixed")
# configuration -> (req/s ratio to the ceiling, p99 ratio to the ceiling); None: no such target.
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "bare": (0.8, 1.5),
    "production": (0.7, 2.0),
    "production-redis": (0.6, None),
    "workers-2": (None, None),
}
WORKERS_GAIN = 1.6  # workers-2's req/s over production's single worker


def medians(run: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(target, scenario) -> median req/s, p99 ms and CPU shares over the run's kept rounds."""
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines() if line.strip()]
    kept = [r for r in records if not r.get("discarded")]
    out: dict[tuple[str, str], dict[str, float]] = {}
    for key in {(r["target"], r["scenario"]) for r in kept}:
        rows = [r for r in kept if (r["target"], r["scenario"]) == key]
        out[key] = {
            name: statistics.median(r[field] for r in rows)
            for name, field in (("rps", "rps"), ("p99", "p99_ms"), ("srv", "cpu_srv"), ("pg", "cpu_pg_db"))
        }
        out[key]["errors"] = sum(r["errors"] for r in rows)
    return out


def verdict(value: float, target: float | None, *, at_least: bool) -> str:
    """'met' / 'NOT met' against ``target`` (or '' when there is none)."""
    if target is None:
        return ""
    return "met" if (value >= target if at_least else value <= target) else "NOT met"


def production_run(run: Path) -> Path | None:
    """The production run to compare workers-2 with."""
    if chosen := os.environ.get("PRODUCTION_RUN"):
        return Path(chosen)
    runs = sorted(p for p in run.parent.glob("*-production") if (p / "results.jsonl").exists())
    return runs[-1] if runs else None


def main(run: Path, config: str) -> None:
    """Print the table."""
    figures = medians(run)
    rps_target, p99_target = TARGETS[config]
    if config == "workers-2":
        print(f"Targets of issue 16 for {config}: req/s >= {WORKERS_GAIN}x production's single worker (below)")
    else:
        print(f"Targets of issue 16 for {config}: req/s >= {rps_target}x the ceiling, p99 <= {p99_target or '-'}x")
    header = (
        f"{'scenario':<10} {'P req/s':>8} {'L req/s':>8} {'rps/L':>6} {'target':>7} {'':<8}"
        f" {'p99/L':>6} {'target':>7} {'':<8} {'errors':>6} {'srv%':>5} {'pg%':>5} {'pg share':>8}"
    )
    print(header)
    print("-" * len(header))
    for scenario in SCENARIOS:
        project, ceiling = figures.get(("project", scenario)), figures.get(("limit", scenario))
        if project is None or ceiling is None:
            continue
        ratio, p99_ratio = project["rps"] / ceiling["rps"], project["p99"] / ceiling["p99"]
        share = project["pg"] / max(project["srv"] + project["pg"], 1e-9)
        print(
            f"{scenario:<10} {project['rps']:>8.1f} {ceiling['rps']:>8.1f} {ratio:>6.2f} {rps_target or '-':>7}"
            f" {verdict(ratio, rps_target, at_least=True):<8} {p99_ratio:>6.2f} {p99_target or '-':>7}"
            f" {verdict(p99_ratio, p99_target, at_least=False):<8} {project['errors']:>6.0f}"
            f" {project['srv']:>5.0f} {project['pg']:>5.0f} {share:>8.0%}"
        )
    print("srv% / pg%: the project's server and its database's PostgreSQL backends, 100 = one core;")
    print("pg share = pg / (srv + pg). Errors are summed over rounds (429s would show here).")
    if config == "workers-2":
        other = production_run(run)
        if other is None:
            print(f"workers-2 vs production: no production run beside {run} to compare with (PRODUCTION_RUN)")
            return
        single = medians(other)
        print(f"workers-2 vs production's single worker ({other.name}): target >= {WORKERS_GAIN}x req/s")
        common = [s for s in SCENARIOS if ("project", s) in figures and ("project", s) in single]
        if not common:
            print("  no scenario in common with that run")
        for scenario in common:
            two, one = figures[("project", scenario)], single[("project", scenario)]
            if two and one:
                gain = two["rps"] / one["rps"]
                print(
                    f"  {scenario:<10} {two['rps']:>8.1f} / {one['rps']:>8.1f} = {gain:.2f}x "
                    f"{verdict(gain, WORKERS_GAIN, at_least=True)}"
                )


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in TARGETS:
        sys.exit(f"usage: configs_report.py RUN_DIR {'|'.join(TARGETS)}")
    main(Path(sys.argv[1]), sys.argv[2])
