"""Tests of plots/comparison.py on synthetic results trees written with the project's own report schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from errors import UserError
from experiments.results import EXPLANATIONS_FILENAME, build_report, results_path, write_json_atomic
from plots import comparison
from plots.style import METHOD_COLORS, METHOD_LABELS, method_color, method_label, method_order

REPO_ROOT = Path(__file__).resolve().parent.parent
METHODS = ["inn", "tabresnet", "decision_tree"]
DATASETS = ["3", "31", "54", "1067", "1461", "1464"]
SEEDS = [0, 1, 2]
# Method strengths: INN dominates on every dataset, the decision tree is last.
STRENGTH = {"inn": 0.10, "tabresnet": 0.05, "decision_tree": 0.0}


def auroc(method: str, dataset: str, seed: int) -> float:
    """A deterministic score: dataset difficulty + method strength + a little seed noise (never reorders)."""
    base = 0.6 + 0.03 * DATASETS.index(dataset) if dataset in DATASETS else 0.7
    return round(base + STRENGTH.get(method, 0.02) + 0.004 * seed, 6)


def write_run(root: Path, method: str, dataset: str, seed: int, value: float | None = None, **extra) -> Path:
    """One complete report at its place in the results tree."""
    value = auroc(method, dataset, seed) if value is None else value
    report = build_report(
        method=method,
        dataset_id=int(dataset) if dataset.isdigit() else dataset,
        dataset_name=f"data-{dataset}",
        seed=seed,
        task="binary",
        n_classes=2,
        n_train=80 + int(dataset) % 7,
        n_test=20,
        feature_names=["a", "b", "c"],
        n_inputs=3,
        metrics={"train_auroc": 1.0, "train_accuracy": 1.0, "test_auroc": value, "test_accuracy": value - 0.1},
        train_time=extra.pop("train_time", 2.0 if method == "inn" else 1.0),
        inference_time=extra.pop("inference_time", 0.1),
        importances=[0.5, 0.3, 0.2],
        config={"seed": seed},
        extra=extra or None,
    )
    path = results_path(root, method, dataset, seed)
    write_json_atomic(path, report)
    return path


def write_explanations(directory: Path, n_rows: int = 6, n_features: int = 14, n_outputs: int = 1) -> dict:
    """A synthetic explanations.npz whose bias + contributions add up to the logits, as INN's do."""
    rng = np.random.default_rng(0)
    n_inputs = n_features + 2  # two features are one-hot encoded into two columns each
    input_to_feature = np.concatenate([np.arange(n_features), [0, 1]])
    weights = rng.normal(size=(n_rows, n_inputs + 1, n_outputs))
    x = rng.normal(size=(n_rows, n_inputs))
    per_input = weights[:, :-1, :] * x[:, :, None]
    contributions = np.zeros((n_rows, n_features, n_outputs))
    np.add.at(contributions, (slice(None), input_to_feature), per_input)
    bias = weights[:, -1, :]
    arrays = {
        "feature_names": np.array([f"feature_{j}" for j in range(n_features)]),
        "input_names": np.array([f"input_{j}" for j in range(n_inputs)]),
        "input_to_feature": input_to_feature,
        "weights": weights,
        "contributions": contributions,
        "bias": bias,
        "logits": bias + contributions.sum(axis=1),
        "y_true": rng.integers(0, max(n_outputs, 2), n_rows),
        "classes": np.array(["bad", "good"] if n_outputs == 1 else [f"class_{c}" for c in range(n_outputs)]),
    }
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / EXPLANATIONS_FILENAME, **arrays)
    return arrays


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A complete tree: 3 methods x 6 datasets x 3 seeds, INN first everywhere, with INN explanations."""
    root = tmp_path / "results"
    for method in METHODS:
        for dataset in DATASETS:
            for seed in SEEDS:
                path = write_run(root, method, dataset, seed)
                if method == "inn" and dataset == "3" and seed == 0:
                    write_explanations(path.parent)
    return root


def test_style_labels_and_colors_cover_every_method_and_fall_back() -> None:
    from experiments.results import METHODS as ALL_METHODS

    assert set(METHOD_LABELS) == set(ALL_METHODS) == set(METHOD_COLORS)
    assert method_label("inn") == "INN" and method_label("random_forest") == "Random Forest"
    assert method_label("my_new_model") == "My New Model"
    assert method_color("my_new_model") == method_color("my_new_model")
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", method_color("my_new_model"))
    assert method_order(["zzz", "decision_tree", "inn"]) == ["inn", "decision_tree", "zzz"]


def test_dominant_method_gets_rank_one_and_significant_friedman(tree: Path) -> None:
    loaded = comparison.load_runs(tree)
    stats = comparison.seed_statistics(loaded.runs, METHODS, "test_auroc")
    scores = comparison.score_matrix(stats, METHODS, DATASETS)
    ranks = comparison.average_ranks(scores)
    assert ranks["method"].tolist() == ["inn", "tabresnet", "decision_tree"]
    assert ranks["average_rank"].tolist() == [1.0, 2.0, 3.0]
    assert ranks.loc[0, "n_wins"] == len(DATASETS)
    test = comparison.friedman_nemenyi(scores)
    assert test is not None and test.significant
    assert test.critical_difference is not None and test.critical_difference > 0
    assert test.mean_ranks.index[0] == "inn"


def test_friedman_needs_three_methods_and_cd_five_datasets() -> None:
    scores = pd.DataFrame({"inn": [0.9, 0.8, 0.7], "tabresnet": [0.8, 0.7, 0.6], "decision_tree": [0.7, 0.6, 0.5]})
    assert comparison.friedman_nemenyi(scores[["inn", "tabresnet"]]) is None
    test = comparison.friedman_nemenyi(scores)
    assert test is not None and test.critical_difference is None and "5 datasets" in test.note


def test_lower_is_better_metric_ranks_the_smallest_first() -> None:
    scores = pd.DataFrame({"inn": [0.1, 0.2], "tabresnet": [0.3, 0.4]})
    assert not comparison.higher_is_better("test_mse")
    ranks = comparison.average_ranks(scores, higher_better=False)
    assert ranks.loc[0, "method"] == "inn"


def test_tables_match_hand_computed_means(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    comparison.run(tree, out, comparison.ComparisonOptions(explanations=False))
    table = pd.read_csv(out / "auroc_table.csv", dtype={"dataset_id": str})
    row = table.set_index("dataset_id").loc["31"]
    values = [auroc("inn", "31", seed) for seed in SEEDS]
    assert row["inn_mean"] == pytest.approx(sum(values) / 3)
    assert row["inn_std"] == pytest.approx(np.std(values, ddof=1))
    assert row["inn_n_seeds"] == 3
    markdown = (out / "auroc_table.md").read_text()
    mean, std = sum(values) / 3, np.std(values, ddof=1)
    assert f"**{mean:.3f} ± {std:.3f}**" in markdown  # INN is best: bold
    assert f"| {auroc('decision_tree', '31', 1):.3f} ± " in markdown
    latex = (out / "auroc_table.tex").read_text()
    assert f"\\textbf{{{mean:.3f} $\\pm$ {std:.3f}}}" in latex
    assert "data-31 (31)" in latex and "\\begin{tabular}{lccc}" in latex


def test_missing_run_and_corrupt_file_are_reported_and_excluded(tree: Path, tmp_path: Path) -> None:
    # A missing seed (kept: other seeds exist), a corrupt file, and a dataset without any tabresnet run.
    results_path(tree, "inn", "31", 2).unlink()
    results_path(tree, "decision_tree", "54", 1).write_text('{"method": "decision_tree", "test_auroc": ')
    for seed in SEEDS:
        results_path(tree, "tabresnet", "1067", seed).unlink()
    incomplete = results_path(tree, "inn", "1464", 1)
    incomplete.write_text('{"method": "inn"}')

    messages: list[str] = []
    out = tmp_path / "out"
    result = comparison.run(tree, out, comparison.ComparisonOptions(explanations=False), warn=messages.append)
    text = "\n".join(messages)
    assert str(results_path(tree, "decision_tree", "54", 1)) in text  # the corrupt file is named
    assert str(incomplete) in text and "incomplete" in text
    assert "inn/31/2" in text and "dataset 1067 excluded" in text

    missing = pd.read_csv(out / "missing_runs.csv", dtype={"dataset_id": str, "seed": str})
    cells = set(zip(missing["method"], missing["dataset_id"], missing["seed"], strict=True))
    assert cells == {
        ("inn", "31", "2"),
        ("decision_tree", "54", "1"),
        ("inn", "1464", "1"),
        *(("tabresnet", "1067", str(seed)) for seed in SEEDS),
    }
    assert missing.loc[missing["dataset_id"] == "1067", "dataset_excluded"].all()
    assert not missing.loc[missing["dataset_id"] != "1067", "dataset_excluded"].any()
    reasons = {(row.method, row.dataset_id, row.seed): row.reason for row in missing.itertuples()}
    assert (
        "unreadable" in reasons[("decision_tree", "54", "1")] and reasons[("inn", "31", "2")] == "no output_info.json"
    )

    # Per-dataset means use the seeds present; nothing is filled in for the missing ones.
    table = pd.read_csv(out / "auroc_table.csv", dtype={"dataset_id": str}).set_index("dataset_id")
    assert table.loc["31", "inn_n_seeds"] == 2
    assert table.loc["31", "inn_mean"] == pytest.approx((auroc("inn", "31", 0) + auroc("inn", "31", 1)) / 2)
    assert pd.isna(table.loc["1067", "tabresnet_mean"]) and not table.loc["1067", "in_rank_analysis"]
    assert "–" in (out / "auroc_table.md").read_text()
    # The rank analysis uses the five complete datasets only.
    ranks = pd.read_csv(out / "average_ranks.csv")
    assert (ranks["n_datasets"] == len(DATASETS) - 1).all()
    per_dataset = pd.read_csv(out / "ranks_per_dataset.csv", dtype={"dataset_id": str})
    assert "1067" not in set(per_dataset["dataset_id"])
    assert result.coverage is not None and result.coverage.excluded == ["1067"]


def test_every_output_file_is_produced_and_non_empty(tree: Path, tmp_path: Path) -> None:
    for method in ("random_forest", "tabnet"):  # five methods: the full set of figures
        for dataset in DATASETS:
            for seed in SEEDS:
                write_run(tree, method, dataset, seed)
    out = tmp_path / "out"
    result = comparison.run(tree, out)
    expected = [
        "auroc_table.csv",
        "auroc_table.md",
        "auroc_table.tex",
        "average_ranks.csv",
        "ranks_per_dataset.csv",
        "cd_diagram.png",
        "cd_diagram.pdf",
        "wilcoxon_holm.csv",
        "wilcoxon_holm.md",
        "gain_over_decision_tree.csv",
        "gain_over_decision_tree.png",
        "gain_over_decision_tree.pdf",
        "rank_distribution.png",
        "rank_distribution.pdf",
        "times.csv",
        "times.md",
        "inn_tabresnet_time_ratio.csv",
        "inn_tabresnet_time_ratio.png",
        "inn_tabresnet_time_ratio.pdf",
        "datasets.csv",
        "datasets.md",
        "explanation_3_0.png",
        "explanation_3_0.pdf",
        "missing_runs.csv",
        "summary.txt",
    ]
    for name in expected:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert sorted(path.name for path in result.files) == sorted(expected)
    assert (out / "cd_diagram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "cd_diagram.pdf").read_bytes()[:5] == b"%PDF-"
    assert not result.warnings


def test_wilcoxon_holm_and_gain_and_times(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    comparison.run(tree, out, comparison.ComparisonOptions(explanations=False))
    wilcoxon = pd.read_csv(out / "wilcoxon_holm.csv")
    assert len(wilcoxon) == 3
    pair = wilcoxon[(wilcoxon.method_a == "inn") & (wilcoxon.method_b == "decision_tree")].iloc[0]
    assert pair["wins_a"] == len(DATASETS) and pair["wins_b"] == 0
    assert pair["median_difference"] == pytest.approx(STRENGTH["inn"])
    assert (wilcoxon["p_holm"] >= wilcoxon["p_value"]).all()
    gains = pd.read_csv(out / "gain_over_decision_tree.csv")
    assert set(gains["method"]) == {"inn", "tabresnet"}
    assert gains.loc[gains.method == "tabresnet", "gain"].to_numpy() == pytest.approx(STRENGTH["tabresnet"])
    times = pd.read_csv(out / "times.csv").set_index("method")
    assert times.loc["inn", "train_time_median"] == 2.0 and times.loc["tabresnet", "n_runs"] == 18
    ratio = pd.read_csv(out / "inn_tabresnet_time_ratio.csv")
    assert ratio["train_time_ratio"].to_numpy() == pytest.approx(2.0)
    assert ratio["inference_time_ratio"].to_numpy() == pytest.approx(1.0)
    datasets = pd.read_csv(out / "datasets.csv", dtype={"dataset_id": str}).set_index("dataset_id")
    assert datasets.loc["31", "name"] == "data-31" and datasets.loc["31", "n_rows"] == 80 + 31 % 7 + 20
    assert datasets.loc["31", "n_features"] == 3 and datasets.loc["31", "n_classes"] == 2


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_explanation_adds_up_and_waterfall_ends_at_the_logit(tmp_path: Path, n_outputs: int) -> None:
    write_explanations(tmp_path, n_outputs=n_outputs)
    explanations = comparison.load_explanations(tmp_path / EXPLANATIONS_FILENAME)
    assert comparison.additivity_error(explanations) < 1e-9
    for index in range(explanations["logits"].shape[0]):
        column, _ = comparison.explained_output(explanations, index)
        if n_outputs > 1:
            assert column == int(np.argmax(explanations["logits"][index]))
        # THE property of an INN explanation: the bias plus every feature's contribution is the logit.
        total = explanations["bias"][index, column] + explanations["contributions"][index, :, column].sum()
        assert total == pytest.approx(explanations["logits"][index, column])
        steps = comparison.waterfall_steps(explanations, index, top_k=5)
        assert steps["label"].iloc[0] == "Bias" and steps["label"].iloc[-1] == "Logit"
        assert steps["label"].iloc[-2] == "Other 9 features"
        assert steps["end"].iloc[-2] == pytest.approx(steps["value"].iloc[-1])  # the waterfall reaches the logit
        shown = steps[steps["kind"] == "feature"]["value"].abs().to_numpy()
        assert np.all(np.diff(shown) <= 0)  # sorted by magnitude
    importance = comparison.global_importance(explanations)
    assert importance.sum() == pytest.approx(1.0) and importance.is_monotonic_decreasing
    expected = np.abs(explanations["contributions"]).mean(axis=0).sum(axis=1)
    assert importance["feature_0"] == pytest.approx(expected[0] / expected.sum())
    with pytest.raises(UserError, match="out of range"):
        comparison.waterfall_steps(explanations, 99)


def test_explanation_choice_by_dataset_and_seed(tree: Path, tmp_path: Path) -> None:
    write_explanations(results_path(tree, "inn", "31", 1).parent, n_outputs=3)
    out = tmp_path / "out"
    options = comparison.ComparisonOptions(explain_dataset="31", explain_seed="1", explain_example=2, top_k=4)
    result = comparison.run(tree, out, options)
    names = {path.name for path in result.files if path.name.startswith("explanation_")}
    assert names == {"explanation_31_1.png", "explanation_31_1.pdf"}
    # Default: the first INN run with explanations, even when an earlier INN run saved none.
    (results_path(tree, "inn", "3", 0).parent / EXPLANATIONS_FILENAME).unlink()
    result = comparison.run(tree, tmp_path / "default")
    assert {path.name for path in result.files if path.name.startswith("explanation_")} == {
        "explanation_31_1.png",
        "explanation_31_1.pdf",
    }
    write_explanations(results_path(tree, "inn", "3", 0).parent)
    result = comparison.run(tree, tmp_path / "all", comparison.ComparisonOptions(explain_dataset="all"))
    names = {path.name for path in result.files if path.name.startswith("explanation_")}
    assert names == {"explanation_3_0.png", "explanation_3_0.pdf", "explanation_31_1.png", "explanation_31_1.pdf"}
    assert sum("explanations.npz does not exist" in message for message in result.warnings) == len(DATASETS) - 2


def test_empty_tree_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert comparison.main(["--results_dir", str(tmp_path / "empty"), "--out_dir", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: no <method>/<dataset_id>/<seed>/output_info.json")
    assert not (tmp_path / "out").exists()
    assert comparison.main(["--results_dir", str(tmp_path / "nowhere"), "--out_dir", str(tmp_path / "out")]) == 2


def test_no_common_dataset_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "results"
    write_run(root, "inn", "3", 0)
    write_run(root, "tabresnet", "31", 0)
    assert comparison.main(["--results_dir", str(root), "--out_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "warning: dataset 3 excluded" in err
    assert err.strip().splitlines()[-1].startswith("error: no dataset has a run of every selected method")


def test_cli_with_method_selection(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = ["--results_dir", str(tree), "--out_dir", str(out), "--methods", "tabresnet", "inn", "--no_explanations"]
    assert comparison.main(argv) == 0
    captured = capsys.readouterr()
    assert "1.00  INN" in captured.out and "2.00  TabResNet" in captured.out
    assert "no Friedman test" in captured.err and "no gain plot" in captured.err
    header = (out / "auroc_table.md").read_text().splitlines()[0]
    assert header == "| Dataset | INN | TabResNet |"
    assert (out / "rank_distribution.png").stat().st_size > 0 and not (out / "cd_diagram.png").exists()
    assert comparison.main([*argv[:4], "--methods", "catboost"]) == 2
    assert "no readable runs of catboost" in capsys.readouterr().err


def test_script_runs_from_the_command_line_and_import_does_no_work(tree: Path, tmp_path: Path) -> None:
    probe = "import sys, plots.comparison; assert 'matplotlib' not in sys.modules and 'autorank' not in sys.modules"
    subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, check=True)
    out = tmp_path / "out"
    command = [sys.executable, "plots/comparison.py", "--results_dir", str(tree), "--out_dir", str(out)]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "Friedman" in completed.stdout and (out / "cd_diagram.pdf").stat().st_size > 0


def test_unreadable_explanations_and_usetex_without_latex(tree: Path, tmp_path: Path, monkeypatch) -> None:
    npz = results_path(tree, "inn", "3", 0).parent / EXPLANATIONS_FILENAME
    npz.write_bytes(b"not a zip file")
    result = comparison.run(tree, tmp_path / "out")
    assert any(str(npz) in message and "unreadable explanations" in message for message in result.warnings)
    assert not any(path.name.startswith("explanation_") for path in result.files)
    monkeypatch.setattr(comparison.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="usetex"):
        comparison.run(tree, tmp_path / "tex", comparison.ComparisonOptions(usetex=True))
