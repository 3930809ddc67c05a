"""The numbers of the comparison: coverage, ranks, Friedman/Nemenyi, Wilcoxon-Holm, gains, times, feature ranks.

Every function is pure: it takes the tidy frame of :func:`experiments.results.load_runs` (or a matrix derived from
it) and returns a DataFrame or a small dataclass. Whether a larger value of a metric is better is never decided
here: callers pass ``higher_better`` from :func:`experiments.results.higher_is_better`, the project's one table
of metric directions.

Missing runs are never filled in. The grid of expected runs is the selected methods x the datasets that have the
metric x the seeds found anywhere among them; a cell without a usable value is a missing run. Per-dataset means
use the seeds present. The cross-method analysis (ranks, tests, gains, times) uses only the datasets on which every
selected method has at least one run.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd

from errors import UserError
from experiments.results import SkippedRun
from plots.style import method_label, method_order

ALPHA = 0.05
REFERENCE_METHOD = "decision_tree"
CorrelationKind = Literal["spearman", "kendall"]
CORRELATION_KINDS: tuple[CorrelationKind, ...] = ("spearman", "kendall")


def natural_key(value: Any) -> tuple[int, Any]:
    """Sort key that puts numeric ids in numeric order (``3 < 12 < 31``) and names after them."""
    text = str(value)
    return (0, int(text)) if text.isdigit() else (1, text)


def natural_sorted(values: Any) -> list[str]:
    """Unique values as strings, in :func:`natural_key` order."""
    return sorted({str(value) for value in values}, key=natural_key)


def select_methods(runs: pd.DataFrame, methods: Sequence[str] | None = None) -> list[str]:
    """The run ids to compare: ``methods`` in canonical order, or every run id in the tree.

    Raises:
        UserError: a requested method has no usable run.
    """
    found = set(runs["method"])
    if not methods:
        return method_order(found)
    absent = [method for method in methods if method not in found]
    if absent:
        raise UserError(
            f"no readable runs of {', '.join(absent)}; the results tree has {', '.join(method_order(found))}"
        )
    return method_order(methods)


def metric_values(runs: pd.DataFrame, metric: str) -> pd.Series:
    """The metric per run as floats (NaN where a report has no value, e.g. a null AUROC or a regression run)."""
    if metric not in runs.columns:
        return pd.Series(np.nan, index=runs.index, dtype=float)
    return pd.to_numeric(runs[metric], errors="coerce").astype(float)


# ----------------------------------------------------------------------------------------------------------------
# Missing runs and the datasets every method ran on


@dataclass
class Coverage:
    """Which runs the analysis has.

    Attributes:
        datasets: datasets with the metric for at least one selected method (the per-dataset table).
        complete: datasets where every selected method has at least one run (ranks, tests, gains, times).
        missing: one row per missing cell: ``method``, ``dataset_id``, ``seed``, ``reason``, ``dataset_excluded``.
        no_metric: datasets with runs but no value of the metric at all (e.g. regression when comparing AUROC).
        absent: per excluded dataset, the methods without any run on it.
    """

    datasets: list[str]
    complete: list[str]
    missing: pd.DataFrame
    no_metric: list[str]
    absent: dict[str, list[str]] = field(default_factory=dict)

    @property
    def excluded(self) -> list[str]:
        """Datasets in the table but left out of the cross-method analysis."""
        return [dataset for dataset in self.datasets if dataset not in self.complete]


_SKIP_REASONS = {
    "unreadable": "unreadable or incomplete output_info.json",
    "mismatch": "folder names disagree with its output_info.json",
}


def coverage(runs: pd.DataFrame, methods: Sequence[str], metric: str, skipped: Sequence[SkippedRun] = ()) -> Coverage:
    """Compare the runs present with the grid methods x datasets x seeds (see the module docstring)."""
    selected = runs[runs["method"].isin(methods)]
    values = metric_values(selected, metric)
    valid = selected[values.notna()]
    datasets = natural_sorted(valid["dataset_id"])
    no_metric = [dataset for dataset in natural_sorted(selected["dataset_id"]) if dataset not in datasets]
    seeds = natural_sorted(selected["seed"])
    present = set(zip(valid["method"], valid["dataset_id"], valid["seed"], strict=True))
    without_metric = set(zip(selected["method"], selected["dataset_id"], selected["seed"], strict=True)) - present
    left_out = {(run.run_id, run.dataset_id, run.seed): _SKIP_REASONS[run.kind] for run in skipped}
    ran = set(zip(valid["method"], valid["dataset_id"], strict=True))
    absent = {dataset: [m for m in methods if (m, dataset) not in ran] for dataset in datasets}
    complete = [dataset for dataset in datasets if not absent[dataset]]
    rows = []
    for dataset in datasets:
        for method in methods:
            for seed in seeds:
                cell = (method, dataset, seed)
                if cell in present:
                    continue
                if cell in left_out:
                    reason = left_out[cell]
                elif cell in without_metric:
                    reason = f"no value of {metric}"
                else:
                    reason = "no output_info.json"
                rows.append((method, dataset, seed, reason, dataset not in complete))
    missing = pd.DataFrame(rows, columns=["method", "dataset_id", "seed", "reason", "dataset_excluded"])
    absent = {dataset: methods_ for dataset, methods_ in absent.items() if methods_}
    return Coverage(datasets=datasets, complete=complete, missing=missing, no_metric=no_metric, absent=absent)


def listing(items: Sequence[str], limit: int = 20) -> str:
    """``a, b, c`` with at most ``limit`` items and ``and N more`` after them."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def missing_messages(cover: Coverage, limit: int = 20) -> list[str]:
    """The warnings about missing runs and excluded datasets, one line each."""
    missing = cover.missing
    if missing.empty:
        return []
    cells = [f"{row.method}/{row.dataset_id}/{row.seed} ({row.reason})" for row in missing.itertuples()]
    messages = [f"{len(cells)} missing run(s) (method/dataset/seed), see missing_runs.csv: {listing(cells, limit)}"]
    for dataset in cover.excluded:
        messages.append(
            f"dataset {dataset} excluded from ranks, tests, gains and times "
            f"(no run of {', '.join(cover.absent[dataset])})"
        )
    return messages


# ----------------------------------------------------------------------------------------------------------------
# Scores, ranks and statistical tests


def seed_statistics(runs: pd.DataFrame, methods: Sequence[str], metric: str) -> pd.DataFrame:
    """Mean, sample std (NaN for one seed) and number of seeds of ``metric`` per (method, dataset)."""
    frame = runs[runs["method"].isin(methods)].assign(value=metric_values(runs, metric))
    frame = frame[frame["value"].notna()]
    grouped = frame.groupby(["method", "dataset_id"])["value"]
    return grouped.agg(mean="mean", std="std", n_seeds="count").reset_index()


def score_matrix(stats: pd.DataFrame, methods: Sequence[str], datasets: Sequence[str]) -> pd.DataFrame:
    """Per-dataset means as a (datasets x methods) matrix; NaN where a method has no run."""
    matrix = stats.pivot(index="dataset_id", columns="method", values="mean")
    return matrix.reindex(index=list(datasets), columns=list(methods))


def rank_matrix(scores: pd.DataFrame, higher_better: bool = True) -> pd.DataFrame:
    """Rank of every method on every dataset (1 = best; ties share the average rank)."""
    return scores.rank(axis=1, ascending=not higher_better, method="average")


def average_ranks(scores: pd.DataFrame, higher_better: bool = True) -> pd.DataFrame:
    """Average rank, its std, the number of wins and the mean score per method, best first."""
    ranks = rank_matrix(scores, higher_better)
    table = pd.DataFrame(
        {
            "method": scores.columns,
            "label": [method_label(method) for method in scores.columns],
            "average_rank": ranks.mean().to_numpy(),
            "rank_std": ranks.std().to_numpy(),
            "n_wins": (ranks == 1).sum().to_numpy(),
            "mean_score": scores.mean().to_numpy(),
            "n_datasets": len(scores),
        }
    )
    return table.sort_values(["average_rank", "method"]).reset_index(drop=True)


@dataclass
class RankTest:
    """The omnibus test over datasets and the Nemenyi critical difference.

    Attributes:
        statistic: Friedman's chi-square statistic.
        pvalue: its p-value.
        critical_difference: Nemenyi critical difference of the average ranks at ``alpha`` (``None`` when
            autorank cannot compute it, i.e. with fewer than 5 datasets).
        mean_ranks: average rank per method, best first.
        alpha: the significance level.
        n_datasets: number of datasets (blocks).
        note: why the critical difference is missing, if it is.
    """

    statistic: float
    pvalue: float
    critical_difference: float | None
    mean_ranks: pd.Series
    alpha: float
    n_datasets: int
    note: str = ""

    @property
    def significant(self) -> bool:
        """Whether the Friedman test rejects "all methods perform alike" at ``alpha``."""
        return bool(self.pvalue < self.alpha)


def friedman_nemenyi(scores: pd.DataFrame, higher_better: bool = True, alpha: float = ALPHA) -> RankTest | None:
    """Friedman test over datasets and, with autorank, the Nemenyi critical difference.

    autorank picks a parametric test (ANOVA + Tukey HSD) when every method's scores look normal; the paper's
    protocol is the Friedman test with a rank-based post-hoc test, so the non-parametric branch is forced.

    Shape:
        scores ``(datasets, methods)``

    Returns:
        ``None`` with fewer than 3 methods or 2 datasets (Friedman's test is undefined there).
    """
    from scipy import stats

    n_datasets, n_methods = scores.shape
    if n_methods < 3 or n_datasets < 2:
        return None
    oriented = scores if higher_better else -scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-tied blocks make scipy warn and return NaN, reported as such
        statistic, pvalue = stats.friedmanchisquare(*(oriented[column].to_numpy() for column in oriented))
    mean_ranks = rank_matrix(scores, higher_better).mean().sort_values()
    critical_difference = None
    note = ""
    if n_datasets < 5:
        note = f"critical difference needs at least 5 datasets, have {n_datasets}"
    else:
        critical_difference = _autorank_critical_difference(oriented, alpha)
    return RankTest(float(statistic), float(pvalue), critical_difference, mean_ranks, alpha, n_datasets, note)


def _autorank_critical_difference(oriented: pd.DataFrame, alpha: float) -> float:
    from autorank import autorank

    data = oriented.reset_index(drop=True).rename_axis(None, axis=1)
    # autorank prints its result table unconditionally and warns about degenerate effect sizes: keep both quiet.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = autorank(data, alpha=alpha, verbose=False, order="descending", force_mode="nonparametric")
    return float(result.cd)


def wilcoxon_holm(scores: pd.DataFrame, higher_better: bool = True, alpha: float = ALPHA) -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank test for every pair of methods over datasets, Holm-corrected.

    Returns:
        One row per pair: wins / ties / losses of ``method_a`` against ``method_b``, the median difference
        (a - b, in the metric's units), the statistic, the raw and the Holm-adjusted p-value, and ``significant``.
    """
    rows = []
    for method_a, method_b in combinations(scores.columns, 2):
        difference = (scores[method_a] - scores[method_b]).to_numpy()
        better = difference > 0 if higher_better else difference < 0
        worse = difference < 0 if higher_better else difference > 0
        if np.all(difference == 0):
            statistic, pvalue = math.nan, 1.0  # identical scores: no evidence of a difference
        else:
            from scipy import stats

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # small samples: scipy warns that the p-value is exact / coarse
                result = stats.wilcoxon(scores[method_a], scores[method_b], alternative="two-sided")
            statistic, pvalue = float(result.statistic), float(result.pvalue)
        rows.append(
            {
                "method_a": method_a,
                "method_b": method_b,
                "label_a": method_label(method_a),
                "label_b": method_label(method_b),
                "n_datasets": len(difference),
                "wins_a": int(better.sum()),
                "ties": int((difference == 0).sum()),
                "wins_b": int(worse.sum()),
                "median_difference": float(np.median(difference)),
                "statistic": statistic,
                "p_value": pvalue,
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table.assign(p_holm=[], significant=[])
    from statsmodels.stats.multitest import multipletests

    rejected, adjusted, _, _ = multipletests(table["p_value"].to_numpy(), alpha=alpha, method="holm")
    return table.assign(p_holm=adjusted, significant=rejected)


def gain_over_reference(
    scores: pd.DataFrame, reference: str = REFERENCE_METHOD, higher_better: bool = True
) -> pd.DataFrame:
    """Per-dataset gain of every method over ``reference`` (metric difference, positive = better).

    Returns:
        Tidy frame with ``dataset_id``, ``method`` and ``gain``.
    """
    sign = 1.0 if higher_better else -1.0
    gains = scores.drop(columns=[reference]).sub(scores[reference], axis=0) * sign
    return gains.rename_axis(index="dataset_id", columns="method").stack().rename("gain").reset_index()


# ----------------------------------------------------------------------------------------------------------------
# Times and datasets


def time_summary(runs: pd.DataFrame, methods: Sequence[str], datasets: Sequence[str]) -> pd.DataFrame:
    """Median and mean training and inference time (seconds) per method over its runs on ``datasets``."""
    frame = runs[runs["method"].isin(methods) & runs["dataset_id"].isin(datasets)]
    rows = []
    for method in methods:
        part = frame[frame["method"] == method]
        train = pd.to_numeric(part["train_time"], errors="coerce")
        inference = pd.to_numeric(part["inference_time"], errors="coerce")
        rows.append(
            {
                "method": method,
                "label": method_label(method),
                "n_runs": len(part),
                "train_time_median": train.median(),
                "train_time_mean": train.mean(),
                "inference_time_median": inference.median(),
                "inference_time_mean": inference.mean(),
            }
        )
    return pd.DataFrame(rows)


def time_ratio(
    runs: pd.DataFrame, datasets: Sequence[str], numerator: str = "inn", denominator: str = "tabresnet"
) -> pd.DataFrame:
    """Per dataset: mean training / inference time over seeds of two methods and their ratio."""
    frame = runs[runs["dataset_id"].isin(datasets)]
    columns = {}
    for method in (numerator, denominator):
        part = frame[frame["method"] == method]
        times = part[["train_time", "inference_time"]].apply(pd.to_numeric, errors="coerce")
        columns[method] = times.groupby(part["dataset_id"]).mean()
    table = pd.DataFrame(index=pd.Index([d for d in datasets if d in columns[numerator].index], name="dataset_id"))
    for kind in ("train_time", "inference_time"):
        table[f"{numerator}_{kind}"] = columns[numerator][kind]
        table[f"{denominator}_{kind}"] = columns[denominator][kind]
        with np.errstate(divide="ignore", invalid="ignore"):
            table[f"{kind}_ratio"] = table[f"{numerator}_{kind}"] / table[f"{denominator}_{kind}"]
    return table.dropna(subset=["train_time_ratio"]).reset_index()


def ratio_summary(ratios: pd.Series) -> dict[str, float]:
    """Mean, std, geometric mean, median, min and max of positive finite ratios."""
    values = ratios[np.isfinite(ratios) & (ratios > 0)].to_numpy(dtype=float)
    if len(values) == 0:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
        "geometric_mean": float(np.exp(np.log(values).mean())),
        "median": float(np.median(values)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def dataset_table(runs: pd.DataFrame, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """Id, name, task, rows, features and classes per dataset, as the runs recorded them (no OpenML calls).

    Runs of one dataset should agree; where they do not (a changed preprocessing), the most common value wins.
    """
    frame = runs.assign(n_rows=pd.to_numeric(runs["n_train"]) + pd.to_numeric(runs["n_test"]))
    rows = []
    for dataset in datasets if datasets is not None else natural_sorted(frame["dataset_id"]):
        part = frame[frame["dataset_id"] == dataset]
        if part.empty:
            continue
        rows.append(
            {
                "dataset_id": dataset,
                "name": _mode(part["dataset_name"]),
                "task": _mode(part["task"]),
                "n_rows": int(_mode(part["n_rows"])),
                "n_features": int(_mode(part["n_features"])),
                "n_classes": int(_mode(part["n_classes"])),
            }
        )
    return pd.DataFrame(rows, columns=["dataset_id", "name", "task", "n_rows", "n_features", "n_classes"])


def _mode(values: pd.Series) -> Any:
    return values.mode().iloc[0]


def performance_table(
    stats: pd.DataFrame, methods: Sequence[str], datasets: Sequence[str], names: dict[str, str], complete: Sequence[str]
) -> pd.DataFrame:
    """Numeric per-dataset table: ``<method>_mean``, ``<method>_std`` and ``<method>_n_seeds`` per method."""
    table = pd.DataFrame({"dataset_id": list(datasets)})
    table["dataset_name"] = [names.get(dataset, "") for dataset in datasets]
    table["in_rank_analysis"] = [dataset in complete for dataset in datasets]
    indexed = stats.set_index(["method", "dataset_id"])
    for method in methods:
        for column in ("mean", "std", "n_seeds"):
            table[f"{method}_{column}"] = [
                indexed[column].get((method, dataset), np.nan if column != "n_seeds" else 0) for dataset in datasets
            ]
    return table


@dataclass
class Analysis:
    """Every number of the cross-method comparison of one metric (the inputs of the tables and figures).

    Attributes:
        methods: the compared run ids, in canonical order.
        metric: the compared report key; ``higher_better`` its direction.
        cover: which runs there are.
        table: :func:`performance_table` over ``cover.datasets``.
        scores: ``(complete datasets, methods)`` means over seeds; ``ranks`` their ranks.
        mean_ranks: :func:`average_ranks`; ``test``: :func:`friedman_nemenyi`; ``wilcoxon``: :func:`wilcoxon_holm`.
        times: :func:`time_summary`; ``datasets``: :func:`dataset_table` of the table's datasets.
        names: dataset id -> name, for every dataset with a run.
        reference: the reference method of ``gains`` (:func:`gain_over_reference`; ``None`` when it is not compared
            or alone).
        ratios: :func:`time_ratio` of INN over TabResNet and ``ratio_info`` its :func:`ratio_summary` (``None``
            unless both are compared).
    """

    methods: list[str]
    metric: str
    higher_better: bool
    cover: Coverage
    table: pd.DataFrame
    scores: pd.DataFrame
    ranks: pd.DataFrame
    mean_ranks: pd.DataFrame
    test: RankTest | None
    wilcoxon: pd.DataFrame
    times: pd.DataFrame
    datasets: pd.DataFrame
    names: dict[str, str]
    reference: str = REFERENCE_METHOD
    gains: pd.DataFrame | None = None
    ratios: pd.DataFrame | None = None
    ratio_info: dict[str, float] | None = None


def analyse(
    runs: pd.DataFrame,
    methods: Sequence[str],
    metric: str,
    cover: Coverage,
    higher_better: bool = True,
    alpha: float = ALPHA,
    reference: str = REFERENCE_METHOD,
) -> Analysis:
    """Means, ranks, tests, gains and times of ``methods`` on ``metric`` (cross-method parts on ``cover.complete``)."""
    seed_stats = seed_statistics(runs, methods, metric)
    names = dataset_table(runs).set_index("dataset_id")["name"].to_dict()
    scores = score_matrix(seed_stats, methods, cover.complete)
    gains = ratios = ratio_info = None
    if reference in methods and len(methods) >= 2:
        gains = gain_over_reference(scores, reference, higher_better)
    if {"inn", "tabresnet"} <= set(methods):
        ratios = time_ratio(runs, cover.complete)
        ratio_info = ratio_summary(ratios["train_time_ratio"])
    return Analysis(
        methods=list(methods),
        metric=metric,
        higher_better=higher_better,
        cover=cover,
        table=performance_table(seed_stats, methods, cover.datasets, names, cover.complete),
        scores=scores,
        ranks=rank_matrix(scores, higher_better),
        mean_ranks=average_ranks(scores, higher_better),
        test=friedman_nemenyi(scores, higher_better, alpha),
        wilcoxon=wilcoxon_holm(scores, higher_better, alpha),
        times=time_summary(runs, methods, cover.complete),
        datasets=dataset_table(runs, cover.datasets),
        names=names,
        reference=reference,
        gains=gains,
        ratios=ratios,
        ratio_info=ratio_info,
    )


def analysis_notes(analysis: Analysis, alpha: float = ALPHA) -> list[str]:
    """Warnings about the parts of the comparison that an analysis cannot support (a test, a figure)."""
    notes = []
    n_methods, n_datasets = len(analysis.methods), len(analysis.scores)
    # The smallest two-sided exact Wilcoxon p-value over n datasets is 2 / 2**n (all differences of one sign).
    if n_methods >= 2 and 2.0 / 2**n_datasets >= alpha:
        notes.append(f"Wilcoxon tests over {n_datasets} dataset(s) cannot reach p < {alpha:g}: no pair can differ")
    if analysis.test is None:
        notes.append(
            f"no Friedman test or CD diagram: needs >= 3 methods and >= 2 datasets, have {n_methods} and {n_datasets}"
        )
    elif analysis.test.critical_difference is None:
        notes.append(f"no CD diagram: {analysis.test.note}")
    if analysis.gains is None:
        notes.append(f"no gain plot: the reference method {analysis.reference} is not among the compared methods")
    if analysis.ratio_info is None:
        notes.append("no INN / TabResNet time ratio: both inn and tabresnet must be compared")
    elif not analysis.ratio_info["n"]:
        notes.append("no INN / TabResNet time ratio: no dataset with positive times of both")
    return notes


# ----------------------------------------------------------------------------------------------------------------
# Feature rankings of one dataset across methods


@dataclass
class FeatureRanking:
    """How the methods rank the features of one dataset by global importance.

    Attributes:
        dataset_id: the dataset.
        importance: ``(features, methods)`` mean over seeds of the per-seed normalised importances.
        ranks: ``(features, methods)`` rank of each feature per method (1 = most important, ties share the average
            rank, NaN where a method has no value for a feature), plus ``mean_rank``; ordered by mean rank.
        correlation: ``(methods, methods)`` rank correlation of the importances of every pair of methods, over the
            features both rank (NaN with fewer than 3 such features).
        kind: ``spearman`` (Spearman's rho) or ``kendall`` (Kendall's tau-b).
        n_seeds: seeds averaged per method.
    """

    dataset_id: str
    importance: pd.DataFrame
    ranks: pd.DataFrame
    correlation: pd.DataFrame
    kind: CorrelationKind
    n_seeds: pd.Series

    @property
    def methods(self) -> list[str]:
        """The methods ranked, in canonical order."""
        return list(self.importance.columns)


def ranking_datasets(importances: pd.DataFrame, methods: Sequence[str]) -> list[str]:
    """Datasets on which at least two of ``methods`` recorded feature importances."""
    part = importances[importances["method"].isin(methods)]
    counts = part.groupby("dataset_id")["method"].nunique()
    return natural_sorted(counts.index[counts >= 2])


def feature_ranking(
    importances: pd.DataFrame, dataset_id: str, methods: Sequence[str], kind: CorrelationKind = "spearman"
) -> FeatureRanking | None:
    """Rank the features of ``dataset_id`` under every method's global importance and correlate the rankings.

    A method's global importance is the mean over its seeds of each run's normalised ``feature_importances``
    (the mean |local attribution| per feature that the runner stores), so every seed weighs the same.

    Args:
        importances: :attr:`experiments.results.LoadedRuns.importances`.
        dataset_id: the dataset.
        methods: run ids to rank (those without importances on the dataset are left out).
        kind: the rank correlation.

    Returns:
        ``None`` when fewer than two of ``methods`` have importances on the dataset.
    """
    if kind not in CORRELATION_KINDS:
        raise ValueError(f"kind must be one of {CORRELATION_KINDS}, got {kind!r}")
    part = importances[(importances["dataset_id"] == dataset_id) & importances["method"].isin(methods)]
    present = [method for method in methods if method in set(part["method"])]
    if len(present) < 2:
        return None
    mean = part.groupby(["feature", "method"])["importance"].mean().unstack("method")
    # Features in the order the reports list them (the dataset's column order), then methods in canonical order.
    order = part.groupby("feature")["position"].min().sort_values(kind="stable").index
    mean = mean.reindex(index=order, columns=present).rename_axis(index="feature", columns=None)
    ranks = mean.rank(axis=0, ascending=False, method="average")
    ranks["mean_rank"] = ranks[present].mean(axis=1)
    position = pd.Series(np.arange(len(ranks)), index=ranks.index)
    ranks = ranks.assign(_position=position).sort_values(["mean_rank", "_position"]).drop(columns="_position")
    correlation = mean.corr(method=kind, min_periods=3)  # two points always correlate ±1: no evidence
    n_seeds = part.groupby("method")["seed"].nunique().reindex(present)
    return FeatureRanking(dataset_id, mean.loc[ranks.index], ranks, correlation, kind, n_seeds)


def feature_rankings(
    importances: pd.DataFrame,
    methods: Sequence[str],
    requested: Sequence[str] | None = None,
    kind: CorrelationKind = "spearman",
    known: Sequence[str] = (),
) -> tuple[list[FeatureRanking], list[str]]:
    """The rankings of the ``requested`` datasets (``None``: every one of :func:`ranking_datasets`) and notes.

    Args:
        importances: :attr:`experiments.results.LoadedRuns.importances`.
        methods: run ids to rank.
        requested: dataset ids, or ``None``.
        kind: the rank correlation.
        known: every dataset id with a run (a requested one outside it is a typo, not a dataset without importances).

    Raises:
        UserError: a requested dataset has no run.
    """
    if requested is None:
        requested = ranking_datasets(importances, methods)
    unknown = [dataset for dataset in requested if dataset not in set(known)]
    if unknown:
        raise UserError(f"--ranking_dataset: no run on dataset(s) {', '.join(unknown)}")
    rankings, notes = [], []
    for dataset in requested:
        ranking = feature_ranking(importances, dataset, methods, kind)
        if ranking is None:
            notes.append(
                f"no feature ranking for dataset {dataset}: fewer than two compared methods recorded importances"
            )
        else:
            rankings.append(ranking)
    return rankings, notes
