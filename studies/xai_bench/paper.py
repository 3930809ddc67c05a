"""The IMN paper's XAI-Bench table (its Table 3, ρ = 0) beside ours, cell by cell.

:data:`PAPER_TABLE3` holds the paper's values as transcribed in ``../shared/docs/related/imn_tables.md`` (one
unseeded run, no error bars). :func:`side_by_side` lines them up with our table at ρ = 0 (the long frame of
:func:`studies.xai_bench.tables.paper_table`, or the same read back from a written ``table_rho0.md`` by
:func:`read_markdown_table`) for the columns both have, and :func:`side_by_side_markdown` writes the comparison::

    python -m studies.xai_bench.paper --table results/xai_paper/table_rho0.md
    python -m studies.xai_bench.paper --table docs/xai_benchmark.md --after "paper sizes (3 seeds)"

Which of our entries stands for which of the paper's columns (:data:`COLUMNS`): the paper's SHAP is XAI-Bench's
``shap.Explainer``, which subsamples its background to 100 rows and computes exact interventional Shapley
values, as our BF-SHAP does over 100 background rows; the paper's K. SHAP is XAI-Bench's ``brutekernelshap``
over 1 000 background rows, which the 3-seed run did not compute; IMN is the paper's network, INN ours (the
arXiv-v1 defaults, see ``docs/defaults.md``). L2X and TabNet were not run.

A cell *agrees* when the paper's value lies within our mean ± 2 sample sd, or within :data:`TOLERANCE` of our mean
(the paper gives one run, so its own spread is unknown). Two things are not compared, because the public
XAI-Bench code the paper ran computes them differently from ours (``--compat`` reproduces both): ROAR
faithfulness, which there correlates attributions in feature order with removal effects in rank order, and
BreakDown, whose attributions there come in the order the features were visited, not in feature order.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from studies.xai_bench.tables import dataset_label, metric_label

_LIN, _NON, _PIE = "gaussianLinear", "gaussianNonLinearAdditive", "gaussianPiecewiseConstant"
#: The paper's columns, in its order.
PAPER_COLUMNS: tuple[str, ...] = ("Random", "Breakd.", "Maple", "LIME", "L2X", "SHAP", "K. SHAP", "TabNet", "IMN")
#: The IMN paper's Table 3 (ρ = 0): (metric, dataset) -> values in the order of :data:`PAPER_COLUMNS`.
PAPER_TABLE3: dict[tuple[str, str], tuple[float, ...]] = {
    ("faithfulness", _LIN): (0.004, 0.645, 0.980, 0.882, 0.010, 0.974, 0.981, 0.138, 0.987),
    ("faithfulness", _NON): (-0.079, -0.001, 0.487, 0.796, 0.155, 0.926, 0.970, 0.161, 0.621),
    ("faithfulness", _PIE): (0.091, 0.634, 0.967, 0.929, 0.016, 0.981, 0.990, 0.058, 0.841),
    ("roar_faithfulness", _LIN): (-0.039, 0.494, 0.548, 0.544, 0.049, 0.549, 0.550, 0.041, 0.639),
    ("roar_faithfulness", _NON): (0.050, 0.006, 0.040, -0.040, -0.060, -0.010, -0.036, -0.001, 0.027),
    ("roar_faithfulness", _PIE): (-0.055, 0.372, 0.347, 0.450, 0.015, 0.409, 0.426, 0.072, 0.404),
    ("infidelity", _LIN): (0.219, 0.041, 0.007, 0.007, 0.034, 0.007, 0.007, 0.049, 0.007),
    ("infidelity", _NON): (0.075, 0.086, 0.021, 0.071, 0.089, 0.030, 0.022, 0.047, 0.018),
    ("infidelity", _PIE): (0.132, 0.047, 0.014, 0.019, 0.070, 0.016, 0.019, 0.046, 0.008),
    ("roar_monotonicity", _LIN): (0.487, 0.605, 0.700, 0.652, 0.437, 0.680, 0.667, 0.585, 0.785),
    ("roar_monotonicity", _NON): (0.497, 0.542, 0.645, 0.587, 0.457, 0.670, 0.632, 0.493, 0.637),
    ("roar_monotonicity", _PIE): (0.485, 0.665, 0.787, 0.427, 0.442, 0.717, 0.797, 0.542, 0.682),
    ("shapley_corr", _LIN): (-0.016, 0.246, 0.999, 0.942, -0.214, 0.993, 0.999, 0.095, 0.999),
    ("shapley_corr", _NON): (-0.069, -0.179, 0.686, 0.872, -0.095, 0.974, 0.999, 0.125, 0.741),
    ("shapley_corr", _PIE): (-0.078, 0.099, 0.983, 0.959, 0.157, 0.991, 0.999, 0.070, 0.875),
}
#: The paper's metrics in its row order.
PAPER_METRICS: tuple[str, ...] = (
    "faithfulness",
    "roar_faithfulness",
    "infidelity",
    "roar_monotonicity",
    "shapley_corr",
)
#: Paper column -> (our entry, our column label); ``None``: not in our run.
COLUMNS: dict[str, tuple[str, str] | None] = {
    "Random": ("random", "Random"),
    "Breakd.": ("breakdown", "BreakDown"),
    "Maple": ("maple", "MAPLE"),
    "LIME": ("lime", "LIME"),
    "L2X": None,
    "SHAP": ("bruteforce_shap", "BF-SHAP (100 rows)"),
    "K. SHAP": None,
    "TabNet": None,
    "IMN": ("inn", "INN"),
}
#: Metrics whose paper values come from a different computation than ours (not compared).
NOT_COMPARABLE: dict[str, str] = {"roar_faithfulness": "the public code's rank-order defect"}
#: Paper columns whose values come from a different computation than ours (not compared).
NOT_COMPARABLE_COLUMNS: dict[str, str] = {"Breakd.": "the public code's visit-order defect"}
#: Absolute agreement tolerance per metric (besides 2 sample sd).
TOLERANCE: dict[str, float] = {"infidelity": 0.005}
DEFAULT_TOLERANCE = 0.02

_CELL = re.compile(r"^\s*(?:\*\*)?([-+0-9.eE]+)(?:\*\*)?\s*(?:±\s*([-+0-9.eE]+))?\s*$")


def parse_cell(text: str) -> tuple[float, float]:
    """``"0.972 ± 0.002"`` or ``"**6.73e-03** ± 8.5e-04"`` -> (mean, sd); sd NaN when not given."""
    match = _CELL.match(text)
    if match is None:
        raise ValueError(f"not a 'mean ± sd' cell: {text!r}")
    return float(match.group(1)), float(match.group(2)) if match.group(2) else math.nan


def read_markdown_table(text: str, after: str | None = None) -> pd.DataFrame:
    """Our paper-layout table read back from Markdown (``table_rho0.md``, or a doc that copies it).

    Takes the first table whose header starts with ``| Metric | Dataset |`` (after the first line containing
    ``after``, if given) and returns the long frame ``metric, dataset, entry_label, mean, std`` of its metric rows.
    """
    from data.synthetic import TARGETS
    from studies.xai_bench.config import BENCHMARK_METRICS

    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next((i for i, line in enumerate(lines) if after in line), None)
        if start is None:
            raise ValueError(f"no line contains {after!r}")
    header = next((i for i in range(start, len(lines)) if lines[i].startswith("| Metric | Dataset |")), None)
    if header is None:
        raise ValueError("no '| Metric | Dataset |' table found")
    labels = [cell.strip() for cell in lines[header].strip().strip("|").split("|")][2:]
    metrics = {metric_label(metric): metric for metric in BENCHMARK_METRICS}
    datasets = {dataset_label(dataset): dataset for dataset in TARGETS}
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] not in metrics:
            continue  # the Wins and model-MSE rows
        for label, cell in zip(labels, cells[2:], strict=True):
            if cell:
                mean, std = parse_cell(cell)
                rows.append((metrics[cells[0]], datasets[cells[1]], label, mean, std))
    return pd.DataFrame(rows, columns=["metric", "dataset", "entry_label", "mean", "std"])


def _our_labels() -> dict[str, str]:
    """Our entry id -> the label our table prints for it."""
    from explainers import POSTHOC_LABELS
    from methods import REGISTRY

    labels = {entry: POSTHOC_LABELS.get(entry, entry) for entry in POSTHOC_LABELS}
    labels["inn"] = REGISTRY["inn"].label
    return labels


def agrees(paper: float, mean: float, std: float, metric: str) -> bool:
    """Whether the paper's value lies within ``mean ± 2 std`` or within the metric's tolerance of ``mean``."""
    margin = max(2 * std if np.isfinite(std) else 0.0, TOLERANCE.get(metric, DEFAULT_TOLERANCE))
    return abs(paper - mean) <= margin + 1e-12


def side_by_side(ours: pd.DataFrame) -> pd.DataFrame:
    """One row per (paper metric, dataset, paper column that we ran): the paper's value, our mean and sd, the
    difference and whether they agree (``None`` where the metric is not comparable).

    Args:
        ours: long frame with ``metric, dataset, mean, std`` and ``entry`` or ``entry_label``.
    """
    labels = _our_labels()
    key = "entry" if "entry" in ours.columns else "entry_label"
    rows = []
    for (metric, dataset), values in PAPER_TABLE3.items():
        for column, paper in zip(PAPER_COLUMNS, values, strict=True):
            ours_column = COLUMNS[column]
            if ours_column is None:
                continue
            entry = ours_column[0]
            wanted = entry if key == "entry" else labels[entry]
            match = ours[(ours["metric"] == metric) & (ours["dataset"] == dataset) & (ours[key] == wanted)]
            if match.empty:
                raise ValueError(f"our table has no {wanted!r} for {metric} on {dataset}")
            mean, std = float(match["mean"].iloc[0]), float(match["std"].iloc[0])
            comparable = metric not in NOT_COMPARABLE and column not in NOT_COMPARABLE_COLUMNS
            rows.append(
                {
                    "metric": metric,
                    "dataset": dataset,
                    "column": column,
                    "ours": ours_column[1],
                    "paper": paper,
                    "mean": mean,
                    "std": std,
                    "difference": mean - paper,
                    "agrees": agrees(paper, mean, std, metric) if comparable else None,
                }
            )
    return pd.DataFrame(rows)


def row_rank_correlations(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per (metric, dataset): Spearman's correlation of the paper's and our values over the compared columns, and
    the best compared column in both (by the metric's direction; ties joined by ``=``); NaN and ``–`` for a row
    with fewer than three
    compared columns."""
    from scipy.stats import spearmanr

    from studies.xai_bench.config import metric_direction

    rows = []
    for (metric, dataset), group in comparison.groupby(["metric", "dataset"], sort=False):
        group = group[group["agrees"].notna()]
        if len(group) < 3:
            rows.append({"metric": metric, "dataset": dataset, "spearman": math.nan, "best_paper": "–",
                         "best_ours": "–"})  # fmt: skip
            continue
        sign = 1.0 if metric_direction(metric) == "higher" else -1.0
        rho = float(spearmanr(group["paper"], group["mean"]).statistic)
        best_paper, best_ours = (
            "=".join(group["column"][np.isclose(sign * group[key], (sign * group[key]).max(), rtol=0, atol=1e-12)])
            for key in ("paper", "mean")
        )
        rows.append({"metric": metric, "dataset": dataset, "spearman": rho, "best_paper": best_paper,
                     "best_ours": best_ours})  # fmt: skip
    return pd.DataFrame(rows)


def _number(value: float) -> str:
    from plots.tables import number_text

    return number_text(value, 3)


def _spearman_text(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "–"


def side_by_side_markdown(comparison: pd.DataFrame) -> str:
    """The comparison as Markdown: rows metric × dataset, one column per shared paper column with
    ``paper → ours ± sd`` and a mark (✓ agrees, ✗ does not, n.c. not comparable), then each row's Spearman
    correlation and best column in both, then the counts."""
    from plots.tables import mean_sd_text

    columns = list(dict.fromkeys(comparison["column"]))
    names = {row.column: row.ours for row in comparison.itertuples()}
    header = [f"{column} (paper) → {names[column]} (ours)" for column in columns]
    ranks = row_rank_correlations(comparison).set_index(["metric", "dataset"])
    lines = [
        "| Metric | Dataset | " + " | ".join(header) + " | Spearman (compared columns) | best: paper / ours |",
        "|" + "---|" * (len(columns) + 4),
    ]
    for (metric, dataset), group in comparison.groupby(["metric", "dataset"], sort=False):
        cells = []
        for row in group.itertuples():
            mark = "n.c." if row.agrees is None else ("✓" if row.agrees else "✗")
            cells.append(f"{_number(row.paper)} → {mean_sd_text(row.mean, row.std, 3)} {mark}")
        rank = ranks.loc[(metric, dataset)]
        lines.append(
            f"| {metric_label(metric)} | {dataset_label(dataset)} | " + " | ".join(cells)
            + f" | {_spearman_text(rank['spearman'])} | {rank['best_paper']} / {rank['best_ours']} |"
        )  # fmt: skip
    compared = comparison[comparison["agrees"].notna()]
    n_agree = int(compared["agrees"].astype(bool).sum())
    by_column = ", ".join(
        f"{names[column]} {int(group['agrees'].astype(bool).sum())}/{len(group)}"
        for column, group in compared.groupby("column", sort=False)
    )
    caption = (
        f"Paper: one run, no error bars. Ours: mean ± sample sd over 3 seeds. ✓: the paper's value lies within our "
        f"mean ± 2 sd or within {DEFAULT_TOLERANCE:g} of it ({TOLERANCE['infidelity']:g} for infidelity); ✗: it "
        f"does not; n.c.: not compared (ROAR faithfulness: the public code's rank-order defect; BreakDown: its "
        f"visit-order defect). Spearman: over the compared columns of the row. Agreeing cells: "
        f"{n_agree} of {len(compared)} ({by_column})."
    )
    return "\n".join(lines) + "\n\n" + caption + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, required=True, help="a table_rho0.md, or a doc that copies one")
    parser.add_argument("--after", default=None, help="take the first table after the line containing this")
    args = parser.parse_args(argv)
    ours = read_markdown_table(args.table.read_text(encoding="utf-8"), args.after)
    print(side_by_side_markdown(side_by_side(ours)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
