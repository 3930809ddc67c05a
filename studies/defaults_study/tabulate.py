"""Tables and figures of the defaults study (issue 15, points 2 and 3) from its results trees.

Reads ``<results>/grid`` (the candidates, ``run_study.py``) and ``<results>/point3`` (the baselines), and writes
into ``--out``: one folder per analysis with the project's comparison tables and figures (``plots.stats``,
``plots.tables``, ``plots.figures``: per-dataset means, average ranks, Friedman + Nemenyi CD diagram,
Wilcoxon–Holm), and ``summary.md`` with the study's own tables (the candidates side by side, the per-seed paired
tests on the datasets where candidates differ, credit-g's ``checking_status``, the INN − TabResNet gaps, times).
The CD diagrams are also copied to ``--figures`` as ``defaults_<analysis>.png``::

    python -m studies.defaults_study.tabulate --results /work/results/defaults_study \
        --out /work/results/defaults_study/report --figures docs/figures --chosen current

Cells the study did not run because they repeat ``current`` bit for bit (``run_study.CATEGORICAL_ONLY`` on the
datasets without encoded categorical columns) are filled in from ``current`` after checking the premise on the
data of every such dataset and seed (the same input matrix with every column standardised; L1 column weights of
exactly 1), and every real run of such a cell is checked against ``current`` (the same test AUROC, bit for bit).
Only datasets on which every compared configuration has every seed enter a rank analysis.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.results import load_runs
from studies.defaults_study.run_study import (
    BASELINES,
    CANDIDATES,
    CATEGORICAL_DATASETS,
    CATEGORICAL_ONLY,
    INN_ONLY,
)

#: The paper's mean AUROC gaps with default hyperparameters on its 35 datasets (issue 15).
PAPER_GAPS = {"tabresnet": -0.003, "catboost": -0.010}
METRICS = {"test_auroc": "test AUROC", "sensitivity_rank_correlation": "ρ(explanation, sensitivity)"}


# ----------------------------------------------------------------------------------------------------------------
# Reading the grid


def check_identities(runs: pd.DataFrame, cache: Path | None) -> list[str]:
    """Check the premise of every cell filled in from ``current``; returns what was checked, one line each.

    For every dataset without encoded categorical columns and every seed with a ``current`` run: the split with
    every input column standardised is the default split, bit for bit, and every column's training mean is 0 and std
    1 within ``models.estimators.STD_TOLERANCE`` (so ``l1std``'s L1 weights are exactly 1 and ``product`` rescales
    nothing). Real runs of these candidates on such a dataset must have ``current``'s test AUROC exactly.

    Raises:
        ValueError: a premise does not hold (then the cells must be run, not filled in).
    """
    from data import load_dataset, prepare_split
    from models.estimators import STD_TOLERANCE

    lines = []
    current = runs[runs["variant"] == "current"]
    for dataset_id, part in current.groupby("dataset_id"):
        if int(dataset_id) in CATEGORICAL_DATASETS:
            continue
        raw = load_dataset(dataset_id=int(dataset_id), openml_cache_dir=cache)
        seeds = sorted({int(seed) for seed in part["seed"]})
        for seed in seeds:
            plain = prepare_split(raw, seed=seed)
            if any(plain.categorical_features):
                raise ValueError(f"dataset {dataset_id} has categorical features: it must be run, not filled in")
            scaled = prepare_split(raw, seed=seed, scale_all_inputs=True)
            if not (np.array_equal(plain.X_train, scaled.X_train) and np.array_equal(plain.X_test, scaled.X_test)):
                raise ValueError(f"--scale_inputs all changes the inputs of dataset {dataset_id}, seed {seed}")
            values = np.asarray(plain.X_train, dtype=np.float64)
            std, mean = values.std(axis=0), values.mean(axis=0)
            off = np.abs(std - 1.0)[std > 0]
            if off.size and off.max() > STD_TOLERANCE:
                raise ValueError(f"dataset {dataset_id}, seed {seed}: a column's std is {1 + off.max():.6g}, not 1")
            if np.abs(mean).max() > STD_TOLERANCE:
                raise ValueError(f"dataset {dataset_id}, seed {seed}: a column's mean is {np.abs(mean).max():.3g}")
        lines.append(
            f"{dataset_id}: seeds {seeds}: same inputs with --scale_inputs all; every column's mean is 0 and std 1"
        )
    for name in CATEGORICAL_ONLY:
        for method in ("inn", "tabresnet"):
            real = runs[
                (runs["method"] == f"{method}-{name}") & ~runs["dataset_id"].astype(int).isin(CATEGORICAL_DATASETS)
            ]
            for _, row in real.iterrows():
                match = current[
                    (current["base_method"] == method)
                    & (current["dataset_id"] == row["dataset_id"])
                    & (current["seed"] == row["seed"])
                ]
                if match.empty:
                    continue
                same = float(match["test_auroc"].iloc[0]) == float(row["test_auroc"])
                if not same:
                    raise ValueError(f"{row['method']} on {row['dataset_id']} seed {row['seed']} differs from current")
                lines.append(
                    f"{row['method']} {row['dataset_id']} seed {row['seed']}: run, test AUROC equal to current"
                )
    return lines


def fill_in(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` plus the cells of :data:`CATEGORICAL_ONLY` candidates that repeat ``current`` (copied from it)."""
    current = runs[runs["variant"] == "current"]
    copies = []
    for name in CATEGORICAL_ONLY:
        for method in ("inn",) if name in INN_ONLY else ("inn", "tabresnet"):
            rows = current[
                (current["base_method"] == method) & ~current["dataset_id"].astype(int).isin(CATEGORICAL_DATASETS)
            ]
            have = runs[runs["method"] == f"{method}-{name}"][["dataset_id", "seed"]].apply(tuple, axis=1).tolist()
            rows = rows[~rows[["dataset_id", "seed"]].apply(tuple, axis=1).isin(have)]
            copies.append(
                rows.assign(method=f"{method}-{name}", run_id=f"{method}-{name}", variant=name, filled_in=True)
            )
    return pd.concat([runs.assign(filled_in=False), *copies], ignore_index=True)


def zero_reference_correlation(report_path: str | Path) -> float:
    """Spearman's ρ between the run's measured sensitivity and INN's explanation with the ZERO reference.

    Computed from the run's files without the model: ``explanations.npz`` holds the mean-reference values
    ``W_j(x)·(x_j − m_j)`` summed per feature, the generated weights ``W(x)`` and the reference ``m``, so the
    zero-reference values are ``values_f + Σ_{j∈f} W_j(x)·m_j``.
    """
    from experiments.results import read_explanations, read_report
    from xai.sensitivity import compare_with_explanation

    report = read_report(Path(report_path))
    stored = read_explanations(Path(report_path).with_name("explanations.npz"))
    weights, reference = stored["extra_weights"], np.asarray(stored["reference"], dtype=np.float64)
    mapping, values = np.asarray(stored["input_to_feature"]), np.asarray(stored["values"], dtype=np.float64)
    shift = weights[:, :-1, :].astype(np.float64) * reference[None, :, None]  # (N, D, C)
    zero = values.copy()
    for feature in range(values.shape[1]):
        zero[:, feature, :] += shift[:, mapping == feature, :].sum(axis=1)
    importance = np.abs(zero).mean(axis=0).sum(axis=-1)
    names = list(report["feature_names"])
    sensitivity = np.array([report["sensitivity_audit"]["sensitivity"][name] for name in names])
    return compare_with_explanation(sensitivity, importance, names).rank_correlation


def with_zero_reference(runs: pd.DataFrame, source: str = "inn-current", name: str = "inn-zeroref") -> pd.DataFrame:
    """``runs`` plus ``source``'s runs as ``name``: the same models and AUROC, ρ with the zero reference."""
    rows = runs[(runs["method"] == source) & ~runs["filled_in"]].copy()
    rows["sensitivity_rank_correlation"] = [zero_reference_correlation(path) for path in rows["path"]]
    rows = rows.assign(method=name, run_id=name, variant=name.partition("-")[2])
    return pd.concat([runs, rows], ignore_index=True)


def complete_datasets(runs: pd.DataFrame, methods: Sequence[str], metric: str, n_seeds: int) -> list[str]:
    """Datasets on which every method of ``methods`` has ``n_seeds`` runs with a finite ``metric``."""
    frame = runs[runs["method"].isin(methods)]
    frame = frame[pd.to_numeric(frame[metric], errors="coerce").notna()]
    counts = frame.groupby(["dataset_id", "method"]).size().unstack()
    counts = counts.reindex(columns=list(methods))
    ok = counts.notna().all(axis=1) & (counts.fillna(0) >= n_seeds).all(axis=1)
    from plots.stats import natural_sorted

    return natural_sorted(counts.index[ok])


# ----------------------------------------------------------------------------------------------------------------
# Analyses with the project's comparison code


def analyse(runs: pd.DataFrame, methods: Sequence[str], metric: str, datasets: Sequence[str], out: Path):
    """The project's comparison (tables and figures) of ``methods`` on ``metric`` over ``datasets``, into ``out``."""
    from experiments.results import atomic_write_bytes, higher_is_better
    from plots import figures, stats, tables

    frame = runs[runs["method"].isin(methods) & runs["dataset_id"].isin(datasets)]
    cover = stats.coverage(frame, list(methods), metric)
    analysis = stats.analyse(frame, list(methods), metric, cover, higher_is_better(metric))
    out.mkdir(parents=True, exist_ok=True)
    for name, content in tables.analysis_texts(analysis, metric.removeprefix("test_") + "_table").items():
        atomic_write_bytes(out / name, content.encode())
    files = figures.render_analysis(analysis, out)
    notes = stats.analysis_notes(analysis)
    atomic_write_bytes(out / "notes.txt", ("\n".join(notes) + "\n").encode())
    return analysis, files


def ranks_markdown(analysis, digits: int = 3) -> str:
    """Average ranks (and mean score) of an analysis, with the Friedman p-value and the critical difference."""
    from plots.style import method_label

    table = analysis.mean_ranks[["method", "average_rank", "n_wins", "mean_score"]].copy()
    table["method"] = [method_label(m) for m in table["method"]]
    lines = [markdown(table, digits)]
    test = analysis.test
    if test is not None:
        cd = f"{test.critical_difference:.2f}" if test.critical_difference is not None else "n/a"
        lines.append(
            f"\nFriedman p = {test.pvalue:.3g} over {test.n_datasets} datasets; Nemenyi critical difference {cd}."
        )
    return "\n".join(lines)


def wilcoxon_markdown(analysis, digits: int = 3) -> str:
    table = analysis.wilcoxon[["label_a", "label_b", "wins_a", "ties", "wins_b", "median_difference", "p_holm"]]
    return markdown(table, digits)


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join(" --- " for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def means_markdown(runs: pd.DataFrame, methods: Sequence[str], metric: str, datasets: Sequence[str]) -> str:
    """Mean ± std over seeds per dataset (rows) and configuration (columns); the best mean per row in bold."""
    from plots.style import method_label

    frame = runs[runs["method"].isin(methods) & runs["dataset_id"].isin(datasets)].copy()
    frame["value"] = pd.to_numeric(frame[metric], errors="coerce")
    grouped = frame.groupby(["dataset_id", "method"])["value"]
    mean, std = grouped.mean().unstack(), grouped.std().unstack()
    names = frame.groupby("dataset_id")["dataset_name"].first()
    header = "| dataset | " + " | ".join(method_label(m) for m in methods) + " |"
    lines = [header, "|" + "|".join(" --- " for _ in range(len(methods) + 1)) + "|"]
    for dataset in datasets:
        best = mean.loc[dataset, list(methods)].max()
        cells = []
        for method in methods:
            value = mean.loc[dataset, method]
            text = f"{value:.3f} ± {std.loc[dataset, method]:.3f}"
            cells.append(f"**{text}**" if np.isclose(value, best, rtol=0, atol=5e-4) else text)
        lines.append(f"| {names[dataset]} ({dataset}) | " + " | ".join(cells) + " |")
    overall = mean.loc[list(datasets), list(methods)].mean()
    lines.append("| **mean** | " + " | ".join(f"{overall[m]:.4f}" for m in methods) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# The study's own tables


def paired_seed_tests(runs: pd.DataFrame, reference: str, methods: Sequence[str], metric: str, datasets: Sequence[str]):
    """Each method against ``reference`` over (dataset, seed) pairs: mean difference, wins, Wilcoxon p (Holm).

    The project's tests pair datasets (means over seeds); where candidates differ on a handful of datasets only, the
    seeds are the pairs that have power, so this table pairs runs of the same dataset and seed.
    """
    from scipy.stats import wilcoxon
    from statsmodels.stats.multitest import multipletests

    frame = runs[runs["dataset_id"].isin(datasets)].copy()
    frame["value"] = pd.to_numeric(frame[metric], errors="coerce")
    wide = frame.pivot_table(index=["dataset_id", "seed"], columns="method", values="value")
    rows = []
    for method in methods:
        if reference not in wide or method not in wide:
            continue
        pair = wide[[reference, method]].dropna()
        difference = (pair[method] - pair[reference]).to_numpy()
        p = 1.0 if np.all(difference == 0) else float(wilcoxon(difference).pvalue)
        rows.append(
            {
                "configuration": method,
                "against": reference,
                "pairs": len(difference),
                "mean_difference": float(difference.mean()) if len(difference) else np.nan,
                "wins": int((difference > 0).sum()),
                "losses": int((difference < 0).sum()),
                "p": p,
            }
        )
    table = pd.DataFrame(rows)
    if len(table):
        table["p_holm"] = multipletests(table["p"], method="holm")[1]
    return table


def feature_shares(runs: pd.DataFrame, methods: Sequence[str], dataset: str, feature: str) -> pd.DataFrame:
    """Mean over seeds of ``feature``'s explanation and sensitivity shares, its rank by each, and ρ, per method."""
    rows = []
    for method in methods:
        part = runs[(runs["method"] == method) & (runs["dataset_id"] == dataset)]
        if part.empty:
            continue
        sens = part[[c for c in part.columns if c.startswith("sensitivity_audit.sensitivity_share.")]]
        expl = part[[c for c in part.columns if c.startswith("sensitivity_audit.explanation_share.")]]
        column = f"sensitivity_audit.sensitivity_share.{feature}"
        sens_rank = sens.rank(axis=1, ascending=False)[column].mean()
        expl_rank = expl.rank(axis=1, ascending=False)[f"sensitivity_audit.explanation_share.{feature}"].mean()
        rows.append(
            {
                "configuration": method,
                "seeds": len(part),
                "test_auroc": part["test_auroc"].mean(),
                "rho": part["sensitivity_rank_correlation"].mean(),
                f"{feature} sensitivity share": part[column].mean(),
                f"{feature} explanation share": part[f"sensitivity_audit.explanation_share.{feature}"].mean(),
                "its rank by sensitivity": sens_rank,
                "its rank by explanation": expl_rank,
            }
        )
    return pd.DataFrame(rows)


def gap_table(runs: pd.DataFrame, pairs: Sequence[tuple[str, str]], datasets: Sequence[str]) -> pd.DataFrame:
    """``a − b`` of test AUROC: mean over datasets of the per-dataset mean difference, and its spread over seeds.

    For every seed, the difference averaged over the datasets; the table gives the mean of those per-seed values,
    their std, min and max (the spread of the gap that comes from the seeds), and the wins of ``a`` over datasets.
    """
    frame = runs[runs["dataset_id"].isin(datasets)].copy()
    frame["value"] = pd.to_numeric(frame["test_auroc"], errors="coerce")
    wide = frame.pivot_table(index=["dataset_id", "seed"], columns="method", values="value")
    rows = []
    for a, b in pairs:
        difference = (wide[a] - wide[b]).dropna()
        per_seed = difference.groupby(level="seed").mean()
        per_dataset = difference.groupby(level="dataset_id").mean()
        rows.append(
            {
                "gap": f"{a} − {b}",
                "datasets": per_dataset.size,
                "seeds": per_seed.size,
                "mean gap": per_dataset.mean(),
                "std over seeds": per_seed.std(),
                "min over seeds": per_seed.min(),
                "max over seeds": per_seed.max(),
                "datasets a wins": int((per_dataset > 0).sum()),
                "median per-dataset gap": per_dataset.median(),
            }
        )
    return pd.DataFrame(rows)


def time_table(runs: pd.DataFrame, methods: Sequence[str], datasets: Sequence[str]) -> pd.DataFrame:
    """Training time per configuration: the mean per run over ``datasets`` and the total over them (seconds)."""
    frame = runs[runs["method"].isin(methods) & runs["dataset_id"].isin(datasets) & ~runs["filled_in"]]
    grouped = frame.groupby("method")["train_time"]
    table = pd.DataFrame({"runs": grouped.size(), "mean_train_s": grouped.mean(), "total_train_s": grouped.sum()})
    return table.reindex(list(methods)).reset_index()


def cell_seconds(results: Path) -> pd.DataFrame:
    """Wall time of every cell of a sweep results tree, from its logs (``# exit code C after S s``)."""
    rows = []
    for log in (results / ".sweep" / "logs").glob("*/*/*.out"):
        match = re.search(r"# exit code (-?\d+) after ([\d.]+) s", log.read_text()[-300:])
        if match:
            rows.append(
                {
                    "method": log.parts[-3],
                    "dataset_id": log.parts[-2],
                    "seed": log.stem,
                    "seconds": float(match.group(2)),
                }
            )
    return pd.DataFrame(rows, columns=["method", "dataset_id", "seed", "seconds"])


# ----------------------------------------------------------------------------------------------------------------
# The report


def run(results: Path, out: Path, figures: Path | None, chosen: str, cache: Path | None, n_seeds: int) -> str:
    """Every analysis of the study; returns ``summary.md``'s text (also written into ``out``)."""
    loaded = load_runs(results / "grid")
    checks = check_identities(loaded.runs, cache)
    runs = with_zero_reference(fill_in(loaded.runs))
    sections = ["# Defaults study: tables (generated by studies/defaults_study/tabulate.py)\n"]
    sections.append("## Cells filled in from `current` (premise checked)\n\n" + "\n".join(f"- {c}" for c in checks))
    copied: list[tuple[Path, str]] = []

    inn = [f"inn-{name}" for name in CANDIDATES]
    tabresnet = [f"tabresnet-{name}" for name in CANDIDATES if name not in INN_ONLY]
    hundred = [m for m in inn if not m.endswith("neurips")]
    blocks = [
        ("inn_auroc", inn, "test_auroc"),
        ("inn_faithfulness", inn, "sensitivity_rank_correlation"),
        ("tabresnet_auroc", tabresnet, "test_auroc"),
        ("inn100_auroc", hundred, "test_auroc"),
        ("inn100_faithfulness", hundred, "sensitivity_rank_correlation"),
        ("reference_faithfulness", ["inn-current", "inn-zeroref", "inn-l1std"], "sensitivity_rank_correlation"),
    ]
    for key, methods, metric in blocks:
        present = [m for m in methods if m in set(runs["method"])]
        datasets = complete_datasets(runs, present, metric, n_seeds)
        if len(present) < 2 or not datasets:
            sections.append(f"## {key}\n\nnot enough runs yet ({len(datasets)} complete datasets)")
            continue
        analysis, files = analyse(runs, present, metric, datasets, out / key)
        sections.append(
            f"## {key}: {METRICS[metric]}, {len(datasets)} datasets × {n_seeds} seeds\n\n"
            f"Datasets: {', '.join(datasets)}\n\n"
            + means_markdown(runs, present, metric, datasets)
            + "\n\nAverage ranks:\n\n"
            + ranks_markdown(analysis)
            + "\n\nWilcoxon–Holm (pairs of datasets):\n\n"
            + wilcoxon_markdown(analysis)
        )
        cd = out / key / "cd_diagram.png"
        if cd.exists():
            copied.append((cd, f"defaults_{key}.png"))

    # Where the scaling candidates differ from current: the datasets with encoded categorical columns, per seed.
    categorical = [d for d in map(str, CATEGORICAL_DATASETS) if d in set(runs["dataset_id"])]
    for metric in METRICS:
        for reference, others in (("inn-current", inn[1:]), ("tabresnet-current", tabresnet[1:])):
            datasets = [d for d in categorical if d in complete_datasets(runs, [reference], metric, n_seeds)]
            table = paired_seed_tests(
                runs, reference, [m for m in others if m in set(runs["method"])], metric, datasets
            )
            sections.append(
                f"## Paired over (dataset, seed) on the datasets with categorical columns ({', '.join(datasets)}): "
                f"{METRICS[metric]}, against {reference}\n\n" + markdown(table, 4)
            )
    # credit-g's checking_status, the example.
    shares = feature_shares(runs, inn, "31", "checking_status")
    sections.append("## credit-g (31): `checking_status`, mean over seeds\n\n" + markdown(shares, 3))

    # INN − TabResNet per candidate (TabResNet's run of the same configuration).
    pairs = []
    for name in CANDIDATES:
        twin = "current" if name in INN_ONLY else name
        pairs.append((f"inn-{name}", f"tabresnet-{twin}"))
    pairs = [(a, b) for a, b in pairs if {a, b} <= set(runs["method"])]
    datasets = complete_datasets(runs, sorted({m for p in pairs for m in p}), "test_auroc", n_seeds)
    sections.append(
        f"## INN − TabResNet per candidate ({len(datasets)} datasets)\n\n"
        + markdown(gap_table(runs, pairs, datasets), 4)
    )
    datasets = complete_datasets(runs, inn + tabresnet, "test_auroc", n_seeds)
    sections.append(
        f"## Training time per run ({len(datasets)} datasets where every configuration ran)\n\n"
        + markdown(time_table(runs, inn + tabresnet, datasets), 1)
    )
    seconds = cell_seconds(results / "grid")
    if len(seconds):
        sections.append(
            f"## Compute of the grid\n\n{len(seconds)} cells, {seconds['seconds'].sum() / 3600:.2f} h of cell wall time "
            f"(two cells at a time): "
            + ", ".join(f"{m} {s / 3600:.2f} h" for m, s in seconds.groupby("method")["seconds"].sum().items())
        )

    if (results / "point3").is_dir():
        sections.append(point3(results, runs, chosen, out / "point3", n_seeds, copied))

    text = "\n\n".join(sections) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        for source, name in copied:
            shutil.copyfile(source, figures / name)
    return text


def common_seeds(runs: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """The runs of the (dataset, seed) pairs that every method of ``methods`` has: every method is compared on the
    same seeds (the grid may hold more seeds of INN and TabResNet than the baselines have)."""
    finite = runs[runs["method"].isin(methods) & np.isfinite(runs["test_auroc"].astype(float))]
    counts = finite.groupby(["dataset_id", "seed"])["method"].nunique()
    keep = set(counts[counts == len(methods)].index)
    return runs[[key in keep for key in zip(runs["dataset_id"], runs["seed"], strict=True)]]


def point3(results: Path, grid: pd.DataFrame, chosen: str, out: Path, n_seeds: int, copied: list) -> str:
    """Point 3: the eight methods on the dev datasets; INN and TabResNet are the chosen candidate's runs."""
    baselines = load_runs(results / "point3").runs.assign(filled_in=False)
    twin = "current" if chosen in INN_ONLY else chosen
    neural = []
    for method, variant in (("inn", chosen), ("tabresnet", twin)):
        rows = grid[grid["method"] == f"{method}-{variant}"]
        neural.append(rows.assign(method=method, run_id=method, variant=None))
    runs = pd.concat([*neural, baselines], ignore_index=True)
    methods = ["inn", "tabresnet", *BASELINES]
    runs = common_seeds(runs, methods)
    datasets = complete_datasets(runs, methods, "test_auroc", n_seeds)
    analysis, _ = analyse(runs, methods, "test_auroc", datasets, out)
    cd = out / "cd_diagram.png"
    if cd.exists():
        copied.append((cd, "defaults_point3.png"))
    gaps = gap_table(runs, [("inn", "tabresnet"), ("inn", "catboost")], datasets)
    gaps["paper (35 datasets, defaults)"] = [PAPER_GAPS["tabresnet"], PAPER_GAPS["catboost"]]
    return (
        f"## Point 3: the methods on the dev datasets ({len(datasets)} datasets × {n_seeds} seeds; INN and TabResNet = "
        f"grid runs of `{chosen}`/`{twin}`)\n\n"
        + means_markdown(runs, methods, "test_auroc", datasets)
        + "\n\nAverage ranks:\n\n"
        + ranks_markdown(analysis)
        + "\n\nWilcoxon–Holm:\n\n"
        + wilcoxon_markdown(analysis)
        + "\n\nGaps:\n\n"
        + markdown(gaps, 4)
    )


def main(argv: Sequence[str] | None = None) -> int:
    from studies.defaults_study.halves import HALVES_CSV

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="the study's root (grid/ and point3/)")
    parser.add_argument("--out", type=Path, required=True, help="where the tables and figures go")
    parser.add_argument("--figures", type=Path, default=None, help="copy the CD diagrams here (docs/figures)")
    parser.add_argument("--chosen", default="current", choices=tuple(CANDIDATES), help="the chosen candidate")
    parser.add_argument("--openml_cache_dir", type=Path, default=Path("/work/shared/openml_cache"))
    parser.add_argument("--seeds", type=int, default=5, help="seeds a dataset needs to enter an analysis")
    parser.add_argument(
        "--halves",
        action="store_true",
        help="issue 24: the choice on the selection half and where INN stands on the report half (the stages of "
        "run_study.HALF_STAGES); the runs go to --figures/" + HALVES_CSV + ", the tables into --doc's blocks",
    )
    parser.add_argument("--doc", type=Path, default=None, help="with --halves: rewrite this doc's table blocks")
    args = parser.parse_args(argv)
    if args.halves:
        from studies.defaults_study.halves import run_halves

        if args.figures is None:
            parser.error("--halves needs --figures (where the runs' file and the diagrams go)")
        tables = run_halves(args.results, args.out, args.figures, args.doc, args.openml_cache_dir)
        print("\n\n".join(f"## {name}\n\n{body}" for name, body in tables.items()))
        return 0
    text = run(args.results, args.out, args.figures, args.chosen, args.openml_cache_dir, args.seeds)
    print(text)
    print(json.dumps({"out": str(args.out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
