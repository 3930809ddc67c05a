"""The benchmark's tables: :func:`paper_table` lays one ρ out as the IMN paper does (rows metric × dataset,
columns explanations, mean and sample sd over seeds, the best of each row marked, a wins row), :func:`table_markdown` and
:func:`table_latex` format it; the human labels of datasets and metrics live here (:func:`dataset_label`,
:func:`metric_label`), the order of explanations in :func:`entry_order`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from data.synthetic import TARGETS
from plots.tables import mean_sd_text, number_text
from studies.xai_bench.config import BENCHMARK_METRICS, metric_direction


def entry_order(frame: pd.DataFrame) -> list[str]:
    """Entries in table order: models' own explanations (registry order), then post-hoc ones (table order), Random
    last."""
    from explainers import POSTHOC_EXPLAINERS
    from methods import REGISTRY

    methods = list(REGISTRY)
    posthoc = list(POSTHOC_EXPLAINERS)
    entries = frame[["entry", "explainer", "model", "native"]].drop_duplicates("entry")

    def key(row: Any) -> tuple[int, int, int, str]:
        if bool(row.native):
            return (0, methods.index(row.model) if row.model in methods else len(methods), 0, row.entry)
        last = 1 if row.explainer == "random" else 0
        model_rank = methods.index(row.model) if row.model in methods else len(methods)
        explainer_rank = posthoc.index(row.explainer) if row.explainer in posthoc else len(posthoc)
        return (1 + last, model_rank, explainer_rank, row.entry)

    return [row.entry for row in sorted(entries.itertuples(), key=key)]


def paper_table(frame: pd.DataFrame, rho: float = 0.0, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's layout at one ρ: one row per (metric, dataset) with every entry's mean and sd over seeds.

    Returns:
        Long format: ``metric, dataset, entry, entry_label, mean, std, n_seeds, best, model_test_mse`` where
        ``best`` marks the best mean of its row (ties all win) by the metric's direction.
    """
    at = frame[np.isclose(frame["rho"], rho)]
    if at.empty:
        raise ValueError(f"no results at rho={rho:g}")
    wanted = [metric for metric in BENCHMARK_METRICS if metrics is None or metric in metrics]
    at = at[at["metric"].isin(wanted)]
    grouped = (
        at.groupby(["metric", "dataset", "entry"], sort=False)
        .agg(
            entry_label=("entry_label", "first"),
            mean=("value", "mean"),
            std=("value", "std"),
            n_seeds=("seed", "nunique"),
            model_test_mse=("model_test_mse", "mean"),
        )
        .reset_index()
    )
    grouped["std"] = grouped["std"].fillna(0.0)
    sign = np.where(grouped["metric"].map(metric_direction) == "higher", 1.0, -1.0)
    score = grouped["mean"] * sign  # larger is better for every metric
    top = score.groupby([grouped["metric"], grouped["dataset"]]).transform("max")
    grouped["best"] = np.isfinite(score) & np.isclose(score, top, rtol=1e-6, atol=1e-12)  # float-level ties all win
    order = {entry: position for position, entry in enumerate(entry_order(at))}
    grouped["_metric"] = grouped["metric"].map({metric: i for i, metric in enumerate(BENCHMARK_METRICS)})
    grouped["_dataset"] = grouped["dataset"].map({dataset: i for i, dataset in enumerate(TARGETS)})
    grouped["_entry"] = grouped["entry"].map(order)
    return (
        grouped.sort_values(["_metric", "_dataset", "_entry"])
        .drop(columns=["_metric", "_dataset", "_entry"])
        .reset_index(drop=True)
    )


_DATASET_LABELS = {
    "gaussianLinear": "Gaussian Linear",
    "gaussianNonLinearAdditive": "Gaussian Non-Linear Additive",
    "gaussianPiecewiseConstant": "Gaussian Piecewise Constant",
}
_METRIC_LABELS = {
    "faithfulness": "Faithfulness",
    "monotonicity": "Monotonicity",
    "infidelity": "Infidelity",
    "roar_faithfulness": "Faithfulness (ROAR)",
    "roar_monotonicity": "Monotonicity (ROAR)",
    "shapley_mse": "Shapley MSE",
    "shapley_corr": "Shapley corr.",
    "shapley_mse_interventional": "Shapley MSE (interv.)",
    "shapley_corr_interventional": "Shapley corr. (interv.)",
}


def dataset_label(dataset: str) -> str:
    return _DATASET_LABELS.get(dataset, dataset)


def metric_label(metric: str, *, arrow: bool = True) -> str:
    """A metric's label, with ↑ (higher is better) or ↓."""
    label = _METRIC_LABELS.get(metric, metric)
    if not arrow:
        return label
    return f"{label} {'↑' if metric_direction(metric) == 'higher' else '↓'}"


def _wide(table: pd.DataFrame) -> tuple[list[str], list[str], list[tuple[str, str, dict[str, Any]]]]:
    entries = list(dict.fromkeys(table["entry"]))
    labels = [table.loc[table["entry"] == entry, "entry_label"].iloc[0] for entry in entries]
    rows = []
    for (metric, dataset), group in table.groupby(["metric", "dataset"], sort=False):
        rows.append((metric, dataset, {row.entry: row for row in group.itertuples()}))
    return entries, labels, rows


def _wins(table: pd.DataFrame, entries: Sequence[str]) -> list[int]:
    return [int(table.loc[table["entry"] == entry, "best"].sum()) for entry in entries]


def _test_errors(table: pd.DataFrame, entries: Sequence[str]) -> list[tuple[str, list[float]]]:
    """Per dataset, the mean test MSE of the model each entry explains."""
    out = []
    for dataset in dict.fromkeys(table["dataset"]):
        rows = table[table["dataset"] == dataset].drop_duplicates("entry").set_index("entry")
        out.append((dataset, [float(rows["model_test_mse"].get(entry, np.nan)) for entry in entries]))
    return out


def _cell(mean: float, std: float, n_seeds: int, digits: int, bold: Callable[[str], str]) -> str:
    """``mean ± sd`` with the sd in the mean's notation (fixed decimals, or scientific like the mean)."""
    return mean_sd_text(mean, std if n_seeds >= 2 else math.nan, digits, bold)


def table_markdown(table: pd.DataFrame, *, digits: int = 3, rho: float = 0.0) -> str:
    """The paper-layout table as Markdown: ``mean ± sd`` over seeds, the best of each row in bold, a wins row and
    the explained model's test MSE per dataset."""
    entries, labels, rows = _wide(table)
    header = "| Metric | Dataset | " + " | ".join(labels) + " |"
    lines = [header, "|" + "---|" * (len(entries) + 2)]
    for metric, dataset, cells in rows:
        texts = []
        for entry in entries:
            row = cells.get(entry)
            if row is None:
                texts.append("")
                continue
            texts.append(_cell(row.mean, row.std, row.n_seeds, digits, lambda t, b=row.best: f"**{t}**" if b else t))
        lines.append(f"| {metric_label(metric)} | {dataset_label(dataset)} | " + " | ".join(texts) + " |")
    lines.append("| **Wins** | | " + " | ".join(str(wins) for wins in _wins(table, entries)) + " |")
    for dataset, errors in _test_errors(table, entries):
        values = " | ".join(number_text(error, digits) for error in errors)
        lines.append(f"| model test MSE | {dataset_label(dataset)} | {values} |")
    seeds = int(table["n_seeds"].max()) if len(table) else 0
    caption = (
        f"ρ = {rho:g}; mean ± sample sd over {seeds} seed(s); bold: best of the row (↑ higher, ↓ lower is better); "
        "Wins: rows an explainer is best in; the last rows give the test MSE of the model each column explains."
    )
    return "\n".join(lines) + "\n\n" + caption + "\n"


def _latex_escape(text: str) -> str:
    for old, new in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(old, new)
    return text.replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("×", r"$\times$")


def table_latex(table: pd.DataFrame, *, digits: int = 3, rho: float = 0.0) -> str:
    """The paper-layout table as a LaTeX ``tabular`` (booktabs), formatted like :func:`table_markdown`."""
    entries, labels, rows = _wide(table)
    lines = [
        r"\begin{tabular}{ll" + "c" * len(entries) + "}",
        r"\toprule",
        "Metric & Dataset & " + " & ".join(_latex_escape(label) for label in labels) + r" \\",
        r"\midrule",
    ]
    for metric, dataset, cells in rows:
        texts = []
        for entry in entries:
            row = cells.get(entry)
            if row is None:
                texts.append("")
                continue
            cell = _cell(row.mean, row.std, row.n_seeds, digits, lambda t, b=row.best: rf"\textbf{{{t}}}" if b else t)
            texts.append(cell.replace("±", r"$\pm$"))
        lines.append(
            f"{_latex_escape(metric_label(metric))} & {_latex_escape(dataset_label(dataset))} & "
            + " & ".join(texts)
            + r" \\"
        )
    lines.append(r"\midrule")
    lines.append(r"Wins & & " + " & ".join(str(wins) for wins in _wins(table, entries)) + r" \\")
    for dataset, errors in _test_errors(table, entries):
        lines.append(
            f"model test MSE & {_latex_escape(dataset_label(dataset))} & "
            + " & ".join(number_text(error, digits) for error in errors)
            + r" \\"
        )
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
