"""The comparison's tables as text: Markdown and booktabs LaTeX, and the summary printed at the end.

Pure functions from the frames of :mod:`plots.stats` to strings; nothing here reads or writes files. Method
names are the labels of :mod:`plots.style` (a variant is ``Label (variant)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from plots.stats import Analysis, FeatureRanking
from plots.style import method_label, metric_label

_CORRELATION_NAMES = {"spearman": "Spearman's rank correlation (rho)", "kendall": "Kendall's rank correlation (tau-b)"}


def number_text(value: float, digits: int = 3) -> str:
    """Fixed point with ``digits`` decimals; small or huge values in scientific notation; ``–`` if not finite."""
    if not np.isfinite(value):
        return "–"
    if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e4):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}f}"


def mean_sd_text(mean: float, std: float, digits: int = 3, bold: Any = None) -> str:
    """``mean ± sd``, the sd in the mean's notation (fixed decimals, or scientific like the mean); the mean alone
    where either is not finite. ``bold`` (optional) wraps the mean's text."""
    text = number_text(mean, digits)
    shown = bold(text) if bold is not None else text
    if not (np.isfinite(mean) and np.isfinite(std)):
        return shown
    spread = f"{std:.1e}" if "e" in text else f"{std:.{digits}f}"
    return f"{shown} ± {spread}"


def markdown_escape(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (for tables and ``usetex`` figures)."""
    replacements = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_"}
    replacements.update({"{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"})
    return "".join(replacements.get(char, char) for char in text)


def replace_table_blocks(text: str, tables: dict[str, str]) -> tuple[str, list[str]]:
    """``text`` with every ``<!-- table:NAME -->`` … ``<!-- /table:NAME -->`` block whose NAME ``tables`` has
    replaced by that table (a generated table in a doc), and the names of all the blocks ``text`` holds, in order.

    A table's text should end with a newline (the closing marker starts its own line)."""
    names = re.findall(r"<!-- table:(\S+) -->", text)
    for name in names:
        if name not in tables:
            continue
        pattern = re.compile(rf"<!-- table:{re.escape(name)} -->\n.*?<!-- /table:{re.escape(name)} -->", re.S)
        block = f"<!-- table:{name} -->\n{tables[name]}<!-- /table:{name} -->"
        text = pattern.sub(lambda _, block=block: block, text)
    return text, names


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    """A plain Markdown table of a DataFrame (pandas' ``to_markdown`` needs the optional ``tabulate``)."""

    def text(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "" if math.isnan(value) else float_format.format(value)
        return markdown_escape(str(value))

    lines = ["| " + " | ".join(str(column) for column in frame.columns) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(text(value) for value in row) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------------
# The per-dataset performance table


def _cells(table: pd.DataFrame, methods: Sequence[str], higher_better: bool, digits: int) -> list[list[tuple | None]]:
    """Per dataset and method: (mean text, std text or "", is best) or None for a missing cell."""
    rows = []
    for _, row in table.iterrows():
        means = {method: row[f"{method}_mean"] for method in methods if not pd.isna(row[f"{method}_mean"])}
        # Bold the best mean as displayed, so two methods that print the same value are both bold.
        rounded = {method: round(value, digits) for method, value in means.items()}
        best = (max if higher_better else min)(rounded.values()) if rounded else None
        cells: list[tuple | None] = []
        for method in methods:
            if method not in means:
                cells.append(None)
                continue
            std = row[f"{method}_std"]
            std_text = "" if pd.isna(std) else f"{std:.{digits}f}"
            cells.append((f"{means[method]:.{digits}f}", std_text, rounded[method] == best))
        rows.append(cells)
    return rows


def _cell_texts(cells: Sequence[tuple | None], *, missing: str, plus_minus: str, bold: str) -> list[str]:
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
        lines.append("| " + " | ".join([markdown_escape(name), *texts]) + " |")
    if ranks is not None and not ranks.empty:
        by_method = ranks.set_index("method")["average_rank"]
        lines.append("| Average rank | " + " | ".join(f"{by_method.get(m, np.nan):.2f}" for m in methods) + " |")
    direction = "higher" if higher_better else "lower"
    notes = ["", f"{metric_label(metric)}, mean ± std over seeds ({direction} is better; best in bold; – no run)."]
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
        f"\\caption{{{latex_escape(metric_label(metric))} per dataset: mean $\\pm$ std over seeds, best in bold.}}",
        f"\\label{{tab:{metric}}}",
        "\\begin{tabular}{l" + "c" * len(methods) + "}",
        "\\toprule",
        "Dataset & " + " & ".join(latex_escape(method_label(method)) for method in methods) + " \\\\",
        "\\midrule",
    ]
    for (_, row), cells in zip(table.iterrows(), _cells(table, methods, higher_better, digits), strict=True):
        name = latex_escape(f"{row['dataset_name']} ({row['dataset_id']})")
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


def analysis_texts(analysis: Analysis, stem: str) -> dict[str, str]:
    """Every table of an analysis as file name -> content.

    The per-dataset table (``<stem>`` .csv/.md/.tex), ranks, missing runs, datasets, times and, where they exist,
    the Wilcoxon-Holm tests (two methods or more), the gains and the INN / TabResNet time ratios.
    """
    a = analysis
    texts = {
        f"{stem}.csv": a.table.to_csv(index=False),
        f"{stem}.md": performance_markdown(a.table, a.methods, a.metric, a.higher_better, a.mean_ranks),
        f"{stem}.tex": performance_latex(a.table, a.methods, a.metric, a.higher_better, a.mean_ranks),
        "average_ranks.csv": a.mean_ranks.to_csv(index=False),
        "ranks_per_dataset.csv": a.ranks.reset_index().to_csv(index=False),
        "missing_runs.csv": a.cover.missing.to_csv(index=False),
        "datasets.csv": a.datasets.to_csv(index=False),
        "datasets.md": markdown_table(a.datasets),
        "times.csv": a.times.to_csv(index=False),
        "times.md": markdown_table(a.times),
    }
    if len(a.methods) >= 2:
        texts["wilcoxon_holm.csv"] = a.wilcoxon.to_csv(index=False)
        texts["wilcoxon_holm.md"] = markdown_table(a.wilcoxon.drop(columns=["method_a", "method_b"]))
    if a.gains is not None:
        texts[f"gain_over_{a.reference}.csv"] = a.gains.to_csv(index=False)
    if a.ratio_info and a.ratio_info["n"]:
        texts["inn_tabresnet_time_ratio.csv"] = a.ratios.to_csv(index=False)
    return texts


# ----------------------------------------------------------------------------------------------------------------
# Feature rankings


def _rank_text(value: float, missing: str) -> str:
    return missing if pd.isna(value) else f"{value:g}"


def _ranking_note(ranking: FeatureRanking, top_k: int) -> str:
    seeds = ", ".join(f"{method_label(m)} {int(n)}" for m, n in ranking.n_seeds.items())
    shown = len(ranking.ranks)
    cut = f"; the {min(top_k, shown)} of {shown} features with the best mean rank" if shown > top_k else ""
    return (
        "Rank of each feature under each method's global importance (1 = most important; ties share the average "
        "rank): the mean over seeds of the normalised feature_importances of output_info.json, i.e. the mean "
        f"|local attribution| per feature. Seeds: {seeds}{cut}."
    )


def ranking_frame(ranking: FeatureRanking) -> pd.DataFrame:
    """The numbers of a ranking as one flat frame (the CSV): feature, mean rank, then rank and importance per method."""
    frame = ranking.ranks[["mean_rank"]].copy()
    for method in ranking.methods:
        frame[f"{method}_rank"] = ranking.ranks[method]
    for method in ranking.methods:
        frame[f"{method}_importance"] = ranking.importance[method]
    return frame.reset_index()


def ranking_markdown(ranking: FeatureRanking, dataset_name: str = "", top_k: int = 20) -> str:
    """Markdown: one row per feature (best mean rank first), one column per method, the cell the feature's rank."""
    methods = ranking.methods
    lines = [
        f"Feature ranking on {markdown_escape(dataset_name or 'dataset')} ({ranking.dataset_id})",
        "",
        "| Feature | " + " | ".join(method_label(m) for m in methods) + " | Mean rank |",
        "|---|" + "---:|" * (len(methods) + 1),
    ]
    for feature, row in ranking.ranks.head(top_k).iterrows():
        cells = [_rank_text(row[m], "–") for m in methods] + [f"{row['mean_rank']:.2f}"]
        lines.append("| " + " | ".join([markdown_escape(str(feature)), *cells]) + " |")
    return "\n".join([*lines, "", _ranking_note(ranking, top_k)]) + "\n"


def ranking_latex(ranking: FeatureRanking, dataset_name: str = "", top_k: int = 20) -> str:
    """A booktabs LaTeX table with the same content as :func:`ranking_markdown`."""
    methods = ranking.methods
    caption = latex_escape(f"Feature ranks on {dataset_name or 'dataset'} ({ranking.dataset_id}). ")
    lines = [
        "% Generated by plots/comparison.py; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{caption}{latex_escape(_ranking_note(ranking, top_k))}}}",
        f"\\label{{tab:feature_ranking_{latex_escape(ranking.dataset_id)}}}",
        "\\begin{tabular}{l" + "c" * (len(methods) + 1) + "}",
        "\\toprule",
        "Feature & " + " & ".join(latex_escape(method_label(m)) for m in methods) + " & Mean rank \\\\",
        "\\midrule",
    ]
    for feature, row in ranking.ranks.head(top_k).iterrows():
        cells = [_rank_text(row[m], "--") for m in methods] + [f"{row['mean_rank']:.2f}"]
        lines.append(" & ".join([latex_escape(str(feature)), *cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def ranking_texts(ranking: FeatureRanking, dataset_name: str = "", top_k: int = 20) -> dict[str, str]:
    """The ranking of one dataset as file name -> content: ``feature_ranking_<id>`` and
    ``feature_rank_correlation_<id>``, each as CSV, Markdown and LaTeX."""
    key = ranking.dataset_id
    return {
        f"feature_ranking_{key}.csv": ranking_frame(ranking).to_csv(index=False),
        f"feature_ranking_{key}.md": ranking_markdown(ranking, dataset_name, top_k),
        f"feature_ranking_{key}.tex": ranking_latex(ranking, dataset_name, top_k),
        f"feature_rank_correlation_{key}.csv": ranking.correlation.rename_axis("method").to_csv(),
        f"feature_rank_correlation_{key}.md": correlation_markdown(ranking),
        f"feature_rank_correlation_{key}.tex": correlation_latex(ranking),
    }


def correlation_name(kind: str) -> str:
    """The rank correlation in words (``Spearman's rank correlation (rho)``)."""
    return _CORRELATION_NAMES[kind]


def correlation_markdown(ranking: FeatureRanking) -> str:
    """Markdown: the rank correlation of the importances of every pair of methods."""
    methods = ranking.methods
    labels = [method_label(m) for m in methods]
    lines = [
        f"{correlation_name(ranking.kind)} of the feature importances, dataset {ranking.dataset_id}",
        "",
        "| | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for method, label in zip(methods, labels, strict=True):
        values = ranking.correlation.loc[method, methods]
        lines.append(f"| {markdown_escape(label)} | " + " | ".join(_correlation_text(v, "–") for v in values) + " |")
    note = f"Over the features both methods rank ({len(ranking.ranks)} in all); – fewer than 3 or constant importances."
    return "\n".join([*lines, "", note]) + "\n"


def correlation_latex(ranking: FeatureRanking) -> str:
    """A booktabs LaTeX table with the same content as :func:`correlation_markdown`."""
    methods = ranking.methods
    labels = [latex_escape(method_label(m)) for m in methods]
    caption = latex_escape(
        f"{correlation_name(ranking.kind)} of the feature importances, dataset {ranking.dataset_id}."
    )
    lines = [
        "% Generated by plots/comparison.py; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{caption}}}",
        f"\\label{{tab:feature_rank_correlation_{latex_escape(ranking.dataset_id)}}}",
        "\\begin{tabular}{l" + "c" * len(methods) + "}",
        "\\toprule",
        " & " + " & ".join(labels) + " \\\\",
        "\\midrule",
    ]
    for method, label in zip(methods, labels, strict=True):
        values = ranking.correlation.loc[method, methods]
        lines.append(label + " & " + " & ".join(_correlation_text(v, "--") for v in values) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _correlation_text(value: float, missing: str) -> str:
    return missing if pd.isna(value) else f"{value:.2f}"


# ----------------------------------------------------------------------------------------------------------------
# The summary


def summary_lines(
    analysis: Analysis,
    *,
    n_runs: int,
    n_skipped: int,
    n_mismatched: int,
    rankings: Sequence[FeatureRanking] = (),
) -> list[str]:
    """The lines printed at the end of a comparison (and written to ``summary.txt``)."""
    cover, test, wilcoxon, mean_ranks = analysis.cover, analysis.test, analysis.wilcoxon, analysis.mean_ranks
    ratio_info = analysis.ratio_info
    lines = [
        f"runs read: {n_runs}, skipped: {n_skipped} (folder/report mismatches: {n_mismatched}), "
        f"missing: {len(cover.missing)}",
        f"methods: {', '.join(method_label(m) for m in analysis.methods)}",
        f"datasets: {len(cover.datasets)} in the table, {len(cover.complete)} in the rank analysis",
        f"average rank ({metric_label(analysis.metric)}):",
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
        spread = f" ± {ratio_info['std']:.2f}" if not math.isnan(ratio_info["std"]) else ""
        lines.append(
            f"INN / TabResNet training time: mean {ratio_info['mean']:.2f}{spread}, "
            f"geometric mean {ratio_info['geometric_mean']:.2f}, range {ratio_info['min']:.2f}-{ratio_info['max']:.2f} "
            f"over {ratio_info['n']} datasets"
        )
    for ranking in rankings:
        pairs = ranking.correlation.where(np.triu(np.ones(ranking.correlation.shape, dtype=bool), k=1)).stack()
        mean = f"{pairs.mean():.2f}" if len(pairs) else "n/a"
        lines.append(
            f"feature ranking, dataset {ranking.dataset_id}: {len(ranking.methods)} methods, "
            f"mean pairwise {ranking.kind} {mean}"
        )
    return lines
