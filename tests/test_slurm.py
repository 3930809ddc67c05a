"""The SLURM backend on a real one-node cluster (``tools/slurm_cluster.sh``): a grid through a job array with several
cells per task and the same results as the local backend, ``scancel`` of a task mid-cell, ``scontrol requeue``
(pre-emption), a failing cell, a time-out, and two submissions of one grid at once.

A session fixture starts the cluster, or finds it running (``.ci/run`` starts it before the tests). The tests are
skipped, with the reason, only where no cluster can be started: not root, not Debian, no apt-get. Every wait is for
something observable (a cell's state in the results tree, the queue, the accounting) with a generous limit, never
a fixed time. The cells are tiny: logistic regression, decision trees, and INN at smoke settings on the embedded
credit-g; a cell that must still run when it is cancelled, requeued or timed out trains for 10^5 epochs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from experiments import sweep
from experiments.results import read_report

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTER = REPO_ROOT / "tools" / "slurm_cluster.sh"
#: INN at smoke settings (flags only main_experiment.py knows: only in grids with INN).
SMOKE = ["--hidden_size", "16", "--nr_blocks", "1", "--batch_size", "32", "--device", "cpu"]
#: Small array tasks: one CPU (the node has two), little memory, at most 10 minutes per cell.
TASKS = ["--backend", "slurm", "--slurm_cpus_per_task", "1", "--slurm_mem_gb", "2", "--no_progress"]
LONG = 600.0  # seconds: the most any wait here may take on a loaded 2-core machine


@pytest.fixture(scope="session")
def cluster() -> Iterator[str]:
    """The cluster's state folder: started for this session if it is not running (and stopped after)."""
    state = os.environ.get("SLURM_CLUSTER_DIR", "/tmp/inn-slurm-cluster")
    if subprocess.run(["bash", str(CLUSTER), "status", state], capture_output=True).returncode == 0:
        yield state
        return
    start = subprocess.run(["bash", str(CLUSTER), "start", state], capture_output=True, text=True, timeout=1800)
    if start.returncode == 3:  # no cluster can be started on this machine: say why
        reason = start.stderr.strip().splitlines()[-1]
        print(reason)
        pytest.skip(reason)
    assert start.returncode == 0, f"tools/slurm_cluster.sh start failed:\n{start.stdout}\n{start.stderr}"
    try:
        yield state
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop", state], capture_output=True, timeout=300)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = LONG) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def grid(out: Path, methods: list[str], seeds: str) -> list[str]:
    return ["--methods", *methods, "--datasets", "31", "--seeds", seeds, "--output_dir", str(out)]


def spec_of(args: list[str]) -> sweep.Sweep:
    return sweep.sweep_from_args(sweep.build_parser().parse_args(args), [])


def submissions(out: Path) -> list[sweep.Submission]:
    """The job arrays submitted for ``out``, oldest first."""
    return sweep.slurm.earlier_submissions(out / ".sweep")


def leave_the_queue(submission: sweep.Submission) -> None:
    wait_for(lambda: sweep.queued_tasks([submission.job_id]) == {}, f"job {submission.job_id} to leave the queue")


def accounted(task: str) -> list[str]:
    """Every state the accounting holds for an array task, oldest first (a requeued task has several)."""
    result = subprocess.run(
        ["sacct", "-n", "-X", "-D", "-P", "-o", "State", "-j", task], capture_output=True, text=True
    )
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def settled(task: str, state: str) -> Callable[[], bool]:
    return lambda: accounted(task)[-1:] == [state]


def cell_lines(out: Path) -> Counter[str]:
    """How often each task log says ``cell N (...): <outcome>``, by ``"N: outcome"`` (submitit's logs append, so a
    requeued task's attempts are all there)."""
    lines: Counter[str] = Counter()
    for log in (out / ".sweep" / "submitit").glob("*_log.out"):
        for match in re.finditer(r"^cell (\d+) \([^)]*\): (.*)$", log.read_text(), flags=re.MULTILINE):
            lines[f"{match.group(1)}: {match.group(2)}"] += 1
    return lines


def nothing_half_written(spec: sweep.Sweep, cell: sweep.Cell) -> bool:
    run_dir = spec.run_dir(cell)
    return not spec.results_path(cell).exists() and not (run_dir.exists() and any(run_dir.iterdir()))


def test_a_grid_runs_through_a_job_array_as_it_runs_here(
    cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Six cells (INN, logistic regression, a decision tree × two seeds) in two array tasks of up to four cells,
    waited for with progress; then the same grid on the local backend: identical results, to the last bit."""
    methods, seeds = ["inn", "logistic_regression", "decision_tree"], "0-1"
    threads = sweep.threads_per_cell(2)  # a local cell's threads with two workers; an array task gets as many CPUs
    slurm_out, local_out = tmp_path / "slurm", tmp_path / "local"
    slurm = [*TASKS, "--slurm_cpus_per_task", str(threads), "--cells_per_task", "4", "--slurm_wait"]
    slurm.remove("--no_progress")
    assert sweep.main([*grid(slurm_out, methods, seeds), *slurm, "--nr_epochs", "3", *SMOKE]) == 0
    captured = capsys.readouterr()
    assert "submitted 2 array tasks" in captured.out
    assert re.search(r"done=\d+, running=\d+, pending=\d+, failed=\d+", captured.err), "no progress shown"
    assert captured.out.splitlines()[-1] == "6 cells: 6 done, 0 failed, 0 running, 0 pending"
    (submission,) = submissions(slurm_out)
    assert submission.tasks == ((0, 1, 2, 3), (4, 5))
    assert all(settled(task, "COMPLETED")() for task in submission.task_ids)
    assert cell_lines(slurm_out) == Counter({f"{index}: done": 1 for index in range(6)})

    local = ["--workers", "2", "--no_progress", "--nr_epochs", "3", *SMOKE]
    assert sweep.main([*grid(local_out, methods, seeds), *local]) == 0
    spec = spec_of(grid(slurm_out, methods, seeds))
    for cell in spec.cells():
        ran, here = spec.run_dir(cell), local_out / cell.method / "31" / str(cell.seed)
        a, b = read_report(ran / "output_info.json"), read_report(here / "output_info.json")
        metrics = [key for key in a if key.startswith(("train_", "test_")) and not key.endswith("_time")]
        assert "test_auroc" in metrics and {k: a[k] for k in metrics} == {k: b[k] for k in metrics}, cell.describe()
        assert a.get("epoch_losses") == b.get("epoch_losses")
        with np.load(ran / "explanations.npz") as x, np.load(here / "explanations.npz") as y:
            assert sorted(x.files) == sorted(y.files)
            for name in x.files:
                np.testing.assert_array_equal(x[name], y[name], err_msg=f"{cell.describe()}: {name}")


def test_scancel_of_a_task_mid_cell_leaves_the_cell_pending_and_the_rerun_submits_only_it(
    cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "results"
    args = grid(out, ["inn", "logistic_regression"], "0")
    spec = spec_of(args)
    inn, linear = spec.cells()
    assert sweep.main([*args, *TASKS, "--nr_epochs", "100000", *SMOKE]) == 0
    (first,) = submissions(out)
    wait_for(lambda: sweep.cell_state(spec, inn) == "running", "the INN cell to run")
    subprocess.run(["scancel", first.task_id(0)], check=True)
    leave_the_queue(first)
    wait_for(settled(first.task_id(0), "CANCELLED"), "sacct to record the cancellation")
    assert sweep.cell_state(spec, inn) == "pending" and nothing_half_written(spec, inn)
    assert not spec.error_path(inn).exists()
    assert sweep.cell_state(spec, linear) == "done"
    assert "0: done" not in cell_lines(out)

    capsys.readouterr()
    assert sweep.main([*args, *TASKS, "--slurm_wait", "--nr_epochs", "2", *SMOKE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2 cells, 1 to run (1 done or failed before)" in lines
    assert (
        f"left by an earlier submission: {inn.describe()}: array task {first.task_id(0)} was cancelled (CANCELLED)"
        in lines
    )
    assert "submitted 1 array tasks" in "\n".join(lines)
    assert submissions(out)[-1].tasks == ((inn.index,),)
    assert sweep.cell_state(spec, inn) == "done"
    assert cell_lines(out) == Counter({"0: done": 1, "1: done": 1})


def test_a_requeued_task_redoes_its_running_cell_once(cluster: str, tmp_path: Path) -> None:
    """``scontrol requeue`` of a task while its INN cell trains (SIGTERM, then the task runs again ~11 s later):
    between the attempts the cell is pending with nothing written, not done, not failed; the second attempt redoes
    it; it is done once."""
    out = tmp_path / "results"
    args = grid(out, ["inn", "logistic_regression"], "0")
    spec = spec_of(args)
    inn, _ = spec.cells()
    assert sweep.main([*args, *TASKS, "--nr_epochs", "500", *SMOKE]) == 0
    (submission,) = submissions(out)
    task = submission.task_id(0)
    wait_for(lambda: sweep.cell_state(spec, inn) == "running", "the INN cell to run")
    subprocess.run(["scontrol", "requeue", task], check=True)
    # Requeued: back in the queue, waiting to run again; the first attempt has ended (its lock is free).
    wait_for(lambda: sweep.queued_tasks([submission.job_id]).get(task) == "PENDING", "the task to be pending again")
    wait_for(lambda: sweep.cell_state(spec, inn) != "running", "the first attempt to end")
    assert sweep.cell_state(spec, inn) == "pending" and nothing_half_written(spec, inn)
    assert not spec.error_path(inn).exists()
    leave_the_queue(submission)
    wait_for(settled(task, "COMPLETED"), "sacct to record the second attempt")
    assert accounted(task) == ["REQUEUED", "COMPLETED"]
    assert sweep.cell_state(spec, inn) == "done"
    assert cell_lines(out) == Counter({"0: done": 1, "1: done": 1})
    log = Path(submission.logs[0]).with_name(Path(submission.logs[0]).name.replace("_log.out", "_log.err"))
    assert "running cells stopped and left pending" in log.read_text()  # the first attempt, told by SIGTERM


def test_a_failing_cell_is_reported_with_its_log_and_the_array_goes_on(
    cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """INN with a learning rate that makes it diverge fails in both tasks; the cell after it in each task runs."""
    out = tmp_path / "results"
    args = grid(out, ["inn", "logistic_regression"], "0-1")
    spec = spec_of(args)
    flags = ["--cells_per_task", "2", "--slurm_wait", "--nr_epochs", "2", "--learning_rate", "1e30", *SMOKE]
    assert sweep.main([*args, *TASKS, *flags]) == 1
    lines = capsys.readouterr().out.splitlines()
    for cell in spec.cells():
        if cell.method == "logistic_regression":
            assert sweep.cell_state(spec, cell) == "done"
            continue
        assert sweep.cell_state(spec, cell) == "failed"
        error = json.loads(spec.error_path(cell).read_text())
        assert error["returncode"] == 2 and any("diverged" in line for line in error["stderr_tail"])
        (line,) = [line for line in lines if line.startswith(f"{cell.describe()} failed: ")]
        assert "training diverged" in line and str(spec.error_path(cell)) in line
        assert str(spec.log_paths(cell)[1]) in line and spec.log_paths(cell)[1].exists()
    assert lines[-1] == "4 cells: 2 done, 2 failed, 0 running, 0 pending"
    expected = {f"{c.index}: failed: see {spec.error_path(c)}" if c.method == "inn" else f"{c.index}: done": 1
                for c in spec.cells()}  # fmt: skip
    assert cell_lines(out) == Counter(expected)  # each task ran its second cell after the first failed


def test_a_time_out_is_named_and_the_rerun_redoes_only_its_cell(
    cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--slurm_time 1``: the INN cell (10^5 epochs) hits its task's one-minute limit, the other cell finishes;
    the user is told which cell timed out, and the rerun (with time enough) submits that cell only."""
    out = tmp_path / "results"
    args = grid(out, ["inn", "logistic_regression"], "0")
    spec = spec_of(args)
    inn, linear = spec.cells()
    assert sweep.main([*args, *TASKS, "--slurm_time", "1", "--slurm_wait", "--nr_epochs", "100000", *SMOKE]) == 1
    lines = capsys.readouterr().out.splitlines()
    (first,) = submissions(out)
    timed_out = f"{inn.describe()} not done: array task {first.task_id(0)} timed out after its 1 min"
    assert any(line.startswith(timed_out) for line in lines), lines
    assert accounted(first.task_id(0)) == ["TIMEOUT"] and accounted(first.task_id(1)) == ["COMPLETED"]
    assert sweep.cell_state(spec, inn) == "pending" and nothing_half_written(spec, inn)
    assert not spec.error_path(inn).exists() and sweep.cell_state(spec, linear) == "done"

    assert sweep.main([*args, *TASKS, "--slurm_time", "5", "--slurm_wait", "--nr_epochs", "2", *SMOKE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        f"left by an earlier submission: {inn.describe()}: array task {first.task_id(0)} timed out (TIMEOUT)" in lines
    )
    assert submissions(out)[-1].tasks == ((inn.index,),)
    assert sweep.cell_state(spec, inn) == "done"


def test_two_submissions_of_one_grid_at_once_run_no_cell_twice(
    cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The same command twice: the second submits nothing while the first array is queued. Two arrays of the same
    cells at once (what two commands at the same moment make; the API submits what it is given): every cell runs
    to completion once, the other array's task finds it done or running (the locks)."""
    out = tmp_path / "results"
    args = grid(out, ["logistic_regression", "decision_tree"], "0-2")
    spec = spec_of(args)
    # One task of each array at a time: the first tasks of both arrays run the same three cells together.
    array = [*TASKS, "--cells_per_task", "3", "--slurm_array_parallelism", "1"]
    assert sweep.main([*args, *array]) == 0
    capsys.readouterr()
    assert sweep.main([*args, *array]) == 0
    (first,) = submissions(out)
    assert f"6 of them already queued in array task(s) {', '.join(first.task_ids)}" in capsys.readouterr().out
    options = sweep.SlurmOptions(cpus_per_task=1, mem_gb=2, time_min=10, cells_per_task=3, array_parallelism=1)
    second = sweep.submit_slurm(spec, spec.cells(), options, retry_failed=False)
    for submission in (first, second):
        leave_the_queue(submission)
    assert [sweep.cell_state(spec, cell) for cell in spec.cells()] == ["done"] * 6
    lines = cell_lines(out)
    assert all(lines[f"{index}: done"] == 1 for index in range(6)), lines
    others = {line.split(": ", 1)[1] for line in lines if not line.endswith(": done")}
    assert others <= {"already done", "running in another process, skipped"}, others
