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
from dataclasses import dataclass
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
    grid_blocks,
    half,
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


# ----------------------------------------------------------------------------------------------------------------
# Issue 24: the defaults chosen on the selection half, where INN stands on the report half

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


_BLOCK = "<!-- table:{name} -->\n{body}<!-- /table:{name} -->"


def update_doc(doc: Path, tables: dict[str, str]) -> list[str]:
    """Rewrite every ``<!-- table:NAME -->`` block of ``doc`` whose table ``tables`` has; returns their names."""
    text = doc.read_text()
    names = [name for name in re.findall(r"<!-- table:(\S+) -->", text) if name in tables]
    for name in names:
        pattern = re.compile(rf"<!-- table:{re.escape(name)} -->\n.*?<!-- /table:{re.escape(name)} -->", re.S)
        block = _BLOCK.format(name=name, body=tables[name])
        text = pattern.sub(lambda _, block=block: block, text)
    doc.write_text(text)
    return names


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


def main(argv: Sequence[str] | None = None) -> int:
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
