"""The command line of ``sweep.py``: flags, what to run (the grid, an array task's cells, a list), and which
backend runs it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from argtypes import positive_int
from errors import UserError
from experiments.cli import run_main, variant_name
from experiments.results import METHODS
from experiments.sweep.cells import DEFAULT_ISOLATION, Isolation, threads_per_cell
from experiments.sweep.grid import (
    Cell,
    Sweep,
    expand_datasets,
    method_flags,
    parse_indices,
    parse_methods,
    parse_seeds,
)
from experiments.sweep.local import run_cells
from experiments.sweep.pool import make_runner
from experiments.sweep.slurm import (
    SlurmOptions,
    earlier_submissions,
    still_queued,
    submit_slurm,
    unfinished_by_earlier,
    wait_for_array,
)
from experiments.sweep.state import cell_state, check_output_dir, summary
from methods import REGISTRY

Backend = Literal["local", "slurm"]


#: The default methods of a sweep: every registered method that takes tabular data (not only images).
TABULAR_METHODS = tuple(method for method in METHODS if not REGISTRY[method].image_inputs)


def build_parser() -> argparse.ArgumentParser:
    """The sweep's flags; every other ``--flag`` is passed to the experiment scripts that accept it."""
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description=(
            "Run methods x datasets x seeds as numbered cells (order: datasets, then seeds, then methods), "
            "locally in parallel or as a SLURM job array. Finished cells are skipped; killed cells are redone. "
            "Any other --flag is passed to the experiment scripts that know it."
        ),
        allow_abbrev=False,  # a pass-through flag must never be mistaken for a prefix of a sweep flag
    )
    grid = parser.add_argument_group("grid")
    grid.add_argument(
        "--methods",
        nargs="+",
        default=list(TABULAR_METHODS),
        metavar="METHOD",
        help=f"method ids, space- or comma-separated (default: the {len(TABULAR_METHODS)} for tabular data: "
        f"{', '.join(TABULAR_METHODS)}; image methods such as {', '.join(sorted(set(METHODS) - set(TABULAR_METHODS)))} "
        "only when named)",
    )
    grid.add_argument(
        "--variant",
        type=variant_name,
        default=None,
        help="variant name of every cell: results go to <method>-<variant>/ (e.g. a penalty strength)",
    )
    grid.add_argument(
        "--datasets",
        nargs="+",
        required=True,
        metavar="DATASET",
        help="OpenML ids, suites (paper, cc18, cached = every id in --openml_cache_dir) or data files",
    )
    grid.add_argument("--seeds", nargs="+", default=["0-9"], help="e.g. 0-9, 0,3,5 or 0 1 2 (default 0-9)")
    grid.add_argument("--output_dir", type=Path, default=Path("results"), help="results tree root (default results)")
    grid.add_argument("--openml_cache_dir", type=Path, default=None, help="OpenML cache passed to every cell")
    what = parser.add_argument_group("what to do")
    what.add_argument("--list", action="store_true", help="print the cells and their state, run nothing")
    what.add_argument(
        "--count",
        action="store_true",
        help="print the number of cells (of array tasks with --cells_per_task), run nothing",
    )
    what.add_argument(
        "--task_index",
        type=int,
        default=None,
        help="run exactly this cell, or this array task's cells with --cells_per_task "
        "(default: $SLURM_ARRAY_TASK_ID when set and no --backend is given)",
    )
    what.add_argument(
        "--cells_per_task",
        type=positive_int,
        default=None,
        help="cells per array task: task I runs cells I*K to I*K+K-1 in one process (with --task_index or "
        "$SLURM_ARRAY_TASK_ID); with --backend slurm, K pending cells per submitted task (default 1)",
    )
    what.add_argument(
        "--cells", nargs="+", default=None, metavar="INDEX", help="run exactly these cells, e.g. 3 7-9 or 3,7,8,9"
    )
    what.add_argument("--retry_failed", action="store_true", help="rerun cells that failed before")
    what.add_argument("--backend", choices=("local", "slurm"), default=None, help="default local")
    what.add_argument("--workers", type=positive_int, default=1, help="parallel cells of the local backend")
    what.add_argument(
        "--isolation",
        choices=("fork", "subprocess"),
        default=DEFAULT_ISOLATION,
        help="fork: long-lived workers import the libraries once and fork a child per cell; subprocess: a new "
        f"Python process per cell (~4 s of start-up each) (default {DEFAULT_ISOLATION})",
    )
    what.add_argument("--no_progress", action="store_true", help="no progress bar")
    slurm = parser.add_argument_group("SLURM backend (submitit)")
    slurm.add_argument("--slurm_partition", default=None)
    slurm.add_argument("--slurm_account", default=None)
    slurm.add_argument(
        "--slurm_time", type=positive_int, default=60, help="minutes per cell; a task gets K times that (default 60)"
    )
    slurm.add_argument("--slurm_mem_gb", type=float, default=8.0, help="memory per task in GB (default 8)")
    slurm.add_argument("--slurm_gpus", type=int, default=0, help="GPUs per task (default 0)")
    slurm.add_argument("--slurm_cpus_per_task", type=positive_int, default=2, help="CPUs per task (default 2)")
    slurm.add_argument(
        "--slurm_array_parallelism", type=positive_int, default=64, help="tasks running at once (default 64)"
    )
    slurm.add_argument(
        "--slurm_setup", action="append", default=[], help="shell line run before each task (repeatable)"
    )
    slurm.add_argument(
        "--slurm_log_dir", type=Path, default=None, help="submitit folder (default <output_dir>/.sweep/submitit)"
    )
    slurm.add_argument("--slurm_wait", action="store_true", help="wait for the array to finish")
    slurm.add_argument(
        "--slurm_executor",
        choices=("slurm", "local", "debug"),
        default="slurm",
        help="submitit executor: local/debug run the same submission on this machine (tests, dry runs)",
    )
    return parser


def sweep_from_args(args: argparse.Namespace, passthrough: Sequence[str]) -> Sweep:
    """Build the :class:`Sweep` a parsed command line describes."""
    cache = args.openml_cache_dir.resolve() if args.openml_cache_dir is not None else None
    return Sweep(
        methods=tuple(parse_methods(args.methods)),
        datasets=tuple(expand_datasets(args.datasets, cache)),
        seeds=tuple(parse_seeds(args.seeds)),
        output_dir=args.output_dir.resolve(),
        openml_cache_dir=cache,
        passthrough=tuple(passthrough),
        variant=args.variant,
    )


def print_cells(sweep: Sweep, cells: Sequence[Cell]) -> Counter[str]:
    """Print one line per cell with its state, then the counts."""
    states: Counter[str] = Counter()
    width = len(str(max((cell.index for cell in cells), default=0)))
    print(f"{'index':>{max(width, 5)}}  {'method':<19} {'dataset':<10} {'seed':>4}  state")
    for cell in cells:
        state = cell_state(sweep, cell)
        states[state] += 1
        print(f"{cell.index:>{max(width, 5)}}  {cell.method:<19} {cell.dataset.key:<10} {cell.seed:>4}  {state}")
    print(summary(len(cells), states))
    return states


def selected_cells(args: argparse.Namespace, cells: Sequence[Cell]) -> list[Cell] | None:
    """The cells ``--cells``, ``--task_index`` or ``$SLURM_ARRAY_TASK_ID`` pick, or None for the whole grid.

    Task ``I`` with ``--cells_per_task K`` is cells ``I*K`` to ``I*K+K-1`` (the last task may have fewer).

    Raises:
        UserError: an index out of range, ``--cells`` with ``--task_index``, or a ``$SLURM_ARRAY_TASK_ID`` that
            is not a number (an array task must never run the whole grid).
    """
    if args.cells is not None:
        if args.task_index is not None:
            raise UserError("--cells and --task_index exclude each other")
        indices = parse_indices(args.cells)
        outside = [index for index in indices if index >= len(cells)]
        if outside:
            raise UserError(f"--cells {outside[0]} is out of range: the sweep has {len(cells)} cells (0-based)")
        return [cells[index] for index in indices]
    index, source = args.task_index, "--task_index"
    if index is None and args.backend is None and not (args.list or args.count):
        text = os.environ.get("SLURM_ARRAY_TASK_ID", "").strip()
        if text:
            if not text.isdigit():
                raise UserError(
                    f"SLURM_ARRAY_TASK_ID is {text!r}, not a task number; pass --task_index, "
                    "or --backend local to run the whole grid"
                )
            index, source = int(text), "SLURM_ARRAY_TASK_ID"
    if index is None:
        return None
    per_task = args.cells_per_task or 1
    tasks = math.ceil(len(cells) / per_task)
    if not 0 <= index < tasks:
        grid = f"{len(cells)} cells" if per_task == 1 else f"{len(cells)} cells in {tasks} tasks of {per_task}"
        raise UserError(f"{source} {index} is out of range: the sweep has {grid} (0-based)")
    return list(cells[index * per_task : (index + 1) * per_task])


def run(args: argparse.Namespace, passthrough: Sequence[str]) -> int:
    """Carry out a parsed sweep command; returns the exit code."""
    sweep = sweep_from_args(args, passthrough)
    cells = sweep.cells()
    selected = selected_cells(args, cells)
    if args.count:
        print(len(cells) if args.cells_per_task is None else math.ceil(len(cells) / args.cells_per_task))
        return 0
    if args.list:
        check_output_dir(sweep.output_dir, writable=False)
        print_cells(sweep, cells if selected is None else selected)
        return 0
    flags = method_flags(sweep)
    check_output_dir(sweep.output_dir)
    isolation: Isolation = args.isolation
    threads = threads_per_cell(args.workers)
    if selected is not None:  # an array task (or a hand-picked list): its cells, a line each
        workers = min(args.workers, len(selected))
        if not any(_wanted(sweep, cell, args.retry_failed) for cell in selected):
            isolation = "subprocess"  # nothing will start: no worker to warm up for "already done"
        runner = make_runner(
            sweep, flags, isolation=isolation, workers=workers, threads=threads, retry_failed=args.retry_failed
        )
        outcomes = run_cells(runner, selected, workers, progress=False, verbose=True)
        if outcomes is None or outcomes["interrupted"]:
            return 143
        return 1 if outcomes["failed"] else 0

    todo = [cell for cell in cells if _wanted(sweep, cell, args.retry_failed)]
    print(f"{len(cells)} cells, {len(todo)} to run ({len(cells) - len(todo)} done or failed before)")
    if args.backend == "slurm":
        options = SlurmOptions(
            executor=args.slurm_executor,
            partition=args.slurm_partition,
            time_min=args.slurm_time,
            mem_gb=args.slurm_mem_gb,
            gpus=args.slurm_gpus,
            cpus_per_task=args.slurm_cpus_per_task,
            array_parallelism=args.slurm_array_parallelism,
            account=args.slurm_account,
            setup=tuple(args.slurm_setup),
            log_dir=args.slurm_log_dir.resolve() if args.slurm_log_dir is not None else None,
            wait=args.slurm_wait,
            cells_per_task=args.cells_per_task or 1,
        )
        if options.executor == "slurm":
            todo = _not_queued_already(sweep, todo)
        if not todo:
            return 0
        submission = submit_slurm(sweep, todo, options, retry_failed=args.retry_failed, isolation=isolation)
        jobs = submission.jobs
        print(f"submitted {len(jobs)} array tasks, first job {jobs[0].job_id}; logs in {jobs[0].paths.folder}")
        # Jobs of the local and debug executors live only as long as this process: always wait for them.
        if options.wait or options.executor != "slurm":
            return wait_for_array(sweep, cells, submission, executor=options.executor, progress=not args.no_progress)
        print("follow with: python sweep.py <the same grid flags> --list")
        return 0

    if not todo:
        print(summary(len(cells), Counter(cell_state(sweep, cell) for cell in cells)))
        return 0
    workers = min(args.workers, len(todo))  # threads stay a share of --workers, as for the full grid
    runner = make_runner(
        sweep, flags, isolation=isolation, workers=workers, threads=threads, retry_failed=args.retry_failed
    )
    start = time.monotonic()
    outcomes = run_cells(runner, todo, workers, progress=not args.no_progress, verbose=False)
    if outcomes is None:
        return 143
    states = Counter(cell_state(sweep, cell) for cell in cells)
    print(
        f"this run: {outcomes['done']} done, {outcomes['failed']} failed, {outcomes['busy']} busy elsewhere "
        f"in {time.monotonic() - start:.0f} s with {workers} worker(s), isolation {isolation}"
    )
    print(summary(len(cells), states))
    if outcomes["interrupted"]:
        # A signal reached the cells but not this process (its SIGINT ignored, as under nohup or `&` in a script,
        # or a cell killed by hand): they stay pending, and the sweep has not finished what it was asked to.
        print(
            f"error: {outcomes['interrupted']} cell(s) stopped from outside (a signal) and left pending; "
            "rerun the same command to finish them",
            file=sys.stderr,
        )
        return 143
    return 1 if outcomes["failed"] else 0


def _not_queued_already(sweep: Sweep, todo: list[Cell]) -> list[Cell]:
    """``todo`` without the cells of earlier array tasks still in the queue; says how earlier tasks that held the
    other cells ended (a time-out, a cancellation), so a rerun tells what it redoes and why."""
    earlier = earlier_submissions(sweep.state_dir)
    if not earlier:
        return todo
    queued = still_queued(earlier)
    held = [cell for cell in todo if cell.index in queued]
    if held:
        tasks = sorted({queued[cell.index] for cell in held})
        print(
            f"{len(held)} of them already queued in array task(s) {', '.join(tasks)}: not submitted again "
            "(scancel them to resubmit)"
        )
    todo = [cell for cell in todo if cell.index not in queued]
    for line in unfinished_by_earlier(sweep, todo, earlier):
        print(f"left by an earlier submission: {line}")
    return todo


def _wanted(sweep: Sweep, cell: Cell, retry_failed: bool) -> bool:
    state = cell_state(sweep, cell)
    return state == "pending" or (state == "failed" and retry_failed)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sweep.py``; returns the exit code (2 for a user error)."""
    parser = build_parser()
    args, passthrough = parser.parse_known_args(argv)
    code = 0

    def work() -> None:
        nonlocal code
        code = run(args, passthrough)

    return run_main(work) or code
