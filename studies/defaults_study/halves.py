"""Issue 24 of the defaults study: the defaults chosen on the selection half, where INN stands on the report half.

:func:`choose` applies the rule fixed before the runs (AUROC first, then ρ, no change without evidence) to the
selection half's runs; :func:`halves_tables` renders the tables of both halves from one tidy file
(:data:`HALVES_CSV`), and :func:`run_halves` writes them (``python -m studies.defaults_study.tabulate --halves``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.results import load_runs
from studies.defaults_study.run_study import BASELINES, CANDIDATES, INN_ONLY, grid_blocks, half
from studies.defaults_study.tabulate import (
    PAPER_GAPS,
    analyse,
    cell_seconds,
    check_identities,
    common_seeds,
    complete_datasets,
    fill_in,
    gap_table,
    paired_seed_tests,
)

#: The rule that chooses the defaults on the selection half (:func:`choose`), fixed before its runs: AUROC first,
#: then ρ, and no change of the defaults without evidence.
AUROC_MARGIN = 0.002
ALPHA = 0.05
#: The project's defaults before the choice: the candidate every other one is paired with.
REFERENCE = "current"
#: The tidy file of both halves' runs (one row per run) from which every table of the halves is rendered.
HALVES_CSV = "defaults_halves_runs.csv"
HALVES_COLUMNS = [
    "half", "method", "base_method", "variant", "dataset_id", "dataset_name", "seed", "test_auroc",
    "sensitivity_rank_correlation", "filled_in", "train_time", "cell_seconds",
]  # fmt: skip
#: The rule's two measures and their short names in its tables.
MEASURES = {"test_auroc": "AUROC", "sensitivity_rank_correlation": "ρ"}


@dataclass(frozen=True)
class Choice:
    """The defaults chosen on the selection half by :func:`choose`.

    Attributes:
        inn: INN's candidate; ``tabresnet``: TabResNet's.
        inn_table: per INN candidate, its paired differences from ``current`` on both measures with their tests
            and the rule's verdicts; ``tabresnet_table``: the same on TabResNet's AUROC.
        reason: how the rule decided, in words.
    """

    inn: str
    tabresnet: str
    inn_table: pd.DataFrame
    tabresnet_table: pd.DataFrame
    reason: str


def _paired_table(runs: pd.DataFrame, method: str, candidates: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Per candidate of ``method``: pairs, mean difference from ``current``, wins, losses and Holm p per metric."""
    datasets = sorted(set(runs["dataset_id"]))
    reference = f"{method}-{REFERENCE}"
    table = pd.DataFrame({"candidate": [REFERENCE, *candidates]})
    for metric in metrics:
        short = MEASURES[metric]
        tests = paired_seed_tests(runs, reference, [f"{method}-{c}" for c in candidates], metric, datasets)
        columns = ["pairs", "mean_difference", "wins", "losses", "p_holm"]
        if tests.empty:
            tests = pd.DataFrame(columns=["configuration", *columns], dtype=float)
        tests = tests.assign(candidate=tests["configuration"].astype(str).str.removeprefix(f"{method}-"))
        tests = tests.set_index("candidate").reindex(candidates)
        table[f"pairs {short}"] = [np.nan, *tests["pairs"]]
        table[f"Δ {short}"] = [0.0, *tests["mean_difference"]]
        table[f"wins {short}"] = [np.nan, *tests["wins"]]
        table[f"losses {short}"] = [np.nan, *tests["losses"]]
        table[f"p {short}"] = [np.nan, *tests["p_holm"]]
    return table


def _better(row: pd.Series, short: str) -> bool:
    return bool(row[f"p {short}"] < ALPHA and row[f"Δ {short}"] > 0)


def _worse(row: pd.Series, short: str) -> bool:
    return bool(row[f"p {short}"] < ALPHA and row[f"Δ {short}"] < 0)


def choose(runs: pd.DataFrame) -> Choice:
    """The rule, fixed before the selection runs, applied to the selection half's runs.

    ``runs``: INN's and TabResNet's runs of every candidate (``inn-<candidate>``, ``tabresnet-<candidate>``) on the
    selection half, the cells that repeat ``current`` filled in (:func:`fill_in`). For every candidate ``c``,
    ``Δ_A(c)`` and ``Δ_ρ(c)`` are the mean differences from ``current`` of INN's test AUROC and of ρ over the
    (dataset, seed) pairs both have (every dataset has the same seeds, so this is the mean over datasets of the
    per-dataset mean difference); ``p_A(c)``, ``p_ρ(c)`` are Wilcoxon signed-rank tests over these pairs,
    Holm-corrected over the candidates per measure; ``Δ(current) = 0``.

    1. AUROC first: ``c`` passes when ``Δ_A(c) ≥ max Δ_A − AUROC_MARGIN`` (the maximum over every candidate and
       ``current``): a loss of AUROC up to the margin is accepted, significant or not.
    2. Then ρ: of those that pass, the one with the highest ``Δ_ρ`` (ties: ``current``, then :data:`CANDIDATES`
       order).
    3. Evidence: it replaces ``current`` only if it is significantly better on one measure (``p < ALPHA``,
       ``Δ > 0``) and not significantly worse on ρ; otherwise ``current`` stays.

    TabResNet (the candidates that change it: not ``current``, not :data:`INN_ONLY`) is judged on its AUROC alone (the
    study measures INN's explanation): it leaves ``current`` only for a candidate significantly better (``p_A <
    ALPHA``, ``Δ_A > 0``), the one with the largest ``Δ_A`` if several.
    """
    others = [name for name in CANDIDATES if name != REFERENCE and f"inn-{name}" in set(runs["method"])]
    table = _paired_table(runs, "inn", others, list(MEASURES))
    best = table["Δ AUROC"].max()
    table["AUROC step"] = table["Δ AUROC"] >= best - AUROC_MARGIN - 1e-12
    passed = table[table["AUROC step"]]
    winner = passed.loc[passed["Δ ρ"].idxmax()]  # idxmax keeps the first maximum: current, then CANDIDATES order
    evidence = any(_better(winner, m) for m in ("AUROC", "ρ")) and not _worse(winner, "ρ")
    inn = winner["candidate"] if winner["candidate"] == REFERENCE or evidence else REFERENCE
    steps = (
        f"best Δ AUROC {best:+.4f}; within {AUROC_MARGIN} of it: "
        f"{', '.join(passed['candidate'])}; highest Δ ρ among them: {winner['candidate']} ({winner['Δ ρ']:+.3f})"
    )
    if winner["candidate"] == REFERENCE:
        steps += "; current stays"
    elif evidence:
        steps += f"; significantly better than current on one measure, not worse on ρ: {inn} replaces current"
    else:
        steps += (
            "; not significantly better than current on either measure (or significantly worse on ρ): current stays"
        )

    twins = [name for name in others if name not in INN_ONLY and f"tabresnet-{name}" in set(runs["method"])]
    resnet = _paired_table(runs, "tabresnet", twins, ["test_auroc"])
    better = resnet[[_better(row, "AUROC") for _, row in resnet.iterrows()]]
    tabresnet = better.loc[better["Δ AUROC"].idxmax(), "candidate"] if len(better) else REFERENCE
    steps += (
        f". TabResNet: significantly better AUROC than current: {', '.join(better['candidate']) or 'none'}; "
        f"TabResNet {'stays with current' if tabresnet == REFERENCE else 'takes ' + tabresnet}"
    )
    return Choice(inn=str(inn), tabresnet=str(tabresnet), inn_table=table, tabresnet_table=resnet, reason=steps)


def missing_cells(runs: pd.DataFrame, stages: Sequence[str], chosen: tuple[str, str] | None = None) -> list[str]:
    """The cells of the half stages ``stages`` (``run_study.grid_blocks``) that ``runs`` lacks, ``run/dataset/seed``."""
    present = set(zip(runs["method"], runs["dataset_id"].astype(str), runs["seed"].astype(str), strict=True))
    missing = []
    for _, name, methods, datasets, seeds in grid_blocks(stages, chosen):
        for method in methods:
            run = f"{method}-{name}" if name else method
            missing += [
                f"{run}/{dataset}/{seed}"
                for dataset in datasets
                for seed in seeds or ()
                if (run, str(dataset), str(seed)) not in present
            ]
    return missing


def halves_runs(results: Path, cache: Path | None) -> tuple[pd.DataFrame, list[str]]:
    """Both halves' runs of the study, one row per run (a ``half`` column added), and the identity checks' lines.

    Only the halves' datasets and seeds (``experiments/suites.json``) are kept: on the selection half the
    candidates' grid runs, the cells that repeat ``current`` filled in after checking the premise
    (:func:`check_identities`, :func:`fill_in`); on the report half the grid runs and the baselines (``point3/``).
    ``cell_seconds`` is each run's cell wall time from the sweep's logs (none for a filled-in cell).
    """
    grid = load_runs(results / "grid").runs
    baselines = load_runs(results / "point3").runs if (results / "point3").is_dir() else grid.iloc[:0]
    frames, checks = [], []
    for name in ("selection", "report"):
        datasets, seeds = half(name)

        def keep(frame: pd.DataFrame, datasets=datasets, seeds=seeds) -> pd.DataFrame:
            return frame[frame["dataset_id"].isin(list(map(str, datasets))) & frame["seed"].isin(list(map(str, seeds)))]

        if name == "selection":
            part = keep(grid)
            checks = check_identities(part, cache) if len(part) else []
            part = fill_in(part) if len(part) else part.assign(filled_in=False)
        else:
            part = pd.concat([keep(grid), keep(baselines)], ignore_index=True).assign(filled_in=False)
        frames.append(part.assign(half=name))
    runs = pd.concat(frames, ignore_index=True)
    seconds = pd.concat([cell_seconds(results / "grid"), cell_seconds(results / "point3")], ignore_index=True)
    seconds = seconds.rename(columns={"seconds": "cell_seconds"})
    runs = runs.merge(seconds, on=["method", "dataset_id", "seed"], how="left")
    runs.loc[runs["filled_in"], "cell_seconds"] = np.nan
    return runs, checks


def selection_choice(results: Path, cache: Path | None) -> Choice:
    """The rule's choice from the study's runs under ``results`` (what ``run_study``'s report stage runs).

    Raises:
        ValueError: a cell of the selection stages has no result yet.
    """
    runs, _ = halves_runs(results, cache)
    selection = runs[runs["half"] == "selection"]
    missing = missing_cells(selection, ["selection", "selection-neurips"])
    if missing:
        raise ValueError(f"the selection half lacks {len(missing)} cells, e.g. {', '.join(missing[:5])}")
    return choose(selection)


def read_halves(path: Path) -> pd.DataFrame:
    """The halves' runs as :func:`write_halves` stored them."""
    frame = pd.read_csv(path, dtype={"dataset_id": str, "seed": str, "variant": str})
    return frame.assign(filled_in=frame["filled_in"].astype(bool))


def write_halves(runs: pd.DataFrame, path: Path) -> None:
    """Store the columns of :data:`HALVES_COLUMNS`, sorted, so that a rerun on the same results writes the same file."""
    from plots.stats import natural_key

    frame = runs.reindex(columns=HALVES_COLUMNS).copy()
    frame["_d"], frame["_s"] = frame["dataset_id"].map(natural_key), frame["seed"].astype(int)
    frame = frame.sort_values(["half", "method", "_d", "_s"]).drop(columns=["_d", "_s"])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.10g")


def _dataset_labels(runs: pd.DataFrame) -> dict[str, str]:
    names = runs.groupby("dataset_id")["dataset_name"].first()
    return {dataset: f"{name} ({dataset})" for dataset, name in names.items()}


def per_dataset_table(
    runs: pd.DataFrame, columns: dict[str, str], metric: str, datasets: Sequence[str], digits: int = 3
) -> pd.DataFrame:
    """``mean ± sd`` over seeds (sample sd) per dataset (rows) and run (``columns``: run -> label); ``–`` where a
    run is absent. The last rows are the mean of the per-dataset means: over every dataset for the runs that have
    them all and, where some run lacks datasets, over the datasets every run has."""
    from plots.tables import mean_sd_text

    frame = runs[runs["method"].isin(list(columns)) & runs["dataset_id"].isin(datasets)].copy()
    frame["value"] = pd.to_numeric(frame[metric], errors="coerce")
    grouped = frame.groupby(["dataset_id", "method"])["value"]
    mean, sd = grouped.mean().unstack().reindex(columns=list(columns)), grouped.std().unstack()
    mean = mean.reindex(list(datasets))
    labels = _dataset_labels(runs)
    rows = []
    for dataset in datasets:
        row = {"dataset": labels[dataset]}
        for method, label in columns.items():
            value = mean.loc[dataset, method]
            row[label] = "–" if np.isnan(value) else mean_sd_text(value, sd.loc[dataset, method], digits)
        rows.append(row)
    full = mean.notna().all(axis=0)
    row = {"dataset": f"mean over the {len(datasets)} datasets"}
    row.update({label: f"{mean[m].mean():.{digits + 1}f}" if full[m] else "–" for m, label in columns.items()})
    rows.append(row)
    common = mean.dropna(axis=0, how="any").index
    if len(common) < len(datasets):
        row = {"dataset": f"mean over the {len(common)} datasets every column has"}
        row.update({label: f"{mean.loc[common, m].mean():.{digits + 1}f}" for m, label in columns.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _rule_markdown(choice: Choice) -> str:
    from plots.tables import markdown_table

    def text(table: pd.DataFrame, shorts: Sequence[str]) -> pd.DataFrame:
        out = pd.DataFrame({"candidate": [f"`{c}`" for c in table["candidate"]]})
        out["pairs"] = ["–" if np.isnan(v) else str(int(v)) for v in table[f"pairs {shorts[0]}"]]
        for short in shorts:
            out[f"Δ {short} vs current"] = [f"{v:+.4f}" for v in table[f"Δ {short}"]]
            out[f"wins / losses ({short})"] = [
                "–" if np.isnan(w) else f"{int(w)} / {int(lo)}"
                for w, lo in zip(table[f"wins {short}"], table[f"losses {short}"], strict=True)
            ]
            out[f"p Holm ({short})"] = ["–" if np.isnan(v) else f"{v:.3g}" for v in table[f"p {short}"]]
        return out

    inn = text(choice.inn_table, ["AUROC", "ρ"])
    inn["passes the AUROC step"] = ["yes" if v else "no" for v in choice.inn_table["AUROC step"]]
    resnet = text(choice.tabresnet_table, ["AUROC"])
    return (
        "INN:\n\n" + markdown_table(inn) + "\nTabResNet (AUROC only):\n\n" + markdown_table(resnet)
        + f"\n**Chosen: INN `{choice.inn}`, TabResNet `{choice.tabresnet}`.** The rule's steps: {choice.reason}.\n"
    )  # fmt: skip


def report_methods(runs: pd.DataFrame, choice: Choice) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
    """The report half's runs of the eight methods, INN and TabResNet being the chosen candidates' grid runs (named
    ``inn`` and ``tabresnet``), on the (dataset, seed) pairs every compared method has; the compared methods; and
    the methods left out, with their number of runs.

    A method is compared when it has a finite test AUROC on every (dataset, seed) pair INN has: a report stage stopped
    early (``run_study.LAST_BASELINES`` run last) leaves out the method it did not finish rather than the datasets.
    """
    report = runs[runs["half"] == "report"]
    parts = [report[~report["base_method"].isin(["inn", "tabresnet"])]]
    for method, name in (("inn", choice.inn), ("tabresnet", choice.tabresnet)):
        rows = report[report["method"] == f"{method}-{name}"]
        parts.append(rows.assign(method=method, run_id=method, variant=np.nan))
    frame = pd.concat(parts, ignore_index=True)
    finite = frame[np.isfinite(pd.to_numeric(frame["test_auroc"], errors="coerce"))]
    pairs = {
        method: set(zip(part["dataset_id"], part["seed"], strict=True)) for method, part in finite.groupby("method")
    }
    inn = pairs.get("inn", set())
    methods = [m for m in ["inn", "tabresnet", *BASELINES] if inn and inn <= pairs.get(m, set())]
    left_out = {m: len(pairs.get(m, ())) for m in ["inn", "tabresnet", *BASELINES] if m not in methods}
    return common_seeds(frame[frame["method"].isin(methods)], methods), methods, left_out


def halves_tables(runs: pd.DataFrame) -> dict[str, str]:
    """The tables of docs/defaults.md's issue-24 section by name, rendered from the halves' runs alone
    (:data:`HALVES_CSV`), so that the doc can be checked against the file."""
    from plots.stats import friedman_nemenyi, natural_sorted, rank_matrix, wilcoxon_holm
    from plots.style import method_label
    from plots.tables import markdown_table

    tables: dict[str, str] = {}
    selection = runs[runs["half"] == "selection"]
    if len(selection):
        datasets = natural_sorted(selection["dataset_id"])
        inn = {f"inn-{name}": f"`{name}`" for name in CANDIDATES if f"inn-{name}" in set(selection["method"])}
        resnet = {f"tabresnet-{n}": f"`{n}`" for n in CANDIDATES if f"tabresnet-{n}" in set(selection["method"])}
        tables["defaults_selection_auroc"] = markdown_table(per_dataset_table(selection, inn, "test_auroc", datasets))
        tables["defaults_selection_rho"] = markdown_table(
            per_dataset_table(selection, inn, "sensitivity_rank_correlation", datasets)
        )
        tables["defaults_selection_tabresnet"] = markdown_table(
            per_dataset_table(selection, resnet, "test_auroc", datasets)
        )
        tables["defaults_rule"] = _rule_markdown(choose(selection))
    report = runs[runs["half"] == "report"]
    choice = choose(selection) if len(report) and len(selection) else None
    kept, methods, left_out = report_methods(runs, choice) if choice is not None else (report, [], {})
    if {"inn", "tabresnet", "catboost"} <= set(methods):  # the report's tables need at least these (the gaps)
        n_seeds = kept.groupby(["dataset_id", "method"]).size().min()
        datasets = complete_datasets(kept, methods, "test_auroc", n_seeds)
        labels = {m: method_label(m) for m in methods}
        table = per_dataset_table(kept, labels, "test_auroc", datasets)
        scores = (
            kept[kept["dataset_id"].isin(datasets)]
            .assign(value=lambda f: pd.to_numeric(f["test_auroc"]))
            .pivot_table(index="dataset_id", columns="method", values="value")
            .reindex(columns=methods)
        )
        ranks = rank_matrix(scores, True).mean()
        table = pd.concat(
            [table, pd.DataFrame([{"dataset": "average rank", **{labels[m]: f"{ranks[m]:.2f}" for m in methods}}])],
            ignore_index=True,
        )
        test = friedman_nemenyi(scores, True, ALPHA)
        cd = f"{test.critical_difference:.2f}" if test and test.critical_difference is not None else "n/a"
        friedman = f"Friedman p = {test.pvalue:.2g}" if test is not None else "no Friedman test (too few datasets)"
        seeds = ", ".join(natural_sorted(kept["seed"].unique()))
        absent = "".join(
            f" {method_label(m)} is left out: it has {n} of the {len(datasets) * n_seeds} runs."
            for m, n in left_out.items()
        )
        tables["defaults_report_auroc"] = (
            markdown_table(table)
            + f"\n{len(datasets)} datasets × {n_seeds} seeds (seeds {seeds}); mean ± sample sd over the seeds; INN = "
            f"`inn-{choice.inn}`, TabResNet = `tabresnet-{choice.tabresnet}`. {friedman}, Nemenyi "
            f"critical difference {cd}.{absent}\n"
        )
        pairs = wilcoxon_holm(scores, True, ALPHA)
        pairs = pairs[(pairs["method_a"] == "inn") | (pairs["method_b"] == "inn")]
        rows = []
        for _, pair in pairs.iterrows():
            flip = pair["method_b"] == "inn"
            rows.append(
                {
                    "INN against": labels[pair["method_a"] if flip else pair["method_b"]],
                    "INN wins / ties / losses (datasets)": (
                        f"{pair['wins_b']} / {pair['ties']} / {pair['wins_a']}"
                        if flip
                        else f"{pair['wins_a']} / {pair['ties']} / {pair['wins_b']}"
                    ),
                    "median difference (INN − other)": f"{(-1 if flip else 1) * pair['median_difference']:+.4f}",
                    f"p (Wilcoxon, Holm over the {len(methods) * (len(methods) - 1) // 2} pairs)": f"{pair['p_holm']:.2g}",
                }
            )
        tables["defaults_report_tests"] = markdown_table(pd.DataFrame(rows))
        gaps = gap_table(kept, [("inn", "tabresnet"), ("inn", "catboost")], datasets)
        tables["defaults_report_gaps"] = markdown_table(
            pd.DataFrame(
                {
                    "gap": ["INN − TabResNet", "INN − CatBoost"],
                    "mean over datasets": [f"{v:+.4f}" for v in gaps["mean gap"]],
                    "sd over seeds": [f"{v:.4f}" for v in gaps["std over seeds"]],
                    "min / max over seeds": [
                        f"{a:+.3f} / {b:+.3f}" for a, b in zip(gaps["min over seeds"], gaps["max over seeds"], strict=True)
                    ],
                    "datasets INN wins": [f"{w} of {n}" for w, n in zip(gaps["datasets a wins"], gaps["datasets"], strict=True)],
                    "paper (35 datasets, defaults)": [f"{PAPER_GAPS['tabresnet']:+.3f}", f"{PAPER_GAPS['catboost']:+.3f}"],
                }
            )
        )  # fmt: skip
        rho = {"inn": "INN ρ", "tabresnet": "TabResNet ρ"}
        tables["defaults_report_rho"] = markdown_table(
            per_dataset_table(kept, rho, "sensitivity_rank_correlation", datasets)
        )
    ran = runs[~runs["filled_in"] & runs["cell_seconds"].notna()]
    if len(ran):
        grouped = ran.groupby(["half", "method"], sort=False)["cell_seconds"]
        compute = grouped.agg(["size", "sum", "max"]).reset_index()
        compute = compute.sort_values(["half", "method"], key=lambda c: c.map(str), ascending=[False, True])
        total = ran.groupby("half")["cell_seconds"].sum()
        tables["defaults_compute"] = markdown_table(
            pd.DataFrame(
                {
                    "half": compute["half"],
                    "run": [f"`{m}`" for m in compute["method"]],
                    "cells": compute["size"],
                    "cell wall time (h)": [f"{v / 3600:.2f}" for v in compute["sum"]],
                    "longest cell (s)": [f"{v:.0f}" for v in compute["max"]],
                }
            )
        ) + "\n" + "; ".join(
            f"{name} half: {total[name] / 3600:.2f} h" for name in ("selection", "report") if name in total
        ) + f"; in all {total.sum() / 3600:.2f} h of cell wall time.\n"  # fmt: skip
    return tables


def update_doc(doc: Path, tables: dict[str, str]) -> list[str]:
    """Rewrite every ``<!-- table:NAME -->`` block of ``doc`` whose table ``tables`` has; returns their names."""
    from plots.tables import replace_table_blocks

    text, names = replace_table_blocks(doc.read_text(), tables)
    doc.write_text(text)
    return [name for name in names if name in tables]


def run_halves(results: Path, out: Path, figures: Path, doc: Path | None, cache: Path | None) -> dict[str, str]:
    """Issue 24's tables and figures: the halves' runs into ``figures/HALVES_CSV``, the tables rendered from that
    file (into ``out/halves.md`` and ``doc``'s blocks), the CD diagrams into ``figures``."""
    runs, checks = halves_runs(results, cache)
    write_halves(runs, figures / HALVES_CSV)
    stored = read_halves(figures / HALVES_CSV)
    tables = halves_tables(stored)
    selection = runs[runs["half"] == "selection"]
    copied: list[tuple[Path, str]] = []
    if len(selection):
        choice = choose(stored[stored["half"] == "selection"])
        inn = [f"inn-{name}" for name in CANDIDATES if f"inn-{name}" in set(selection["method"])]
        for key, metric in (("inn_auroc", "test_auroc"), ("inn_faithfulness", "sensitivity_rank_correlation")):
            n_seeds = len(half("selection")[1])
            datasets = complete_datasets(selection, inn, metric, n_seeds)
            analyse(selection, inn, metric, datasets, out / f"selection_{key}")
            copied.append((out / f"selection_{key}" / "cd_diagram.png", f"defaults_selection_{key}.png"))
        kept, methods, _ = report_methods(runs, choice)
        if len(methods) > 2:
            n_seeds = kept.groupby(["dataset_id", "method"]).size().min()
            datasets = complete_datasets(kept, methods, "test_auroc", n_seeds)
            analyse(kept, methods, "test_auroc", datasets, out / "report_point3")
            copied.append((out / "report_point3" / "cd_diagram.png", "defaults_report_point3.png"))
    for source, name in copied:
        if source.exists():
            shutil.copyfile(source, figures / name)
    text = "\n\n".join(
        ["# Defaults study, issue 24's halves (generated by studies/defaults_study/tabulate.py --halves)"]
        + ["## Cells filled in from `current` (premise checked)\n\n" + "\n".join(f"- {c}" for c in checks)]
        + [f"## {name}\n\n{body}" for name, body in tables.items()]
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "halves.md").write_text(text + "\n")
    if doc is not None:
        update_doc(doc, tables)
    return tables
