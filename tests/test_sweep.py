"""Tests of the benchmark sweep (``sweep.py`` / ``experiments.sweep``): cell expansion and order, suites,
``--task_index`` and several cells per array task, failing and crashing cells, fork-worker isolation (a crash, a
SIGKILL, a leak or a dead worker costs only its cell; threads per cell), locks, SIGTERM/Ctrl-C, resume after a
SIGKILL of a real sweep process, checks of the output directory and of ``$SLURM_ARRAY_TASK_ID``, the SLURM path
without a cluster (a stand-in ``sbatch`` records the generated script; submitit's local executor runs cells) and
real cells end to end, forked and as subprocesses, with identical results. Offline: most cells run a stand-in
experiment script that writes a valid report.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from data.loading import file_dataset_key
from errors import UserError
from experiments import sweep
from experiments.results import ERROR_FILENAME, read_report

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHED_IDS = [3, 6, 11, 29, 31, 32, 37, 44, 50, 54, 1049, 1050, 1063, 1068, 1462, 1464, 1480, 1487, 1489]
CACHED_IDS += [1510, 40983, 40984, 40994]  # the 23 datasets of the team's offline cache: all in OpenML-CC18

# A stand-in experiment script: same flags as the real ones for what the sweep sets, a valid report, and
# behaviour steered by environment variables: FAKE_FAIL_SEEDS (exit 1), FAKE_CRASH ("<seed>:<how>,...": exit
# without Python's shutdown, segfault, SIGKILL itself, or SIGKILL its parent, the fork worker), FAKE_SLEEP, and
# FAKE_MARKERS (a folder where each cell writes what it saw: threads, its parent, what earlier cells left behind).
FAKE_SCRIPT = textwrap.dedent(
    """
    import argparse, builtins, json, os, signal, sys, time
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
        from data.loading import file_dataset_key
        key = args.dataset_id if args.dataset_path is None else file_dataset_key(args.dataset_path)
        if os.environ.get("FAKE_MARKERS"):
            torch = sys.modules.get("torch")  # imported by a fork worker, never here
            seen = {{
                "omp": os.environ.get("OMP_NUM_THREADS"),
                "torch_threads": torch.get_num_threads() if torch is not None else None,
                "parent": os.getppid(),
                "leaked": getattr(builtins, "fake_leak", 0),
            }}
            marker = Path(os.environ["FAKE_MARKERS"]) / f"{{method}}_{{key}}_{{args.seed}}"
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(seen))
        builtins.fake_leak = getattr(builtins, "fake_leak", 0) + 1  # state a cell leaves in its process
        builtins.fake_hoard = bytearray(20_000_000)  # and memory
        crash = dict(item.split(":") for item in os.environ.get("FAKE_CRASH", "").split(",") if item)
        how = crash.get(str(args.seed))
        if how == "exit":
            print("leaving at once", file=sys.stderr, flush=True)
            os._exit(3)
        if how in ("segv", "kill"):
            os.kill(os.getpid(), signal.SIGSEGV if how == "segv" else signal.SIGKILL)
        if how == "worker":
            os.kill(os.getppid(), signal.SIGKILL)
            return 1
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
    sweep.pool.warm_modules = sweep.pool.warm_explainers = lambda methods: ()  # the stand-in needs no library
    sys.exit(sweep.main())
    """
)


@pytest.fixture
def fake_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every method at the stand-in script (the real flags that pick the method are kept), here and in
    sweeps started as new processes (``sweep.slurm.SWEEP_SCRIPT``, which SLURM array tasks run)."""
    path = tmp_path / "fake_experiment.py"
    path.write_text(FAKE_SCRIPT.format(repo=str(REPO_ROOT)))
    for method, script in list(sweep.SCRIPTS.items()):
        monkeypatch.setitem(sweep.SCRIPTS, method, sweep.MethodScript(str(path), script.args))
    fake_sweep = tmp_path / "fake_sweep.py"
    fake_sweep.write_text(FAKE_SWEEP.format(repo=str(REPO_ROOT), script=str(path)))
    monkeypatch.setattr(sweep.slurm, "SWEEP_SCRIPT", fake_sweep)
    monkeypatch.setattr(sweep.pool, "warm_modules", lambda methods: ())
    monkeypatch.setattr(sweep.pool, "warm_explainers", lambda methods: ())
    for name in ("FAKE_FAIL_SEEDS", "FAKE_CRASH", "FAKE_SLEEP", "FAKE_MARKERS", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
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


def seen(markers: Path) -> dict[str, dict]:
    """What each stand-in cell saw, by ``<method>_<dataset>_<seed>``."""
    return {path.name: json.loads(path.read_text()) for path in markers.iterdir()}


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
    assert sweep.format_indices([1, 2, 3, 7, 9, 10, 12]) == "1-3,7,9-10,12"
    for indices in ([0], [4, 5], [1, 2, 3, 7, 9, 10, 12]):
        assert sweep.parse_indices([sweep.format_indices(indices)]) == indices
    with pytest.raises(UserError, match="bad cell index"):
        sweep.parse_indices(["x"])
    data = tmp_path / "tiny.csv"
    data.write_text("a,b,y\n1,2,0\n")
    datasets = sweep.expand_datasets(["31", str(data), "31"])
    assert [d.key for d in datasets] == ["31", file_dataset_key(data)]
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


def test_a_model_flag_goes_only_to_the_methods_it_sets_a_parameter_of(tmp_path: Path) -> None:
    """One sweep command line over INN and SENN: --weight_norm reaches INN only, --num_concepts SENN only (a single
    run refuses a model flag of another method), a shared flag reaches both."""
    spec = sweep.Sweep(
        methods=("inn", "senn"),
        datasets=tuple(sweep.expand_datasets(["31"])),
        seeds=(0,),
        output_dir=tmp_path,
        passthrough=("--weight_norm", "0.01", "--num_concepts", "3", "--nr_epochs", "2"),
    )
    assert sweep.method_flags(spec) == {
        "inn": ["--weight_norm", "0.01", "--nr_epochs", "2"],
        "senn": ["--num_concepts", "3", "--nr_epochs", "2"],
    }


def test_methods_accept_spaces_and_commas_and_come_from_the_registry() -> None:
    from methods import REGISTRY

    assert sweep.parse_methods(["inn", "tabresnet"]) == sweep.parse_methods(["inn,tabresnet"]) == ["inn", "tabresnet"]
    assert sweep.parse_methods(["inn,ebm", "inn"]) == ["inn", "ebm"]
    assert set(sweep.SCRIPTS) == set(REGISTRY)
    # By default every method for tabular data; image methods (the CNN) only when named.
    tabular = [method for method, spec in REGISTRY.items() if not spec.image_inputs]
    assert sweep.build_parser().parse_args(["--datasets", "31"]).methods == tabular and "cnn" not in tabular
    assert sweep.parse_methods(["cnn"]) == ["cnn"]
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
    assert {cell["omp"] for cell in seen(markers).values()} == {expected}
    for path in out.glob("*/*/*/output_info.json"):
        assert read_report(path)["config"]["threads"] == expected
    # Two fork workers ran the 8 cells, each cell in a fresh child: none saw what an earlier cell left behind.
    parents = {cell["parent"] for cell in seen(markers).values()}
    assert len(parents) == 2 and os.getpid() not in parents
    assert {cell["leaked"] for cell in seen(markers).values()} == {0}
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


def test_a_crashing_or_killed_cell_costs_only_itself(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker runs every cell: a cell that leaves with os._exit, segfaults or is SIGKILLed fails alone,
    with its reason in error.json; the worker goes on, and no cell sees what an earlier one left behind."""
    out, markers = tmp_path / "results", tmp_path / "markers"
    monkeypatch.setenv("FAKE_MARKERS", str(markers))
    monkeypatch.setenv("FAKE_CRASH", "1:exit,2:segv,3:kill")
    args = ["--methods", "inn", "--datasets", "31", "--seeds", "0-4", "--output_dir", str(out), "--no_progress"]
    assert sweep.main(args) == 1
    assert done_cells(out) == {("inn", "31", 0), ("inn", "31", 4)}
    errors = {seed: json.loads((out / "inn" / "31" / str(seed) / ERROR_FILENAME).read_text()) for seed in (1, 2, 3)}
    assert errors[1]["returncode"] == 3 and errors[1]["stderr_tail"] == ["leaving at once"]
    assert (errors[2]["signal"], errors[3]["signal"]) == ("SIGSEGV", "SIGKILL")
    assert all(error["isolation"] == "fork" for error in errors.values())
    cells = seen(markers)
    assert len(cells) == 5 and len({cell["parent"] for cell in cells.values()}) == 1  # one worker throughout
    assert {cell["leaked"] for cell in cells.values()} == {0}


def test_a_dead_worker_costs_only_its_cell(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A cell that SIGKILLs its own worker: the sweep reports it, starts a new worker, runs the rest."""
    out, markers = tmp_path / "results", tmp_path / "markers"
    monkeypatch.setenv("FAKE_MARKERS", str(markers))
    monkeypatch.setenv("FAKE_CRASH", "1:worker")
    args = ["--methods", "inn", "--datasets", "31", "--seeds", "0-2", "--output_dir", str(out), "--no_progress"]
    assert sweep.main(args) == 1
    assert "sweep error: a sweep worker" in capsys.readouterr().out
    assert done_cells(out) == {("inn", "31", 0), ("inn", "31", 2)}
    spec = sweep.sweep_from_args(sweep.build_parser().parse_args(args), [])
    assert sweep.cell_state(spec, spec.cells()[1]) == "pending"  # not the cell's fault: it reruns next time
    parents = [seen(markers)[f"inn_31_{seed}"]["parent"] for seed in range(3)]
    assert parents[0] == parents[1] != parents[2]


@pytest.mark.slow
def test_each_forked_cell_runs_with_its_share_of_the_threads(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch in a forked cell (imported once by its worker) has the cell's thread count, not the machine's."""
    out, markers = tmp_path / "results", tmp_path / "markers"
    monkeypatch.setenv("FAKE_MARKERS", str(markers))
    monkeypatch.setattr(sweep.pool, "warm_modules", lambda methods: ("torch",))
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")  # a SLURM task's CPUs, whatever the machine has
    args = ["--methods", "inn", "--datasets", "31", "--seeds", "0-1", "--output_dir", str(out)]
    assert sweep.main([*args, "--no_progress"]) == 0
    assert [(cell["omp"], cell["torch_threads"]) for cell in seen(markers).values()] == [("3", 3)] * 2


# What a cell of each method imports after its worker's warm-up: a fit and a native explanation on credit-g.
WARM_PROBE = textwrap.dedent(
    """
    import json
    import sys

    from data import load_dataset, prepare_split
    from experiments.sweep import pool
    from methods import REGISTRY

    spec = REGISTRY[sys.argv[1]]
    pool.warm_up(pool.warm_modules([spec.id]), pool.warm_explainers([spec.id]))
    split = prepare_split(load_dataset(dataset_id=31), mode="classification", seed=0, encoding_type=spec.encoding)
    before = set(sys.modules)
    model = spec.build(split, seed=0, params=dict(spec.smoke_params))
    train, test = spec.inputs(split)
    spec.explain(model.fit(train, split.y_train), split, test[:5])
    print(json.dumps(sorted({name.split(".")[0] for name in set(sys.modules) - before})))
    """
)


def test_what_a_worker_imports_ahead_comes_from_the_registry() -> None:
    from methods import REGISTRY

    for method, spec in REGISTRY.items():
        modules = sweep.pool.warm_modules([method])
        assert modules[: len(sweep.WARM_IMPORTS)] == sweep.WARM_IMPORTS
        assert modules[len(sweep.WARM_IMPORTS) :] == tuple(m for m in spec.imports if m not in sweep.WARM_IMPORTS)
        assert sweep.pool.warm_explainers([method]) == ((spec.explainer.partition(":")[0],) if spec.explainer else ())


@pytest.mark.slow
@pytest.mark.parametrize("method", ["logistic_regression", "decision_tree"])
def test_a_warmed_up_worker_leaves_its_cells_no_library_to_import(method: str) -> None:
    """After the warm-up a cell's fit and explanation import no third-party package (shap, scikit-learn's trees)."""
    probe = subprocess.run(
        [sys.executable, "-c", WARM_PROBE, method], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert probe.returncode == 0, probe.stderr
    imported = json.loads(probe.stdout.strip().splitlines()[-1])
    assert not [name for name in imported if name not in ("data", "models", "explainers", "methods")], imported


def test_a_worker_keeps_its_dataset_for_the_next_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a worker does before forking, here in-process: it loads the dataset of a cell's command once, and the
    real experiment scripts then find it loaded (data.load_dataset is not called again)."""
    import baseline_experiment
    import data
    from experiments import config

    monkeypatch.setattr(config, "dataset_loader", config.dataset_loader)  # put back after the test
    cache = sweep.DatasetCache()
    cache.install()
    spec = sweep.Sweep(("logistic_regression",), tuple(sweep.expand_datasets(["31"])), (0, 1), tmp_path)
    cache.preload(sweep.cell_command(spec, spec.cells()[0]))
    cache.preload([sys.executable, str(tmp_path / "no_such_script.py")])  # never raises: the cell reports it
    monkeypatch.setattr(data, "load_dataset", lambda **kwargs: pytest.fail(f"loaded again: {kwargs}"))
    for cell in spec.cells():
        assert baseline_experiment.main(sweep.cell_command(spec, cell)[2:]) == 0
    assert done_cells(tmp_path) == {("logistic_regression", "31", 0), ("logistic_regression", "31", 1)}


def test_the_dataset_cache_keeps_the_last_used_datasets_and_frees_the_others() -> None:
    from experiments.config import DataConfig

    class Raw:  # a loaded dataset holding a reference cycle, as pandas objects may
        def __init__(self, name: int) -> None:
            self.name, self.me = name, self

    loads: list[int] = []

    def loader(data: DataConfig) -> Raw:
        loads.append(data.dataset_id)
        return Raw(data.dataset_id)

    def config(dataset_id: int) -> DataConfig:
        return DataConfig(dataset_id=dataset_id)

    cache = sweep.DatasetCache(size=2, loader=loader)
    kept, evicted = weakref.ref(cache.load(config(1))), weakref.ref(cache.load(config(2)))
    gc.freeze()  # as the worker does before each fork: frozen objects are never collected...
    try:
        assert cache.load(config(1)).name == 1 and loads == [1, 2]
        cache.load(config(3))  # ...so the eviction of dataset 2 (least recently used) unfreezes and collects
        assert loads == [1, 2, 3] and kept() is not None and evicted() is None
    finally:
        gc.unfreeze()


def test_an_array_task_runs_several_cells(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out, markers = tmp_path / "results", tmp_path / "markers"
    monkeypatch.setenv("FAKE_MARKERS", str(markers))
    assert sweep.main([*grid(out), "--count", "--cells_per_task", "3"]) == 0
    assert capsys.readouterr().out.strip() == "3"  # 8 cells in tasks of 3: 0-2, 3-5, 6-7
    assert sweep.main([*grid(out), "--task_index", "1", "--cells_per_task", "3"]) == 0
    assert done_cells(out) == {("catboost", "31", 1), ("inn", "37", 0), ("catboost", "37", 0)}
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines if line.endswith(": done")] == ["cell 3", "cell 4", "cell 5"]
    assert len({cell["parent"] for cell in seen(markers).values()}) == 1  # one process for the task's cells
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    assert sweep.main([*grid(out), "--cells_per_task", "3"]) == 0
    assert {c for c in done_cells(out) if c[1] == "37" and c[2] == 1} == {("inn", "37", 1), ("catboost", "37", 1)}
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    assert sweep.main([*grid(out), "--cells", "0", "2"]) == 0
    assert len(done_cells(out)) == 7
    capsys.readouterr()
    assert sweep.main([*grid(out), "--task_index", "3", "--cells_per_task", "3"]) == 2
    assert "out of range: the sweep has 8 cells in 3 tasks of 3" in capsys.readouterr().err


def test_a_non_numeric_slurm_array_task_id_is_an_error(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "results"
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4_[0-7]")
    assert sweep.main(grid(out)) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: SLURM_ARRAY_TASK_ID is '4_[0-7]'") and error.count("\n") == 1
    assert not out.exists()  # nothing ran, not the whole grid
    assert sweep.main([*grid(out), "--backend", "local", "--no_progress"]) == 0  # the way to run the grid here
    assert len(done_cells(out)) == 8


def test_the_output_directory_is_checked_before_any_work(
    tmp_path: Path, fake_script: Path, capsys: pytest.CaptureFixture
) -> None:
    afile = tmp_path / "results.txt"
    afile.write_text("not a directory")
    cases = [
        (afile, f"--output_dir {afile} is a file, not a directory"),
        (afile / "run", f"--output_dir {afile / 'run'} is below {afile}, which is a file"),
    ]
    if sys.platform.startswith("linux"):  # a directory in which not even root can create anything
        cases.append((Path("/proc"), "cannot write to --output_dir /proc: "))
    for output_dir, message in cases:
        for extra in ((), ("--task_index", "0"), ("--backend", "slurm", "--slurm_executor", "local")):
            assert sweep.main([*grid(output_dir), "--no_progress", *extra]) == 2
            error = capsys.readouterr().err
            assert error.startswith(f"error: {message}") and error.count("\n") == 1, error
    assert afile.read_text() == "not a directory"
    assert sweep.main([*grid(afile), "--list"]) == 2  # listing reads only, but a file is no results tree
    assert sweep.main([*grid(Path("/proc")), "--count"]) == 0


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


def _grandchildren(pid: int) -> list[int]:
    """The children of the children of ``pid`` (a sweep's cells forked by its workers), from Linux's /proc."""
    parents: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(status.read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(parent, []).append(int(status.parent.name))
    return [grandchild for child in parents.get(pid, []) for grandchild in parents.get(child, [])]


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes ``pids`` have used so far (0 for one that has ended)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def test_sigkill_in_the_middle_of_a_cell_leaves_it_pending(tmp_path: Path, fake_script: Path) -> None:
    """A real sweep process (and its cell) is SIGKILLed while the cell runs; the rerun completes it."""
    out, markers = tmp_path / "results", tmp_path / "markers"
    command = [sys.executable, str(sweep.slurm.SWEEP_SCRIPT), "--methods", "inn", "--datasets", "31", "--seeds", "0"]
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


def _sigint(disposition: signal.Handlers) -> Callable[[], None]:
    """A ``preexec_fn`` that starts a process with SIGINT at ``disposition``. A terminal's foreground job has it at
    its default; a test run in the background of a non-interactive shell (``&``, nohup) would pass it on ignored."""
    return lambda: signal.signal(signal.SIGINT, disposition)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "group", "sigint", "code", "message"),
    [
        (signal.SIGTERM, False, signal.SIG_DFL, 143, "terminated"),
        (signal.SIGINT, True, signal.SIG_DFL, 130, "interrupted"),
        (signal.SIGINT, True, signal.SIG_IGN, 143, "2 cell(s) stopped from outside"),
    ],
    ids=["sigterm", "ctrl-c", "ctrl-c-to-a-sweep-that-ignores-sigint"],
)
def test_sigterm_or_ctrl_c_stop_the_running_cells_without_marking_them_failed(
    tmp_path: Path, fake_script: Path, signum: int, group: bool, sigint: signal.Handlers, code: int, message: str
) -> None:
    """SIGTERM to the sweep only (``scancel``, pre-emption) or SIGINT to the whole process group (Ctrl-C), sent
    once both cells demonstrably run (each has written its marker and holds its lock). A sweep that ignores SIGINT
    (started under nohup) sees only its cells stop: it must not report success."""
    out, markers = tmp_path / "results", tmp_path / "markers"
    command = [sys.executable, str(sweep.slurm.SWEEP_SCRIPT), "--methods", "inn", "tabresnet", "--datasets", "31"]
    command += ["--seeds", "0", "--output_dir", str(out), "--no_progress", "--workers", "2"]
    env = {**os.environ, "FAKE_SLEEP": "300", "FAKE_MARKERS": str(markers)}
    spec = sweep.Sweep(("inn", "tabresnet"), tuple(sweep.expand_datasets(["31"])), (0,), out)
    process = subprocess.Popen(
        command, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint(sigint)
    )
    try:
        _wait_for(lambda: markers.exists() and len(list(markers.iterdir())) == 2, timeout=120.0)
        assert [sweep.cell_state(spec, cell) for cell in spec.cells()] == ["running", "running"]
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == code and message in stderr, (process.returncode, stderr)
    assert not list(out.glob("*/*/*/*.json"))  # neither results nor error.json: both cells are pending
    assert [sweep.cell_state(spec, cell) for cell in spec.cells()] == ["pending", "pending"]


@pytest.mark.slow
def test_real_cells_resume_after_sigkill_and_forked_cells_match_subprocess_cells(tmp_path: Path) -> None:
    """Real INN and logistic-regression cells on the embedded credit-g. A fork-worker sweep is SIGKILLed (sweep, worker
    and cell) while INN trains: the cell is pending, nothing is half-written; the rerun (other pass-through flags)
    completes both cells; the INN cell run as a subprocess, the original design, gives identical results."""
    out = tmp_path / "results"
    grid_args = [
        "--methods",
        "inn",
        "logistic_regression",
        "--datasets",
        "31",
        "--seeds",
        "0",
        "--output_dir",
        str(out),
    ]
    command = [sys.executable, str(REPO_ROOT / "sweep.py"), *grid_args, "--no_progress", "--device", "cpu"]
    env = {key: value for key, value in os.environ.items() if key != "SLURM_ARRAY_TASK_ID"}
    spec = sweep.Sweep(("inn", "logistic_regression"), tuple(sweep.expand_datasets(["31"])), (0,), out)
    inn, linear = spec.cells()
    # INN only here: the worker imports what INN needs, no more.
    killed = [*command, "--methods", "inn", "--nr_epochs", "100000"]
    process = subprocess.Popen(killed, env=env, start_new_session=True)
    try:
        _wait_for(lambda: spec.log_paths(inn)[0].exists(), timeout=120.0)  # the worker has forked the cell
        # The cell (the worker's child) has spent 3 s of CPU time: past the data, training. 10^5 epochs: it cannot
        # end first, however slow the machine.
        _wait_for(lambda: _cpu_seconds(_grandchildren(process.pid)) >= 3.0, timeout=300.0)
        assert process.poll() is None, "the cell ended before it could be killed"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the sweep, its worker and the cell, as a pre-emption would
        process.wait()
    _wait_for(lambda: sweep.cell_state(spec, inn) == "pending", timeout=10.0)
    assert not spec.run_dir(inn).exists() or not any(spec.run_dir(inn).iterdir())
    assert not spec.error_path(inn).exists() and sweep.cell_state(spec, linear) == "pending"

    assert sweep.main([*grid_args, "--no_progress", "--nr_epochs", "2", "--device", "cpu"]) == 0
    forked = read_report(spec.results_path(inn))
    assert forked["config"]["nr_epochs"] == 2 and forked["n_train"] == 800
    assert read_report(spec.results_path(linear))["method"] == "logistic_regression"
    assert "forked from sweep worker" in spec.log_paths(inn)[0].read_text()
    assert not list(spec.run_dir(inn).glob(".*.tmp"))

    # The same cell in a subprocess of its own: the same numbers, to the last bit.
    out2 = tmp_path / "subprocess"
    args = ["--methods", "inn", "--datasets", "31", "--seeds", "0", "--output_dir", str(out2), "--no_progress"]
    assert sweep.main([*args, "--isolation", "subprocess", "--nr_epochs", "2", "--device", "cpu"]) == 0
    spawned = read_report(out2 / "inn" / "31" / "0" / "output_info.json")
    metrics = [key for key in forked if key.startswith(("train_", "test_")) and key != "train_time"]
    assert "test_auroc" in metrics
    assert {key: forked[key] for key in metrics} == {key: spawned[key] for key in metrics}
    assert forked["epoch_losses"] == spawned["epoch_losses"]
    with (
        np.load(spec.run_dir(inn) / "explanations.npz") as a,
        np.load(out2 / "inn" / "31" / "0" / "explanations.npz") as b,
    ):
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# ----------------------------------------------------------------------------------------------------------
# SLURM without a cluster


def test_slurm_submission_writes_an_array_sbatch_script(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A stand-in ``sbatch`` records the script submitit generates (``srun`` must exist for submitit; ``squeue`` and
    ``sacct`` answer for an empty cluster)."""
    bin_dir, record = tmp_path / "bin", tmp_path / "submitted.sh"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {record}\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in ("squeue", "sacct"):  # an empty queue and no accounting: nothing of a real cluster leaks in
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
    for tool in ("sbatch", "srun", "squeue", "sacct"):
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
        "#SBATCH --signal=URG@90",  # not submitit's USR2, which would end the task at once (see slurm.py)
        "module load python",
    ):
        assert line in script.splitlines(), line
    assert "submitit.core._submit" in script
    # Each array task runs `sweep.py ... --cells <cell>` for one of the pending cells, in order.
    submissions = submitted(out / ".sweep" / "submitit")
    assert [s.args for s in submissions] == [(str(i),) for i in range(1, 8)]
    recorded = sweep.Submission.load(out / ".sweep" / "slurm" / "4242.json")  # what a later command reads
    assert recorded.tasks == tuple((i,) for i in range(1, 8))
    assert recorded.task_ids == tuple(f"4242_{i}" for i in range(7))
    command = submissions[0].function.command
    assert command[:2] == [sys.executable, str(sweep.slurm.SWEEP_SCRIPT)] and command[-1] == "--cells"
    assert command[command.index("--datasets") + 1 : command.index("--datasets") + 3] == ["31", "37"]
    assert command[command.index("--nr_epochs") + 1] == "3"
    assert command[command.index("--isolation") + 1] == sweep.DEFAULT_ISOLATION
    # Three pending cells per task: 3 tasks, each with three times the time of a cell.
    second = tmp_path / "second"
    extra = ["--backend", "slurm", "--cells_per_task", "3", "--slurm_log_dir", str(second)]
    assert sweep.main([*grid(out), *extra]) == 0
    assert "submitted 3 array tasks" in capsys.readouterr().out
    assert "#SBATCH --array=0-2%3" in record.read_text() and "#SBATCH --time=180" in record.read_text()
    assert [s.args for s in submitted(second)] == [("1-3",), ("4-6",), ("7",)]


def submitted(folder: Path) -> list:
    """The array tasks submitit pickled for the stand-in sbatch (job 4242), in task order."""
    pickles = sorted(folder.glob("4242_*_submitted.pkl"), key=lambda path: int(path.name.split("_")[1]))
    return [pickle.loads(path.read_bytes()) for path in pickles]


def test_slurm_backend_with_submitit_local_executor_runs_the_cells(
    tmp_path: Path, fake_script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same submission through submitit's local executor: each task is a real ``sweep.py --cells`` process,
    here one task for three cells, run one after another by one fork worker."""
    out, markers = tmp_path / "results", tmp_path / "markers"
    monkeypatch.setenv("FAKE_FAIL_SEEDS", "1")
    monkeypatch.setenv("FAKE_MARKERS", str(markers))
    args = ["--methods", "inn", "--datasets", "31", "--seeds", "0-2", "--output_dir", str(out), "--no_progress"]
    slurm = ["--backend", "slurm", "--slurm_executor", "local", "--slurm_time", "5", "--cells_per_task", "3"]
    assert sweep.main([*args, *slurm]) == 1  # one cell failed, which fails its task
    assert done_cells(out) == {("inn", "31", 0), ("inn", "31", 2)}
    assert json.loads((out / "inn" / "31" / "1" / ERROR_FILENAME).read_text())["returncode"] == 1
    logs = sorted((out / ".sweep" / "submitit").glob("*_log.out"))
    assert len(logs) == 1, "one array task for the three cells"
    assert "cell 2 (inn, dataset 31, seed 2): done" in logs[0].read_text()
    assert len({cell["parent"] for cell in seen(markers).values()}) == 1
