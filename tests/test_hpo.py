"""Tests of hyperparameter optimisation (``experiments.hpo`` and ``--hpo_tuning`` in both experiment scripts):
the paper's search spaces, the seeded TPE study with the default configuration first, failing trials, the
60/20/20 split, ``trials.csv`` and the refit on train+valid. Offline and fast: the embedded credit-g, few
trials, and the epoch range shrunk so that a trial takes seconds.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import baseline_experiment
import main_experiment
from errors import UserError
from experiments import hpo
from experiments.results import read_report, results_path
from methods import REGISTRY, Choice, FloatRange, IntRange

NEURAL_DEFAULTS = {
    "nr_epochs": 2,
    "learning_rate": 0.01,
    "batch_size": 64,
    "weight_decay": 0.01,
    "weight_norm": 0.1,
    "dropout": 0.0,
}


def test_search_spaces_are_the_papers() -> None:
    inn = hpo.search_space("inn")
    assert inn == {
        "nr_epochs": IntRange(10, 500),
        "learning_rate": FloatRange(1e-5, 1e-1, log=True),
        "batch_size": Choice((32, 64, 128, 256, 512)),
        "weight_decay": FloatRange(1e-5, 1e-1, log=True),
        "weight_norm": FloatRange(1e-5, 1e-1, log=True),
        "dropout": FloatRange(0.0, 0.5),
    }
    assert hpo.search_space("tabresnet") == {name: p for name, p in inn.items() if name != "weight_norm"}
    assert set(hpo.search_space("catboost")) == {
        "learning_rate",
        "random_strength",
        "l2_leaf_reg",
        "bagging_temperature",
        "leaf_estimation_iterations",
        "iterations",
    }
    assert hpo.search_space("random_forest")["n_estimators"] == IntRange(100, 4000)
    assert hpo.search_space("decision_tree")["splitter"] == Choice(("best", "random"))
    assert hpo.search_space("tabnet")["batch_size"].choices == (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
    # Classifier-only options have regression counterparts.
    assert hpo.search_space("decision_tree", "regression")["criterion"] == Choice(("squared_error", "friedman_mse"))
    assert set(hpo.search_space("logistic_regression", "regression")) == {"alpha", "fit_intercept"}
    assert hpo.to_model_params("logistic_regression", {"C": 2.0, "penalty": "none"}) == {"C": math.inf}
    assert hpo.to_model_params("logistic_regression", {"C": 2.0, "penalty": "l2"}) == {"C": 2.0}
    with pytest.raises(ValueError, match="no search space"):
        hpo.search_space("svm")


def test_default_first_seeded_and_failed_trials_do_not_end_the_study() -> None:
    seen: list[dict] = []

    def evaluate(params: dict) -> float:
        seen.append(params)
        if len(seen) == 2:
            raise RuntimeError("diverged")
        if len(seen) == 3:
            return float("nan")
        return params["learning_rate"]

    result = hpo.tune(
        "inn",
        evaluate,
        mode="classification",
        seed=3,
        n_trials=5,
        timeout=None,
        default_params={**NEURAL_DEFAULTS, "device": "cpu"},
        log=None,
    )
    assert seen[0] == NEURAL_DEFAULTS  # the default configuration, as given (even outside the range)
    assert result.n_trials_run == 5 and result.n_trials_failed == 2
    trials = result.trials
    assert list(trials["state"]) == ["COMPLETE", "FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials.loc[1, "user_attrs_error"] == "RuntimeError: diverged"
    assert "non-finite" in trials.loc[2, "user_attrs_error"]
    assert bool(trials.loc[0, "user_attrs_default_configuration"]) is True
    best = max((p for i, p in enumerate(seen) if i not in (1, 2)), key=lambda p: p["learning_rate"])
    assert result.best_params == best and result.best_value == best["learning_rate"]
    # The same seed proposes the same configurations.
    again: list[dict] = []
    hpo.tune("inn", lambda p: again.append(p) or 0.5, mode="classification", seed=3, n_trials=5, timeout=None, log=None)
    other: list[dict] = []
    hpo.tune("inn", lambda p: other.append(p) or 0.5, mode="classification", seed=4, n_trials=5, timeout=None, log=None)
    assert again != other
    repeat: list[dict] = []
    hpo.tune(
        "inn", lambda p: repeat.append(p) or 0.5, mode="classification", seed=3, n_trials=5, timeout=None, log=None
    )
    assert repeat == again


def test_regression_minimises_and_study_limits() -> None:
    result = hpo.tune(
        "decision_tree", lambda p: float(p["max_depth"]), mode="regression", seed=0, n_trials=8, timeout=None, log=None
    )
    assert result.direction == "minimize" and result.metric == "valid_mse"
    assert result.best_value == result.trials["value"].min()
    start = time.perf_counter()
    timed = hpo.tune(
        "decision_tree",
        lambda p: time.sleep(0.2) or 0.5,
        mode="classification",
        seed=0,
        n_trials=1000,
        timeout=0.5,
        log=None,
    )
    # The 0.5 s limit stopped it after a few of its 1000 trials of 0.2 s (200 s): a bound that holds under any load.
    assert 1 <= timed.n_trials_run < 10 and time.perf_counter() - start < 100
    with pytest.raises(UserError, match="all 3 trials failed; ValueError: bad"):
        hpo.tune("inn", _raise(ValueError("bad")), mode="classification", seed=0, n_trials=3, timeout=None, log=None)
    calls: list[int] = []

    def missing_package(params: dict) -> float:
        calls.append(1)
        raise UserError("needs catboost")

    with pytest.raises(UserError, match="needs catboost"):
        hpo.tune("catboost", missing_package, mode="classification", seed=0, n_trials=5, timeout=None, log=None)
    assert len(calls) == 1  # a user error ends the study at once
    tabnet = hpo.tune(
        "tabnet", lambda p: 0.5, mode="classification", seed=0, n_trials=1, timeout=None, accepted={"n_a"}, log=None
    )
    assert set(tabnet.best_params) == {"n_a"} and "momentum" in tabnet.not_tuned


def _raise(error: Exception):
    def evaluate(params: dict) -> float:
        raise error

    return evaluate


def test_hpo_split_is_stratified_60_20_20() -> None:
    from data import load_dataset

    raw = load_dataset(dataset_id=31)
    from experiments.config import RunConfig

    split = hpo.hpo_split(raw, RunConfig(method="inn"), "paper")  # seed 0, test fraction 0.2
    assert (len(split.y_train), len(split.y_valid), len(split.y_test)) == (600, 200, 200)
    rates = [np.mean(y) for y in (split.y_train, split.y_valid, split.y_test)]
    assert max(rates) - min(rates) < 0.01
    from data import prepare_split

    plain = prepare_split(raw, mode="classification", seed=0, test_split_size=0.2)
    assert np.array_equal(np.sort(plain.test_index), np.sort(split.test_index))  # same test rows as without HPO


@pytest.fixture
def few_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the epoch range so that a trial takes seconds (the paper's range is 10..500)."""
    monkeypatch.setitem(REGISTRY["inn"].search_space["classification"], "nr_epochs", IntRange(1, 3))


def test_main_experiment_hpo_three_trials(tmp_path: Path, few_epochs: None) -> None:
    args = ["--interpretable", "--hpo_tuning", "--n_trials", "3", "--nr_epochs", "2", "--seed", "1"]
    args += ["--output_dir", str(tmp_path), "--device", "cpu"]
    assert main_experiment.main(args) == 0
    report = read_report(results_path(tmp_path, "inn", 31, 1))
    trials = pd.read_csv(tmp_path / "inn" / "31" / "1" / hpo.TRIALS_FILENAME)
    assert len(trials) == 3 and set(trials["state"]) == {"COMPLETE"}
    first = trials.iloc[0]
    assert (first["params_nr_epochs"], first["params_learning_rate"], first["params_batch_size"]) == (2, 0.01, 64)
    info = report["config"]["hpo"]
    assert info["n_trials_run"] == 3 and info["metric"] == "valid_auroc" and info["seed"] == 1
    assert info["best_value"] == pytest.approx(trials["value"].max())
    for name, value in info["best_params"].items():
        assert report["config"]["model_params"][name] == value  # the refit uses the best configuration
    assert report["n_train"] == 800 and report["n_test"] == 200  # refit on train+valid, tested once


def test_baseline_experiment_hpo_three_trials(tmp_path: Path) -> None:
    args = ["--model_name", "catboost", "--catboost_iterations", "20", "--hpo_tuning", "--n_trials", "3"]
    args += ["--output_dir", str(tmp_path)]
    assert baseline_experiment.main(args) == 0
    report = read_report(results_path(tmp_path, "catboost", 31, 0))
    trials = pd.read_csv(tmp_path / "catboost" / "31" / "0" / hpo.TRIALS_FILENAME)
    assert len(trials) == 3
    assert "params_iterations" not in trials  # set by a flag: held fixed, not tuned
    info = report["config"]["hpo"]
    params = report["config"]["model_params"]
    assert params["iterations"] == 20
    assert params["learning_rate"] == pytest.approx(info["best_params"]["learning_rate"])
    assert report["n_train"] == 800


def test_decision_tree_hpo_writes_every_trial(tmp_path: Path) -> None:
    args = ["--model_name", "decision_tree", "--hpo_tuning", "--n_trials", "4", "--seed", "2"]
    assert baseline_experiment.main([*args, "--output_dir", str(tmp_path)]) == 0
    trials = pd.read_csv(tmp_path / "decision_tree" / "31" / "2" / hpo.TRIALS_FILENAME)
    assert list(trials["number"]) == [0, 1, 2, 3]
    assert {"params_criterion", "params_max_depth", "params_splitter", "value"} <= set(trials)
    report = read_report(results_path(tmp_path, "decision_tree", 31, 2))
    assert report["config"]["model_params"]["max_depth"] == report["config"]["hpo"]["best_params"]["max_depth"]
