"""Faithfulness of explanations on real data: feature removal with retraining, and explanation vs. behaviour.

Two tests of whether a method's explanation says what its model does (issue 14, points 7a and 7b):

(a) Removal (the paper's Figure 6). On the removal datasets, rank the features by the method's global importance
    (mean |attribution| over the TRAINING rows: choosing which features to drop is part of fitting, so it must
    not look at the test rows the drop is measured on), drop the top ``k`` (``k = 1..5``), retrain the same method
    with the same seed and record the test AUROC (:mod:`xai.removal`). TabResNet is ranked by KernelSHAP
    ("TabResNet + SHAP"), every other method by its native explanation.
(b) Sensitivity, without retraining, on every dataset: the model's measured sensitivity to each feature (mean
    |change of its explained output| when the feature is resampled from the training rows, on the test rows;
    :mod:`xai.sensitivity`) against the explanation's global importance on the same test rows: Spearman's ρ over
    features, each feature's two shares, and the features on which they disagree (flagged).

One unit of work is one (dataset, method, seed): fit the method with its defaults, measure its sensitivity,
explain it (INN: with the training-mean and the zero reference; TabResNet: gradient × input and KernelSHAP) and,
on a removal dataset, refit it five times. Each unit is written atomically to
``<out>/units/<dataset>/<method>/<seed>.json`` when it is done and skipped when present (``--force`` redoes it),
so a killed run resumes where it stopped. The report (tidy CSVs, Markdown tables, the removal figure) is built
from the unit files::

    python -m studies.faithfulness --out results/faithfulness --openml_cache_dir /work/shared/openml_cache \
        --seeds 0 1 2
    python -m studies.faithfulness --out results/faithfulness --report_only --figure docs/figures/removal.png

KernelSHAP settings (TabResNet): ``--kernel_shap_background`` training rows as background (default 50, seeded),
shap's automatic number of coalitions (``2F + 2048``), on at most ``--kernel_shap_rows`` rows (default 100, a
seeded subsample of the training rows for (a) and of the test rows for (b)).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from errors import UserError
from experiments.results import atomic_write_bytes, json_bytes
from methods import REGISTRY

#: The eight small dev datasets of the issues (OpenML dataset ids).
DEV_DATASETS: tuple[int, ...] = (31, 37, 1464, 54, 11, 29, 50, 1063)
#: Removal datasets: credit-g, diabetes and credit-approval (binary, mixed and numerical features, 8-20 features).
REMOVAL_DATASETS: tuple[int, ...] = (31, 37, 29)
#: Native explainers whose attributions are over learned concepts, not the original features: a per-feature
#: sensitivity has nothing to compare them with, so their methods are left out by default.
CONCEPT_EXPLAINERS = frozenset({"senn_concepts"})
#: Every registered method explained over the original features.
DEFAULT_METHODS: tuple[str, ...] = tuple(
    method for method, spec in REGISTRY.items() if spec.explainer_id not in CONCEPT_EXPLAINERS
)
#: The methods of the removal test (the paper's Figure 6 plus EBM).
REMOVAL_METHODS: tuple[str, ...] = ("inn", "tabresnet", "catboost", "decision_tree", "tabnet", "ebm")
REMOVAL_KS: tuple[int, ...] = (1, 2, 3, 4, 5)

UNIT_VERSION = 1

#: Native explainers in words, for the tables' labels.
EXPLAINER_WORDS: dict[str, str] = {
    "gradient_x_input": "gradient × input",
    "catboost_shap": "TreeSHAP",
    "tree_shap": "TreeSHAP",
    "linear": "coefficients",
    "tabnet_masks": "masks",
    "ebm": "terms",
    "senn": "relevances × input",
}


@dataclass(frozen=True)
class ExplanationKind:
    """One way to explain a method's fitted model.

    Attributes:
        key: its id in the unit files (``native``, ``native_zero``, ``kernel_shap``).
        label: the human label.
        reference: the native explainer's reference (``mean``/``zero``); unused by post-hoc explainers.
        posthoc: the id of a post-hoc explainer (``explainers.POSTHOC_EXPLAINERS``), or ``None`` for the native one.
    """

    key: str
    label: str
    reference: str = "mean"
    posthoc: str | None = None


def explanation_kinds(method: str) -> tuple[ExplanationKind, ...]:
    """The explanations of a method's model compared with its behaviour (the first is the method's own)."""
    spec = REGISTRY[method]
    native = ExplanationKind("native", f"{spec.label} ({EXPLAINER_WORDS.get(spec.explainer_id, spec.explainer_id)})")
    if method == "inn":
        return (
            ExplanationKind("native", "INN (training-mean reference)"),
            ExplanationKind("native_zero", "INN (zero reference)", reference="zero"),
        )
    if method == "tabresnet":
        return (native, ExplanationKind("kernel_shap", "TabResNet + KernelSHAP", posthoc="kernel_shap"))
    return (native,)


def ranking_kind(method: str) -> str:
    """The explanation that ranks a method's features for the removal test (TabResNet: KernelSHAP)."""
    return "kernel_shap" if method == "tabresnet" else "native"


@dataclass(frozen=True)
class Settings:
    """What a run computes (the command-line flags)."""

    out: Path
    datasets: tuple[int, ...] = DEV_DATASETS
    removal_datasets: tuple[int, ...] = REMOVAL_DATASETS
    methods: tuple[str, ...] = DEFAULT_METHODS
    removal_methods: tuple[str, ...] = REMOVAL_METHODS
    random_control: tuple[str, ...] = ("inn",)
    seeds: tuple[int, ...] = (0,)
    ks: tuple[int, ...] = REMOVAL_KS
    openml_cache_dir: str | None = None
    sensitivity_repeats: int = 5
    kernel_shap_rows: int = 100
    kernel_shap_background: int = 50
    smoke: bool = False
    force: bool = False


# ----------------------------------------------------------------------------------------------------------
# One unit: (dataset, method, seed)


def unit_path(out: Path, dataset_id: int, method: str, seed: int) -> Path:
    return Path(out) / "units" / str(dataset_id) / method / f"{seed}.json"


def _subsample(n_rows: int, size: int, seed: int) -> np.ndarray:
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))


def explain_rows(fitted: Any, kind: ExplanationKind, part: str, settings: Settings, seed: int) -> tuple[Any, int]:
    """The attribution of ``part`` (``train``/``test``) rows by one explanation kind, and how many rows it used."""
    spec, model, split = fitted.spec, fitted.model, fitted.split
    train, test = fitted.inputs()
    rows = train if part == "train" else test
    if kind.posthoc is None:
        return spec.explain(model, split, rows, reference=kind.reference), len(rows)
    from explainers import POSTHOC_EXPLAINERS
    from explainers.posthoc import target_from_estimator

    if spec.input_kind != "matrix":
        raise ValueError(f"{kind.posthoc} explains matrix-input models only, not {spec.id}")
    chosen = _subsample(len(rows), settings.kernel_shap_rows, seed)
    target = target_from_estimator(
        model, split.X_train, feature_names=split.feature_names, input_to_feature=split.input_to_feature
    )
    explainer = POSTHOC_EXPLAINERS[kind.posthoc].from_target(
        target, seed=seed, background_size=settings.kernel_shap_background
    )
    return explainer.explain(np.asarray(rows)[chosen]), len(chosen)


def run_unit(raw: Any, method: str, seed: int, settings: Settings) -> dict[str, Any]:
    """Fit, measure, explain and (on a removal dataset) refit one method on one dataset and seed; the unit record."""
    from xai.removal import fit_method, held_out_auroc, removal_curve, removal_order
    from xai.sensitivity import compare_with_explanation, model_sensitivity

    spec = REGISTRY[method]
    params = dict(spec.smoke_params) if settings.smoke else None
    started = time.perf_counter()
    fitted = fit_method(spec, raw, seed=seed, params=params)
    split = fitted.split
    base = held_out_auroc(fitted)
    start = time.perf_counter()
    sensitivity = model_sensitivity(spec, fitted.model, split, n_repeats=settings.sensitivity_repeats, seed=seed)
    sensitivity_seconds = time.perf_counter() - start
    removal = _is_removal(raw.dataset_id, method, settings)
    explanations: dict[str, Any] = {}
    for kind in explanation_kinds(method):
        start = time.perf_counter()
        attribution, n_rows = explain_rows(fitted, kind, "test", settings, seed)
        seconds = time.perf_counter() - start
        importance = attribution.global_importance("mean_abs")
        comparison = compare_with_explanation(sensitivity, importance, split.feature_names)
        record: dict[str, Any] = {
            "label": kind.label,
            "explainer": attribution.explainer,
            "reference": attribution.reference_name,
            "output": attribution.output_name,
            "test_rows": n_rows,
            "test_seconds": seconds,
            "importance_test": importance.tolist(),
            "spearman": comparison.rank_correlation,
            "flagged": list(comparison.flagged),
            "importance_train": None,
        }
        if removal and kind.key == ranking_kind(method):
            start = time.perf_counter()
            attribution, n_rows = explain_rows(fitted, kind, "train", settings, seed)
            record["importance_train"] = attribution.global_importance("mean_abs").tolist()
            record["train_rows"] = n_rows
            record["train_seconds"] = time.perf_counter() - start
        explanations[kind.key] = record
    removal_records = []
    if removal:
        rankings = [
            (
                ranking_kind(method),
                removal_order(explanations[ranking_kind(method)]["importance_train"], split.feature_names),
            )
        ]
        if method in settings.random_control:
            # The control: the same refits in a random order of the features (seeded per dataset and seed).
            order = list(np.random.default_rng([seed, int(raw.dataset_id)]).permutation(split.feature_names))
            rankings.append(("random", order))
        for key, order in rankings:
            ks = [k for k in settings.ks if k < len(order)]
            start = time.perf_counter()
            scores = removal_curve(spec, raw, order, ks, seed=seed, params=params)
            removal_records.append(
                {
                    "explanation": key,
                    "order": order,
                    "auroc": {str(k): value for k, value in scores.items()},
                    "seconds": time.perf_counter() - start,
                }
            )
    return {
        "version": UNIT_VERSION,
        "dataset_id": int(raw.dataset_id),
        "dataset": raw.name,
        "method": method,
        "seed": seed,
        "smoke": settings.smoke,
        "n_train": split.n_train,
        "n_test": split.n_test,
        "n_classes": split.n_classes,
        "feature_names": list(split.feature_names),
        "test_auroc": base,
        "fit_seconds": fitted.fit_seconds,
        "sensitivity": sensitivity.tolist(),
        "sensitivity_repeats": settings.sensitivity_repeats,
        "sensitivity_seconds": sensitivity_seconds,
        "explanations": explanations,
        "removal": removal_records,
        "kernel_shap": {"rows": settings.kernel_shap_rows, "background": settings.kernel_shap_background},
        "seconds": time.perf_counter() - started,
    }


def _is_removal(dataset_id: Any, method: str, settings: Settings) -> bool:
    return int(dataset_id) in settings.removal_datasets and method in settings.removal_methods


def _unit_is_complete(path: Path, dataset_id: int, method: str, settings: Settings) -> bool:
    if not path.exists():
        return False
    try:
        unit = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    keys = {kind.key for kind in explanation_kinds(method)}
    if unit.get("version") != UNIT_VERSION or bool(unit.get("smoke")) != settings.smoke:
        return False
    if not keys <= set(unit.get("explanations", {})):
        return False
    if _is_removal(dataset_id, method, settings):
        done = {record["explanation"]: set(record["auroc"]) for record in unit.get("removal") or []}
        wanted = {str(k) for k in settings.ks if k < len(unit["feature_names"])}
        needed = [ranking_kind(method)] + (["random"] if method in settings.random_control else [])
        return all(wanted <= done.get(key, set()) for key in needed)
    return True


def run(settings: Settings) -> int:
    """Compute every missing unit (seeds outermost, so the first seed completes first), then write the report.

    Returns the number of units computed.
    """
    from data import load_dataset

    unknown = sorted(set(settings.methods) - set(REGISTRY))
    if unknown:
        raise UserError(f"unknown method(s) {unknown}; registered: {sorted(REGISTRY)}")
    concepts = sorted(method for method in settings.methods if REGISTRY[method].explainer_id in CONCEPT_EXPLAINERS)
    if concepts:
        raise UserError(f"{concepts} explain learned concepts, not the features a sensitivity is measured on")
    raws = {
        dataset_id: load_dataset(dataset_id, openml_cache_dir=settings.openml_cache_dir)
        for dataset_id in settings.datasets
    }
    computed = 0
    for seed in settings.seeds:
        for dataset_id, raw in raws.items():
            for method in settings.methods:
                path = unit_path(settings.out, dataset_id, method, seed)
                if not settings.force and _unit_is_complete(path, dataset_id, method, settings):
                    continue
                unit = run_unit(raw, method, seed, settings)
                atomic_write_bytes(path, json_bytes(unit))
                computed += 1
                print(
                    f"{raw.name} ({dataset_id}) {method} seed {seed}: AUROC {unit['test_auroc']:.3f}, "
                    f"{unit['seconds']:.0f} s",
                    flush=True,
                )
    return computed


# ----------------------------------------------------------------------------------------------------------
# The report: tidy frames from the unit files, tables and the figure


def load_units(out: Path) -> list[dict[str, Any]]:
    """Every unit record under ``<out>/units`` (sorted by dataset, method, seed)."""
    units = [json.loads(path.read_text()) for path in sorted((Path(out) / "units").glob("*/*/*.json"))]
    return sorted(units, key=lambda unit: (unit["dataset_id"], unit["method"], unit["seed"]))


def sensitivity_frames(units: Sequence[Mapping[str, Any]]):
    """``(per_feature, summary)``: one row per (unit, explanation, feature) and one per (unit, explanation).

    ``summary`` holds Spearman's ρ, the feature the model is most sensitive to with its two shares, and the
    flagged features (joined with ``;``).
    """
    import pandas as pd

    from xai.sensitivity import compare_with_explanation

    rows, summary = [], []
    for unit in units:
        names = unit["feature_names"]
        for key, record in unit["explanations"].items():
            comparison = compare_with_explanation(
                np.asarray(unit["sensitivity"]), np.asarray(record["importance_test"]), names
            )
            common = {
                "dataset_id": unit["dataset_id"],
                "dataset": unit["dataset"],
                "method": unit["method"],
                "explanation": key,
                "label": record["label"],
                "seed": unit["seed"],
            }
            for index, name in enumerate(names):
                rows.append(
                    {
                        **common,
                        "feature": name,
                        "sensitivity": comparison.sensitivity[index],
                        "sensitivity_share": comparison.sensitivity_share[index],
                        "explanation_share": comparison.explanation_share[index],
                        "flagged": name in comparison.flagged,
                    }
                )
            top = int(np.argmax(comparison.sensitivity_share))
            summary.append(
                {
                    **common,
                    "test_auroc": unit["test_auroc"],
                    "spearman": comparison.rank_correlation,
                    "top_feature": names[top],
                    "top_sensitivity_share": comparison.sensitivity_share[top],
                    "top_explanation_share": comparison.explanation_share[top],
                    "flagged": ";".join(comparison.flagged),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(summary)


def removal_frame(units: Sequence[Mapping[str, Any]]):
    """One row per (removal unit, k) with ``k = 0`` the full model: AUROC, the drop from ``k = 0`` and the
    features removed."""
    import pandas as pd

    rows = []
    method_order = {method: index for index, method in enumerate(REGISTRY)}
    for unit in sorted(units, key=lambda unit: (unit["dataset_id"], method_order.get(unit["method"], 99))):
        base = unit["test_auroc"]
        for record in unit.get("removal") or []:
            kind = record["explanation"]
            label = REGISTRY[unit["method"]].label
            if kind == "random":
                label += " (random order)"
            elif kind != "native":
                label = unit["explanations"][kind]["label"]
            common = {
                "dataset_id": unit["dataset_id"],
                "dataset": unit["dataset"],
                "method": unit["method"] if kind != "random" else f"{unit['method']}-random",
                "explanation": kind,
                "label": label,
                "seed": unit["seed"],
            }
            rows.append({**common, "k": 0, "removed": "", "auroc": base, "drop": 0.0})
            for k, value in sorted(record["auroc"].items(), key=lambda item: int(item[0])):
                removed = ";".join(record["order"][: int(k)])
                rows.append({**common, "k": int(k), "removed": removed, "auroc": value, "drop": base - value})
    return pd.DataFrame(rows)


def markdown(frame, float_format: str = "{:.3f}") -> str:
    """A DataFrame as a Markdown table (floats with ``float_format``; pipes escaped)."""

    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "–" if not np.isfinite(value) else float_format.format(value)
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def sensitivity_table(summary, per_feature):
    """The Markdown-ready table: one row per dataset × method (explanation), over seeds.

    Columns: Spearman's ρ (mean ± sample sd over seeds), the feature with the largest mean sensitivity share with its
    mean sensitivity and explanation shares, and the features flagged in at least half of the seeds (with the
    number of seeds in which they were).
    """
    import pandas as pd

    rows = []
    method_order = {method: index for index, method in enumerate(REGISTRY)}
    for (dataset_id, method, key), group in summary.groupby(["dataset_id", "method", "explanation"], sort=False):
        features = per_feature[
            (per_feature.dataset_id == dataset_id) & (per_feature.method == method) & (per_feature.explanation == key)
        ]
        shares = features.groupby("feature", sort=False)[["sensitivity_share", "explanation_share"]].mean()
        top = shares["sensitivity_share"].idxmax()
        n_seeds = group["seed"].nunique()
        counts = features[features.flagged].groupby("feature", sort=False)["seed"].nunique()
        flagged = [f"{name} ({count}/{n_seeds})" for name, count in counts.items() if 2 * count >= n_seeds]
        rho = group["spearman"].astype(float)
        rows.append(
            {
                "_order": (dataset_id, method_order.get(method, 99), _kind_index(method, key)),
                "dataset": group["dataset"].iloc[0],
                "explanation": group["label"].iloc[0],
                "seeds": n_seeds,
                "AUROC": group["test_auroc"].mean(),
                "Spearman ρ": f"{rho.mean():.2f} ± {rho.std(ddof=1):.2f}" if n_seeds > 1 else f"{rho.mean():.2f}",
                "top-sensitivity feature": top,
                "its sensitivity share": shares.loc[top, "sensitivity_share"],
                "its explanation share": shares.loc[top, "explanation_share"],
                "flagged (seeds)": ", ".join(flagged) or "–",
            }
        )
    table = pd.DataFrame(rows).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    return table


def _kind_index(method: str, key: str) -> int:
    keys = [kind.key for kind in explanation_kinds(method)] if method in REGISTRY else []
    return keys.index(key) if key in keys else len(keys)


def rho_pivot(summary):
    """Mean Spearman ρ over seeds: one row per explanation, one column per dataset, and the mean over datasets."""
    pivot = summary.pivot_table(index="label", columns="dataset", values="spearman", aggfunc="mean")
    pivot["mean"] = pivot.mean(axis=1)
    return pivot.sort_values("mean", ascending=False).reset_index().rename(columns={"label": "explanation"})


def write_report(out: Path, figure: Path | None = None, figure_datasets: Sequence[int] | None = None) -> dict[str, Any]:
    """Write the CSVs, the Markdown tables and the removal figure from the unit files under ``out``.

    Returns the frames (``per_feature``, ``summary``, ``removal``, ``table``, ``pivot``).

    Raises:
        UserError: no unit file under ``out``.
    """
    units = load_units(out)
    if not units:
        raise UserError(f"no results under {Path(out) / 'units'}; run without --report_only first")
    per_feature, summary = sensitivity_frames(units)
    removal = removal_frame(units)
    table = sensitivity_table(summary, per_feature)
    pivot = rho_pivot(summary)
    files = {
        "sensitivity_features.csv": per_feature.to_csv(index=False).encode(),
        "sensitivity_summary.csv": summary.to_csv(index=False).encode(),
        "sensitivity.md": (markdown(pivot, "{:.2f}") + "\n\n" + markdown(table) + "\n").encode(),
    }
    if not removal.empty:
        files["removal.csv"] = removal.to_csv(index=False).encode()
        files["removal.md"] = (removal_markdown(removal) + "\n").encode()
    for name, data in files.items():
        atomic_write_bytes(Path(out) / name, data)
    if not removal.empty:
        import io

        import matplotlib

        matplotlib.use("Agg")
        from plots.faithfulness import removal_figure

        target = figure or Path(out) / "removal.png"
        fig = removal_figure(removal, datasets=figure_datasets)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=Path(target).suffix.lstrip(".") or "png", dpi=150, bbox_inches="tight")
        atomic_write_bytes(target, buffer.getvalue())
    return {"per_feature": per_feature, "summary": summary, "removal": removal, "table": table, "pivot": pivot}


def removal_markdown(removal) -> str:
    """Mean test AUROC drop over seeds per dataset, method and ``k`` (columns), with the base AUROC."""
    mean = removal.groupby(["dataset", "label", "k"], sort=False)["drop"].mean().unstack("k")
    base = removal[removal.k == 0].groupby(["dataset", "label"], sort=False)["auroc"].mean()
    seeds = removal[removal.k == 0].groupby(["dataset", "label"], sort=False)["seed"].nunique()
    frame = mean.drop(columns=0, errors="ignore")
    frame.columns = [f"drop k={k}" for k in frame.columns]
    frame.insert(0, "AUROC (all features)", base)
    frame.insert(0, "seeds", seeds)
    return markdown(frame.reset_index())


# ----------------------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/faithfulness"), help="output folder")
    parser.add_argument("--datasets", type=int, nargs="+", default=list(DEV_DATASETS), help="OpenML dataset ids")
    parser.add_argument("--removal_datasets", type=int, nargs="*", default=list(REMOVAL_DATASETS))
    parser.add_argument(
        "--methods", nargs="+", default=list(DEFAULT_METHODS), help="registered methods explained over features"
    )
    parser.add_argument("--removal_methods", nargs="*", default=list(REMOVAL_METHODS))
    parser.add_argument(
        "--random_control", nargs="*", default=["inn"], help="removal methods also refitted in a random feature order"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--ks", type=int, nargs="+", default=list(REMOVAL_KS), help="numbers of features removed")
    parser.add_argument("--openml_cache_dir", default=None, help="read-only OpenML cache (31 is embedded)")
    parser.add_argument("--sensitivity_repeats", type=int, default=5, help="resampling draws per row and feature")
    parser.add_argument("--kernel_shap_rows", type=int, default=100, help="rows KernelSHAP explains (subsample)")
    parser.add_argument("--kernel_shap_background", type=int, default=50, help="KernelSHAP background rows")
    parser.add_argument("--smoke", action="store_true", help="every method's smoke settings (tests; seconds)")
    parser.add_argument("--force", action="store_true", help="recompute units that are already done")
    parser.add_argument("--report_only", action="store_true", help="only rebuild the report from the unit files")
    parser.add_argument("--figure", type=Path, default=None, help="removal figure (default <out>/removal.png)")
    parser.add_argument("--figure_datasets", type=int, nargs="*", default=None, help="panels (default: all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if any(k < 1 for k in args.ks):
            raise UserError(f"--ks must be positive, got {args.ks}")
        if not args.report_only:
            settings = Settings(
                out=args.out,
                datasets=tuple(args.datasets),
                removal_datasets=tuple(args.removal_datasets),
                methods=tuple(args.methods),
                removal_methods=tuple(args.removal_methods),
                random_control=tuple(args.random_control),
                seeds=tuple(args.seeds),
                ks=tuple(args.ks),
                openml_cache_dir=args.openml_cache_dir,
                sensitivity_repeats=args.sensitivity_repeats,
                kernel_shap_rows=args.kernel_shap_rows,
                kernel_shap_background=args.kernel_shap_background,
                smoke=args.smoke,
                force=args.force,
            )
            start = time.perf_counter()
            computed = run(settings)
            print(f"{computed} unit(s) computed in {time.perf_counter() - start:.0f} s", flush=True)
        frames = write_report(args.out, args.figure, args.figure_datasets)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(markdown(frames["pivot"], "{:.2f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
