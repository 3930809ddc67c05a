"""Tests of the plots package on synthetic results trees written with the project's own report schema.

Most tests call the pure functions (``plots.stats``, ``plots.tables``, ``plots.figures`` on an axis, no file);
one end-to-end ``run()`` and one command-line run check that the pieces are wired together and every file is
written atomically. The explanation figures are tested in ``test_plots_explanations.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from errors import UserError
from experiments import results
from experiments.results import (
    EXPLANATIONS_FILENAME,
    build_report,
    explanation_arrays,
    load_runs,
    npz_bytes,
    results_path,
    write_json_atomic,
    write_run_atomically,
)
from models.attribution import Attribution
from plots import comparison, figures, stats, tables
from plots.style import METHOD_COLORS, METHOD_LABELS, method_color, method_label, method_order

REPO_ROOT = Path(__file__).resolve().parent.parent
METHODS = ["inn", "tabresnet", "decision_tree"]
DATASETS = ["3", "31", "54", "1067", "1461", "1464"]
SEEDS = [0, 1, 2]
FEATURES = ["a", "b", "c", "d"]
# Method strengths: INN dominates on every dataset, the decision tree is last.
STRENGTH = {"inn": 0.10, "tabresnet": 0.05, "decision_tree": 0.0}
# Global importances per method (before normalisation): INN and TabResNet agree, the tree reverses b and c.
IMPORTANCE = {"inn": [4.0, 3.0, 2.0, 1.0], "tabresnet": [8.0, 6.0, 3.0, 1.0], "decision_tree": [4.0, 2.0, 3.0, 1.0]}


def auroc(method: str, dataset: str, seed: int) -> float:
    """A deterministic score: dataset difficulty + method strength + a little seed noise (never reorders)."""
    base = 0.6 + 0.03 * DATASETS.index(dataset) if dataset in DATASETS else 0.7
    return round(base + STRENGTH.get(method.partition("-")[0], 0.02) + 0.004 * seed, 6)


def make_report(method: str, dataset: str, seed: int, value: float | None = None, **extra) -> dict:
    """One complete report (``method`` may be a run id ``<method>-<variant>``)."""
    base, _, variant = method.partition("-")
    value = auroc(method, dataset, seed) if value is None else value
    return build_report(
        method=base,
        variant=variant or None,
        dataset_id=int(dataset) if dataset.isdigit() else dataset,
        dataset_name=f"data-{dataset}",
        seed=seed,
        task="binary",
        n_classes=2,
        n_train=80 + int(dataset) % 7,
        n_test=20,
        feature_names=FEATURES,
        n_inputs=4,
        metrics={"train_auroc": 1.0, "train_accuracy": 1.0, "test_auroc": value, "test_accuracy": value - 0.1},
        train_time=extra.pop("train_time", 2.0 if base == "inn" else 1.0),
        inference_time=extra.pop("inference_time", 0.1),
        importances=extra.pop("importances", IMPORTANCE.get(base, [1.0, 2.0, 3.0, 4.0])),
        config={"seed": seed},
        extra=extra or None,
    )


def write_run(root: Path, method: str, dataset: str, seed: int, value: float | None = None, **extra) -> Path:
    """One complete report at its place in the results tree."""
    path = results_path(root, method, dataset, seed)
    write_json_atomic(path, make_report(method, dataset, seed, value, **extra))
    return path


def write_explanations(directory: Path, n_rows: int = 5) -> Path:
    """An exact explanations.npz of ``n_rows`` test rows, written by the project's writer."""
    rng = np.random.default_rng(0)
    values, rest = rng.normal(size=(n_rows, len(FEATURES), 1)), rng.normal(size=(n_rows, 1))
    attribution = Attribution(
        values=values,
        rest=rest,
        output=values.sum(axis=1) + rest,
        feature_names=tuple(FEATURES),
        explainer="inn",
        exact=True,
        reference=np.zeros(len(FEATURES)),
        reference_name="training mean",
        output_name="logit",
    )
    split = SimpleNamespace(
        input_names=FEATURES, input_to_feature=np.arange(4), y_test=np.zeros(n_rows, int), classes=["bad", "good"]
    )
    path = directory / EXPLANATIONS_FILENAME
    path.write_bytes(npz_bytes(explanation_arrays(attribution, split)))
    return path


@pytest.fixture(autouse=True)
def _no_version_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    # build_report asks importlib.metadata for 8 package versions (~36 ms); the plots never read them.
    monkeypatch.setattr(results, "library_versions", lambda: {"python": "test"})


@pytest.fixture(scope="module")
def pristine_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 methods x 6 datasets x 3 seeds, INN first everywhere; built once, copied by :func:`tree`."""
    root = tmp_path_factory.mktemp("pristine") / "results"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(results, "library_versions", lambda: {"python": "test"})
        for method in METHODS:
            for dataset in DATASETS:
                for seed in SEEDS:
                    write_run(root, method, dataset, seed)
    return root


@pytest.fixture
def tree(pristine_tree: Path, tmp_path: Path) -> Path:
    """A private copy of the complete tree (tests may break it)."""
    return Path(shutil.copytree(pristine_tree, tmp_path / "results"))


def analysis_of(root: Path, methods=METHODS, metric: str = "test_auroc") -> stats.Analysis:
    loaded = load_runs(root)
    cover = stats.coverage(loaded.runs, methods, metric, loaded.skipped)
    return stats.analyse(loaded.runs, methods, metric, cover, results.higher_is_better(metric))


def new_axes():
    from matplotlib.figure import Figure

    figure = Figure()
    return figure, figure.add_subplot()


# ----------------------------------------------------------------------------------------------------------------
# Styles and reading the tree


def test_style_labels_and_colors_cover_every_method_and_fall_back() -> None:
    assert set(METHOD_LABELS) == set(results.METHODS) == set(METHOD_COLORS)
    assert method_label("inn") == "INN" and method_label("random_forest") == "Random Forest"
    assert method_label("my_new_model") == "My New Model" and method_label("inn-l1=0.1") == "INN (l1=0.1)"
    assert method_color("my_new_model") == method_color("my_new_model")
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", method_color("my_new_model"))
    assert method_color("inn-l1=0.1") != method_color("inn")
    assert method_order(["zzz", "decision_tree", "inn-b", "inn"]) == ["inn", "inn-b", "decision_tree", "zzz"]


def test_load_runs_identity_variants_importances_and_v1_reports(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_run(root, "inn", "31", 0)
    variant = write_run(root, "inn-l1=0.1", "31", 0, importances=[0.0, 0.0, 0.0, 2.0])
    old = make_report("catboost", "31", 0)
    for key in ("schema_version", "kind", "run_id", "variant"):
        old.pop(key)  # a schema-1 report
    write_json_atomic(results_path(root, "catboost", "31", 0), old)
    loaded = load_runs(root)
    runs = loaded.runs.set_index("method")
    assert set(runs.index) == {"inn", "inn-l1=0.1", "catboost"} and not loaded.skipped
    assert runs.loc["inn-l1=0.1", "base_method"] == "inn" and runs.loc["inn-l1=0.1", "variant"] == "l1=0.1"
    assert runs.loc["inn-l1=0.1", "path"] == str(variant) and pd.isna(runs.loc["inn", "variant"])
    assert runs.loc["catboost", "run_id"] == "catboost" and runs.loc["catboost", "seed"] == "0"
    assert not any(column.startswith("feature_importances") for column in loaded.runs.columns)
    shares = loaded.importances.pivot(index="feature", columns="method", values="importance")
    assert shares["inn"].to_numpy() == pytest.approx(np.array([4, 3, 2, 1]) / 10)
    assert shares["inn-l1=0.1"].to_numpy() == pytest.approx([0, 0, 0, 1])
    assert stats.select_methods(loaded.runs) == ["inn", "inn-l1=0.1", "catboost"]


def test_copied_run_folders_are_flagged_and_excluded(tree: Path) -> None:
    # A seed folder copied to a new seed (it would count as a 4th seed) and a dataset copied to a new dataset id.
    shutil.copytree(results_path(tree, "inn", "31", 0).parent, results_path(tree, "inn", "31", 7).parent)
    shutil.copytree(results_path(tree, "inn", "3", 0).parent.parent, results_path(tree, "inn", "99", 0).parent.parent)
    shutil.copytree(results_path(tree, "tabresnet", "3", 0).parent, results_path(tree, "catboost", "3", 0).parent)
    loaded = load_runs(tree)
    mismatched = {(s.run_id, s.dataset_id, s.seed) for s in loaded.skipped if s.kind == "mismatch"}
    assert mismatched == {("inn", "31", "7"), ("catboost", "3", "0"), *(("inn", "99", str(s)) for s in SEEDS)}
    reasons = {s.seed: s.reason for s in loaded.skipped if s.dataset_id == "31"}
    assert (
        str(results_path(tree, "inn", "31", 7)) in reasons["7"] and "seed '7' but the report says '0'" in reasons["7"]
    )
    assert len(loaded.runs) == len(METHODS) * len(DATASETS) * len(SEEDS)
    assert "99" not in set(loaded.runs["dataset_id"]) and "catboost" not in set(loaded.runs["method"])


def test_missing_run_and_corrupt_file_are_reported_and_excluded(tree: Path) -> None:
    # A missing seed (kept: other seeds exist), a corrupt file, and a dataset without any tabresnet run.
    results_path(tree, "inn", "31", 2).unlink()
    results_path(tree, "decision_tree", "54", 1).write_text('{"method": "decision_tree", "test_auroc": ')
    for seed in SEEDS:
        results_path(tree, "tabresnet", "1067", seed).unlink()
    incomplete = results_path(tree, "inn", "1464", 1)
    incomplete.write_text('{"method": "inn"}')

    loaded = load_runs(tree)
    reasons = " ".join(skipped.reason for skipped in loaded.skipped)
    assert str(results_path(tree, "decision_tree", "54", 1)) in reasons and str(incomplete) in reasons
    cover = stats.coverage(loaded.runs, METHODS, "test_auroc", loaded.skipped)
    cells = set(zip(cover.missing["method"], cover.missing["dataset_id"], cover.missing["seed"], strict=True))
    assert cells == {
        ("inn", "31", "2"),
        ("decision_tree", "54", "1"),
        ("inn", "1464", "1"),
        *(("tabresnet", "1067", str(seed)) for seed in SEEDS),
    }
    assert cover.missing.loc[cover.missing["dataset_id"] == "1067", "dataset_excluded"].all()
    assert not cover.missing.loc[cover.missing["dataset_id"] != "1067", "dataset_excluded"].any()
    reason = {(r.method, r.dataset_id, r.seed): r.reason for r in cover.missing.itertuples()}
    assert "unreadable" in reason[("decision_tree", "54", "1")] and reason[("inn", "31", "2")] == "no output_info.json"
    messages = "\n".join(stats.missing_messages(cover))
    assert "inn/31/2" in messages and "dataset 1067 excluded" in messages
    assert cover.excluded == ["1067"]

    # Per-dataset means use the seeds present; nothing is filled in for the missing ones.
    analysis = stats.analyse(loaded.runs, METHODS, "test_auroc", cover)
    table = analysis.table.set_index("dataset_id")
    assert table.loc["31", "inn_n_seeds"] == 2
    assert table.loc["31", "inn_mean"] == pytest.approx((auroc("inn", "31", 0) + auroc("inn", "31", 1)) / 2)
    assert pd.isna(table.loc["1067", "tabresnet_mean"]) and not table.loc["1067", "in_rank_analysis"]
    assert "–" in tables.performance_markdown(analysis.table, METHODS, "test_auroc")
    # The rank analysis uses the five complete datasets only.
    assert (analysis.mean_ranks["n_datasets"] == len(DATASETS) - 1).all()
    assert "1067" not in set(analysis.ranks.index)


# ----------------------------------------------------------------------------------------------------------------
# Statistics


def test_dominant_method_gets_rank_one_and_significant_friedman(pristine_tree: Path) -> None:
    analysis = analysis_of(pristine_tree)
    ranks = analysis.mean_ranks
    assert ranks["method"].tolist() == ["inn", "tabresnet", "decision_tree"]
    assert ranks["average_rank"].tolist() == [1.0, 2.0, 3.0]
    assert ranks.loc[0, "n_wins"] == len(DATASETS)
    test = analysis.test
    assert test is not None and test.significant
    assert test.critical_difference is not None and test.critical_difference > 0
    assert test.mean_ranks.index[0] == "inn"
    assert stats.analysis_notes(analysis) == []


def test_friedman_needs_three_methods_and_cd_five_datasets() -> None:
    scores = pd.DataFrame({"inn": [0.9, 0.8, 0.7], "tabresnet": [0.8, 0.7, 0.6], "decision_tree": [0.7, 0.6, 0.5]})
    assert stats.friedman_nemenyi(scores[["inn", "tabresnet"]]) is None
    test = stats.friedman_nemenyi(scores)
    assert test is not None and test.critical_difference is None and "5 datasets" in test.note
    # Friedman's statistic for k = 3 methods with identical ranks on n = 3 blocks: 12n/(k(k+1)) * sum (R_j - 2)^2.
    assert test.statistic == pytest.approx(12 * 3 / (3 * 4) * (1 + 0 + 1))


def test_lower_is_better_metric_ranks_the_smallest_first() -> None:
    scores = pd.DataFrame({"inn": [0.1, 0.2], "tabresnet": [0.3, 0.4]})
    assert not results.higher_is_better("test_mse")
    ranks = stats.average_ranks(scores, higher_better=False)
    assert ranks.loc[0, "method"] == "inn"
    gains = stats.gain_over_reference(scores, "tabresnet", higher_better=False)
    assert gains["gain"].to_numpy() == pytest.approx([0.2, 0.2])  # smaller error = positive gain


def test_wilcoxon_holm_and_gain_and_times(pristine_tree: Path) -> None:
    analysis = analysis_of(pristine_tree)
    wilcoxon = analysis.wilcoxon
    assert len(wilcoxon) == 3
    pair = wilcoxon[(wilcoxon.method_a == "inn") & (wilcoxon.method_b == "decision_tree")].iloc[0]
    assert pair["wins_a"] == len(DATASETS) and pair["wins_b"] == 0
    assert pair["median_difference"] == pytest.approx(STRENGTH["inn"])
    assert pair["p_value"] == pytest.approx(2 / 2 ** len(DATASETS))  # exact test, all differences of one sign
    assert (wilcoxon["p_holm"] >= wilcoxon["p_value"]).all()
    gains = analysis.gains
    assert set(gains["method"]) == {"inn", "tabresnet"}
    assert gains.loc[gains.method == "tabresnet", "gain"].to_numpy() == pytest.approx(STRENGTH["tabresnet"])
    times = analysis.times.set_index("method")
    assert times.loc["inn", "train_time_median"] == 2.0 and times.loc["tabresnet", "n_runs"] == 18
    assert analysis.ratios["train_time_ratio"].to_numpy() == pytest.approx(2.0)
    assert analysis.ratios["inference_time_ratio"].to_numpy() == pytest.approx(1.0)
    assert analysis.ratio_info["geometric_mean"] == pytest.approx(2.0) and analysis.ratio_info["n"] == len(DATASETS)
    datasets = analysis.datasets.set_index("dataset_id")
    assert datasets.loc["31", "name"] == "data-31" and datasets.loc["31", "n_rows"] == 80 + 31 % 7 + 20
    assert datasets.loc["31", "n_features"] == 4 and datasets.loc["31", "n_classes"] == 2


# ----------------------------------------------------------------------------------------------------------------
# Tables


def test_tables_match_hand_computed_means(pristine_tree: Path) -> None:
    analysis = analysis_of(pristine_tree)
    row = analysis.table.set_index("dataset_id").loc["31"]
    values = [auroc("inn", "31", seed) for seed in SEEDS]
    mean, std = sum(values) / 3, np.std(values, ddof=1)
    assert row["inn_mean"] == pytest.approx(mean) and row["inn_std"] == pytest.approx(std)
    assert row["inn_n_seeds"] == 3
    texts = tables.analysis_texts(analysis, comparison.table_stem("test_auroc"))
    markdown = texts["auroc_table.md"]
    assert f"**{mean:.3f} ± {std:.3f}**" in markdown  # INN is best: bold
    assert f"| {auroc('decision_tree', '31', 1):.3f} ± " in markdown
    assert markdown.splitlines()[0] == "| Dataset | INN | TabResNet | Decision Tree |"
    latex = texts["auroc_table.tex"]
    assert f"\\textbf{{{mean:.3f} $\\pm$ {std:.3f}}}" in latex
    assert "data-31 (31)" in latex and "\\begin{tabular}{lccc}" in latex
    assert set(texts) >= {"average_ranks.csv", "wilcoxon_holm.md", "gain_over_decision_tree.csv", "times.md"}
    assert tables.latex_escape("a_b & 50%") == r"a\_b \& 50\%"


# ----------------------------------------------------------------------------------------------------------------
# Feature rankings


def test_feature_ranking_is_the_rank_of_the_mean_normalised_importance(tmp_path: Path) -> None:
    root = tmp_path / "results"
    # Two seeds of INN whose normalised importances average to (0.35, 0.3, 0.25, 0.1); b and c tie for the tree.
    write_run(root, "inn", "31", 0, importances=[4.0, 3.0, 2.0, 1.0])
    write_run(root, "inn", "31", 1, importances=[6.0, 6.0, 6.0, 2.0])
    write_run(root, "tabresnet", "31", 0, importances=[1.0, 2.0, 3.0, 4.0])
    write_run(root, "decision_tree", "31", 0, importances=[5.0, 2.0, 2.0, 1.0])
    write_run(root, "inn", "3", 0)  # one method only on dataset 3: no ranking there
    loaded = load_runs(root)
    assert stats.ranking_datasets(loaded.importances, METHODS) == ["31"]
    ranking = stats.feature_ranking(loaded.importances, "31", METHODS)
    assert ranking is not None and ranking.methods == METHODS
    expected_inn = (np.array([4, 3, 2, 1]) / 10 + np.array([6, 6, 6, 2]) / 20) / 2
    assert ranking.importance.loc[FEATURES, "inn"].to_numpy() == pytest.approx(expected_inn)
    ranks = ranking.ranks
    assert ranks.loc[FEATURES, "inn"].tolist() == [1, 2, 3, 4]
    assert ranks.loc[FEATURES, "tabresnet"].tolist() == [4, 3, 2, 1]
    assert ranks.loc[FEATURES, "decision_tree"].tolist() == [1, 2.5, 2.5, 4]  # ties share the average rank
    assert ranks["mean_rank"].is_monotonic_increasing and ranks.index[0] == "a"
    assert ranking.n_seeds.to_dict() == {"inn": 2, "tabresnet": 1, "decision_tree": 1}
    for a, b in [("inn", "tabresnet"), ("inn", "decision_tree")]:
        x, y = ranking.importance[a], ranking.importance[b]
        assert ranking.correlation.loc[a, b] == pytest.approx(scipy_stats.spearmanr(x, y).statistic)
    kendall = stats.feature_ranking(loaded.importances, "31", METHODS, kind="kendall")
    x, y = kendall.importance["inn"], kendall.importance["decision_tree"]
    assert kendall.correlation.loc["inn", "decision_tree"] == pytest.approx(scipy_stats.kendalltau(x, y).statistic)
    assert ranking.correlation.loc["inn", "tabresnet"] == pytest.approx(-1.0)

    # Requested datasets: one without runs is an error, one with a single method a note.
    rankings, notes = stats.feature_rankings(loaded.importances, METHODS, ["31", "3"], known=["3", "31"])
    assert [r.dataset_id for r in rankings] == ["31"] and "dataset 3" in notes[0]
    with pytest.raises(UserError, match="no run on dataset"):
        stats.feature_rankings(loaded.importances, METHODS, ["77"], known=["3", "31"])


def test_feature_ranking_with_a_feature_one_method_lacks() -> None:
    rows = [("inn", "a", 0.5), ("inn", "b", 0.3), ("inn", "c", 0.2), ("tabresnet", "a", 0.2), ("tabresnet", "b", 0.8)]
    importances = pd.DataFrame(
        [(m, "9", "0", f, "abc".index(f), v) for m, f, v in rows],
        columns=["method", "dataset_id", "seed", "feature", "position", "importance"],
    )
    ranking = stats.feature_ranking(importances, "9", ["inn", "tabresnet"])
    assert pd.isna(ranking.ranks.loc["c", "tabresnet"]) and ranking.ranks.loc["c", "mean_rank"] == 3
    assert pd.isna(ranking.correlation.loc["inn", "tabresnet"])  # two common features: no correlation
    assert "| c | 3 | – | 3.00 |" in tables.ranking_markdown(ranking, "nine")


def test_ranking_tables_and_figure() -> None:
    importance = pd.DataFrame(
        {"inn": [0.5, 0.3, 0.15, 0.05], "catboost": [0.1, 0.6, 0.2, 0.1]}, index=pd.Index(["x_1", "y", "z", "w"])
    )
    long = importance.rename_axis("feature").reset_index().melt("feature", var_name="method", value_name="importance")
    long = long.assign(dataset_id="31", seed="0", position=long["feature"].map({"x_1": 0, "y": 1, "z": 2, "w": 3}))
    ranking = stats.feature_ranking(long, "31", ["inn", "catboost"])
    texts = tables.ranking_texts(ranking, "credit-g", top_k=3)
    assert set(texts) == {
        f"{stem}_31.{ext}" for stem in ("feature_ranking", "feature_rank_correlation") for ext in ("csv", "md", "tex")
    }
    markdown = texts["feature_ranking_31.md"].splitlines()
    assert markdown[0] == "Feature ranking on credit-g (31)"
    assert markdown[2] == "| Feature | INN | CatBoost | Mean rank |"
    # By mean rank: y (2 and 1), x_1 (1 and the tie 3.5 with w), z (3 and 2); w (4 and 3.5) is cut by top_k.
    assert markdown[4:8] == ["| y | 2 | 1 | 1.50 |", "| x_1 | 1 | 3.5 | 2.25 |", "| z | 3 | 2 | 2.50 |", ""]
    assert "the 3 of 4 features" in texts["feature_ranking_31.md"]
    assert "x\\_1" in texts["feature_ranking_31.tex"] and "\\toprule" in texts["feature_ranking_31.tex"]
    rho = scipy_stats.spearmanr(importance["inn"], importance["catboost"]).statistic
    assert f"| INN | 1.00 | {rho:.2f} |" in texts["feature_rank_correlation_31.md"]
    assert "Spearman" in texts["feature_rank_correlation_31.md"]
    frame = pd.read_csv(pd.io.common.StringIO(texts["feature_ranking_31.csv"]))
    assert frame.columns.tolist()[:4] == ["feature", "mean_rank", "inn_rank", "catboost_rank"]
    assert frame["inn_importance"].sum() == pytest.approx(1.0)

    figure, ax = new_axes()
    assert figures.plot_feature_ranks(ranking, ax, top_k=3) is ax
    shown = ax.get_images()[0].get_array()
    assert shown.shape == (3, 2) and shown.tolist() == ranking.ranks[["inn", "catboost"]].head(3).to_numpy().tolist()
    assert [label.get_text() for label in ax.get_yticklabels()] == ["y", "x_1", "z"]
    assert "top 3 of 4" in ax.get_title()
    figure, ax = new_axes()
    assert figures.plot_rank_correlation(ranking, ax) is ax
    assert ax.get_images()[0].get_array()[0, 1] == pytest.approx(rho)


# ----------------------------------------------------------------------------------------------------------------
# Figures drawn on a given axis


def test_figures_draw_on_the_given_axis(pristine_tree: Path) -> None:
    analysis = analysis_of(pristine_tree)
    figure, ax = new_axes()
    assert figures.plot_rank_distribution(analysis.ranks, ax) is ax
    assert [t.get_text() for t in ax.get_xticklabels()] == ["INN", "TabResNet", "Decision Tree"]
    figure, ax = new_axes()
    assert figures.plot_gain(analysis.gains, ax, "test_auroc") is ax
    assert ax.get_ylabel() == "Test AUROC gain over Decision Tree"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["INN", "TabResNet"]  # by median gain
    figure, ax = new_axes()
    assert figures.plot_time_ratio(analysis.ratios, ax) is ax and ax.get_yscale() == "log"
    width, height = figures.cd_diagram_size(analysis.test)
    figure.set_size_inches(width, height)
    ax = figure.add_axes((0, 0, 1, 1))
    assert figures.plot_cd_diagram(analysis.test, ax) is ax
    labels = [text.get_text() for text in ax.texts]
    assert "INN (1.00)" in labels and any(label.startswith("CD = ") for label in labels)
    assert figures.cd_groups(np.array([1.0, 1.5, 3.0, 3.2]), 1.0) == [(0, 1), (2, 3)]


def test_save_figure_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stem = tmp_path / "figure"
    stem.with_suffix(".png").write_bytes(b"old")

    def killed(source, target):
        raise KeyboardInterrupt

    with figures.new_figure(2, 2) as figure:
        figure.add_subplot().plot([0, 1])
        monkeypatch.setattr(results.os, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            figures.save_figure(figure, stem)
    assert stem.with_suffix(".png").read_bytes() == b"old"  # the old file, whole; no temporary left
    assert sorted(path.name for path in tmp_path.iterdir()) == ["figure.png"]


# ----------------------------------------------------------------------------------------------------------------
# run() and the command line


def test_run_writes_every_output_atomically_and_reports_bad_files(tree: Path, tmp_path: Path, monkeypatch) -> None:
    for method in ("random_forest", "tabnet"):  # five methods: the full set of figures
        for dataset in DATASETS:
            for seed in SEEDS:
                write_run(tree, method, dataset, seed)
    # INN's explanations (exact), a truncated one for TabNet and a copied run folder (counted as seed 5 otherwise).
    write_explanations(results_path(tree, "inn", "3", 0).parent)
    truncated = write_explanations(results_path(tree, "tabnet", "3", 0).parent)
    truncated.write_bytes(truncated.read_bytes()[:200])
    copied = results_path(tree, "tabresnet", "31", 5).parent
    write_run_atomically(copied, {"output_info.json": results_path(tree, "tabresnet", "31", 0).read_bytes()})

    written: list[Path] = []
    original = results.atomic_write_bytes

    def recording(path, data):
        written.append(Path(path))
        original(path, data)

    monkeypatch.setattr(comparison, "atomic_write_bytes", recording)
    monkeypatch.setattr(figures, "atomic_write_bytes", recording)
    out = tmp_path / "out"
    options = comparison.ComparisonOptions(ranking_datasets=["31"])
    result = comparison.run(tree, out, options)
    expected = {
        "auroc_table.csv", "auroc_table.md", "auroc_table.tex", "average_ranks.csv", "ranks_per_dataset.csv",
        "cd_diagram.png", "cd_diagram.pdf", "wilcoxon_holm.csv", "wilcoxon_holm.md", "gain_over_decision_tree.csv",
        "gain_over_decision_tree.png", "gain_over_decision_tree.pdf", "rank_distribution.png", "rank_distribution.pdf",
        "times.csv", "times.md", "inn_tabresnet_time_ratio.csv", "inn_tabresnet_time_ratio.png",
        "inn_tabresnet_time_ratio.pdf", "datasets.csv", "datasets.md", "explanation_inn_3_0.png",
        "explanation_inn_3_0.pdf", "missing_runs.csv", "summary.txt", "feature_ranking_31.csv",
        "feature_ranking_31.md", "feature_ranking_31.tex", "feature_ranking_31.png", "feature_ranking_31.pdf",
        "feature_rank_correlation_31.csv", "feature_rank_correlation_31.md", "feature_rank_correlation_31.tex",
    }  # fmt: skip
    assert sorted(path.name for path in result.files) == sorted(expected)
    assert sorted(written) == sorted(result.files)  # every file went through the atomic writer
    assert sorted(path.name for path in out.iterdir()) == sorted(expected)  # and no temporary is left
    assert (out / "cd_diagram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "cd_diagram.pdf").read_bytes()[:5] == b"%PDF-"
    warnings = "\n".join(result.warnings)
    assert str(truncated) in warnings and "unreadable explanations file" in warnings
    assert str(copied / "output_info.json") in warnings and "seed '5' but the report says '0'" in warnings
    summary = (out / "summary.txt").read_text()
    assert (
        "skipped: 1 (folder/report mismatches: 1), missing: 0" in summary and "feature ranking, dataset 31" in summary
    )
    assert "explanations.npz" in warnings  # the methods without one on dataset 3 are listed in one line
    assert len(result.warnings) == 3


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
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["file", "below_file", "not_writable"])
def test_bad_out_dir_is_one_error_line_before_any_work(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a_file").write_text("x")
    out = {"file": tmp_path / "a_file", "below_file": tmp_path / "a_file" / "sub", "not_writable": tmp_path / "new"}
    if case == "not_writable":  # the tests run as root, for whom every folder is writable: ask the check directly
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    # The results directory does not exist either: the out_dir check comes first, before any reading.
    argv = ["--results_dir", str(tmp_path / "nowhere"), "--out_dir", str(out[case])]
    assert comparison.main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"error: --out_dir {out[case]}")
    assert {"file": "is a file", "below_file": "below the file", "not_writable": "not writable"}[case] in error[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file"]


def test_user_errors_come_before_any_file(pristine_tree: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    with pytest.raises(UserError, match="no direction known for metric 'test_score'"):
        comparison.run(pristine_tree, out, comparison.ComparisonOptions(metric="test_score"))
    with pytest.raises(UserError, match="no readable runs of catboost"):
        comparison.run(pristine_tree, out, comparison.ComparisonOptions(methods=["catboost"]))
    with pytest.raises(UserError, match="--ranking_dataset: no run on dataset"):
        comparison.run(pristine_tree, out, comparison.ComparisonOptions(ranking_datasets=["777"]))
    # An example beyond an explained file's rows (this one has 5) is found before anything is written.
    tree = Path(shutil.copytree(pristine_tree, tmp_path / "results"))
    write_explanations(results_path(tree, "tabresnet", "31", 1).parent, n_rows=5)
    with pytest.raises(UserError, match="--explain_example 5 is out of range for .*tabresnet.31.1.*5 test rows"):
        comparison.run(tree, out, comparison.ComparisonOptions(explain_example=5))
    monkeypatch.setattr(comparison.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="usetex"):
        comparison.run(pristine_tree, out, comparison.ComparisonOptions(usetex=True))
    assert not out.exists()


def test_parser_options() -> None:
    args = comparison.build_parser().parse_args(
        ["--results_dir", "r", "--out_dir", "o", "--ranking_dataset", "31", "54", "--ranking_correlation", "kendall"]
    )
    assert args.ranking_datasets == ["31", "54"] and args.ranking_correlation == "kendall" and args.explanations
    fields = set(vars(args)) - {"results_dir", "out_dir"}
    assert fields == set(comparison.ComparisonOptions.__dataclass_fields__)  # every flag is an option and back
    with pytest.raises(SystemExit):
        comparison.build_parser().parse_args(["--results_dir", "r", "--out_dir", "o", "--ranking_correlation", "x"])


def test_cli_with_method_selection(
    pristine_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[str] = []
    # The figures themselves are tested above and in the end-to-end run: here only which ones are asked for.
    monkeypatch.setattr(figures, "render", lambda stem, *args, **kwargs: drawn.append(stem.name) or [])
    out = tmp_path / "out"
    argv = ["--results_dir", str(pristine_tree), "--out_dir", str(out), "--methods", "tabresnet", "inn"]
    assert comparison.main([*argv, "--no_explanations", "--ranking_dataset", "none"]) == 0
    captured = capsys.readouterr()
    assert "1.00  INN" in captured.out and "2.00  TabResNet" in captured.out
    assert "no Friedman test" in captured.err and "no gain plot" in captured.err
    assert (out / "auroc_table.md").read_text().splitlines()[0] == "| Dataset | INN | TabResNet |"
    assert drawn == ["rank_distribution", "inn_tabresnet_time_ratio"]
    assert not list(out.glob("feature_ranking_*")) and not list(out.glob("explanation_*"))
    drawn.clear()
    assert comparison.main([*argv, "--ranking_dataset", "31", "--ranking_correlation", "kendall"]) == 0
    assert drawn == ["rank_distribution", "inn_tabresnet_time_ratio", "feature_ranking_31"]
    assert "Kendall" in (out / "feature_rank_correlation_31.md").read_text()
    assert "no explanation figure: no compared run saved an explanations.npz" in capsys.readouterr().err
    assert comparison.main([*argv[:4], "--methods", "catboost"]) == 2
    assert "no readable runs of catboost" in capsys.readouterr().err


def test_script_runs_from_the_command_line_and_import_does_no_work(tmp_path: Path) -> None:
    probe = "import sys, plots.comparison; assert 'matplotlib' not in sys.modules and 'autorank' not in sys.modules"
    subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, check=True)
    root = tmp_path / "results"
    write_run(root, "inn", "31", 0)
    out = tmp_path / "out"
    command = [sys.executable, "plots/comparison.py", "--results_dir", str(root), "--out_dir", str(out)]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "1.00  INN" in completed.stdout and (out / "auroc_table.tex").stat().st_size > 0
    assert "no Friedman test" in completed.stderr
