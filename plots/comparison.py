"""The paper's comparison tables and figures, regenerated from a results tree.

Every run of the experiment scripts leaves ``<results_dir>/<method>/<dataset_id>/<seed>/output_info.json``.
:func:`load_runs` reads them into one tidy DataFrame (one row per run); everything else is a pure function of
that frame: per-dataset means over seeds, average ranks, the Friedman test with the Nemenyi critical difference
(computed by ``autorank``), pairwise Wilcoxon signed-rank tests with Holm's correction, the gain over the decision
tree, run times and the INN / TabResNet time ratio. INN runs also get an explanation figure from their
``explanations.npz``. :func:`run` writes all of it; the command line is a thin shell around it::

    python plots/comparison.py --results_dir results --out_dir figures

Missing runs are never filled in. The grid of expected runs is the selected methods x the datasets that have the
metric x the seeds found anywhere in the tree; a cell without a readable value is a missing run. Per-dataset means
use the seeds present. The cross-method analysis (ranks, tests, gains, times) uses only the datasets on which every
selected method has at least one run; the others are reported in ``missing_runs.csv`` and on stderr.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # only for annotations: matplotlib is imported when a figure is drawn
    import argparse

    from matplotlib.figure import Figure

if __name__ == "__main__":  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from errors import UserError  # noqa: E402
from experiments.results import (  # noqa: E402
    EXPLANATIONS_FILENAME,
    higher_is_better,
    iter_result_files,
    read_explanations,
    read_report,
)
from plots.style import method_color, method_label, method_order, metric_label  # noqa: E402

ALPHA = 0.05
REFERENCE_METHOD = "decision_tree"
#: Keys of a report that are per-feature lists or dicts: kept out of the tidy frame (one column per run field).
_NON_TABULAR_KEYS = ("feature_names", "feature_importances", "top_10_features", "top_10_features_weights")
_EXPLANATION_KEYS = ("feature_names", "contributions", "bias", "logits")
_POSITIVE_COLOR = "#C0392B"  # pushes the logit up
_NEGATIVE_COLOR = "#2E86C1"  # pushes the logit down
_NEUTRAL_COLOR = "#7F7F7F"


# ----------------------------------------------------------------------------------------------------------------
# Reading the results tree
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class LoadedRuns:
    """The readable runs of a results tree and the files that were skipped.

    Attributes:
        runs: one row per readable ``output_info.json``; ``method``, ``dataset_id`` and ``seed`` are the directory
            names (strings), ``path`` the file; nested dicts such as ``config`` are flattened (``config.lr``).
        skipped: ``(method, dataset_id, seed, reason)`` per file that could not be used; the reason names the file.
    """

    runs: pd.DataFrame
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)


def natural_key(value: Any) -> tuple[int, Any]:
    """Sort key that puts numeric ids in numeric order (``3 < 12 < 31``) and names after them."""
    text = str(value)
    return (0, int(text)) if text.isdigit() else (1, text)


def natural_sorted(values: Any) -> list[str]:
    """Unique values as strings, in :func:`natural_key` order."""
    return sorted({str(value) for value in values}, key=natural_key)


def load_runs(results_dir: str | Path) -> LoadedRuns:
    """Read every ``<method>/<dataset_id>/<seed>/output_info.json`` under ``results_dir``.

    Unreadable and incomplete files are skipped and listed in :attr:`LoadedRuns.skipped`, never guessed.

    Raises:
        UserError: the directory does not exist, holds no results file, or none of them is readable.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"results directory {results_dir} does not exist")
    records: list[dict[str, Any]] = []
    skipped: list[tuple[str, str, str, str]] = []
    n_files = 0
    for method, dataset_id, seed, path in iter_result_files(results_dir):
        n_files += 1
        try:
            report = read_report(path)
        except ValueError as error:
            skipped.append((method, dataset_id, seed, str(error)))
            continue
        record = {key: value for key, value in report.items() if key not in _NON_TABULAR_KEYS}
        # The directory names are the identity of a run (the sweep and the resume logic use them too).
        record.update(method=method, dataset_id=dataset_id, seed=seed, path=str(path))
        records.append(record)
    if n_files == 0:
        raise UserError(f"no <method>/<dataset_id>/<seed>/output_info.json under {results_dir}: nothing to compare")
    if not records:
        raise UserError(f"none of the {n_files} results files under {results_dir} is readable")
    runs = pd.json_normalize(records)
    for column in ("method", "dataset_id", "seed", "dataset_name"):
        runs[column] = runs[column].astype(str)
    return LoadedRuns(runs=runs, skipped=skipped)


def select_methods(runs: pd.DataFrame, methods: Sequence[str] | None = None) -> list[str]:
    """The methods to compare: ``methods`` in canonical order, or every method in the tree.

    Raises:
        UserError: a requested method has no readable run.
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
# ----------------------------------------------------------------------------------------------------------------


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


def coverage(
    runs: pd.DataFrame, methods: Sequence[str], metric: str, skipped: Sequence[tuple[str, str, str, str]] = ()
) -> Coverage:
    """Compare the runs present with the grid methods x datasets x seeds (see the module docstring)."""
    selected = runs[runs["method"].isin(methods)]
    values = metric_values(selected, metric)
    valid = selected[values.notna()]
    datasets = natural_sorted(valid["dataset_id"])
    no_metric = [dataset for dataset in natural_sorted(selected["dataset_id"]) if dataset not in datasets]
    seeds = natural_sorted(selected["seed"])
    present = set(zip(valid["method"], valid["dataset_id"], valid["seed"], strict=True))
    without_metric = set(zip(selected["method"], selected["dataset_id"], selected["seed"], strict=True)) - present
    unreadable = {(method, dataset, seed): reason for method, dataset, seed, reason in skipped}
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
                if cell in unreadable:
                    reason = "unreadable or incomplete output_info.json"
                elif cell in without_metric:
                    reason = f"no value of {metric}"
                else:
                    reason = "no output_info.json"
                rows.append((method, dataset, seed, reason, dataset not in complete))
    missing = pd.DataFrame(rows, columns=["method", "dataset_id", "seed", "reason", "dataset_excluded"])
    absent = {dataset: methods_ for dataset, methods_ in absent.items() if methods_}
    return Coverage(datasets=datasets, complete=complete, missing=missing, no_metric=no_metric, absent=absent)


# ----------------------------------------------------------------------------------------------------------------
# Scores, ranks and statistical tests
# ----------------------------------------------------------------------------------------------------------------


def seed_statistics(runs: pd.DataFrame, methods: Sequence[str], metric: str) -> pd.DataFrame:
    """Mean, sample std (NaN for one seed) and number of seeds of ``metric`` per (method, dataset)."""
    frame = runs[runs["method"].isin(methods)].assign(value=metric_values(runs, metric))
    frame = frame[frame["value"].notna()]
    grouped = frame.groupby(["method", "dataset_id"])["value"]
    stats = grouped.agg(mean="mean", std="std", n_seeds="count").reset_index()
    return stats


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
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    rows = []
    for method_a, method_b in combinations(scores.columns, 2):
        difference = (scores[method_a] - scores[method_b]).to_numpy()
        better = difference > 0 if higher_better else difference < 0
        worse = difference < 0 if higher_better else difference > 0
        if np.all(difference == 0):
            statistic, pvalue = math.nan, 1.0  # identical scores: no evidence of a difference
        else:
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
# ----------------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------------
# The per-dataset performance table
# ----------------------------------------------------------------------------------------------------------------


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


def _cells(table: pd.DataFrame, methods: Sequence[str], higher_better: bool, digits: int) -> list[list[tuple]]:
    """Per dataset and method: (mean text, std text or "", is best) or None for a missing cell."""
    rows = []
    for _, row in table.iterrows():
        means = {method: row[f"{method}_mean"] for method in methods if not pd.isna(row[f"{method}_mean"])}
        # Bold the best mean as displayed, so two methods that print the same value are both bold.
        rounded = {method: round(value, digits) for method, value in means.items()}
        best = (max if higher_better else min)(rounded.values()) if rounded else None
        cells = []
        for method in methods:
            if method not in means:
                cells.append(None)
                continue
            std = row[f"{method}_std"]
            std_text = "" if pd.isna(std) else f"{std:.{digits}f}"
            cells.append((f"{means[method]:.{digits}f}", std_text, rounded[method] == best))
        rows.append(cells)
    return rows


def _cell_texts(
    cells: Sequence[tuple[str, str, bool] | None], *, missing: str, plus_minus: str, bold: str
) -> list[str]:
    """Table cells as text: ``mean<plus_minus>std``, the best wrapped by the ``bold`` format, ``missing`` for no run."""
    texts = []
    for cell in cells:
        if cell is None:
            texts.append(missing)
            continue
        mean, std, best = cell
        text = f"{mean}{plus_minus}{std}" if std else mean
        texts.append(bold.format(text) if best else text)
    return texts


def performance_markdown(
    table: pd.DataFrame,
    methods: Sequence[str],
    metric: str,
    higher_better: bool = True,
    ranks: pd.DataFrame | None = None,
    digits: int = 3,
) -> str:
    """Markdown: mean ± std over seeds per dataset and method, the best in bold, average ranks last."""
    header = ["Dataset", *(method_label(method) for method in methods)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * len(methods)]
    for (_, row), cells in zip(table.iterrows(), _cells(table, methods, higher_better, digits), strict=True):
        name = f"{row['dataset_name']} ({row['dataset_id']})" + ("" if row["in_rank_analysis"] else " \\*")
        texts = _cell_texts(cells, missing="–", plus_minus=" ± ", bold="**{}**")
        lines.append("| " + " | ".join([_markdown_escape(name), *texts]) + " |")
    if ranks is not None and not ranks.empty:
        by_method = ranks.set_index("method")["average_rank"]
        lines.append("| Average rank | " + " | ".join(f"{by_method.get(m, np.nan):.2f}" for m in methods) + " |")
    direction = "higher" if higher_better else "lower"
    notes = [
        "",
        f"{metric_label(metric)}, mean ± std over seeds ({direction} is better; best in bold; – no run).",
    ]
    if not table["in_rank_analysis"].all():
        notes.append("\\* Some method has no run on this dataset: left out of the average ranks and the tests.")
    return "\n".join(lines + notes) + "\n"


def performance_latex(
    table: pd.DataFrame,
    methods: Sequence[str],
    metric: str,
    higher_better: bool = True,
    ranks: pd.DataFrame | None = None,
    digits: int = 3,
) -> str:
    """A booktabs LaTeX table with the same content as :func:`performance_markdown`."""
    lines = [
        "% Generated by plots/comparison.py; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{_latex_escape(metric_label(metric))} per dataset: mean $\\pm$ std over seeds, best in bold.}}",
        f"\\label{{tab:{metric}}}",
        "\\begin{tabular}{l" + "c" * len(methods) + "}",
        "\\toprule",
        "Dataset & " + " & ".join(_latex_escape(method_label(method)) for method in methods) + " \\\\",
        "\\midrule",
    ]
    for (_, row), cells in zip(table.iterrows(), _cells(table, methods, higher_better, digits), strict=True):
        name = _latex_escape(f"{row['dataset_name']} ({row['dataset_id']})")
        if not row["in_rank_analysis"]:
            name += "$^*$"
        texts = _cell_texts(cells, missing="--", plus_minus=" $\\pm$ ", bold="\\textbf{{{}}}")
        lines.append(" & ".join([name, *texts]) + " \\\\")
    if ranks is not None and not ranks.empty:
        by_method = ranks.set_index("method")["average_rank"]
        lines.append("\\midrule")
        lines.append("Average rank & " + " & ".join(f"{by_method.get(m, np.nan):.2f}" for m in methods) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    """A plain Markdown table of a DataFrame (pandas' ``to_markdown`` needs the optional ``tabulate``)."""

    def text(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "" if math.isnan(value) else float_format.format(value)
        return _markdown_escape(str(value))

    lines = ["| " + " | ".join(str(column) for column in frame.columns) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(text(value) for value in row) + " |")
    return "\n".join(lines) + "\n"


def _markdown_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _latex_escape(text: str) -> str:
    replacements = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_"}
    replacements.update({"{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"})
    return "".join(replacements.get(char, char) for char in text)


# ----------------------------------------------------------------------------------------------------------------
# INN explanations
# ----------------------------------------------------------------------------------------------------------------


def load_explanations(path: str | Path) -> dict[str, np.ndarray]:
    """Read an ``explanations.npz`` (any method, schema 1 or 2) with the names the figures use.

    Raises:
        ValueError: the file is unreadable, misses an array or the shapes disagree (the message names the file).
    """
    arrays = read_explanations(path)
    arrays.update(contributions=arrays["values"], bias=arrays["rest"], logits=arrays["output"])
    return arrays


def global_importance(explanations: dict[str, np.ndarray]) -> pd.Series:
    """Mean |contribution| over rows, summed over outputs, normalised to sum 1; largest first."""
    magnitude = np.abs(explanations["contributions"]).mean(axis=0).sum(axis=1)
    total = magnitude.sum()
    shares = magnitude / total if total > 0 else np.full(len(magnitude), 1.0 / max(len(magnitude), 1))
    names = [str(name) for name in explanations["feature_names"]]
    return pd.Series(shares, index=names, name="importance").sort_values(ascending=False, kind="stable")


def explained_output(explanations: dict[str, np.ndarray], index: int) -> tuple[int, str]:
    """The output column a waterfall shows for example ``index`` and a description of it.

    Multiclass: the predicted class's logit. One output: the logit of the positive class (or the prediction).
    """
    logits = explanations["logits"][index]
    classes = [str(value) for value in np.atleast_1d(explanations.get("classes", np.array([])))]
    if len(logits) > 1:
        column = int(np.argmax(logits))
        name = classes[column] if column < len(classes) else str(column)
        return column, f"logit of the predicted class '{name}'"
    if len(classes) == 2:
        return 0, f"logit of class '{classes[1]}' (predicted '{classes[int(logits[0] > 0)]}')"
    return 0, "prediction"


def waterfall_steps(explanations: dict[str, np.ndarray], index: int, top_k: int = 10) -> pd.DataFrame:
    """The steps from the bias to the logit of example ``index``: bias, top-k contributions, the rest, the logit.

    Returns:
        Rows ``label``, ``value``, ``start``, ``end`` and ``kind`` (``bias``, ``feature``, ``other``, ``total``);
        the ``end`` of the last contribution is bias + all contributions, which for an exact explanation is the
        logit in the ``total`` row.

    Raises:
        UserError: ``index`` is not a row of the explanations.
    """
    n_rows = explanations["contributions"].shape[0]
    if not 0 <= index < n_rows:
        raise UserError(f"--explain_example {index} is out of range: the explanations have {n_rows} test rows")
    column, _ = explained_output(explanations, index)
    contributions = explanations["contributions"][index, :, column].astype(float)
    names = [str(name) for name in explanations["feature_names"]]
    order = np.argsort(-np.abs(contributions), kind="stable")
    shown, rest = order[:top_k], order[top_k:]
    bias = float(explanations["bias"][index, column])
    steps = [("Bias", bias, 0.0, bias, "bias")]
    position = bias
    for feature in shown:
        value = float(contributions[feature])
        steps.append((names[feature], value, position, position + value, "feature"))
        position += value
    if len(rest):
        value = float(contributions[rest].sum())
        label = f"Other {len(rest)} feature" + ("s" if len(rest) > 1 else "")
        steps.append((label, value, position, position + value, "other"))
        position += value
    logit = float(explanations["logits"][index, column])
    steps.append(("Logit", logit, 0.0, logit, "total"))
    return pd.DataFrame(steps, columns=["label", "value", "start", "end", "kind"])


def additivity_error(explanations: dict[str, np.ndarray]) -> float:
    """Largest |bias + sum of contributions - logit| over rows and outputs (0 for an exact explanation)."""
    reconstructed = explanations["bias"] + explanations["contributions"].sum(axis=1)
    return float(np.max(np.abs(reconstructed - explanations["logits"]))) if reconstructed.size else 0.0


# ----------------------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------------------


def _rc(usetex: bool = False) -> dict[str, Any]:
    """Paper-quality defaults, applied inside ``matplotlib.rc_context`` only (never globally)."""
    return {
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "pdf.fonttype": 42,  # embed TrueType: journals reject Type 3 fonts
        "ps.fonttype": 42,
        "text.usetex": usetex,
        "font.family": "serif" if usetex else "sans-serif",
    }


@contextlib.contextmanager
def _figure(width: float, height: float, usetex: bool = False) -> Iterator[Figure]:
    """A standalone Agg figure (no pyplot, no global backend) under the house rc settings."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_rc(usetex)):
        figure = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(figure)
        yield figure


def save_figure(figure: Figure, stem: Path) -> list[Path]:
    """Write ``<stem>.png`` (200 dpi) and ``<stem>.pdf``; returns the paths."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    figure.savefig(paths[0], dpi=200, metadata={"Software": None})
    figure.savefig(paths[1], metadata={"CreationDate": None, "Creator": None, "Producer": None})
    return paths


def _text(text: str, usetex: bool) -> str:
    return _latex_escape(text) if usetex else text


def _shorten(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_cd_diagram(test: RankTest, stem: Path, usetex: bool = False) -> list[Path]:
    """Critical-difference diagram: average ranks on an axis, best on the right as autorank draws it.

    Methods whose average ranks differ by at most the Nemenyi critical difference are joined by a thick bar.
    """
    ranks = test.mean_ranks
    methods = list(ranks.index)
    k = len(methods)
    cd = test.critical_difference if test.critical_difference is not None else 0.0
    groups = _cd_groups(ranks.to_numpy(), cd)
    half = math.ceil(k / 2)
    axis_y, row_gap = 0.85, 0.26
    first_row = axis_y + 0.3 + 0.12 * len(groups)
    height = first_row + row_gap * (half - 1) + 0.55
    low, high = 1, max(k, math.ceil(ranks.max()))
    left, right = 0.27, 0.73  # the rank axis in figure fractions; the rest holds the labels

    def x_of(rank: float) -> float:
        return right - (rank - low) / (high - low) * (right - left)  # best (rank 1) on the right

    with _figure(8.0, height, usetex) as figure:
        figure.set_layout_engine("none")  # the diagram places everything itself
        ax = figure.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, 1)
        ax.set_ylim(height, 0)
        line = {"color": "black", "linewidth": 0.8}
        ax.plot([x_of(low), x_of(high)], [axis_y, axis_y], **line)
        for value in np.arange(low, high + 0.25, 0.5):
            tick = 0.1 if float(value).is_integer() else 0.05
            ax.plot([x_of(value)] * 2, [axis_y - tick, axis_y], **line)
            if float(value).is_integer():
                ax.text(x_of(value), axis_y - 0.13, str(int(value)), ha="center", va="bottom", fontsize=9)
        if test.critical_difference is not None:
            ax.plot([x_of(low), x_of(low + cd)], [0.3, 0.3], **line)
            for end in (low, low + cd):
                ax.plot([x_of(end)] * 2, [0.25, 0.35], **line)
            ax.text((x_of(low) + x_of(low + cd)) / 2, 0.23, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
        for i, group in enumerate(groups):
            y = axis_y + 0.18 + 0.12 * i
            ax.plot(
                [x_of(ranks.iloc[group[0]]) + 0.006, x_of(ranks.iloc[group[1]]) - 0.006],
                [y, y],
                color="black",
                linewidth=3,
                solid_capstyle="round",
            )
        for i, method in enumerate(methods):
            rank = float(ranks.iloc[i])
            on_right = i < half  # the better half is labelled on the right, next to its end of the axis
            row = i if on_right else k - 1 - i
            y = first_row + row_gap * row
            end = right + 0.02 if on_right else left - 0.02
            ax.plot([x_of(rank), x_of(rank), end], [axis_y, y, y], **line)
            ax.plot(
                [x_of(rank)],
                [axis_y],
                "o",
                color=method_color(method),
                markersize=5,
                markeredgecolor="black",
                markeredgewidth=0.5,
                zorder=3,
            )
            label = _text(f"{method_label(method)} ({rank:.2f})", usetex)
            ax.text(end + (0.01 if on_right else -0.01), y, label, ha="left" if on_right else "right", va="center")
        verdict = "significant" if test.significant else "not significant"
        note = f"Friedman test p = {test.pvalue:.2g} ({verdict} at alpha = {test.alpha:g}), {test.n_datasets} datasets"
        if test.critical_difference is not None:
            note += "; bars join methods within the Nemenyi CD"
        ax.text(0.5, height - 0.12, _text(note, usetex), ha="center", va="bottom", fontsize=8, color="#444444")
        return save_figure(figure, stem)


def _cd_groups(sorted_ranks: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs of methods (in rank order) whose extreme average ranks differ by at most ``cd``."""
    groups: list[tuple[int, int]] = []
    furthest = -1
    for i in range(len(sorted_ranks)):
        j = i
        while j + 1 < len(sorted_ranks) and sorted_ranks[j + 1] - sorted_ranks[i] <= cd:
            j += 1
        if j > i and j > furthest:
            groups.append((i, j))
            furthest = j
    return groups


def _method_axis(ax: Any, methods: Sequence[str], usetex: bool) -> None:
    ax.set_xticks(range(1, len(methods) + 1))
    ax.set_xticklabels([_text(method_label(m), usetex) for m in methods], rotation=25, ha="right")


def _jitter(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.12, 0.12, n)


def plot_gain(
    gains: pd.DataFrame, metric: str, stem: Path, reference: str = REFERENCE_METHOD, usetex: bool = False
) -> list[Path]:
    """Box plot of the per-dataset gain over ``reference``, methods ordered by median gain."""
    order = gains.groupby("method")["gain"].median().sort_values(ascending=False).index.tolist()
    with _figure(max(4.0, 0.9 * len(order) + 1.5), 3.6, usetex) as figure:
        ax = figure.add_subplot()
        data = [gains.loc[gains["method"] == m, "gain"].to_numpy() for m in order]
        boxes = ax.boxplot(
            data,
            positions=range(1, len(order) + 1),
            widths=0.55,
            patch_artist=True,
            showfliers=False,
            medianprops={"color": "black", "linewidth": 1.2},
        )
        for patch, method in zip(boxes["boxes"], order, strict=True):
            patch.set(facecolor=method_color(method), alpha=0.75, edgecolor="black", linewidth=0.8)
        for position, values in enumerate(data, start=1):
            ax.scatter(
                position + _jitter(len(values), position),
                values,
                s=9,
                color="black",
                alpha=0.55,
                zorder=3,
                linewidths=0,
            )
        ax.axhline(0.0, color="#555555", linestyle="--", linewidth=0.8)
        _method_axis(ax, order, usetex)
        ax.set_ylabel(_text(f"{metric_label(metric)} gain over {method_label(reference)}", usetex))
        ax.set_title(
            _text(f"Gain over {method_label(reference)} per dataset ({gains['dataset_id'].nunique()})", usetex)
        )
        ax.grid(axis="y", alpha=0.3)
        return save_figure(figure, stem)


def plot_rank_distribution(ranks: pd.DataFrame, stem: Path, usetex: bool = False) -> list[Path]:
    """Violin plot of each method's rank over datasets, best average rank first; white dots mark the mean."""
    order = ranks.mean().sort_values().index.tolist()
    k = ranks.shape[1]
    with _figure(max(4.0, 0.9 * k + 1.5), 3.6, usetex) as figure:
        ax = figure.add_subplot()
        for position, method in enumerate(order, start=1):
            values = ranks[method].to_numpy()
            if np.ptp(values) > 0:
                parts = ax.violinplot([values], positions=[position], widths=0.7, showextrema=False)
                for body in parts["bodies"]:
                    body.set(facecolor=method_color(method), edgecolor="black", linewidth=0.6, alpha=0.8)
            else:  # one rank on every dataset: a kernel density is undefined, draw the point mass as a bar
                ax.plot([position - 0.3, position + 0.3], [values[0]] * 2, color=method_color(method), linewidth=4)
            ax.scatter(
                position + _jitter(len(values), position),
                values,
                s=8,
                color="black",
                alpha=0.45,
                linewidths=0,
                zorder=3,
            )
            ax.scatter([position], [values.mean()], s=36, color="white", edgecolor="black", zorder=4)
        _method_axis(ax, order, usetex)
        ax.set_ylim(k + 0.5, 0.5)  # rank 1 at the top
        ax.set_yticks(range(1, k + 1))
        ax.set_ylabel("Rank on a dataset (1 = best)")
        ax.set_title(f"Distribution of ranks over {len(ranks)} datasets")
        ax.grid(axis="y", alpha=0.3)
        return save_figure(figure, stem)


def plot_time_ratio(ratios: pd.DataFrame, stem: Path, usetex: bool = False) -> list[Path]:
    """Per-dataset INN / TabResNet time ratios (training and inference) on a log axis, 1 = the same runtime."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    kinds = [("train_time_ratio", "Training"), ("inference_time_ratio", "Inference")]
    with _figure(4.6, 3.8, usetex) as figure:
        ax = figure.add_subplot()
        tick_labels, shown = [], []
        for position, (column, name) in enumerate(kinds, start=1):
            values = ratios[column].to_numpy(dtype=float)
            values = values[np.isfinite(values) & (values > 0)]  # a zero time cannot go on a log axis
            summary = ratio_summary(pd.Series(values))
            if not summary["n"]:
                tick_labels.append(f"{name}\n(no data)")
                continue
            shown.append(values)
            ax.boxplot(
                [values],
                positions=[position],
                widths=0.5,
                showfliers=False,
                patch_artist=True,
                boxprops={"facecolor": method_color("inn"), "alpha": 0.6},
                medianprops={"color": "black"},
            )
            ax.scatter(
                position + _jitter(len(values), position),
                values,
                s=10,
                color="black",
                alpha=0.6,
                linewidths=0,
                zorder=3,
            )
            spread = f" ± {summary['std']:.2f}" if not math.isnan(summary["std"]) else ""
            tick_labels.append(f"{name}\nmean {summary['mean']:.2f}{spread}\ngeo. mean {summary['geometric_mean']:.2f}")
        ax.axhline(1.0, color="#555555", linestyle="--", linewidth=0.8)
        ax.text(2.45, 1.0, "same\nruntime", fontsize=8, va="center", ha="left", color="#555555")
        ax.set_yscale("log")
        # Plain numbers at 'nice' ratios: the default log labels (2 x 10^0) are unreadable for ratios near 1.
        values = np.concatenate(shown) if shown else np.array([1.0])
        low, high = min(values.min(), 1.0), max(values.max(), 1.0)
        # Ticks inside the data's range (the axis is as tall as the data): a fine grid near 1, coarser further out.
        candidates = (0.1, 0.2, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.2, 1.3, 1.5, 2, 3, 4, 5, 10, 20, 50, 100)
        ticks = [t for t in candidates if low / 1.05 <= t <= high * 1.05]
        if len(ticks) > 8:
            ticks = [t for t in ticks if t in (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100)]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_yticklabels([f"{t:g}" for t in ticks])
        ax.set_xticks([1, 2])
        ax.set_xticklabels(tick_labels)
        ax.set_xlim(0.5, 2.75)
        ax.set_ylabel(_text(f"{method_label('inn')} / {method_label('tabresnet')} time", usetex))
        ax.set_title(f"Runtime relative to the black box ({len(ratios)} datasets)")
        ax.grid(axis="y", alpha=0.3, which="both")
        return save_figure(figure, stem)


def plot_explanation(
    explanations: dict[str, np.ndarray],
    stem: Path,
    *,
    title: str,
    example: int = 0,
    top_k: int = 10,
    usetex: bool = False,
) -> list[Path]:
    """Two panels: global importance of the top-k original features, and the waterfall of one test example."""
    importance = global_importance(explanations)
    shown = importance.iloc[:top_k]
    steps = waterfall_steps(explanations, example, top_k)
    _, output = explained_output(explanations, example)
    rows = max(len(shown), len(steps))
    with _figure(10.0, 1.4 + 0.28 * rows, usetex) as figure:
        left, right = figure.subplots(1, 2)
        positions = np.arange(len(shown))
        left.barh(positions, shown.to_numpy(), color=method_color("inn"), edgecolor="black", linewidth=0.5)
        left.set_yticks(positions)
        left.set_yticklabels([_text(_shorten(name), usetex) for name in shown.index])
        left.invert_yaxis()
        rest = 1.0 - shown.sum()
        suffix = f" (other features: {rest:.0%})" if rest > 0.0005 else ""
        left.set_xlabel(_text(f"Share of mean |contribution|{suffix}", usetex))
        left.set_title(f"Global importance (top {len(shown)})")
        left.grid(axis="x", alpha=0.3)

        positions = np.arange(len(steps))
        colors = [
            _NEUTRAL_COLOR if kind in ("bias", "total") else (_POSITIVE_COLOR if value >= 0 else _NEGATIVE_COLOR)
            for kind, value in zip(steps["kind"], steps["value"], strict=True)
        ]
        widths = (steps["end"] - steps["start"]).to_numpy()
        right.barh(positions, widths, left=steps["start"].to_numpy(), color=colors, edgecolor="black", linewidth=0.5)
        for i in range(len(steps) - 2):  # dotted connectors from one step's end to the next step's start
            right.plot([steps["end"].iloc[i]] * 2, [i, i + 1], color="#888888", linewidth=0.6, linestyle=":")
        span = max(np.abs(steps[["start", "end"]].to_numpy()).max(), 1e-12)
        for i, (value, end, kind) in enumerate(zip(steps["value"], steps["end"], steps["kind"], strict=True)):
            text = f"{value:.2f}" if kind in ("bias", "total") else f"{value:+.2f}"
            offset = 0.02 * span if value >= 0 else -0.02 * span
            right.text(end + offset, i, text, va="center", ha="left" if value >= 0 else "right", fontsize=8)
        right.axvline(0.0, color="black", linewidth=0.6)
        right.set_yticks(positions)
        right.set_yticklabels([_text(_shorten(label), usetex) for label in steps["label"]])
        right.invert_yaxis()
        right.set_xlim(
            min(steps[["start", "end"]].min().min(), 0) - 0.2 * span,
            max(steps[["start", "end"]].max().max(), 0) + 0.2 * span,
        )
        right.set_xlabel("Contribution to the logit (red +, blue −)")
        truth = _true_label(explanations, example)
        right.set_title(_text(f"Test example {example}{truth}:\n{output}", usetex), fontsize=10)
        right.grid(axis="x", alpha=0.3)
        figure.suptitle(_text(title, usetex))
        return save_figure(figure, stem)


def _true_label(explanations: dict[str, np.ndarray], index: int) -> str:
    if "y_true" not in explanations or len(explanations["y_true"]) <= index:
        return ""
    value = explanations["y_true"][index]
    classes = np.atleast_1d(explanations.get("classes", np.array([])))
    if len(classes) and np.issubdtype(np.asarray(value).dtype, np.integer) and 0 <= int(value) < len(classes):
        value = classes[int(value)]
    return f" (true class '{value}')"


# ----------------------------------------------------------------------------------------------------------------
# The whole comparison
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class ComparisonOptions:
    """What :func:`run` compares and draws (the command-line flags)."""

    methods: Sequence[str] | None = None
    metric: str = "test_auroc"
    alpha: float = ALPHA
    reference: str = REFERENCE_METHOD
    explain_dataset: str | None = None
    explain_seed: str | None = None
    explain_example: int = 0
    top_k: int = 10
    explanations: bool = True
    usetex: bool = False


@dataclass
class Comparison:
    """Everything :func:`run` computed, wrote and warned about."""

    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    average_ranks: pd.DataFrame | None = None
    rank_test: RankTest | None = None
    coverage: Coverage | None = None


def table_stem(metric: str) -> str:
    """The file stem of the per-dataset table: ``auroc_table`` for ``test_auroc``."""
    return metric.removeprefix("test_") + "_table"


def run(
    results_dir: str | Path,
    out_dir: str | Path,
    options: ComparisonOptions | None = None,
    warn: Callable[[str], None] | None = None,
) -> Comparison:
    """Read the results tree, compute every table and figure and write them into ``out_dir``.

    Args:
        results_dir: root of the results tree.
        out_dir: created if needed; files in it with the same names are overwritten.
        options: what to compare and draw.
        warn: called with each warning as it happens (the CLI prints them on stderr before any error line);
            the warnings are also collected in :attr:`Comparison.warnings`.

    Raises:
        UserError: the tree is empty or unreadable, a requested method has no run, no run has the metric,
            no dataset has a run of every selected method, or ``--usetex`` without LaTeX.
    """
    options = options or ComparisonOptions()
    if options.usetex and shutil.which("latex") is None:
        raise UserError("--usetex needs a LaTeX installation (no 'latex' on PATH); leave it out to use mathtext")
    out_dir = Path(out_dir)
    result = Comparison()

    def note(message: str) -> None:
        result.warnings.append(message)
        if warn is not None:
            warn(message)

    # 1. Read and check coverage: everything that can fail does so before anything is written.
    loaded = load_runs(results_dir)
    for _, _, _, reason in loaded.skipped:
        note(f"skipping {reason}")
    runs = loaded.runs
    methods = select_methods(runs, options.methods)
    metric, higher = options.metric, higher_is_better(options.metric)
    cover = coverage(runs, methods, metric, loaded.skipped)
    result.coverage = cover
    if not cover.datasets:
        raise UserError(f"no run of {', '.join(methods)} has a value of {metric}")
    if cover.no_metric:
        note(
            f"{len(cover.no_metric)} dataset(s) have no {metric} (e.g. regression), ignored: {', '.join(cover.no_metric)}"
        )
    for message in _missing_messages(cover):
        note(message)
    if not cover.complete:
        raise UserError(f"no dataset has a run of every selected method ({', '.join(methods)}); see the warnings above")

    # 2. Numbers.
    stats = seed_statistics(runs, methods, metric)
    names = dataset_table(runs, cover.datasets).set_index("dataset_id")["name"].to_dict()
    table = performance_table(stats, methods, cover.datasets, names, cover.complete)
    scores = score_matrix(stats, methods, cover.complete)
    ranks = rank_matrix(scores, higher)
    mean_ranks = average_ranks(scores, higher)
    result.average_ranks = mean_ranks
    test = friedman_nemenyi(scores, higher, options.alpha)
    result.rank_test = test
    wilcoxon = wilcoxon_holm(scores, higher, options.alpha)
    times = time_summary(runs, methods, cover.complete)
    datasets = dataset_table(runs, cover.datasets)

    # 3. Files.
    out_dir.mkdir(parents=True, exist_ok=True)
    files = result.files
    stem = out_dir / table_stem(metric)
    files += _write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
    files += _write_text(stem.with_suffix(".md"), performance_markdown(table, methods, metric, higher, mean_ranks))
    files += _write_text(stem.with_suffix(".tex"), performance_latex(table, methods, metric, higher, mean_ranks))
    files += _write_text(out_dir / "average_ranks.csv", mean_ranks.to_csv(index=False))
    files += _write_text(out_dir / "ranks_per_dataset.csv", ranks.reset_index().to_csv(index=False))
    files += _write_text(out_dir / "missing_runs.csv", cover.missing.to_csv(index=False))
    files += _write_text(out_dir / "datasets.csv", datasets.to_csv(index=False))
    files += _write_text(out_dir / "datasets.md", markdown_table(datasets))
    files += _write_text(out_dir / "times.csv", times.to_csv(index=False))
    files += _write_text(out_dir / "times.md", markdown_table(times))
    if len(methods) >= 2:
        files += _write_text(out_dir / "wilcoxon_holm.csv", wilcoxon.to_csv(index=False))
        files += _write_text(
            out_dir / "wilcoxon_holm.md", markdown_table(wilcoxon.drop(columns=["method_a", "method_b"]))
        )

    # The smallest two-sided exact Wilcoxon p-value over n datasets is 2 / 2**n (all differences of one sign).
    if len(methods) >= 2 and 2.0 / 2 ** len(scores) >= options.alpha:
        note(f"Wilcoxon tests over {len(scores)} dataset(s) cannot reach p < {options.alpha:g}: no pair can differ")
    if test is None:
        note(
            f"no Friedman test or CD diagram: needs >= 3 methods and >= 2 datasets, have {len(methods)} and {len(scores)}"
        )
    elif test.critical_difference is None:
        note(f"no CD diagram: {test.note}")
    else:
        files += plot_cd_diagram(test, out_dir / "cd_diagram", options.usetex)
    if len(methods) >= 2:
        files += plot_rank_distribution(ranks, out_dir / "rank_distribution", options.usetex)
    if options.reference in methods and len(methods) >= 2:
        gains = gain_over_reference(scores, options.reference, higher)
        files += _write_text(out_dir / f"gain_over_{options.reference}.csv", gains.to_csv(index=False))
        files += plot_gain(gains, metric, out_dir / f"gain_over_{options.reference}", options.reference, options.usetex)
    else:
        note(f"no gain plot: the reference method {options.reference} is not among the compared methods")
    ratio_info = None
    if {"inn", "tabresnet"} <= set(methods):
        ratios = time_ratio(runs, cover.complete)
        ratio_info = ratio_summary(ratios["train_time_ratio"]) if not ratios.empty else None
        if ratio_info and ratio_info["n"]:
            files += _write_text(out_dir / "inn_tabresnet_time_ratio.csv", ratios.to_csv(index=False))
            files += plot_time_ratio(ratios, out_dir / "inn_tabresnet_time_ratio", options.usetex)
        else:
            note("no INN / TabResNet time ratio: no dataset with positive times of both")
    else:
        note("no INN / TabResNet time ratio: both inn and tabresnet must be compared")
    if options.explanations:
        files += _write_explanations(runs, out_dir, options, note)

    result.summary = _summary(runs, loaded, methods, metric, cover, mean_ranks, test, wilcoxon, ratio_info, files)
    files += _write_text(out_dir / "summary.txt", "\n".join(result.summary) + "\n")
    return result


def _write_text(path: Path, text: str) -> list[Path]:
    path.write_text(text, encoding="utf-8")
    return [path]


def _missing_messages(cover: Coverage, limit: int = 20) -> list[str]:
    missing = cover.missing
    if missing.empty:
        return []
    cells = [f"{row.method}/{row.dataset_id}/{row.seed} ({row.reason})" for row in missing.itertuples()]
    shown = ", ".join(cells[:limit]) + (f" and {len(cells) - limit} more" if len(cells) > limit else "")
    messages = [f"{len(cells)} missing run(s) (method/dataset/seed), see missing_runs.csv: {shown}"]
    for dataset in cover.excluded:
        messages.append(
            f"dataset {dataset} excluded from ranks, tests, gains and times "
            f"(no run of {', '.join(cover.absent[dataset])})"
        )
    return messages


def _write_explanations(runs: pd.DataFrame, out_dir: Path, options: ComparisonOptions, note: Any) -> list[Path]:
    """One explanation figure per chosen INN run.

    Default: the first INN run (datasets and seeds in natural order) that saved explanations; ``all``: one per
    INN dataset; a dataset id: that dataset. Without ``explain_seed``, a dataset's first seed with explanations.
    """
    inn = runs[runs["method"] == "inn"].copy()
    if inn.empty:
        return []
    inn["has_explanations"] = [(Path(path).parent / EXPLANATIONS_FILENAME).exists() for path in inn["path"]]
    datasets = natural_sorted(inn["dataset_id"])
    if options.explain_dataset is None:
        explained = natural_sorted(inn.loc[inn["has_explanations"], "dataset_id"])
        targets = explained[:1] or datasets[:1]  # the fallback warns below that the file is missing
    elif options.explain_dataset == "all":
        targets = datasets
    elif options.explain_dataset in datasets:
        targets = [options.explain_dataset]
    else:
        note(f"no explanation figure: no INN run on dataset {options.explain_dataset}")
        return []
    chosen = []
    for dataset in targets:
        part = inn[inn["dataset_id"] == dataset]
        seeds = natural_sorted(part["seed"])
        if options.explain_seed is not None:
            seed = options.explain_seed
        else:
            with_file = natural_sorted(part.loc[part["has_explanations"], "seed"])
            seed = (with_file or seeds)[0]
        if seed not in seeds:
            note(f"no explanation figure for dataset {dataset}: no INN run with seed {seed}")
            continue
        chosen.append(part[part["seed"] == seed].iloc[0])
    files: list[Path] = []
    for row in chosen:
        path = Path(row["path"]).parent / EXPLANATIONS_FILENAME
        if not path.exists():
            note(f"no explanation figure for inn/{row['dataset_id']}/{row['seed']}: {path} does not exist")
            continue
        try:
            explanations = load_explanations(path)
        except ValueError as error:
            note(f"skipping {error}")
            continue
        error = additivity_error(explanations)
        if error > 1e-3 * max(1.0, float(np.abs(explanations["logits"]).max(initial=0.0))):
            note(f"{path}: bias + contributions differ from the logits by up to {error:.3g}; the waterfall shows both")
        title = f"INN explanation: {row['dataset_name']} (dataset {row['dataset_id']}, seed {row['seed']})"
        stem = out_dir / f"explanation_{row['dataset_id']}_{row['seed']}"
        files += plot_explanation(
            explanations, stem, title=title, example=options.explain_example, top_k=options.top_k, usetex=options.usetex
        )
    return files


def _summary(
    runs: pd.DataFrame,
    loaded: LoadedRuns,
    methods: Sequence[str],
    metric: str,
    cover: Coverage,
    mean_ranks: pd.DataFrame,
    test: RankTest | None,
    wilcoxon: pd.DataFrame,
    ratio_info: dict[str, float] | None,
    files: Sequence[Path],
) -> list[str]:
    lines = [
        f"runs read: {len(runs)}, skipped: {len(loaded.skipped)}, missing: {len(cover.missing)}",
        f"methods: {', '.join(method_label(m) for m in methods)}",
        f"datasets: {len(cover.datasets)} in the table, {len(cover.complete)} in the rank analysis",
        f"average rank ({metric_label(metric)}):",
    ]
    lines += [f"  {row.average_rank:5.2f}  {row.label}" for row in mean_ranks.itertuples()]
    if test is not None:
        cd = f", Nemenyi CD {test.critical_difference:.2f}" if test.critical_difference is not None else ""
        lines.append(f"Friedman chi2 = {test.statistic:.2f}, p = {test.pvalue:.3g}{cd} (alpha {test.alpha:g})")
    if not wilcoxon.empty:
        lines.append(
            f"Wilcoxon-Holm: {int(wilcoxon['significant'].sum())} of {len(wilcoxon)} pairs differ significantly"
        )
    if ratio_info and ratio_info.get("n"):
        lines.append(
            f"INN / TabResNet training time: mean {ratio_info['mean']:.2f}"
            + (f" ± {ratio_info['std']:.2f}" if not math.isnan(ratio_info["std"]) else "")
            + ", "
            f"geometric mean {ratio_info['geometric_mean']:.2f}, range {ratio_info['min']:.2f}-{ratio_info['max']:.2f} "
            f"over {ratio_info['n']} datasets"
        )
    lines.append(f"files written: {len(files) + 1}")
    return lines


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags of ``plots/comparison.py``."""
    import argparse

    from experiments.cli import non_negative_int, open_fraction, positive_int

    parser = argparse.ArgumentParser(
        prog="plots/comparison.py",
        description="Tables and figures comparing the methods of a results tree "
        "(<results_dir>/<method>/<dataset_id>/<seed>/output_info.json).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--results_dir", type=Path, required=True, help="root of the results tree")
    parser.add_argument("--out_dir", type=Path, required=True, help="where the tables and figures go")
    parser.add_argument("--methods", nargs="+", default=None, help="method ids to compare (None: every method found)")
    parser.add_argument("--metric", default="test_auroc", help="report key to compare")
    parser.add_argument("--alpha", type=open_fraction, default=ALPHA, help="significance level of the tests")
    parser.add_argument("--reference", default=REFERENCE_METHOD, help="the gain plot's reference method")
    explain = parser.add_argument_group("INN explanations")
    explain.add_argument(
        "--explain_dataset",
        default=None,
        help="dataset id of the explained INN run, or 'all' (one per dataset); None: the first INN run",
    )
    explain.add_argument("--explain_seed", default=None, help="seed of the explained run (None: the first found)")
    explain.add_argument("--explain_example", type=non_negative_int, default=0, help="test row of the waterfall")
    explain.add_argument("--top_k", type=positive_int, default=10, help="features shown in the explanation")
    explain.add_argument("--no_explanations", action="store_true", help="draw no explanation figure")
    parser.add_argument("--usetex", action="store_true", help="typeset the figures with LaTeX (needs latex)")
    return parser


def _print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison from command-line arguments; returns the exit code (2 for a user error)."""
    from experiments.cli import run_main

    args = build_parser().parse_args(argv)
    options = ComparisonOptions(
        methods=args.methods,
        metric=args.metric,
        alpha=args.alpha,
        reference=args.reference,
        explain_dataset=args.explain_dataset,
        explain_seed=args.explain_seed,
        explain_example=args.explain_example,
        top_k=args.top_k,
        explanations=not args.no_explanations,
        usetex=args.usetex,
    )

    def work() -> None:
        result = run(args.results_dir, args.out_dir, options, warn=_print_warning)
        print("\n".join(result.summary))
        print(f"outputs in {args.out_dir}")

    return run_main(work)


if __name__ == "__main__":
    raise SystemExit(main())
