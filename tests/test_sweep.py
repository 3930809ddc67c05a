"""Tests of the benchmark sweep (``sweep.py`` / ``experiments.sweep``): cell expansion and order, suites,
``--task_index``, failing cells, locks, resume after a SIGKILL of a real sweep process, the SLURM path without a
cluster (a stand-in ``sbatch`` records the generated script; submitit's local executor runs a cell) and one real
cell end to end. Offline and fast: most cells run a stand-in experiment script that writes a valid report.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from errors import UserError
from experiments import sweep
from experiments.results import ERROR_FILENAME, read_report

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHED_IDS = [3, 6, 11, 29, 31, 32, 37, 44, 50, 54, 1049, 1050, 1063, 1068, 1462, 1464, 1480, 1487, 1489]
CACHED_IDS += [1510, 40983, 40984, 40994]  # the 23 datasets of the team's offline cache: all in OpenML-CC18

# A stand-in experiment script: same flags as the real ones for what the sweep sets, a valid report, and
# behaviour steered by environment variables (FAKE_FAIL_SEEDS, FAKE_SLEEP, FAKE_MARKERS).
FAKE_SCRIPT = textwrap.dedent(
    """
    import argparse, os, sys, time
    from pathlib import Path

    sys.path.insert(0, {repo!r})
    from experiments.results import build_report, results_path, write_json_atomic

    def build_parser():
        parser = argparse.ArgumentParser()
        parser.add_argument("--interpretable", action="store_true")
        parser.add_argument("--method", default=None)
        parser.add_argument("--variant", default=None)
        parser.add_argument("--model_name", default=None)
        parser.add_argument("--dataset_id", default=None)
        parser.add_argument("--dataset_path", default=None)
        parser.add_argument("--openml_cache_dir", default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--output_dir", default="results")
        parser.add_argument("--nr_epochs", type=int, default=100)
        return parser

    def main():
        args = build_parser().parse_args()
        method = "inn" if args.interpretable else (args.method or args.model_name or "tabresnet")
        key = args.dataset_id if args.dataset_path is None else Path(args.dataset_path).stem
        if os.environ.get("FAKE_MARKERS"):
            marker = Path(os.environ["FAKE_MARKERS"]) / f"{{method}}_{{key}}_{{args.seed}}"
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(os.environ.get("OMP_NUM_THREADS", ""))
        time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
        if str(args.seed) in os.environ.get("FAKE_FAIL_SEEDS", "").split(","):
            print("something went wrong in seed", args.seed, file=sys.stderr)
            return 1
        report = build_report(
            method=method, dataset_id=key, dataset_name="fake", seed=args.seed, task="binary", n_classes=2,
            n_train=8, n_test=2, feature_names=["a", "b"], n_inputs=2,
            metrics={{"train_auroc": 1.0, "train_accuracy": 1.0, "test_auroc": 0.5, "test_accuracy": 0.5}},
            train_time=0.0, inference_time=0.0, importances=[1.0, 1.0],
            config={{"nr_epochs": args.nr_epochs, "threads": os.environ.get("OMP_NUM_THREADS")}},
            variant=args.variant,
        )
        write_json_atomic(results_path(args.output_dir, method, key, args.seed, args.variant), report)
        return 0

    if __name__ == "__main__":
        sys.exit(main())
    """
)


# The sweep command with every method pointed at the stand-in script, for sweeps in fresh processes.
FAKE_SWEEP = textwrap.dedent(
    """
    import sys

    sys.path.insert(0, {repo!r})
    from experiments import sweep

    for method, script in list(sweep.SCRIPTS.items()):
        sweep.SCRIPTS[method] = sweep.MethodScript({script!r}, script.args)
    sys.exit(sweep.main())
    """
)


@pytest.fixture
def fake_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every method at the stand-in script (the real flags that pick the method are kept), here and in
    sweeps started as new processes (``sweep.SWEEP_SCRIPT``, which SLURM array tasks run)."""
    path = tmp_path / "fake_experiment.py"
    path.write_text(FAKE_SCRIPT.format(repo=str(REPO_ROOT)))
    for method, script in list(sweep.SCRIPTS.items()):
        monkeypatch.setitem(sweep.SCRIPTS, method, sweep.MethodScript(str(path), script.args))
    fake_sweep = tmp_path / "fake_sweep.py"
    fake_sweep.write_text(FAKE_SWEEP.format(repo=str(REPO_ROOT), script=str(path)))
    monkeypatch.setattr(sweep, "SWEEP_SCRIPT", fake_sweep)
    for name in ("FAKE_FAIL_SEEDS", "FAKE_SLEEP", "FAKE_MARKERS", "SLURM_ARRAY_TASK_ID", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(name, raising=False)
    return path


def grid(out: Path, *extra: str) -> list[str]:
    return [
        "--methods",
        "inn",
        "catboost",
        "--datasets",
        "31",
        "37",
        "--seeds",
        "0-1",
        "--output_dir",
        str(out),
        *extra,
    ]


def done_cells(out: Path) -> set[tuple[str, str, int]]:
    return {(p.parts[-4], p.parts[-3], int(p.parts[-2])) for p in out.glob("*/*/*/output_info.json")}


# ----------------------------------------------------------------------------------------------------------
# Grid expansion


def test_cells_are_dataset_major_then_seeds_then_methods() -> None:
    datasets = sweep.expand_datasets(["31", "37"])
    cells = sweep.expand_cells(["inn", "catboost", "inn"], datasets, [0, 1, 2])
    assert [cell.index for cell in cells] == list(range(12))
    assert [(c.dataset.key, c.seed, c.method) for c in cells[:5]] == [
        ("31", 0, "inn"),
        ("31", 0, "catboost"),
        ("31", 1, "inn"),
        ("31", 1, "catboost"),
        ("31", 2, "inn"),
    ]
    # index = (dataset position * n_seeds + seed position) * n_methods + method position
    for cell in cells:
        d, s, m = (
            ["31", "37"].index(cell.dataset.key),
            [0, 1, 2].index(cell.seed),
            ["inn", "catboost"].index(cell.method),
        )
        assert cell.index == (d * 3 + s) * 2 + m


def test_seeds_and_datasets_parsing(tmp_path: Path) -> None:
    assert sweep.parse_seeds(["0-2", "5,7", "3", "1"]) == [0, 1, 2, 5, 7, 3]
    for bad in (["a"], ["3-1"], ["-1"], [""]):
        with pytest.raises(UserError):
            sweep.parse_seeds(bad)
    data = tmp_path / "tiny.csv"
    data.write_text("a,b,y\n1,2,0\n")
    datasets = sweep.expand_datasets(["31", str(data), "31"])
    assert [d.key for d in datasets] == ["31", "tiny"]
    assert datasets[1].arguments(None) == ["--dataset_path", str(data.resolve())]
    assert datasets[0].arguments(tmp_path) == ["--dataset_id", "31", "--openml_cache_dir", str(tmp_path)]
    with pytest.raises(UserError, match="not an OpenML id"):
        sweep.expand_datasets(["no-such-suite"])
    with pytest.raises(UserError, match="needs --openml_cache_dir"):
        sweep.expand_datasets(["cached"])


def test_suites_are_data(tmp_path: Path) -> None:
    suites = sweep.load_suites()
    paper = suites["paper"]["dataset_ids"]
    assert paper[:3] == [3, 12, 31] and len(paper) == len(set(paper)) == 16
    cc18 = suites["cc18"]["dataset_ids"]
    assert len(cc18) == len(set(cc18)) == 72
    assert set(CACHED_IDS) <= set(cc18)
    assert suites["cached"]["computed"] is True and "dataset_ids" not in suites["cached"]
    cache = tmp_path / "cache"
    for name in ("54", "3", "1464", "README"):
        (cache / "org" / "openml" / "www" / "datasets" / name).mkdir(parents=True)
    assert [d.dataset_id for d in sweep.expand_datasets(["cached"], cache)] == [3, 54, 1464]
    assert len(sweep.expand_datasets(["cc18", "paper"])) == len(set(cc18) | set(paper))


def test_pass_through_flags_go_to_the_scripts_that_know_them(tmp_path: Path, fake_script: Path) -> None:
    no_epochs = tmp_path / "fake_baseline.py"  # a script without --nr_epochs, like baseline_experiment.py
    no_epochs.write_text(
        fake_script.read_text().replace('parser.add_argument("--nr_epochs", type=int, default=100)', "pass")
    )
    sweep.SCRIPTS["catboost"] = sweep.MethodScript(str(no_epochs), ("--model_name", "catboost"))
    spec = sweep.Sweep(
        methods=("inn", "catboost"),
        datasets=tuple(sweep.expand_datasets(["31"])),
        seeds=(0,),
        output_dir=tmp_path,
        passthrough=("--nr_epochs", "3"),
    )
    assert sweep.method_flags(spec) == {"inn": ["--nr_epochs", "3"], "catboost": []}
    for passthrough, message in [
        (("--seed", "3"), "use --seeds"),
        (("--no_such_flag", "1"), "unknown flag"),
        (("--nr_epochs", "many"), "rejects"),
        (("3",), "unexpected argument"),
    ]:
        with pytest.raises(UserError, match=message):
            sweep.method_flags(sweep.Sweep(**{**spec.__dict__, "passthrough": passthrough}))
    command = sweep.cell_command(spec, spec.cells()[0], ["--nr_epochs", "3"])
    assert command[:4] == [sys.executable, str(fake_script), "--method", "inn"]
    assert command[4:] == ["--dataset_id", "31", "--seed", "0", "--output_dir", str(tmp_path), "--nr_epochs", "3"]
    # A variant of the whole sweep: every cell gets it, and its results and state live under <method>-<variant>.
    variant = sweep.Sweep(**{**spec.__dict__, "variant": "wn0.01"})
    cell = variant.cells()[0]
    assert sweep.cell_command(variant, cell)[-2:] == ["--variant", "wn0.01"]
    assert variant.results_path(cell) == tmp_path / "inn-wn0.01" / "31" / "0" / "output_info.json"
    with pytest.raises(UserError, match="set by the sweep"):
        sweep.method_flags(sweep.Sweep(**{**spec.__dict__, "passthrough": ("--variant", "x")}))


def test_methods_accept_spaces_and_commas_and_come_from_the_registry() -> None:
    from methods import REGISTRY

    assert sweep.parse_methods(["inn", "tabresnet"]) == sweep.parse_methods(["inn,tabresnet"]) == ["inn", "tabresnet"]
    assert sweep.parse_methods(["inn,ebm", "inn"]) == ["inn", "ebm"]
    assert set(sweep.SCRIPTS) == set(REGISTRY)
    assert sweep.build_parser().parse_args(["--datasets", "31"]).methods == list(REGISTRY)
    with pytest.raises(UserError, match="unknown method"):
        sweep.parse_methods(["inn,xgboost"])


# ----------------------------------------------------------------------------------------------------------
# Running cells


def test_list_count_and_task_index(tmp_path: Path, fake_script: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "results"
    assert sweep.main([*grid(out), "--count"]) == 0
    assert capsys.readouterr().out.strip() == "8"
    assert sweep.main([*grid(out), "--task_index", "3"]) == 0  # dataset 31, seed 1, catboost
    assert done_cells(out) == {("catboost", "31", 1)}
    capsys.readouterr()
    assert sweep.main([*grid(out), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4].split() == ["3", "catboost", "31", "1", "done"]
    assert lines[1].split() == ["0", "inn", "31", "0", "pending"]
    assert lines[-1] == "8 cells: 1 done, 0 failed, 0 running, 7 pending"
    # The index does not depend on which cells are done, and a done cell is not run again.
    assert sweep.main([*grid(out), "--task_index", "3"]) == 0
    assert "already done" in capsys.readouterr().out
    assert sweep.main([*grid(out), "--task_index", "8"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_slurm_array_task_id_is_the_default_task_index(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "results"
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "6")
    assert sweep.main(grid(out)) == 0
    assert done_cells(out) == {("inn", "37", 1)}


def test_local_workers_run_every_cell_with_a_share_of_the_threads(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, markers = tmp_path / "results", tmp_path / "markers"
    monkeypatch.setenv("FAKE_MARKERS", str(markers))
    assert sweep.main([*grid(out), "--workers", "2", "--no_progress"]) == 0
    assert len(done_cells(out)) == 8
    expected = str(max(1, sweep.available_cores() // 2))
    assert {marker.read_text() for marker in markers.iterdir()} == {expected}
    for path in out.glob("*/*/*/output_info.json"):
        assert read_report(path)["config"]["threads"] == expected
    # A second run finds nothing to do.
    for marker in markers.iterdir():
        marker.unlink()
    assert sweep.main([*grid(out), "--workers", "2", "--no_progress"]) == 0
    assert not list(markers.iterdir())


def test_a_failing_cell_records_its_error_and_the_others_go_on(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "results"
    monkeypatch.setenv("FAKE_FAIL_SEEDS", "1")
    assert sweep.main([*grid(out), "--no_progress"]) == 1
    assert done_cells(out) == {(m, d, 0) for m in ("inn", "catboost") for d in ("31", "37")}
    error_path = out / "inn" / "31" / "1" / ERROR_FILENAME
    error = json.loads(error_path.read_text())
    assert error["returncode"] == 1 and error["cell_index"] == 2
    assert error["stderr_tail"] == ["something went wrong in seed 1"]
    assert "--seed" in error["command"] and error["command"][error["command"].index("--seed") + 1] == "1"
    assert not (out / "inn" / "31" / "1" / "output_info.json").exists()
    capsys.readouterr()
    sweep.main([*grid(out), "--list"])
    assert capsys.readouterr().out.splitlines()[-1] == "8 cells: 4 done, 4 failed, 0 running, 0 pending"
    # Without --retry_failed failed cells stay failed; with it they rerun, and success removes error.json.
    monkeypatch.delenv("FAKE_FAIL_SEEDS")
    assert sweep.main([*grid(out), "--no_progress"]) == 0
    assert error_path.exists() and len(done_cells(out)) == 4
    assert sweep.main([*grid(out), "--task_index", "2"]) == 0
    assert "use --retry_failed" in capsys.readouterr().out
    assert sweep.main([*grid(out), "--no_progress", "--retry_failed"]) == 0
    assert len(done_cells(out)) == 8 and not list(out.glob("*/*/*/" + ERROR_FILENAME))


def test_a_locked_cell_is_never_run_twice(tmp_path: Path, fake_script: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "results"
    args = sweep.build_parser().parse_args(grid(out))
    spec = sweep.sweep_from_args(args, [])
    cell = spec.cells()[0]
    with sweep.cell_lock(spec.lock_path(cell)) as fd:
        assert fd is not None
        with sweep.cell_lock(spec.lock_path(cell)) as second:
            assert second is None  # another holder (another open file description) is refused
        assert sweep.cell_state(spec, cell) == "running"
        runner = sweep.Runner(spec, {}, threads=1, retry_failed=False)
        assert runner.run(cell) == "busy"
        assert sweep.main([*grid(out), "--no_progress"]) == 0
        assert ("inn", "31", 0) not in done_cells(out) and len(done_cells(out)) == 7
    assert sweep.cell_state(spec, cell) == "pending"  # released with the descriptor
    assert runner.run(cell) == "done"


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_sigkill_in_the_middle_of_a_cell_leaves_it_pending(tmp_path: Path, fake_script: Path) -> None:
    """A real sweep process (and its cell) is SIGKILLed while the cell runs; the rerun completes it."""
    out, markers = tmp_path / "results", tmp_path / "markers"
    command = [sys.executable, str(sweep.SWEEP_SCRIPT), "--methods", "inn", "--datasets", "31", "--seeds", "0"]
    command += ["--output_dir", str(out), "--no_progress"]
    env = {**os.environ, "FAKE_SLEEP": "30", "FAKE_MARKERS": str(markers)}
    env.pop("SLURM_ARRAY_TASK_ID", None)
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        _wait_for(lambda: (markers / "inn_31_0").exists())  # the cell's experiment is running
        spec = sweep.Sweep(("inn",), tuple(sweep.expand_datasets(["31"])), (0,), out)
        assert sweep.cell_state(spec, spec.cells()[0]) == "running"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the sweep and its cell, as a pre-emption would
        process.wait()
    cell = spec.cells()[0]
    assert not spec.results_path(cell).exists() and not spec.error_path(cell).exists()
    # The kernel releases the lock as soon as the killed cell process has exited (a moment after the sweep).
    _wait_for(lambda: sweep.cell_state(spec, cell) == "pending", timeout=10.0)
    env["FAKE_SLEEP"] = "0"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert sweep.cell_state(spec, cell) == "done"


def test_sigkill_of_a_real_inn_cell_then_resume(tmp_path: Path) -> None:
    """The same with the real INN cell killed while it trains (the rerun may change pass-through flags)."""
    out = tmp_path / "results"
    command = [sys.executable, str(REPO_ROOT / "sweep.py"), "--methods", "inn", "--datasets", "31", "--seeds", "0"]
    command += ["--output_dir", str(out), "--no_progress", "--device", "cpu"]
    env = {key: value for key, value in os.environ.items() if key != "SLURM_ARRAY_TASK_ID"}
    spec = sweep.Sweep(("inn",), tuple(sweep.expand_datasets(["31"])), (0,), out)
    cell = spec.cells()[0]
    process = subprocess.Popen([*command, "--nr_epochs", "500"], env=env, start_new_session=True)
    try:
        _wait_for(lambda: spec.log_paths(cell)[0].exists())
        time.sleep(4.0)  # imports, data and the first epochs
        assert process.poll() is None, "the cell ended before it could be killed"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    _wait_for(lambda: sweep.cell_state(spec, cell) == "pending", timeout=10.0)
    assert not spec.results_path(cell).exists() and not spec.error_path(cell).exists()
    rerun = subprocess.run([*command, "--nr_epochs", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert read_report(spec.results_path(cell))["config"]["nr_epochs"] == 2
    assert not list(spec.run_dir(cell).glob(".*.tmp"))


def test_sigterm_stops_the_running_cells_without_marking_them_failed(tmp_path: Path, fake_script: Path) -> None:
    out, markers = tmp_path / "results", tmp_path / "markers"
    command = [sys.executable, str(sweep.SWEEP_SCRIPT), "--methods", "inn", "tabresnet", "--datasets", "31"]
    command += ["--seeds", "0", "--output_dir", str(out), "--no_progress", "--workers", "2"]
    env = {**os.environ, "FAKE_SLEEP": "30", "FAKE_MARKERS": str(markers)}
    process = subprocess.Popen(command, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(list(markers.glob("*"))) == 2 if markers.exists() else False)
        process.send_signal(signal.SIGTERM)  # the sweep only, as `scancel` or a pre-emption notice would
        _, stderr = process.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 143 and "terminated" in stderr
    assert not list(out.glob("*/*/*/*.json"))  # neither results nor error.json: both cells are pending
    spec = sweep.Sweep(("inn", "tabresnet"), tuple(sweep.expand_datasets(["31"])), (0,), out)
    assert [sweep.cell_state(spec, cell) for cell in spec.cells()] == ["pending", "pending"]


def test_real_cells_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real experiment scripts on the embedded credit-g; --nr_epochs reaches INN only."""
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    out = tmp_path / "results"
    args = ["--methods", "inn", "decision_tree", "--datasets", "31", "--seeds", "0", "--output_dir", str(out)]
    assert sweep.main([*args, "--workers", "2", "--no_progress", "--nr_epochs", "2", "--device", "cpu"]) == 0
    inn = read_report(out / "inn" / "31" / "0" / "output_info.json")
    tree = read_report(out / "decision_tree" / "31" / "0" / "output_info.json")
    assert inn["config"]["nr_epochs"] == 2 and inn["n_train"] == 800
    assert tree["method"] == "decision_tree" and tree["config"]["device"] == "cpu"
    assert (out / "inn" / "31" / "0" / "explanations.npz").exists()


# ----------------------------------------------------------------------------------------------------------
# SLURM without a cluster


def test_slurm_submission_writes_an_array_sbatch_script(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A stand-in ``sbatch`` records the script submitit generates (``srun`` must exist for submitit)."""
    bin_dir, record = tmp_path / "bin", tmp_path / "submitted.sh"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {record}\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "results"
    assert sweep.main([*grid(out), "--task_index", "0"]) == 0  # one cell done before: not submitted
    code = sweep.main(
        [
            *grid(out, "--nr_epochs", "3"),
            "--backend",
            "slurm",
            "--slurm_partition",
            "gpu",
            "--slurm_time",
            "90",
            "--slurm_mem_gb",
            "16",
            "--slurm_gpus",
            "1",
            "--slurm_cpus_per_task",
            "4",
            "--slurm_array_parallelism",
            "3",
            "--slurm_setup",
            "module load python",
        ]
    )
    assert code == 0
    assert "submitted 7 array tasks, first job 4242_0" in capsys.readouterr().out
    script = record.read_text()
    for line in (
        "#SBATCH --array=0-6%3",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=90",
        "#SBATCH --mem=16GB",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --job-name=inn-sweep",
        "module load python",
    ):
        assert line in script.splitlines(), line
    assert "submitit.core._submit" in script
    # Each array task runs `sweep.py ... --task_index <cell>` for one of the pending cells, in order.
    pickles = sorted(
        (out / ".sweep" / "submitit").glob("4242_*_submitted.pkl"), key=lambda p: int(p.name.split("_")[1])
    )
    assert len(pickles) == 7
    submissions = [pickle.loads(path.read_bytes()) for path in pickles]
    assert [s.args for s in submissions] == [(i,) for i in range(1, 8)]
    command = submissions[0].function.command
    assert command[:2] == [sys.executable, str(sweep.SWEEP_SCRIPT)] and command[-1] == "--task_index"
    assert command[command.index("--datasets") + 1 : command.index("--datasets") + 3] == ["31", "37"]
    assert command[command.index("--nr_epochs") + 1] == "3"


def test_slurm_backend_with_submitit_local_executor_runs_the_cells(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same submission through submitit's local executor: each task is a real ``--task_index`` process."""
    out = tmp_path / "results"
    monkeypatch.setenv("FAKE_FAIL_SEEDS", "1")
    args = ["--methods", "inn", "--datasets", "31", "--seeds", "0-1", "--output_dir", str(out), "--no_progress"]
    code = sweep.main([*args, "--backend", "slurm", "--slurm_executor", "local", "--slurm_time", "5"])
    assert code == 1  # one cell failed, which fails its task
    assert done_cells(out) == {("inn", "31", 0)}
    assert json.loads((out / "inn" / "31" / "1" / ERROR_FILENAME).read_text())["returncode"] == 1
    logs = list((out / ".sweep" / "submitit").glob("*_0_log.out"))
    assert logs, "submitit wrote no task logs"
