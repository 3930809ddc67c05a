"""What a SLURM cluster adds to a sweep: one grid on the local backend and as a job array, same parallelism.

Runs the grid with ``sweep.py --workers N`` and with ``sweep.py --backend slurm --slurm_wait`` on a cluster whose
tasks take ``cores / N`` CPUs each (so N tasks run at once, as N local workers do), in the order local, slurm,
slurm, local (ABBA: a machine load that drifts hits both alike), each run into a fresh folder. Reports per backend
the wall time from the command's start to its end, the cells' own wall times (fork to exit, from their logs), and
the overhead per cell the cluster adds, ``(slurm wall − local wall) × N / cells``; for the array, the time from
submission to start (waiting for a free slot included) and each task's time beyond its cells (``sacct``'s
elapsed time minus its cells' times: its start-up, its worker's imports, its exit). Needs a running cluster
(``tools/slurm_cluster.sh start``)::

    python -m benchmarks.slurm_overhead                                   # 2 methods × 1 dataset × 4 seeds, N = 2
    python -m benchmarks.slurm_overhead --cells_per_task 4 --seeds 0-7    # several cells per task
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from experiments import sweep

ROOT = Path(__file__).resolve().parents[1]
EXIT_LINE = re.compile(r"# exit code 0 after ([\d.]+) s")


def run(command: list[str]) -> float:
    """Run a sweep command from the repository root; returns its wall time in seconds."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(command[1:4])}... failed ({result.returncode}): {result.stderr[-800:]}")
    return wall


def cell_walls(out: Path) -> dict[str, float]:
    """Each finished cell's wall time (fork to exit) from its log, by ``method/dataset/seed``."""
    walls = {}
    for log in (out / ".sweep" / "logs").glob("*/*/*.out"):
        found = EXIT_LINE.findall(log.read_text())
        if found:
            walls["/".join([*log.parent.parts[-2:], log.stem])] = float(found[-1])
    return walls


def array_times(submission: sweep.Submission) -> tuple[list[float], list[float]]:
    """Each task's wait in the queue (submit to start) and its elapsed time, in task order, from ``sacct``."""
    result = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,Submit,Start,ElapsedRaw", "-j", submission.job_id],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {}
    for line in result.stdout.splitlines():
        job, submit, start, elapsed = line.split("|")
        rows[job] = ((datetime.fromisoformat(start) - datetime.fromisoformat(submit)).total_seconds(), float(elapsed))
    found = [rows[task] for task in submission.task_ids]
    return [wait for wait, _ in found], [elapsed for _, elapsed in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["logistic_regression", "decision_tree"])
    parser.add_argument("--datasets", nargs="+", default=["31"])
    parser.add_argument("--seeds", default="0-3")
    parser.add_argument("--workers", type=int, default=2, help="local workers = array tasks running at once")
    parser.add_argument("--cells_per_task", type=int, default=1)
    parser.add_argument("--openml_cache_dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="where the four sweeps go (default: a temporary folder)")
    args = parser.parse_args(argv)
    if subprocess.run(["squeue", "-h"], capture_output=True).returncode != 0:
        raise SystemExit("error: no SLURM cluster answers here; start one with tools/slurm_cluster.sh start")
    out = args.out or Path(tempfile.mkdtemp(prefix="slurm_overhead_"))
    cpus = max(1, sweep.available_cores() // args.workers)
    grid = ["--methods", *args.methods, "--datasets", *args.datasets, "--seeds", args.seeds, "--no_progress"]
    if args.openml_cache_dir:
        grid += ["--openml_cache_dir", str(args.openml_cache_dir)]
    commands = {
        "local": ["--workers", str(args.workers)],
        "slurm": ["--backend", "slurm", "--slurm_wait", "--cells_per_task", str(args.cells_per_task),
                  "--slurm_cpus_per_task", str(cpus), "--slurm_mem_gb", "2", "--slurm_time", "10",
                  "--slurm_array_parallelism", str(args.workers)],
    }  # fmt: skip
    load_before = os.getloadavg()
    walls: dict[str, list[float]] = {"local": [], "slurm": []}
    cells: dict[str, list[float]] = {"local": [], "slurm": []}
    waits, beyond = [], []
    for number, backend in enumerate(("local", "slurm", "slurm", "local")):
        folder = out / f"{number}_{backend}"
        walls[backend].append(run([sys.executable, "sweep.py", *grid, "--output_dir", str(folder), *commands[backend]]))
        cells[backend] += cell_walls(folder).values()
        if backend == "slurm":
            (submission,) = sweep.slurm.earlier_submissions(folder / ".sweep")
            queue, task_elapsed = array_times(submission)
            waits += queue
            spec = sweep.sweep_from_args(sweep.build_parser().parse_args([*grid, "--output_dir", str(folder)]), [])
            by_index = {cell.index: cell for cell in spec.cells()}
            walls_of = cell_walls(folder)
            for task, elapsed in zip(submission.tasks, task_elapsed, strict=True):
                keys = [f"{by_index[i].method}/{by_index[i].dataset.key}/{by_index[i].seed}" for i in task]
                beyond.append(elapsed - sum(walls_of[key] for key in keys))
    load_after = os.getloadavg()
    n_cells = len(cells["local"]) // 2
    local, slurm = sum(walls["local"]) / 2, sum(walls["slurm"]) / 2
    print(
        f"grid: {' '.join(args.methods)} × datasets {' '.join(args.datasets)} × seeds {args.seeds} = {n_cells} cells;"
    )
    print(f"{args.workers} local workers / {args.workers} array tasks at once of {cpus} CPU(s), "
          f"{args.cells_per_task} cell(s) per task; {sweep.available_cores()} cores")  # fmt: skip
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; folders in {out}\n")
    print("| backend | sweep wall (two runs) | mean | cell wall, median | per cell added |")
    print("|---|---|---|---|---|")
    for backend, mean in (("local", local), ("slurm", slurm)):
        added = "" if backend == "local" else f"{(slurm - local) * args.workers / n_cells:.2f} s"
        runs = " / ".join(f"{wall:.1f} s" for wall in walls[backend])
        print(f"| {backend} | {runs} | {mean:.1f} s | {statistics.median(cells[backend]):.2f} s | {added} |")
    print(f"\narray: submit to start (waiting for a free slot included) median {statistics.median(waits):.1f} s, max {max(waits):.1f} s; "
          f"a task's time beyond its cells median {statistics.median(beyond):.1f} s, max {max(beyond):.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
