"""Sweep wall time and per-cell overhead: fork workers against a new Python process per cell, side by side.

Runs the same grid with ``sweep.py --isolation subprocess`` (a fresh interpreter per cell, the original design)
and ``--isolation fork`` (long-lived workers that fork each cell), in two halves of the datasets taken in the
order subprocess, fork, fork, subprocess (ABBA), so that a machine load that drifts during the measurement hits
both designs alike. Reports, per design: the wall time of the sweep, the per-cell overhead (the cell's wall time
from fork or exec to exit, from its log, minus the training, inference and explanation times it reports) and
whether both designs gave the same test metric for every cell::

    python -m benchmarks.sweep_overhead --openml_cache_dir ../shared/openml_cache              # the issue's grid
    python -m benchmarks.sweep_overhead --methods logistic_regression decision_tree random_forest \\
        --openml_cache_dir ../shared/openml_cache                                            # start-up bound grid
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("inn", "tabresnet", "catboost", "random_forest", "logistic_regression", "decision_tree", "tabnet")
DATASETS = (31, 37, 1464, 54, 11, 29, 50, 1063)
EXIT_LINE = re.compile(r"# exit code 0 after ([\d.]+) s")


def run_sweep(isolation: str, datasets: list[int], args: argparse.Namespace, out: Path) -> float:
    """One sweep over ``datasets`` with the given isolation; returns its wall time in seconds."""
    command = [sys.executable, str(ROOT / "sweep.py"), "--methods", *args.methods, "--datasets",
               *map(str, datasets), "--seeds", args.seeds, "--workers", str(args.workers), "--no_progress",
               "--isolation", isolation, "--output_dir", str(out / isolation)]  # fmt: skip
    if args.openml_cache_dir:
        command += ["--openml_cache_dir", str(args.openml_cache_dir)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"error: the {isolation} sweep failed ({result.returncode}): {result.stderr[-500:]}")
    return wall


def cells(out: Path) -> dict[tuple[str, str, str], dict[str, float]]:
    """Every finished cell of a sweep folder: its wall time, the work it reports, the overhead, its test metric."""
    rows = {}
    for report_path in out.glob("*/*/*/output_info.json"):
        method, dataset, seed = report_path.parts[-4:-1]
        report = json.loads(report_path.read_text())
        found = EXIT_LINE.findall((out / ".sweep" / "logs" / method / dataset / f"{seed}.out").read_text())
        if not found:
            continue
        metrics_time = (report.get("explanation_metrics") or {}).get("time", 0.0) or 0.0
        work = report["train_time"] + report["inference_time"] + report.get("explain_time", 0.0) + metrics_time
        wall = float(found[-1])
        metric = report.get("test_auroc", report.get("test_mse"))
        rows[(method, dataset, seed)] = {"wall": wall, "work": work, "overhead": wall - work, "metric": metric}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--datasets", type=int, nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--openml_cache_dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="where the two sweeps go (default: a temporary folder)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="sweep_overhead_"))
    half = (len(args.datasets) + 1) // 2
    first, second = args.datasets[:half], args.datasets[half:]
    walls = {"subprocess": 0.0, "fork": 0.0}
    for isolation, datasets in (("subprocess", first), ("fork", first), ("fork", second), ("subprocess", second)):
        if datasets:
            load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
            wall = run_sweep(isolation, datasets, args, out)
            walls[isolation] += wall
            print(f"{isolation:<10} datasets {datasets}: {wall:7.1f} s (load average before: {load})", flush=True)
    found = {isolation: cells(out / isolation) for isolation in walls}
    print(f"\n{len(args.methods)} methods x {len(args.datasets)} datasets x seeds {args.seeds}, {args.workers} workers")
    print("| design | cells | sweep wall (s) | overhead median (s) | overhead p90 (s) | overhead max (s) |")
    print("|---|---|---|---|---|---|")
    for isolation, rows in found.items():
        overhead = np.array([row["overhead"] for row in rows.values()])
        print(f"| {isolation} | {len(rows)} | {walls[isolation]:.1f} | {np.median(overhead):.2f} | "
              f"{np.percentile(overhead, 90):.2f} | {overhead.max():.2f} |")  # fmt: skip
    print(f"\nwall time ratio fork / subprocess: {walls['fork'] / walls['subprocess']:.3f}")
    per_method = {}
    for (method, _, _), row in found["fork"].items():
        per_method.setdefault(method, []).append(row["overhead"])
    for method, values in sorted(per_method.items()):
        print(f"  fork overhead median {method}: {np.median(values):.2f} s")
    common = sorted(set(found["fork"]) & set(found["subprocess"]))
    differ = [key for key in common if found["fork"][key]["metric"] != found["subprocess"][key]["metric"]]
    print(f"test metric compared on {len(common)} cells: {len(differ)} differ {differ[:5]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
