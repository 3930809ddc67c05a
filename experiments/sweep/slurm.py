"""The SLURM backend: pending cells submitted as one job array through submitit, several cells per array task.

Each array task runs ``sweep.py <grid> --cells <its cells>``: the same code as a local sweep, in one process. A
task stopped from outside (``scancel``, its time limit, ``scontrol requeue``, pre-emption) gets SIGTERM: it stops
its running cell, which stays pending (nothing half-written), and exits; a requeued task runs its cells again and
skips those done. Each submission is recorded in ``<output_dir>/.sweep/slurm/<job id>.json`` (the cells of each
array task), so a later command can say how the tasks of an earlier one ended (``sacct``) and does not submit
again the cells of tasks still in the queue (``squeue``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from errors import UserError
from experiments.results import write_json_atomic
from experiments.sweep.cells import DEFAULT_ISOLATION, Isolation
from experiments.sweep.grid import REPO_ROOT, Cell, Sweep, format_indices, parse_indices
from experiments.sweep.state import cell_state, summary

#: The script an array task runs (``sweep.py <grid> --cells <its cells>``).
SWEEP_SCRIPT = REPO_ROOT / "sweep.py"
SubmititCluster = Literal["slurm", "local", "debug"]
#: Job states of a task still in the queue (``squeue``): its cells may still run.
QUEUED_STATES = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "COMPLETING",
                 "CONFIGURING", "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "PREEMPTED"}  # fmt: skip
#: How a task that ended without finishing its cells ended (final ``sacct`` states), in words.
ENDINGS = {
    "TIMEOUT": "timed out",
    "CANCELLED": "was cancelled",
    "OUT_OF_MEMORY": "ran out of memory (--slurm_mem_gb)",
    "NODE_FAIL": "was lost with its node",
    "PREEMPTED": "was pre-empted",
    "BOOT_FAIL": "never started (node boot failure)",
    "DEADLINE": "passed its deadline",
    "FAILED": "failed",
    "COMPLETED": "completed",
}


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of each array task and of the array (see ``--slurm_*`` flags)."""

    executor: SubmititCluster = "slurm"
    partition: str | None = None
    time_min: int = 60
    mem_gb: float = 8.0
    gpus: int = 0
    cpus_per_task: int = 2
    array_parallelism: int = 64
    account: str | None = None
    setup: tuple[str, ...] = ()
    log_dir: Path | None = None
    wait: bool = False
    cells_per_task: int = 1


def task_command(sweep: Sweep, retry_failed: bool, isolation: Isolation = DEFAULT_ISOLATION) -> list[str]:
    """The sweep command an array task runs, missing only its trailing cell indices (``--cells 3,7-9``).

    Datasets are written out (suites expanded), so a cache that changes after submission cannot shift
    the cell indices.
    """
    command = [
        sys.executable,
        str(SWEEP_SCRIPT),
        "--methods",
        *sweep.methods,
        "--datasets",
        *(dataset.token() for dataset in sweep.datasets),
        "--seeds",
        ",".join(str(seed) for seed in sweep.seeds),
        "--output_dir",
        str(sweep.output_dir),
        "--isolation",
        isolation,
        "--no_progress",
    ]
    if sweep.openml_cache_dir is not None:
        command += ["--openml_cache_dir", str(sweep.openml_cache_dir)]
    if sweep.variant is not None:
        command += ["--variant", sweep.variant]
    if retry_failed:
        command.append("--retry_failed")
    return [*command, *sweep.passthrough, "--cells"]


@dataclass
class Submission:
    """One job array: its job id and the cells of each array task (task ``i`` runs ``tasks[i]``).

    Attributes:
        job_id: the array's job id (submitit's local executor: the first task's id).
        tasks: cell indices per array task.
        task_ids: each task's id, ``<job>_<task>`` (a one-task submission is a plain job: its id).
        time_min: minutes per cell (a task gets ``len(tasks[i])`` times that).
        logs: each task's log (its cells' lines, and submitit's).
        jobs: submitit's job of each task (this process only; not recorded).
    """

    job_id: str
    tasks: tuple[tuple[int, ...], ...]
    task_ids: tuple[str, ...]
    time_min: int
    logs: tuple[str, ...] = ()
    jobs: list[Any] = field(default_factory=list, repr=False)

    def task_id(self, task: int) -> str:
        return self.task_ids[task]

    def save(self, state_dir: Path) -> None:
        record = {
            "job_id": self.job_id,
            "submitted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "time_min_per_cell": self.time_min,
            "tasks": [format_indices(task) for task in self.tasks],
            "task_ids": list(self.task_ids),
            "logs": list(self.logs),
        }
        write_json_atomic(records_dir(state_dir) / f"{self.job_id}.json", record)

    @classmethod
    def load(cls, path: Path) -> Submission:
        record = json.loads(path.read_text())
        tasks = tuple(tuple(parse_indices([text])) for text in record["tasks"])
        task_ids = tuple(str(task) for task in record["task_ids"])
        if len(task_ids) != len(tasks):
            raise ValueError("a task id per task")
        # A record is read from the results tree, which may come from anyone: ids go to squeue/sacct as arguments
        # and logs are only shown, but nothing that is not a SLURM id or text is taken.
        job_id = str(record["job_id"])
        if not all(re.fullmatch(r"\d+(_\d+)?", text) for text in (job_id, *task_ids)):
            raise ValueError(f"{path}: job and task ids must be SLURM ids")
        logs = tuple(record["logs"])
        if not all(isinstance(log, str) for log in logs):
            raise ValueError(f"{path}: logs must be paths as text")
        return cls(job_id, tasks, task_ids, int(record["time_min_per_cell"]), logs)


def records_dir(state_dir: Path) -> Path:
    return state_dir / "slurm"


def earlier_submissions(state_dir: Path) -> list[Submission]:
    """The recorded submissions of this results tree, oldest first (unreadable records are skipped)."""
    submissions = []
    for path in records_dir(state_dir).glob("*.json"):
        try:
            submissions.append(Submission.load(path))
        except (OSError, ValueError, KeyError, TypeError, UserError):
            continue
    return sorted(submissions, key=lambda s: [int(part) for part in re.findall(r"\d+", s.job_id)] or [0])


def submit_slurm(
    sweep: Sweep,
    cells: Sequence[Cell],
    options: SlurmOptions,
    *,
    retry_failed: bool,
    isolation: Isolation = DEFAULT_ISOLATION,
) -> Submission:
    """Submit ``cells`` as one job array through submitit, ``options.cells_per_task`` cells per array task.

    Each task runs ``sweep.py ... --cells <its cells>``: one process that runs its cells one after another,
    each in its own forked child (or subprocess), so the start-up is paid once per task. Its time limit is
    ``options.time_min`` per cell. With ``options.executor`` ``local`` or ``debug`` the same submission runs on
    this machine (submitit's local and in-process executors), which is how the path is tested without a cluster.
    """
    import submitit
    from submitit.helpers import CommandFunction

    folder = options.log_dir or sweep.state_dir / "submitit"
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=options.executor)
    except RuntimeError as error:  # submitit's "Could not detect srun": not on a SLURM login node
        raise UserError(f"cannot submit to SLURM here: {error}") from None
    per_task = max(1, options.cells_per_task)
    parameters: dict[str, Any] = {
        "name": "inn-sweep",
        "timeout_min": options.time_min * per_task,
        "mem_gb": options.mem_gb,
        "cpus_per_task": options.cpus_per_task,
        "slurm_array_parallelism": options.array_parallelism,
        # submitit asks SLURM for SIGUSR2 90 s before the time limit, on which it ends a task that cannot
        # checkpoint at once (FAILED, not TIMEOUT; with --slurm_time 1 as soon as it starts) and SIGUSR2 kills
        # the sweep and its cells. The sweep needs no warning: at the limit SIGTERM stops the running cell,
        # which stays pending. SIGURG, ignored by every process unless it asks for it, takes USR2's place.
        "slurm_additional_parameters": {"signal": "URG@90"},
    }
    if options.gpus > 0:  # "--gpus-per-node=0" is rejected by some clusters: leave it out
        parameters["gpus_per_node"] = options.gpus
    if options.partition:
        parameters["slurm_partition"] = options.partition
    if options.account:
        parameters["slurm_account"] = options.account
    if options.setup:
        parameters["slurm_setup"] = list(options.setup)
    executor.update_parameters(**parameters)
    # verbose: the task's lines (one per cell) go to its log in the submitit folder too.
    function = CommandFunction(task_command(sweep, retry_failed, isolation), verbose=True, cwd=Path.cwd())
    chunks = [tuple(cell.index for cell in cells[start : start + per_task]) for start in range(0, len(cells), per_task)]
    jobs = executor.map_array(function, [format_indices(chunk) for chunk in chunks])
    task_ids = tuple(str(job.job_id) for job in jobs)
    logs = tuple(str(job.paths.stdout) for job in jobs)
    submission = Submission(task_ids[0].split("_")[0], tuple(chunks), task_ids, options.time_min, logs, jobs)
    if options.executor == "slurm":
        submission.save(sweep.state_dir)
    return submission


# ----------------------------------------------------------------------------------------------------------
# The queue and the accounting


def _slurm(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def queued_tasks(job_ids: Sequence[str]) -> dict[str, str] | None:
    """``{"<job>_<task>": state}`` of the array tasks of ``job_ids`` still in the queue (``squeue``); None when
    ``squeue`` cannot answer (slurmctld unreachable)."""
    if not job_ids:
        return {}
    try:
        result = _slurm(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(job_ids)])
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        # every id purged from the queue: "Invalid job id specified"; anything else: no answer
        return {} if "Invalid job id" in result.stderr else None
    tasks = {}
    for line in result.stdout.splitlines():
        task, _, state = line.strip().partition("|")
        tasks[task] = state
    return tasks


def task_endings(job_ids: Sequence[str]) -> dict[str, str]:
    """``{"<job>_<task>": state}`` from the accounting (``sacct``) for the tasks of ``job_ids``; pending ranges
    (``12_[3-5]``) are expanded, ``CANCELLED by 0`` is ``CANCELLED``. Empty when ``sacct`` cannot answer."""
    if not job_ids:
        return {}
    try:
        result = _slurm(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)])
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states: dict[str, str] = {}
    for line in result.stdout.splitlines() if result.returncode == 0 else []:
        job, _, state = line.strip().partition("|")
        state = state.split()[0] if state else "UNKNOWN"
        match = re.fullmatch(r"(\d+)_\[([\d,\-%]+)\]", job)
        if match:
            ranges = match.group(2).split("%")[0]
            for index in parse_indices([ranges]):
                states[f"{match.group(1)}_{index}"] = state
        else:
            states[job] = state
    return states


def still_queued(submissions: Sequence[Submission]) -> dict[int, str]:
    """The cells of recorded array tasks that are still in the queue: ``{cell index: "<job>_<task>"}``."""
    queued = queued_tasks([s.job_id for s in submissions]) or {}
    cells = {}
    for submission in submissions:
        for task, indices in enumerate(submission.tasks):
            if submission.task_id(task) in queued:
                cells.update(dict.fromkeys(indices, submission.task_id(task)))
    return cells


def unfinished_by_earlier(sweep: Sweep, cells: Sequence[Cell], submissions: Sequence[Submission]) -> list[str]:
    """Lines on how the array tasks that last held ``cells`` ended (``sacct``), for cells still not done."""
    last: dict[int, tuple[Submission, int]] = {}
    for submission in submissions:  # oldest first: the last record of a cell wins
        for task, indices in enumerate(submission.tasks):
            for index in indices:
                last[index] = (submission, task)
    held = {cell.index: last[cell.index] for cell in cells if cell.index in last}
    if not held:
        return []
    endings = task_endings(sorted({submission.job_id for submission, _ in held.values()}))
    groups: dict[tuple[str, str], list[int]] = {}
    for index, (submission, task) in held.items():
        state = endings.get(submission.task_id(task), "UNKNOWN")
        groups.setdefault((submission.task_id(task), state), []).append(index)
    by_index = {cell.index: cell for cell in cells}
    return [
        f"{by_index[indices[0]].describe() if len(indices) == 1 else 'cells ' + format_indices(sorted(indices))}: "
        f"array task {task} {ENDINGS.get(state, state)} ({state})"
        for (task, state), indices in sorted(groups.items())
    ]


# ----------------------------------------------------------------------------------------------------------
# Waiting for an array


def wait_for_array(
    sweep: Sweep,
    grid: Sequence[Cell],
    submission: Submission,
    *,
    executor: SubmititCluster = "slurm",
    progress: bool = True,
    poll_s: float | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Follow the array until no task of it is queued, with a progress bar over its cells (done / running /
    pending / failed, read from the results tree), then say what is not done and why; returns the exit code
    (0: every submitted cell done; 1 otherwise).

    ``executor`` ``local``/``debug``: submitit's own jobs on this machine, followed through submitit.
    """
    from tqdm import tqdm

    by_index = {cell.index: cell for cell in grid}
    cells = [by_index[index] for task in submission.tasks for index in task]
    poll_s = poll_s if poll_s is not None else max(2.0, len(cells) / 500)
    bar = tqdm(total=len(cells), desc="sweep", unit="cell", disable=not progress, dynamic_ncols=True)
    said_unreachable = False
    try:
        while True:
            states = Counter(cell_state(sweep, cell) for cell in cells)
            bar.n = states["done"] + states["failed"]
            bar.set_postfix({key: states[key] for key in ("done", "running", "pending", "failed")}, refresh=False)
            bar.refresh()
            if executor != "slurm":
                if all(job.done() for job in submission.jobs):
                    break
            else:
                queued = queued_tasks([submission.job_id])
                if queued == {}:
                    break
                if queued is None and not said_unreachable:  # the controller is restarting? keep waiting
                    bar.write("squeue does not answer; still waiting for the array")
                    said_unreachable = True
            time.sleep(poll_s)
    finally:
        bar.close()
    return report_array(sweep, grid, submission, executor=executor, out=out)


def report_array(
    sweep: Sweep,
    grid: Sequence[Cell],
    submission: Submission,
    *,
    executor: SubmititCluster = "slurm",
    out: Callable[[str], None] = print,
    settle_s: float = 30.0,
) -> int:
    """After an array: each failed cell with its error and logs, each task that ended with cells not done and
    how it ended (``sacct``, which may lag the queue by seconds), the grid's counts; returns the exit code."""
    by_index = {cell.index: cell for cell in grid}
    endings: dict[str, str] = {}
    if executor == "slurm":
        deadline = time.monotonic() + settle_s
        wanted = {submission.task_id(task) for task in range(len(submission.tasks))}
        while True:
            endings = task_endings([submission.job_id])
            if all(endings.get(task, "PENDING") not in QUEUED_STATES for task in wanted) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    incomplete = 0
    for task, indices in enumerate(submission.tasks):
        left = []
        for index in indices:
            cell = by_index[index]
            state = cell_state(sweep, cell)
            if state == "failed":
                incomplete += 1
                out(f"{cell.describe()} failed: {_failure(sweep, cell)}")
            elif state != "done":
                incomplete += 1
                left.append(index)
        if left:
            state = endings.get(submission.task_id(task), "UNKNOWN")
            why = ENDINGS.get(state, f"ended {state}")
            if state == "TIMEOUT":
                limit = submission.time_min * len(indices)
                why += f" after its {limit} min (--slurm_time {submission.time_min} per cell; rerun with more)"
            log = submission.logs[task] if task < len(submission.logs) else "its submitit log"
            what = by_index[left[0]].describe() if len(left) == 1 else f"cells {format_indices(left)}"
            out(f"{what} not done: array task {submission.task_id(task)} {why}; see {log}")
    states = Counter(cell_state(sweep, cell) for cell in grid)
    out(summary(len(grid), states))
    if incomplete and states["pending"]:
        out("rerun the same command to submit the cells left (failed ones with --retry_failed)")
    return 1 if incomplete else 0


def _failure(sweep: Sweep, cell: Cell) -> str:
    """The reason and last stderr line of a failed cell's error.json, and where to read more."""
    try:
        error = json.loads(sweep.error_path(cell).read_text())
        tail = [line for line in error.get("stderr_tail", []) if line.strip()]
        reason = error.get("reason", "see the error file") + (f": {tail[-1].strip()}" if tail else "")
    except (OSError, ValueError, AttributeError):
        reason = "see the error file"
    return f"{reason}; {sweep.error_path(cell)}, log {sweep.log_paths(cell)[1]}"
