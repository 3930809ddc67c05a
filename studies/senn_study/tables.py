"""The tables of docs/senn.md, rendered from the CSVs in docs/figures (the doc's blocks must equal them: tested), and
the ``docs`` stage that rewrites them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from studies.senn_study.accuracy import lambda_figure
from studies.senn_study.common import _lambda_tick
from studies.senn_study.paper import paper_figure
from studies.senn_study.selection import _lambda_of, _suite


def _cell(mean: float, sd: float, digits: int = 3) -> str:
    from plots.tables import mean_sd_text

    return mean_sd_text(float(mean), float(sd), digits)


def _pivot_cells(summary: pd.DataFrame, row: str, column: str, value: str, digits: int = 3) -> pd.DataFrame:
    """A table with one ``mean ± sd`` cell of ``value`` per ``row`` and ``column`` (in first-seen order)."""
    cells = summary.assign(_text=[_cell(m, s, digits) for m, s in zip(summary[f"{value}_mean"],
                                                                       summary[f"{value}_sd"], strict=True)])  # fmt: skip
    table = cells.pivot(index=row, columns=column, values="_text")
    return table.loc[list(dict.fromkeys(cells[row])), list(dict.fromkeys(cells[column]))]


def doc_tables(figures: Path) -> dict[str, str]:
    """The Markdown tables of docs/senn.md by name, each rendered from its CSV in ``figures`` (missing CSV: none)."""
    from plots.tables import markdown_table

    tables: dict[str, str] = {}
    paper = figures / "senn_paper.csv"
    if paper.exists():
        summary = pd.read_csv(paper)
        main = summary[summary["cell"] == "paper"]
        rows = pd.DataFrame({
            "λ": [_lambda_tick(value) for value in main["robust_reg"]],
            "seeds": main["seeds"],
            "test accuracy": [_cell(m, s) for m, s in zip(main["test_accuracy_mean"], main["test_accuracy_sd"], strict=True)],
            "test AUROC": [_cell(m, s) for m, s in zip(main["test_auroc_mean"], main["test_auroc_sd"], strict=True)],
            "SENN's Lipschitz estimate of θ": [_cell(m, s) for m, s in zip(main["test_relevance_lipschitz_mean"],
                                                                           main["test_relevance_lipschitz_sd"], strict=True)],
            "Lipschitz of θ·(x − m) (discrete)": [_cell(m, s) for m, s in zip(main["test_lipschitz_discrete_mean"],
                                                                              main["test_lipschitz_discrete_sd"], strict=True)],
            "removal faithfulness": [_cell(m, s) for m, s in zip(main["test_removal_faithfulness_mean"],
                                                                 main["test_removal_faithfulness_sd"], strict=True)],
        })  # fmt: skip
        tables["senn_paper"] = markdown_table(rows)
        runs = pd.read_csv(figures / "senn_paper_runs.csv")
        base = runs[runs["robust_reg"] == 0].set_index(["cell", "seed"])["test_accuracy"]
        lines = []
        for cell, part in runs.groupby("cell", sort=False):
            line = {"cell": cell, "what differs from the paper's setting": part["change"].iloc[0],
                    "seeds": part["seed"].nunique()}  # fmt: skip
            for value in (0.1, 1.0):
                at = part[part["robust_reg"] == value].set_index("seed")["test_accuracy"]
                drop = 100 * (at - base.loc[cell].reindex(at.index))
                line[f"accuracy change λ 0 → {_lambda_tick(value)} (points)"] = f"{drop.mean():+.1f} ± {drop.std():.1f}"
            theta = summary[(summary["cell"] == cell)].set_index("robust_reg")["test_relevance_lipschitz_mean"]
            line["θ's Lipschitz estimate, λ = 0 → 1"] = f"{theta.loc[0.0]:.3g} → {theta.loc[1.0]:.3g}"
            lines.append(line)
        tables["senn_paper_cells"] = markdown_table(pd.DataFrame(lines))
    select = figures / "senn_select.csv"
    if select.exists():
        summary = pd.read_csv(select)
        summary = summary.assign(λ=[f"λ = {_lambda_tick(_lambda_of(model))}" for model in summary["model"]])
        for value, name, digits in (("spearman", "senn_select", 2), ("test_auroc", "senn_select_auroc", 3)):
            cells = _pivot_cells(summary, "dataset_name", "λ", value, digits)
            table = pd.DataFrame({"dataset": cells.index, "seeds": summary.groupby("dataset_name", sort=False)[
                "seeds"].min().loc[cells.index].to_numpy()})  # fmt: skip
            for column in cells.columns:
                table[column] = cells[column].to_numpy()
            means = summary.groupby("λ", sort=False)[f"{value}_mean"].mean()
            total = {"dataset": "mean of the datasets' means", "seeds": ""}
            total.update({column: f"{means[column]:.{digits + 1}f}" for column in cells.columns})
            tables[name] = markdown_table(pd.concat([table, pd.DataFrame([total])], ignore_index=True))
    report = figures / "senn_report.csv"
    if report.exists():
        summary = pd.read_csv(report)
        names = {model: ("INN" if model == "inn" else f"SENN λ = {_lambda_tick(_lambda_of(model))}")
                 for model in summary["model"]}  # fmt: skip
        summary = summary.assign(model=summary["model"].map(names))
        table = pd.DataFrame({"dataset": list(dict.fromkeys(summary["dataset_name"]))})
        for value, label, digits in (("test_auroc", "AUROC", 3), ("test_accuracy", "accuracy", 3),
                                     ("spearman", "ρ", 2)):  # fmt: skip
            cells = _pivot_cells(summary, "dataset_name", "model", value, digits)
            for model in cells.columns:
                table[f"{label} {model}"] = cells.loc[table["dataset"], model].to_numpy()
        seeds = summary.groupby("dataset_name", sort=False)["seeds"].min()
        table.insert(1, "seeds", seeds.loc[table["dataset"]].to_numpy())
        means = {"dataset": "mean of the datasets' means", "seeds": ""}
        for value, label, digits in (("test_auroc", "AUROC", 3), ("test_accuracy", "accuracy", 3),
                                     ("spearman", "ρ", 2)):  # fmt: skip
            for model, part in summary.groupby("model", sort=False):
                means[f"{label} {model}"] = f"{part[f'{value}_mean'].mean():.{digits}f}"
        tables["senn_report"] = markdown_table(pd.concat([table, pd.DataFrame([means])], ignore_index=True))
    for name in ("senn_disenn_selection", "senn_disenn"):
        path = figures / f"{name}.csv"
        if not path.exists():
            continue
        summary = pd.read_csv(path)
        columns = {"test_accuracy": ("test accuracy", 3), "active_latents": ("active latents (of 5)", 1),
                   "visible_latents": ("visibly traversed", 1), "active_visible_latents": ("both", 1),
                   "kl_total": ("KL (nats)", 2), "largest_change": ("largest pixel change (of 16)", 1)}  # fmt: skip
        table = pd.DataFrame({"setting": summary["setting"], "seeds": summary["seeds"]})
        for column, (label, digits) in columns.items():
            table[label] = [_cell(m, s, digits) for m, s in zip(summary[f"{column}_mean"], summary[f"{column}_sd"],
                                                                strict=True)]  # fmt: skip
        tables[name] = markdown_table(table)
    sensitivity = figures / "senn_sensitivity.csv"
    if sensitivity.exists():
        summary = pd.read_csv(sensitivity)
        rho = _pivot_cells(summary, "model", "dataset_name", "spearman", 2)
        auroc = _pivot_cells(summary, "model", "dataset_name", "test_auroc")
        table = pd.DataFrame({"model": [("INN" if m == "inn" else f"SENN λ = {_lambda_tick(_lambda_of(m))}")
                                        for m in rho.index]})  # fmt: skip
        for name in rho.columns:
            table[f"ρ {name}"] = rho[name].to_numpy()
        for name in auroc.columns:
            table[f"AUROC {name}"] = auroc[name].to_numpy()
        tables["senn_sensitivity"] = markdown_table(table)
    dev = figures / "senn_dev.csv"
    if dev.exists():
        summary = pd.read_csv(dev)
        summary = summary[summary["dataset_name"].notna()]
        table = pd.DataFrame({"dataset": [f"{name} ({key})" for name, key in
                                          dict.fromkeys(zip(summary["dataset_name"], summary["dataset"], strict=True))]})  # fmt: skip
        half = {**{key: "selection" for key in _suite("selection")["dataset_ids"]},
                **{key: "report" for key in _suite("report")["dataset_ids"]}}  # fmt: skip
        table["half"] = [half.get(int(key), "–") for key in dict.fromkeys(summary["dataset"])]
        means = {}
        for model, label in (("inn", "INN"), ("senn", "SENN")):
            part = summary[summary["model"] == model]
            table[f"{label} test AUROC"] = [_cell(m, s) for m, s in zip(part["test_auroc_mean"], part["test_auroc_sd"],
                                                                        strict=True)]  # fmt: skip
            means[label] = part["test_auroc_mean"].to_numpy()
        table["SENN − INN"] = [f"{value:+.3f}" for value in means["SENN"] - means["INN"]]
        total = {"dataset": "mean", "half": "", "INN test AUROC": f"{means['INN'].mean():.3f}",
                 "SENN test AUROC": f"{means['SENN'].mean():.3f}",
                 "SENN − INN": f"{(means['SENN'] - means['INN']).mean():+.3f}"}  # fmt: skip
        tables["senn_dev"] = markdown_table(pd.concat([table, pd.DataFrame([total])], ignore_index=True))
    lambdas = figures / "senn_lambda.csv"
    if lambdas.exists():
        summary = pd.read_csv(lambdas)
        metrics = {"test_accuracy": "test accuracy", "test_auroc": "test AUROC",
                   "test_lipschitz_discrete": "Lipschitz of θ·(h − h(m)) (discrete)",
                   "test_lipschitz_continuous": "(continuous)", "test_removal_faithfulness": "removal faithfulness"}  # fmt: skip
        for name, datasets, extra in (("senn_lambda_compas", ("compas_recidivism", "compas_score"), {}),
                                      ("senn_lambda_digits", ("digits",),
                                       {"test_relevance_lipschitz": "Lipschitz of θ per ‖Δh‖ (SENN's)",
                                        "test_relevance_lipschitz_input": "θ per ‖Δx‖"})):  # fmt: skip
            part = summary[summary["dataset"].isin(datasets)]
            table = pd.DataFrame({
                "task": part["dataset"].str.replace("compas_", ""),
                "model": part["model"].map(lambda model: "INN" if model == "inn" else "SENN"),
                "λ": [("–" if np.isnan(value) else _lambda_tick(value)) for value in part["robust_reg"]],
                "seeds": part["seeds"],
            })  # fmt: skip
            for column, label in {**metrics, **extra}.items():
                table[label] = [_cell(m, s) for m, s in zip(part[f"{column}_mean"], part[f"{column}_sd"], strict=True)]
            tables[name] = markdown_table(table)
    return tables


def update_doc(doc: Path, figures: Path) -> list[str]:
    """Rewrite every ``<!-- table:NAME -->`` block of ``doc`` from :func:`doc_tables`; returns the names rewritten.

    Raises:
        KeyError: a block names a table without its CSV.
    """
    from plots.tables import replace_table_blocks

    tables = doc_tables(figures)
    text, names = replace_table_blocks(doc.read_text(), tables)
    missing = [name for name in names if name not in tables]
    if missing:
        raise KeyError(missing[0])
    doc.write_text(text)
    return names


def docs_study(args: argparse.Namespace) -> None:
    """Rewrite docs/senn.md's tables from ``--out``'s CSVs (and redraw the λ figures from their summaries)."""
    lambda_figure(pd.read_csv(args.out / "senn_lambda.csv"), args.out / "senn_lambda.png")
    if (args.out / "senn_paper.csv").exists():
        paper_figure(pd.read_csv(args.out / "senn_paper.csv"), args.out / "senn_paper.png")
    print("rewrote:", ", ".join(update_doc(args.doc, args.out)))
