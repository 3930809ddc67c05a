"""Tests of the faithfulness experiments: feature removal (``xai.removal``), the faithfulness and two-moons scripts'
library parts, and the explanation-speed benchmark (tiny settings; nothing here is timed)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data import RawDataset, load_dataset, prepare_split
from methods import REGISTRY
from studies import faithfulness
from studies.two_moons import (
    balanced_prefix_accuracy,
    local_hyperplane_accuracy,
    nearest_per_class_accuracy,
    summary_table,
)
from xai.removal import drop_features, fit_method, held_out_auroc, removal_curve, removal_order

ROOT = Path(__file__).resolve().parents[1]


def test_dropping_a_feature_removes_exactly_its_columns_and_keeps_the_split() -> None:
    raw = load_dataset(31)  # credit-g, embedded: 13 categorical features
    full = prepare_split(raw, seed=0, encoding_type="onehot")
    reduced = prepare_split(drop_features(raw, ["checking_status"]), seed=0, encoding_type="onehot")
    kept = [name for name in full.input_names if not name.startswith("checking_status")]
    assert len(kept) < len(full.input_names) and reduced.input_names == kept
    assert "checking_status" not in reduced.feature_names
    assert len(reduced.feature_names) == len(full.feature_names) - 1
    np.testing.assert_array_equal(reduced.test_index, full.test_index)  # the same test rows
    columns = [full.input_names.index(name) for name in kept]
    np.testing.assert_array_equal(reduced.X_test, full.X_test[:, columns])  # every other column unchanged
    with pytest.raises(ValueError, match="no feature"):
        drop_features(raw, ["not_a_feature"])


def test_removal_order_is_by_decreasing_importance_with_stable_ties() -> None:
    assert removal_order([0.1, 0.4, 0.1, 0.4], ["a", "b", "c", "d"]) == ["b", "d", "a", "c"]
    with pytest.raises(ValueError):
        removal_order([0.5, 0.5], ["a"])


def _signal_dataset(n: int = 600) -> RawDataset:
    """``y`` depends strongly on ``signal``, weakly on ``weak``, not at all on ``noise``."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"noise": rng.normal(size=n), "weak": rng.normal(size=n), "signal": rng.normal(size=n)})
    y = pd.Series(np.where(2.0 * X["signal"] + 0.5 * X["weak"] + 0.3 * rng.normal(size=n) > 0, "pos", "neg"))
    return RawDataset(name="signal", dataset_id=1, X=X, y=y, categorical=[False] * 3, target="y")


def test_removing_the_feature_a_linear_model_ranks_first_costs_the_most_auroc() -> None:
    raw = _signal_dataset()
    spec = REGISTRY["logistic_regression"]
    fitted = fit_method(spec, raw, seed=0)
    importance = spec.explain(fitted.model, fitted.split, fitted.inputs()[0]).global_importance()
    order = removal_order(importance, fitted.split.feature_names)
    assert order == ["signal", "weak", "noise"]
    scores = removal_curve(spec, raw, order, [0, 1, 2], seed=0)
    assert scores[0] == pytest.approx(held_out_auroc(fitted)) and scores[0] > 0.97
    assert scores[1] < 0.75  # only the weak feature is left
    assert scores[2] < 0.65  # only noise is left
    noise_only = removal_curve(spec, raw, ["noise", "weak", "signal"], [1], seed=0)
    assert noise_only[1] > 0.97  # removing the unused feature costs nothing
    with pytest.raises(ValueError, match="k must be"):
        removal_curve(spec, raw, order, [3], seed=0)


def test_local_hyperplanes_of_a_linear_dataset_are_accurate_at_every_k() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    w, b = np.array([1.5, -2.0]), 0.3
    y = (X @ w + b > 0).astype(int)
    weights, bias = np.tile(w, (300, 1)), np.full(300, b)
    ks = [1, 10, 50, 200, 299]
    assert local_hyperplane_accuracy(weights, bias, X, y, ks) == {k: 1.0 for k in ks}
    assert balanced_prefix_accuracy(weights, bias, X, y, [10, 50]) == {10: 1.0, 50: 1.0}
    # Predicting class 1 everywhere on the IMN script's balanced rows scores k // 2 of k.
    always = balanced_prefix_accuracy(np.zeros_like(weights), np.ones(300), X, y, [10, 25])
    assert always == {10: 0.5, 25: 12 / 25}


def test_nearest_per_class_accuracy_separates_good_local_lines_from_one_sided_ones() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    w, b = np.array([1.5, -2.0]), 0.3
    y = (X @ w + b > 0).astype(int)
    weights, bias = np.tile(w, (300, 1)), np.full(300, b)
    for per_class in ("half", "all"):
        assert nearest_per_class_accuracy(weights, bias, X, y, [10, 50], per_class=per_class) == {10: 1.0, 50: 1.0}
    # A line that puts everything on class 1's side is right on exactly the class-1 half of a balanced neighbourhood,
    # where the k nearest points (whatever their class) would reward it with the neighbourhood's purity.
    one_sided = nearest_per_class_accuracy(np.zeros_like(weights), np.ones(300), X, y, [10, 25])
    assert one_sided == {10: 0.5, 25: pytest.approx(12 / 25)}
    assert nearest_per_class_accuracy(np.zeros_like(weights), np.ones(300), X, y, [25], per_class="all") == {25: 0.5}
    # The point itself is never its own neighbour: with k = n_class - 1 every other point of the class is used.
    smallest = int(min(y.sum(), (1 - y).sum()))
    everything = nearest_per_class_accuracy(weights, bias, X, y, [smallest - 1], per_class="all")
    assert everything[smallest - 1] == 1.0
    with pytest.raises(ValueError, match="fewer than"):
        nearest_per_class_accuracy(weights, bias, X, y, [smallest], per_class="all")


def test_two_moons_summary_gives_mean_and_sample_sd_beside_the_paper() -> None:
    tables = [pd.DataFrame({"k": [10, 200], "a": [0.5, 0.7]}), pd.DataFrame({"k": [10, 200], "a": [0.7, 0.9]})]
    summary = summary_table(tables)
    assert summary.to_dict("list") == {
        "k": [10, 200],
        "paper": ["0.84", "0.77"],
        "a": ["0.600 ± 0.141", "0.800 ± 0.141"],
    }


def test_local_hyperplane_accuracy_scores_each_line_on_its_own_neighbours() -> None:
    # Two far-apart clusters of n points, each labelled by its own threshold (x > 0 in A, x > 100 in B); every
    # point's line is its cluster's threshold: right on its own cluster, a constant guess on the other.
    n = 20
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(n, 2)) * 0.1, rng.normal(size=(n, 2)) * 0.1 + 100.0])
    y = (X[:, 0] > np.r_[np.zeros(n), np.full(n, 100.0)]).astype(int)
    weights = np.tile([1.0, 0.0], (2 * n, 1))
    bias = np.r_[np.zeros(n), np.full(n, -100.0)]
    accuracy = local_hyperplane_accuracy(weights, bias, X, y, [n - 1, 2 * n - 1])
    assert accuracy[n - 1] == 1.0  # the n - 1 nearest others are the own cluster
    # k = 2n - 1: the own cluster (right) and the other one, where A's line says 1 everywhere (right for B's
    # positives) and B's line says 0 everywhere (right for A's negatives).
    positives_b, negatives_a = y[n:].sum(), n - y[:n].sum()
    expected = ((n - 1) + positives_b + (n - 1) + negatives_a) / (2 * (2 * n - 1))
    assert 0.3 < expected < 0.9 and accuracy[2 * n - 1] == pytest.approx(expected)


def test_faithfulness_writes_tables_and_figure_and_resumes(tmp_path: Path, capsys) -> None:
    argv = [
        "--out",
        str(tmp_path),
        "--datasets",
        "31",
        "--removal_datasets",
        "31",
        "--methods",
        "logistic_regression",
        "decision_tree",
        "--removal_methods",
        "logistic_regression",
        "decision_tree",
        "--random_control",
        "logistic_regression",
        "--ks",
        "1",
        "2",
        "--smoke",
        "--sensitivity_repeats",
        "2",
    ]
    assert faithfulness.main(argv) == 0
    assert "2 unit(s) computed" in capsys.readouterr().out
    removal = pd.read_csv(tmp_path / "removal.csv")
    assert sorted(removal["method"].unique()) == ["decision_tree", "logistic_regression", "logistic_regression-random"]
    assert sorted(removal["k"].unique()) == [0, 1, 2]
    unit = json.loads((tmp_path / "units" / "31" / "logistic_regression" / "0.json").read_text())
    first = removal[(removal.method == "logistic_regression") & (removal.k == 1)].iloc[0]
    order = removal_order(unit["explanations"]["native"]["importance_train"], unit["feature_names"])
    assert first["removed"] == order[0]
    assert first["drop"] == pytest.approx(unit["test_auroc"] - first["auroc"])
    summary = pd.read_csv(tmp_path / "sensitivity_summary.csv")
    assert set(summary["method"]) == {"logistic_regression", "decision_tree"}
    assert summary["spearman"].between(-1, 1).all()
    table = (tmp_path / "sensitivity.md").read_text()
    assert "Logistic Regression (coefficients)" in table and "Decision Tree (TreeSHAP)" in table
    assert (tmp_path / "removal.png").stat().st_size > 0
    # A second run finds every unit done and computes nothing.
    modified = (tmp_path / "units" / "31" / "decision_tree" / "0.json").stat().st_mtime_ns
    assert faithfulness.main(argv) == 0
    assert "0 unit(s) computed" in capsys.readouterr().out
    assert (tmp_path / "units" / "31" / "decision_tree" / "0.json").stat().st_mtime_ns == modified
    assert faithfulness.main(["--out", str(tmp_path / "empty"), "--report_only"]) == 2


def test_explain_speed_runs_on_twenty_rows(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("explain_speed", ROOT / "benchmarks" / "explain_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    output = tmp_path / "speed.csv"
    # Every explainer but permutation SHAP, whose first call compiles shap's numba code (about 13 s of CPU).
    explainers = ["kernel_shap", "exact_shap", "lime", "gradient_x_input", "catboost_shap", "tabnet_masks"]
    argv = ["--datasets", "31", "--rows", "20", "--smoke", "--background", "4", "--kernel_samples", "30"]
    argv += ["--lime_samples", "30", "--exact_max_features", "4", "--repeats", "1", "--explainers", *explainers]
    assert module.main([*argv, "--output", str(output)]) == 0
    with output.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["explainer"] for row in rows][:2] == ["native (generated weights)", "KernelSHAP"]
    assert len(rows) == 7 and all(row["rows"] == "20" for row in rows)
    assert float(rows[0]["ratio_to_inn"]) == 1.0
    exact = next(row for row in rows if row["explainer"] == "exact SHAP")
    assert exact["measured"] == "False"  # 20 features > 4: estimated, not run
    for row in rows:
        per_example = 1000 * float(row["cpu_s"]) / 20
        assert float(row["total_s"]) > 0 and float(row["per_example_ms"]) == pytest.approx(per_example)
        assert float(row["ratio_to_inn"]) == pytest.approx(float(row["cpu_s"]) / float(rows[0]["cpu_s"]))


def test_removal_figure_names_each_methods_seed_count_when_they_differ() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plots.faithfulness import removal_figure

    rows = [
        {"dataset_id": 31, "dataset": "credit-g", "method": method, "label": label, "seed": seed, "k": k,
         "auroc": 0.8 - 0.01 * k, "drop": 0.01 * k}
        for method, label, seeds in (("inn", "INN", (0, 1, 2)), ("tabresnet", "TabResNet + KernelSHAP", (0, 1)))
        for seed in seeds
        for k in (0, 1, 2)
    ]  # fmt: skip
    frame = pd.DataFrame(rows)
    figure = removal_figure(frame)
    ax = figure.axes[0]
    assert ax.get_title() == "credit-g (31), seeds per method in the legend"
    assert ax.get_legend_handles_labels()[1] == ["INN (3 seeds)", "TabResNet + KernelSHAP (2 seeds)"]
    plt.close(figure)
    figure = removal_figure(frame[frame["seed"] < 2])
    assert figure.axes[0].get_title() == "credit-g (31), 2 seeds"
    assert figure.axes[0].get_legend_handles_labels()[1] == ["INN", "TabResNet + KernelSHAP"]
    plt.close(figure)
