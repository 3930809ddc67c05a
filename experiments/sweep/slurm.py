"""The SLURM backend: pending cells submitted as one job array through submitit, several cells per array task.

Each array task runs ``sweep.py <grid> --cells <its cells>``: the same code as a local sweep, in one process.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from errors import UserError
from experiments.sweep.cells import DEFAULT_ISOLATION, Isolation
from experiments.sweep.grid import REPO_ROOT, Cell, Sweep, format_indices

#: The script an array task runs (``sweep.py <grid> --cells <its cells>``).
SWEEP_SCRIPT = REPO_ROOT / "sweep.py"
SubmititCluster = Literal["slurm", "local", "debug"]


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


def submit_slurm(
    sweep: Sweep,
    cells: Sequence[Cell],
    options: SlurmOptions,
    *,
    retry_failed: bool,
    isolation: Isolation = DEFAULT_ISOLATION,
) -> list[Any]:
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
    chunks = [cells[start : start + per_task] for start in range(0, len(cells), per_task)]
    return executor.map_array(function, [format_indices([cell.index for cell in chunk]) for chunk in chunks])


def wait_for_jobs(jobs: Sequence[Any], *, progress: bool = True) -> int:
    """Wait for submitted jobs; returns how many ended in an error (a failed cell fails its task)."""
    from tqdm import tqdm

    failures = 0
    for job in tqdm(jobs, desc="jobs", unit="task", disable=not progress):
        try:
            job.result()
        except Exception:
            failures += 1
    return failures
