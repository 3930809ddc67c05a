"""End-to-end tests of ``main_experiment.py``: results JSON, explanations, model file, skip/force, errors.

Tests call ``main_experiment.main([...])`` in-process (a couple of epochs of a small network) into
``tmp_path``; one test runs the real script in a subprocess for its true exit code and stderr. The embedded
credit-g (OpenML 31) is the only OpenML dataset; everything else is a tiny CSV written by the test.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import main_experiment
from data.loading import file_dataset_key
from experiments.results import (
    CLASSIFICATION_METRICS,
    COMMON_KEYS,
    REGRESSION_METRICS,
    read_explanations,
    read_report,
)
from models.networks import INNNetwork, SnapshotEnsemble

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--nr_epochs", "2", "--hidden_size", "16", "--nr_blocks", "1", "--device", "cpu"]
#: The README's example (it needs OpenML's network for dataset 1590, so it is only parsed here).
README_EXAMPLE = (
    '--output_dir "." --dataset_id 1590 --nr_restarts 3 --weight_norm 0.1 --weight_decay 0.01 --seed 0 --interpretable'
)
#: The files of a neural run folder (experiments.saved_run adds the preprocessing and the background rows).
RUN_FILES = ["background.npz", "explanations.npz", "model.pt", "output_info.json", "preprocessing.json"]
#: The keys of the original code's output_info.json.
ORIGINAL_CLASSIFICATION_KEYS = (
    "train_auroc",
    "train_accuracy",
    "test_auroc",
    "test_accuracy",
    "time",
    "top_10_features",
    "top_10_features_weights",
)


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def _csv(path: Path, *, n: int = 80, target: str = "binary", seed: int = 0) -> Path:
    """A small CSV with a numeric and a categorical feature and a target of the given kind (last column)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    targets = {
        "binary": np.where(a + (colour == "red") > 0.3, "yes", "no"),
        "multiclass": np.array(["low", "mid", "high"])[np.digitize(a, [-0.4, 0.4])],
        "regression": 50.0 + 10.0 * a - 5.0 * b + rng.normal(size=n),
        "single": np.full(n, "same"),
    }
    pd.DataFrame({"a": a, "b": b, "colour": colour, "label": targets[target]}).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------------------------------------------
# INN on the embedded credit-g: one run shared by the tests that read its outputs


@pytest.fixture(scope="module")
def credit_g_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("results")
    assert main_experiment.main(["--interpretable", *FAST, "--output_dir", str(output)]) == 0
    return output, output / "inn" / "31" / "0"


def test_results_json_has_the_original_keys_and_the_run_description(credit_g_run):
    output, run = credit_g_run
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    assert _files(output) == sorted(run.iterdir())  # nothing else anywhere in the tree (no temp files)
    report = read_report(run / "output_info.json")  # validates the schema of experiments/results.py
    for key in ORIGINAL_CLASSIFICATION_KEYS + COMMON_KEYS + CLASSIFICATION_METRICS:
        assert key in report, key
    assert (report["method"], report["dataset_id"], report["dataset_name"], report["seed"]) == (
        "inn",
        31,
        "credit-g",
        0,
    )
    assert (report["task"], report["n_classes"]) == ("binary", 2)
    assert (report["n_train"], report["n_test"], report["n_features"]) == (800, 200, 20)
    assert report["n_inputs"] == 20  # target encoding for a binary task: one input per feature
    assert 0.5 < report["test_auroc"] <= 1 and 0 <= report["test_accuracy"] <= 1
    assert report["time"] == report["train_time"] > 0 and report["inference_time"] > 0
    assert len(report["top_10_features"]) == len(report["top_10_features_weights"]) == 10
    assert report["top_10_features_weights"] == sorted(report["top_10_features_weights"], reverse=True)
    assert sum(report["feature_importances"].values()) == pytest.approx(1.0)
    assert set(report["feature_importances"]) == set(report["feature_names"])
    config = report["config"]  # the resolved configuration: every flag of the method, the device actually used
    assert config["method"] == "inn" and config["nr_epochs"] == 2 and config["hidden_size"] == 16
    assert config["device"] == "cpu" and config["weight_norm"] == 0.1 and config["seed"] == 0
    assert config["model_params"]["weight_norm"] == 0.1  # not given: INN's own default
    assert {"python", "torch", "numpy", "scikit-learn"} <= set(report["versions"])
    assert report["created"]


def test_explanations_add_up_and_define_the_global_importance(credit_g_run):
    _, run = credit_g_run
    report = json.loads((run / "output_info.json").read_text())
    arrays = read_explanations(run / "explanations.npz")
    n, f, d = 200, 20, report["n_inputs"]
    assert arrays["schema_version"] == 2 and arrays["explainer"] == "inn" and arrays["exact"] is True
    assert arrays["reference_name"] == "training mean" and arrays["reference"].shape == (d,)
    assert report["explanation"]["reference"] == "training mean" and report["explanation"]["exact"] is True
    weights = arrays["extra_weights"]
    assert weights.shape == (n, d + 1, 1)
    assert arrays["values"].shape == (n, f, 1) and arrays["rest"].shape == (n, 1)
    assert arrays["output"].shape == (n, 1) and arrays["y_true"].shape == (n,)
    assert arrays["feature_names"].tolist() == report["feature_names"]
    assert arrays["input_to_feature"].shape == (d,) and arrays["input_names"].shape == (d,)
    assert arrays["classes"].tolist() == ["bad", "good"]
    # Exact: per-original-feature contributions plus the rest are the logits.
    np.testing.assert_allclose(arrays["values"].sum(axis=1) + arrays["rest"], arrays["output"], atol=1e-5)
    # ... and the rest is the generated bias plus the reference's share, b(x) + Σ_j W_j(x)·m_j.
    reference_share = np.einsum("ndc,d->nc", weights[:, :-1, :].astype(np.float64), arrays["reference"])
    np.testing.assert_allclose(arrays["rest"], weights[:, -1, :] + reference_share, atol=1e-5)
    # Global importance = mean |contribution| over ALL test rows (no labels used), normalised.
    importance = np.abs(arrays["values"].astype(np.float64)).mean(axis=0).sum(axis=-1)
    importance /= importance.sum()
    reported = np.array([report["feature_importances"][name] for name in report["feature_names"]])
    np.testing.assert_allclose(reported, importance, rtol=1e-4)
    assert report["top_10_features"][0] == report["feature_names"][int(importance.argmax())]


def test_model_file_rebuilds_the_ensemble_that_made_the_predictions(credit_g_run):
    from data import load_dataset, prepare_split

    _, run = credit_g_run
    payload = torch.load(run / "model.pt")
    assert payload["method"] == "inn" and payload["network"] == "INNNetwork"
    members = []
    for state in payload["snapshots"]:
        member = INNNetwork(n_inputs=payload["n_inputs"], n_outputs=payload["n_outputs"], **payload["hyperparameters"])
        member.load_state_dict(state)
        members.append(member.eval())
    split = prepare_split(load_dataset(31), mode="classification", seed=0, test_split_size=0.2)
    with torch.no_grad():
        logits = SnapshotEnsemble(members).eval()(torch.from_numpy(split.X_test)).logits
    np.testing.assert_allclose(logits.numpy(), read_explanations(run / "explanations.npz")["output"], atol=1e-5)


def test_finished_run_is_skipped_without_force(credit_g_run, capsys):
    output, run = credit_g_run
    before = {path: path.stat().st_mtime_ns for path in _files(output)}
    assert main_experiment.main(["--interpretable", *FAST, "--output_dir", str(output)]) == 0
    assert "already done" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in _files(output)} == before


# ---------------------------------------------------------------------------------------------------------------
# Small CSVs: --force, seeds, multiclass, regression, TabResNet


def test_force_reruns_and_the_same_seed_gives_the_same_results(tmp_path, capsys):
    data = _csv(tmp_path / "colours.csv", target="multiclass")
    output = tmp_path / "out"
    args = ["--interpretable", *FAST, "--dataset_path", str(data), "--output_dir", str(output)]
    assert main_experiment.main(args) == 0
    run = output / "inn" / file_dataset_key(data) / "0"
    first = json.loads((run / "output_info.json").read_text())
    first_logits = read_explanations(run / "explanations.npz")["output"]
    stamp = (run / "output_info.json").stat().st_mtime_ns

    assert main_experiment.main([*args, "--force"]) == 0
    assert "already done" not in capsys.readouterr().out
    assert (run / "output_info.json").stat().st_mtime_ns != stamp
    second = json.loads((run / "output_info.json").read_text())
    for key in ("train_auroc", "test_auroc", "test_accuracy", "feature_importances", "epoch_losses"):
        assert second[key] == first[key], key
    npz = read_explanations(run / "explanations.npz")
    np.testing.assert_array_equal(npz["output"], first_logits)
    # Multiclass: one-hot inputs of 'colour' are summed back into one feature, still exact.
    assert npz["values"].shape == (16, 3, 3) and npz["extra_weights"].shape[1:] == (5 + 1, 3)
    assert npz["input_to_feature"].tolist() == [0, 1, 2, 2, 2]
    np.testing.assert_allclose(npz["values"].sum(axis=1) + npz["rest"], npz["output"], atol=1e-5)
    assert first["task"] == "multiclass" and first["n_classes"] == 3

    assert main_experiment.main([*args, "--seed", "1"]) == 0  # another seed: another split and model
    other = json.loads((output / "inn" / file_dataset_key(data) / "1" / "output_info.json").read_text())
    assert other["feature_importances"] != first["feature_importances"]


def test_regression_end_to_end(tmp_path):
    data = _csv(tmp_path / "prices.csv", target="regression")
    output = tmp_path / "out"
    args = ["--interpretable", *FAST, "--mode", "regression", "--dataset_path", str(data), "--output_dir", str(output)]
    assert main_experiment.main(args) == 0
    run = output / "inn" / file_dataset_key(data) / "0"
    report = read_report(run / "output_info.json")
    assert report["task"] == "regression" and report["n_classes"] == 0
    for key in REGRESSION_METRICS + ("time", "top_10_features", "top_10_features_weights"):
        assert key in report, key
    assert not set(CLASSIFICATION_METRICS) & set(report)
    assert report["train_mse"] >= 0 and report["test_mse"] >= 0
    npz = read_explanations(run / "explanations.npz")
    # In target units (around 50): additive up to float32 rounding of such values.
    np.testing.assert_allclose(npz["values"].sum(axis=1) + npz["rest"], npz["output"], atol=1e-4)
    assert npz["classes"].size == 0 and npz["y_true"].dtype == np.float64 and npz["output_name"] == "prediction"
    payload = torch.load(run / "model.pt")
    assert payload["target_scale"] > 1 and payload["target_mean"] == pytest.approx(50, abs=5)


def test_tabresnet_end_to_end_writes_gradient_explanations(tmp_path):
    data = _csv(tmp_path / "small.csv")
    output = tmp_path / "out"
    assert main_experiment.main([*FAST, "--dataset_path", str(data), "--output_dir", str(output)]) == 0
    run = output / "tabresnet" / file_dataset_key(data) / "0"
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    report = read_report(run / "output_info.json")
    assert report["method"] == "tabresnet" and report["explanation"]["explainer"] == "gradient_x_input"
    assert report["explanation"]["exact"] is False and report["explanation"]["additivity_error"] is None
    npz = read_explanations(run / "explanations.npz")
    assert npz["exact"] is False and npz["values"].shape == (16, 3, 1)
    assert torch.load(run / "model.pt")["network"] == "TabResNetNetwork"


def test_compressed_csv_run_is_found_again(tmp_path, capsys):
    data = _csv(tmp_path / "packed.csv.gz")
    args = [*FAST, "--dataset_path", str(data), "--output_dir", str(tmp_path / "out")]
    assert main_experiment.main(args) == 0
    assert (tmp_path / "out" / "tabresnet" / file_dataset_key(data) / "0" / "output_info.json").is_file()
    assert file_dataset_key(data).startswith("packed-")  # the name without .csv.gz, and the content's hash
    capsys.readouterr()
    assert main_experiment.main(args) == 0
    assert "already done" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------------
# User errors: one line on stderr, exit code 2, nothing under the output directory


def _unknown_to_openml(monkeypatch, openml):
    def unknown(*args, **kwargs):
        raise openml.exceptions.OpenMLServerException("Unknown dataset", code=111)

    monkeypatch.setattr(openml._api_calls, "_perform_api_call", unknown)


ERROR_CASES = {
    "unknown dataset id": (["--dataset_id", "987654"], "OpenML has no dataset with id 987654"),
    "unreachable dataset id": (["--dataset_id", "987654"], "could not be reached"),
    "missing file": (["--dataset_path", "{tmp}/missing.csv"], "does not exist"),
    "unreadable file": (["--dataset_path", "{tmp}/broken.parquet"], "cannot read"),
    "unknown target": (["--dataset_path", "{tmp}/binary.csv", "--target", "nope"], "'nope' is not in"),
    "regression target in classification mode": (["--dataset_path", "{tmp}/regression.csv"], "--mode regression"),
    "class target in regression mode": (
        ["--dataset_path", "{tmp}/binary.csv", "--mode", "regression"],
        "--mode classification",
    ),
    "single class": (["--dataset_path", "{tmp}/single.csv"], "single class"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_user_errors_exit_2_with_one_line(case, tmp_path, no_network, monkeypatch, capsys):
    if case == "unknown dataset id":
        _unknown_to_openml(monkeypatch, no_network)
    for kind in ("binary", "regression", "single"):
        _csv(tmp_path / f"{kind}.csv", target=kind)
    (tmp_path / "broken.parquet").write_text("this is not parquet")
    flags, expected = ERROR_CASES[case]
    output = tmp_path / "out"
    argv = ["--interpretable", *FAST, "--output_dir", str(output), *(f.format(tmp=tmp_path) for f in flags)]
    assert main_experiment.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], captured.err
    assert not output.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is missing")
def test_cuda_without_cuda_is_a_user_error(tmp_path, capsys):
    data = _csv(tmp_path / "small.csv")
    output = tmp_path / "out"
    assert main_experiment.main(["--dataset_path", str(data), "--device", "cuda", "--output_dir", str(output)]) == 2
    assert capsys.readouterr().err.startswith("error: --device cuda was requested")
    assert not output.exists()


def test_script_exit_code_and_stderr_in_a_real_process(tmp_path):
    output = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "main_experiment.py",
            "--dataset_path",
            str(tmp_path / "missing.csv"),
            "--output_dir",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: dataset file {tmp_path / 'missing.csv'} does not exist"]
    assert result.stdout == "" and not output.exists()


# ---------------------------------------------------------------------------------------------------------------
# Argument parsing


@pytest.mark.parametrize(
    "flags",
    [
        ["--augmentation_probability", "2"],
        ["--augmentation_probability", "-0.1"],
        ["--nr_epochs", "0"],
        ["--nr_epochs", "1.5"],
        ["--test_split_size", "1.5"],
        ["--test_split_size", "0"],
        ["--learning_rate", "0"],
        ["--weight_decay", "-1"],
        ["--dropout", "1"],
        ["--nr_restarts", "0"],
        ["--dataset_id", "0"],
        ["--batch_size", "abc"],
        ["--batch_size", "1"],
        ["--scheduler_t_mult", "0.5"],
        ["--variant", "../escape"],
        ["--reference", "median"],
        ["--class_balance", "smote"],
        ["--mode", "ranking"],
        ["--no_such_flag"],
    ],
)
def test_out_of_range_flags_exit_2(flags, tmp_path, capsys):
    output = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main_experiment.main([*flags, "--output_dir", str(output)])
    assert info.value.code == 2
    assert flags[0] in capsys.readouterr().err
    assert not output.exists()


def test_readme_example_flags_parse():
    from experiments import cli

    config = cli.neural_config(shlex.split(README_EXAMPLE))
    assert config.method == "inn" and config.data.dataset_id == 1590 and config.model_params["nr_restarts"] == 3
    assert (config.model_params["weight_norm"], config.seed) == (0.1, 0)
    assert config.output_dir == Path(".") and not config.force


def test_defaults_are_the_papers():
    from experiments import cli

    config = cli.neural_config([])
    assert config.method == "tabresnet" and config.model_params == {}  # the estimators' own defaults apply
    params = config.spec.resolve_params("classification")
    assert (config.data.key, params["nr_blocks"], params["hidden_size"], params["batch_size"]) == ("31", 2, 128, 64)
    assert (params["learning_rate"], params["weight_decay"], params["scheduler_t_mult"]) == (0.01, 0.01, 2.0)
    assert (params["nr_restarts"], params["augmentation_probability"]) == (3, 0.0)
    assert (config.data.test_split_size, config.mode, config.wandb_project) == (0.2, "classification", None)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--method", "inn", "--num_concepts", "3"], "--num_concepts"),
        (["--method", "tabresnet", "--robust_reg", "0.5"], "--robust_reg"),
        (["--method", "tabresnet", "--weight_norm", "0.5"], "--weight_norm"),
        (["--method", "senn", "--beta", "2"], "--beta"),
        (["--method", "senn", "--product_inputs", "standardised"], "--product_inputs"),
        (["--method", "inn", "--penalty_strength", "2"], "--penalty_strength"),
    ],
)
def test_a_flag_that_does_not_apply_to_the_method_is_an_error(argv, named, tmp_path, capsys):
    output = tmp_path / "out"
    assert main_experiment.main([*argv, "--nr_epochs", "1", "--output_dir", str(output)]) == 2
    line = _error_line(capsys)
    assert named in line and ("does not apply" in line or "needs --penalty" in line)
    assert not output.exists()


def test_a_baseline_flag_of_another_baseline_is_an_error(tmp_path, capsys):
    import baseline_experiment

    output = tmp_path / "out"
    argv = ["--model_name", "random_forest", "--catboost_iterations", "5", "--output_dir", str(output)]
    assert baseline_experiment.main(argv) == 2
    assert "--catboost_iterations does not apply to random_forest" in _error_line(capsys)
    assert not output.exists()


# ---------------------------------------------------------------------------------------------------------------
# Where results go: checked before any work; a run folder is one unit


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if a run gets as far as loading data."""
    from experiments import config

    def refuse(data):
        raise AssertionError("the data was loaded: the check did not come first")

    monkeypatch.setattr(config, "dataset_loader", refuse)


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("case", ["a file", "below a file", "not writable", "disk full"])
def test_output_dir_problems_stop_the_run_before_any_work(case, tmp_path, no_loading, monkeypatch, capsys):
    import os
    import shutil as shutil_module

    from experiments import cli

    afile = tmp_path / "afile"
    afile.write_text("x")
    output = {"a file": afile, "below a file": afile / "results", "disk full": tmp_path / "out"}.get(case)
    if case == "not writable":
        if os.geteuid() == 0:  # permission bits do not stop root: use a place nobody can create files in
            output = Path("/sys/inn_results")
        else:
            locked = tmp_path / "locked"
            locked.mkdir()
            locked.chmod(0o555)
            output = locked / "results"
    if case == "disk full":
        usage = shutil_module.disk_usage(tmp_path)
        monkeypatch.setattr(cli.shutil, "disk_usage", lambda path: usage._replace(free=10 * 2**20))
    assert main_experiment.main(["--interpretable", *FAST, "--output_dir", str(output)]) == 2
    line = _error_line(capsys)
    expected = {"a file": "is a file", "below a file": "lies below the file", "not writable": "cannot be written"}
    assert expected.get(case, "MB free") in line and "--output_dir" in line
    assert not (tmp_path / "out").exists() and afile.read_text() == "x"


def test_one_dataset_per_run(tmp_path, no_loading, capsys):
    data = _csv(tmp_path / "small.csv")
    argv = ["--dataset_id", "31", "--dataset_path", str(data), "--output_dir", str(tmp_path / "out")]
    assert main_experiment.main(argv) == 2
    assert "--dataset_id and --dataset_path" in _error_line(capsys)


def _first_run(tmp_path) -> tuple[list[str], Path, dict]:
    data = _csv(tmp_path / "small.csv")
    argv = ["--interpretable", *FAST, "--dataset_path", str(data), "--output_dir", str(tmp_path / "out")]
    assert main_experiment.main(argv) == 0
    from data.loading import file_dataset_key

    run = tmp_path / "out" / "inn" / file_dataset_key(data) / "0"
    return argv, run, {path.name: path.read_bytes() for path in run.iterdir()}


def test_a_full_disk_while_writing_keeps_the_old_run_whole(tmp_path, monkeypatch, capsys):
    import errno

    from experiments import results

    argv, run, before = _first_run(tmp_path)

    def full(path, data):
        if path.name != "output_info.json":  # the first files fit, then the disk is full
            return Path(path).write_bytes(data)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results, "_write_synced", full)
    capsys.readouterr()
    assert main_experiment.main([*argv, "--force", "--nr_epochs", "3"]) == 2
    assert "no space left" in _error_line(capsys)
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before  # the old run, every file of it
    assert [path.name for path in run.parent.iterdir()] == ["0"]  # no half-written sibling left


def _crash_between_the_renames(directory: Path, files: dict) -> None:
    """Child process: write a run but die (like SIGKILL) right after the old folder was moved aside."""
    import os

    from experiments import results

    real_replace = os.replace
    calls = []

    def replace(source, destination):
        calls.append(source)
        real_replace(source, destination)
        if len(calls) == 1:
            os._exit(9)

    results.os.replace = replace
    results.write_run_atomically(directory, files)


def test_a_crash_mid_replacement_leaves_the_run_pending_and_is_cleaned_up(tmp_path):
    import multiprocessing

    from experiments.results import RESULTS_FILENAME, is_complete, write_run_atomically

    directory = tmp_path / "inn" / "31" / "0"
    write_run_atomically(directory, {RESULTS_FILENAME: b"old", "explanations.npz": b"old"})
    process = multiprocessing.get_context("fork").Process(
        target=_crash_between_the_renames, args=(directory, {RESULTS_FILENAME: b"new", "explanations.npz": b"new"})
    )
    process.start()
    process.join(60)
    assert process.exitcode == 9
    # The old folder was moved aside and the new one not yet in place: the run is pending, never mixed.
    assert not directory.exists() and not is_complete(directory / RESULTS_FILENAME)
    leftovers = sorted(p.name for p in directory.parent.iterdir())
    assert leftovers and all(name.startswith((".staging-0.", ".retired-0.")) for name in leftovers)
    write_run_atomically(directory, {RESULTS_FILENAME: b"newer"})  # the next write cleans up
    assert sorted(p.name for p in directory.parent.iterdir()) == ["0"]
    assert (directory / RESULTS_FILENAME).read_bytes() == b"newer" and not (directory / "explanations.npz").exists()


#: ``main_experiment.py`` with one line on stdout, ``training``, when the training loop starts: an event a test can
#: wait for instead of a guess at how long imports and data take on some machine.
_ANNOUNCING_MAIN = """
import runpy, sys
import models.estimators as estimators
train = estimators.train_snapshot_ensemble
def announced(*args, **kwargs):
    print("training", flush=True)
    return train(*args, **kwargs)
estimators.train_snapshot_ensemble = announced
sys.argv[0] = "main_experiment.py"
runpy.run_path("main_experiment.py", run_name="__main__")
"""


def _wait_for_line(process: subprocess.Popen, expected: bytes, timeout: float = 300.0) -> None:
    """Block until ``process`` prints ``expected`` on stdout (fails if it ends or the deadline passes first)."""
    import select
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            if line.strip() == expected:
                return
            assert line, f"the process ended (exit code {process.wait()}) before printing {expected!r}"
    raise AssertionError(f"no {expected!r} within {timeout:.0f} s")


@pytest.mark.slow
def test_a_force_rerun_killed_while_training_leaves_the_old_run_whole(tmp_path):
    import signal

    argv, run, before = _first_run(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", _ANNOUNCING_MAIN, *argv, "--force", "--nr_epochs", "2000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_line(process, b"training")  # imports and data are done; 2000 epochs lie ahead
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL  # killed, not finished
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before
    assert read_report(run / "output_info.json")["created"] == json.loads(before["output_info.json"])["created"]
    assert not [path for path in run.parent.iterdir() if path.name.startswith(".staging")]


def test_an_exploding_loss_is_reported_and_a_normal_one_is_not():
    from experiments.runner import loss_warning

    assert loss_warning([0.7, 0.5, 0.4, 0.35, 0.3]) is None
    assert loss_warning([0.7, 0.6, 0.69, 0.71, 0.7]) is None  # noisy but flat
    message = loss_warning([0.7, 0.3, 0.1, 2.0, 9.0, 40.0])
    assert message is not None and "exploded" in message and "learning_rate" in message
