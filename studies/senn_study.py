"""The SENN study of docs/senn.md: accuracy against λ, SENN against INN, behaviour against explanation, concepts.

Four parts, each writing its tables (``.csv`` and ``.md``) and figures to ``--out`` (default ``docs/figures``);
the runs of the first three go through ``experiments.runner.run`` into the ordinary results tree under
``--results_dir`` (a finished run is read back, not rerun), so every number is also in an ``output_info.json``:

* ``lambda``: SENN's accuracy/AUROC and stability against the robustness weight λ ∈ {0, 1e-4, …, 1} (the SENN
  paper's trade-off), 30 epochs: identity concepts on COMPAS (recidivism: 5 seeds, score: 3 seeds; batches of
  200 as the reproduction's COMPAS configuration) with INN on the same budget beside it, learned concepts
  (``--conceptizer autoencoder``, Hutchinson's estimator over the 10 classes) on digits (3 seeds).
  ``senn_lambda.{csv,md,png}``.
* ``dev``: SENN with identity concepts against INN at both methods' defaults on the eight small dev datasets,
  mean test AUROC over seeds. ``senn_dev.{csv,md}``.
* ``sensitivity``: whether the explanation ranks features as the model uses them: Spearman's ρ between the
  global importance of the explanation and the model's behavioural sensitivity (``xai.sensitivity``: mean
  |Δ logit| when a feature is resampled from the training rows), for INN and SENN at every λ.
  ``senn_sensitivity.{csv,md}``.
* ``concepts``: DiSENN and SENN-autoencoder on digits: test accuracy over seeds, prototypes, DiSENN's latent
  traversals and one example's explanation. ``senn_digits.{csv,md}``, ``senn_{disenn,autoencoder}_prototypes.png``,
  ``senn_disenn_traversals.png``, ``senn_disenn_explanation.png``.

Everything runs in one process, one model at a time (``nice`` it on a shared machine)::

    nice -n 10 python -m studies.senn_study lambda --compas_path ../shared/datasets/compas/compas-two-years.csv
    nice -n 10 python -m studies.senn_study dev --openml_cache_dir ../shared/openml_cache
    nice -n 10 python -m studies.senn_study sensitivity --openml_cache_dir ../shared/openml_cache
    nice -n 10 python -m studies.senn_study concepts
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LAMBDAS: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
DEV_DATASETS: tuple[int, ...] = (31, 37, 1464, 54, 11, 29, 50, 1063)
SENSITIVITY_DATASETS: tuple[int, ...] = (31, 29, 1063)
METRICS = ("test_accuracy", "test_auroc", "test_lipschitz_discrete", "test_lipschitz_continuous",
           "test_removal_faithfulness")  # fmt: skip
#: SENN's own stability of the relevances θ alone (learned concepts only; ``xai.stability.relevance_lipschitz``).
RELEVANCE_METRICS = ("test_relevance_lipschitz", "test_relevance_lipschitz_input")


def lambda_name(value: float) -> str:
    """The variant name of a λ (``lambda=1e-04``, ``lambda=1e00``): a directory name, so no ``+``."""
    return f"lambda={value:.0e}".replace("+", "") if value > 0 else "lambda=0"


def run_cell(argv: Sequence[str], results_dir: Path) -> dict[str, Any]:
    """One run of ``main_experiment.py`` with ``argv`` into ``results_dir`` (read back if already finished)."""
    from experiments import cli, runner
    from experiments.results import read_report, results_path

    config = cli.neural_config([*argv, "--output_dir", str(results_dir), "--device", "cpu"])
    path = results_path(results_dir, config.method, config.data.key, config.seed, config.variant)
    if cli.already_done(config):
        return read_report(path)
    start = time.perf_counter()
    report = runner.run(config)
    print(f"  ({time.perf_counter() - start:.0f}s wall)", flush=True)
    return report


def _row(report: dict[str, Any], **keys: Any) -> dict[str, Any]:
    metrics = (*METRICS, *RELEVANCE_METRICS)
    return {**keys, **{metric: report.get(metric, np.nan) for metric in metrics}, "train_time": report["train_time"]}


def with_relevance_stability(report: dict[str, Any], results_dir: Path) -> dict[str, Any]:
    """``report`` with SENN's relevance stability, recomputed from the saved model for runs made before the runner
    reported it (learned concepts only; other reports are returned as they are).

    The run's model is reloaded (``experiments.saved_run.load_run``) and its split rebuilt from the run's seed;
    :func:`xai.stability.explanation_metrics` then evaluates the same rows as the run did, so the recomputed
    explanation Lipschitz estimates must equal the saved ones (checked: a mismatch is an error).
    """
    if report["method"] not in ("senn", "disenn") or RELEVANCE_METRICS[0] in report:
        return report
    from experiments.config import DataConfig
    from experiments.results import results_path
    from experiments.saved_run import load_run
    from xai.stability import explanation_metrics

    run = results_path(results_dir, report["method"], str(report["dataset_id"]), report["seed"], report["variant"])
    path = run.parent
    saved = load_run(path)
    if not saved.spec.explains_concepts(saved.model):
        return report
    config = report["config"]
    data = DataConfig.from_mapping(config)
    split = data.split(data.load(), encoding_type=config.get("encoding_type") or saved.spec.encoding)
    scores = explanation_metrics(saved.spec, saved.model, split, reference=config.get("reference", "mean"),
                                 seed=report["seed"])  # fmt: skip
    for key in ("test_lipschitz_discrete", "test_removal_faithfulness"):
        if not np.isclose(scores[key], report[key], rtol=1e-4, atol=1e-6):
            raise RuntimeError(f"{path}: recomputed {key} {scores[key]} differs from the saved {report[key]}")
    return {**report, **{key: scores[key] for key in RELEVANCE_METRICS}}


def summarise(frame: pd.DataFrame, by: list[str], columns: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``columns``, one row per ``by`` group (in first-seen order)."""
    grouped = frame.groupby(by, sort=False, dropna=False)[list(columns)]  # INN rows have no λ: keep them
    summary = grouped.mean().add_suffix("_mean").join(grouped.std().add_suffix("_sd"))
    summary.insert(0, "seeds", grouped.size())
    return summary.reset_index()


def markdown(frame: pd.DataFrame, columns: Sequence[str], digits: int = 3) -> str:
    """``mean ± sd`` cells for every ``<column>_mean``/``<column>_sd`` pair, other columns as they are."""
    from plots.tables import markdown_table, mean_sd_text

    out = pd.DataFrame()
    for column in frame.columns:
        if column.endswith("_sd"):
            continue
        if column.endswith("_mean"):
            base = column.removesuffix("_mean")
            if base not in columns:
                continue
            sd = frame.get(f"{base}_sd")
            out[base] = [
                mean_sd_text(m, s, digits)
                for m, s in zip(frame[column], sd if sd is not None else np.full(len(frame), np.nan), strict=True)
            ]
        else:
            out[column] = frame[column]

    return markdown_table(out)


def write_table(frame: pd.DataFrame, summary: pd.DataFrame, columns: Sequence[str], out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"{name}_runs.csv", index=False)
    summary.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(markdown(summary, columns) + "\n")
    print(markdown(summary, columns))


# ----------------------------------------------------------------------------------------------------------
# λ sweep


def lambda_study(args: argparse.Namespace) -> None:
    """Accuracy, AUROC and stability against λ on COMPAS (identity concepts) and digits (learned concepts)."""
    cases = []
    if args.compas_path is not None:
        for task in ("compas_recidivism", "compas_score"):
            # Batches of 200 rows, as the SENN reproduction's COMPAS configuration (and a third of the steps).
            data = ["--dataset", task, "--dataset_path", str(args.compas_path), "--batch_size", "200"]
            # The score task (the SENN reproduction's) places our numbers against its reported ones: 3 seeds.
            cases.append((task, "senn", data, list(args.seeds if task == "compas_recidivism" else args.seeds[:3])))
    cases.append(("digits", "senn-autoencoder", ["--dataset", "digits", "--conceptizer", "autoencoder",
                                                  "--robust_estimator", "hutchinson"], list(args.seeds[:3])))  # fmt: skip
    rows = []
    epochs = ["--nr_epochs", str(args.nr_epochs)]
    for dataset, model, data, seeds in cases:
        for seed in seeds:
            if dataset != "digits":  # INN on the same data and budget: the reference row
                argv = ["--method", "inn", *data, *epochs, "--seed", str(seed), "--variant", f"e{args.nr_epochs}"]
                reference = run_cell(argv, args.results_dir)
                rows.append(_row(reference, dataset=dataset, model="inn", robust_reg=np.nan, seed=seed))
            for value in LAMBDAS:
                variant = f"{'ae-' if dataset == 'digits' else ''}e{args.nr_epochs}-{lambda_name(value)}"
                argv = ["--method", "senn", *data, *epochs, "--robust_reg", str(value), "--seed", str(seed)]
                report = run_cell([*argv, "--variant", variant], args.results_dir)
                if dataset == "digits":
                    report = with_relevance_stability(report, args.results_dir)
                rows.append(_row(report, dataset=dataset, model=model, robust_reg=value, seed=seed))
    frame = pd.DataFrame(rows)
    columns = [*METRICS, *RELEVANCE_METRICS]
    summary = summarise(frame, ["dataset", "model", "robust_reg"], [*columns, "train_time"])
    write_table(frame, summary, columns, args.out, "senn_lambda")
    lambda_figure(summary, args.out / "senn_lambda.png")


def _lambda_tick(value: float) -> str:
    """``0``, ``1e-4``, ``0.01``, ``1``: short enough for six ticks side by side."""
    return "0" if value == 0 else f"1e{round(np.log10(value))}" if value < 0.01 else f"{value:g}"


def lambda_figure(summary: pd.DataFrame, path: Path) -> None:
    """Per dataset: test accuracy against λ (left axis) and the continuous Lipschitz estimate of the explanation
    (right axis); for learned concepts also SENN's estimate of the relevances alone (``test_relevance_lipschitz``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(summary["dataset"]))
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = summary[(summary["dataset"] == dataset) & summary["robust_reg"].notna()]
        # λ = 0 sits one decade left of the smallest positive λ on the log axis.
        positive = part["robust_reg"][part["robust_reg"] > 0]
        x = part["robust_reg"].where(part["robust_reg"] > 0, positive.min() / 10)
        ax.errorbar(x, part["test_accuracy_mean"], part["test_accuracy_sd"], color="#AA3377", marker="o",
                    label="test accuracy")  # fmt: skip
        inn = summary[(summary["dataset"] == dataset) & (summary["model"] == "inn")]
        if len(inn):
            ax.axhline(float(inn["test_accuracy_mean"].iloc[0]), color="#D55E00", linestyle="--", label="INN")
        ax.set_xscale("log")
        ax.set_xticks(x, [_lambda_tick(value) for value in part["robust_reg"]])
        ax.set_xlabel("λ (robust_reg)")
        ax.set_ylabel("test accuracy")
        ax.set_title(dataset)
        twin = ax.twinx()
        twin.plot(x, part["test_lipschitz_continuous_mean"], color="#555555", marker="s", linestyle=":",
                  label="Lipschitz of θ·(h − h(m)) (continuous)")  # fmt: skip
        relevance = part.get("test_relevance_lipschitz_mean")
        if relevance is not None and relevance.notna().any():
            twin.plot(x, relevance, color="#4477AA", marker="^", linestyle="--",
                      label="Lipschitz of θ per ‖Δh‖ (SENN's)")  # fmt: skip
        twin.set_yscale("log")
        twin.set_ylabel("local Lipschitz estimate (lower: more stable)")
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles=handles, fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)


# ----------------------------------------------------------------------------------------------------------
# SENN against INN on the dev datasets


def dev_study(args: argparse.Namespace) -> None:
    """SENN (identity concepts, defaults) against INN (defaults) on the dev datasets."""
    rows = []
    cache = ["--openml_cache_dir", str(args.openml_cache_dir)] if args.openml_cache_dir else []
    for dataset in args.datasets:
        for seed in args.seeds:
            for method in ("inn", "senn"):
                argv = ["--method", method, "--dataset_id", str(dataset), *cache, "--seed", str(seed)]
                report = run_cell(argv, args.results_dir)
                rows.append(_row(report, dataset=dataset, dataset_name=report["dataset_name"], model=method,
                                 seed=seed))  # fmt: skip
    frame = pd.DataFrame(rows)
    summary = summarise(frame, ["dataset", "dataset_name", "model"], [*METRICS, "train_time"])
    wide = frame.pivot_table(index=["dataset", "seed"], columns="model", values="test_auroc")
    means = summarise(frame, ["model"], [*METRICS, "train_time"])
    means.insert(0, "dataset", "mean over datasets and seeds")
    means.insert(1, "dataset_name", "")
    summary = pd.concat([summary, means], ignore_index=True)
    write_table(frame, summary, [*METRICS, "train_time"], args.out, "senn_dev")
    difference = (wide["senn"] - wide["inn"]).groupby("dataset").mean()
    print("SENN − INN mean test AUROC per dataset:\n" + difference.to_string())


# ----------------------------------------------------------------------------------------------------------
# Behaviour against explanation


def sensitivity_study(args: argparse.Namespace) -> None:
    """Spearman ρ between explanation importance and resampling sensitivity, INN and SENN at every λ."""
    from data import load_dataset, prepare_split
    from methods import get_method
    from xai.sensitivity import compare_with_explanation, model_sensitivity

    rows, shares = [], []
    models = [("inn", {})] + [(f"senn {lambda_name(value)}", {"robust_reg": value}) for value in LAMBDAS]
    for dataset in args.datasets:
        raw = load_dataset(dataset_id=dataset, openml_cache_dir=args.openml_cache_dir)
        for seed in args.seeds:
            for name, params in models:
                spec = get_method(name.split()[0])
                split = prepare_split(raw, mode="classification", seed=seed, encoding_type=spec.encoding)
                model = spec.build(split, seed=seed, device="cpu", params={"nr_epochs": args.nr_epochs, **params})
                train, test = spec.inputs(split)
                start = time.perf_counter()
                model.fit(train, split.y_train)
                fit_time = time.perf_counter() - start
                attribution = spec.explain(model, split, test)
                comparison = compare_with_explanation(
                    model_sensitivity(spec, model, split, seed=seed), attribution.global_importance(),
                    split.feature_names,
                )  # fmt: skip
                from models.baselines import predict_output
                from models.metrics import classification_metrics

                metrics = classification_metrics(split.y_test, predict_output(model, test, split.task),
                                                 split.n_classes, "test")  # fmt: skip
                table = comparison.table()
                top = table.iloc[0]
                rows.append({"dataset": dataset, "dataset_name": raw.name, "model": name, "seed": seed,
                             "spearman": comparison.rank_correlation, "test_auroc": metrics["test_auroc"],
                             "top_feature": top["feature"], "top_sensitivity_share": top["sensitivity_share"],
                             "top_explanation_share": top["explanation_share"],
                             "flagged": ", ".join(comparison.flagged), "fit_time": fit_time})  # fmt: skip
                for _, line in table.iterrows():
                    shares.append({"dataset": dataset, "model": name, "seed": seed, **line.to_dict()})
                print(f"{raw.name} seed {seed} {name}: rho {comparison.rank_correlation:.3f}, top {top['feature']} "
                      f"{top['sensitivity_share']:.3f}/{top['explanation_share']:.3f}, AUROC "
                      f"{metrics['test_auroc']:.4f}, {fit_time:.0f}s", flush=True)  # fmt: skip
    pd.DataFrame(rows).to_csv(args.out / "senn_sensitivity_runs.csv", index=False)
    pd.DataFrame(shares).to_csv(args.out / "senn_sensitivity_shares.csv", index=False)
    sensitivity_tables(args.out)


def sensitivity_tables(out: Path) -> None:
    """``senn_sensitivity.{csv,md}`` from the study's per-run files: Spearman's ρ, AUROC, and the shares of
    sensitivity and explanation of INN's most used feature of each dataset (e.g. credit-g's ``checking_status``)."""
    frame = pd.read_csv(out / "senn_sensitivity_runs.csv")
    shares = pd.read_csv(out / "senn_sensitivity_shares.csv")
    inn = shares[shares["model"] == "inn"].groupby(["dataset", "feature"])["sensitivity_share"].mean()
    watched = inn.groupby("dataset").idxmax().map(lambda key: key[1])  # dataset -> INN's most used feature
    picked = shares[shares["feature"] == shares["dataset"].map(watched)]
    frame = frame.merge(
        picked.loc[:, ["dataset", "model", "seed", "feature", "sensitivity_share", "explanation_share"]],
        on=["dataset", "model", "seed"],
    )
    columns = ["spearman", "test_auroc", "sensitivity_share", "explanation_share"]
    summary = summarise(frame, ["dataset", "dataset_name", "model", "feature"], columns)
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "senn_sensitivity.csv", index=False)
    (out / "senn_sensitivity.md").write_text(markdown(summary, columns) + "\n")
    print(markdown(summary, columns))


# ----------------------------------------------------------------------------------------------------------
# Concepts on digits


def concept_study(args: argparse.Namespace) -> None:
    """DiSENN and SENN-autoencoder on digits: accuracy over seeds, prototypes, traversals, one explanation."""
    rows = []
    runs = {"disenn": ["--method", "disenn"], "senn-autoencoder": ["--method", "senn", "--conceptizer", "autoencoder"]}
    for name, method in runs.items():
        # DiSENN's accuracy over 3 seeds; SENN-autoencoder's run is there for its prototypes (one seed).
        for seed in args.seeds[: 3 if name == "disenn" else 1]:
            variant = [] if name == "disenn" else ["--variant", "autoencoder"]
            report = run_cell([*method, "--dataset", "digits", "--seed", str(seed), *variant], args.results_dir)
            report = with_relevance_stability(report, args.results_dir)
            rows.append(_row(report, dataset="digits", model=name, seed=seed))
    frame = pd.DataFrame(rows)
    columns = [*METRICS, *RELEVANCE_METRICS, "train_time"]
    write_table(frame, summarise(frame, ["dataset", "model"], columns), columns, args.out, "senn_digits")
    concept_figures(args.out)


def _pixel_units(split) -> tuple[np.ndarray, np.ndarray]:
    """Per input column the training mean and scale of the raw pixels (the standardisation to undo)."""
    raw = split.frame_train.loc[:, split.input_names].to_numpy(dtype=np.float64)
    return raw.mean(axis=0), raw.std(axis=0)


def concept_figures(out: Path, seed: int = 0) -> None:
    """The prototype, traversal and explanation figures of DiSENN (and SENN-autoencoder's prototypes), seed 0.

    The models are refitted in-process with the run's settings; fits are deterministic, so they are the models
    of the ``concepts`` runs of that seed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from data import prepare_split
    from data.named import load_digits_dataset
    from methods import get_method
    from models.senn import concept_prototypes, latent_traversal
    from plots.senn import draw_concept_explanation, draw_prototypes, draw_traversals, image_layout

    raw = load_digits_dataset()
    for method, params, label in (("disenn", {}, "disenn"), ("senn", {"conceptizer": "autoencoder"}, "autoencoder")):
        spec = get_method(method)
        split = prepare_split(raw, mode="classification", seed=seed, encoding_type=spec.encoding)
        model = spec.build(split, seed=seed, device="cpu", params=params)
        model.fit(split.X_train, split.y_train)
        pixels = split.frame_train.loc[:, split.input_names].to_numpy(dtype=np.float64)
        top = concept_prototypes(model.concepts(split.X_train), 10)
        k = top.shape[0]
        figure, axes = plt.subplots(k, 10, figsize=(7, 0.75 * k + 0.4))
        draw_prototypes(axes, pixels[top], split.input_names)
        figure.suptitle(f"{spec.label} on digits: the 10 training images that activate each concept most", fontsize=9)
        figure.savefig(out / f"senn_{label}_prototypes.png", dpi=150, bbox_inches="tight")
        plt.close(figure)
        if method != "disenn":
            continue
        mean, scale = _pixel_units(split)
        example = 0
        values, decoded = latent_traversal(model, split.X_test[example], n_steps=10)
        figure, axes = plt.subplots(k, 10, figsize=(7, 0.75 * k + 0.6))
        draw_traversals(axes, decoded * scale + mean, values, split.input_names)
        figure.suptitle("DiSENN: decoded traversal of each latent (others at the posterior mean of a test image)",
                        fontsize=9)  # fmt: skip
        figure.savefig(out / "senn_disenn_traversals.png", dpi=150, bbox_inches="tight")
        plt.close(figure)
        attribution = model.explain(split.X_test[:1])
        predicted = int(attribution.output[0].argmax())
        figure, axes = plt.subplots(1, 4, figsize=(11, 2.6), gridspec_kw={"width_ratios": [0.8, 1, 1, 1.4]})
        layout = image_layout(split.input_names)
        axes[0].imshow(np.ma.masked_invalid(layout.images(split.frame_test.loc[:, split.input_names].to_numpy(
            dtype=np.float64)[example])), cmap="gray_r")  # fmt: skip
        axes[0].set_title(f"test image (label {split.classes[split.y_test[example]]})", fontsize=9)
        axes[0].set_xticks([])
        axes[0].set_yticks([])
        draw_concept_explanation(axes[1:], attribution, row=0, output=predicted)
        figure.suptitle(f"DiSENN's explanation of its logit for class {split.classes[predicted]} (predicted); grey "
                        "ticks: the reference's activations", fontsize=9)  # fmt: skip
        figure.tight_layout()
        figure.savefig(out / "senn_disenn_explanation.png", dpi=150, bbox_inches="tight")
        plt.close(figure)
    tabular_concept_figure(out / "senn_disenn_credit_g.png", seed=seed)


def tabular_concept_figure(path: Path, seed: int = 0) -> None:
    """DiSENN on credit-g: each latent's prototypes and decoded traversal as heatmaps over the input columns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from data import load_dataset, prepare_split
    from methods import get_method
    from models.senn import concept_prototypes, latent_traversal
    from plots.senn import draw_prototypes, draw_traversals

    spec = get_method("disenn")
    split = prepare_split(load_dataset(dataset_id=31), mode="classification", seed=seed, encoding_type=spec.encoding)
    model = spec.build(split, seed=seed, device="cpu").fit(split.X_train, split.y_train)
    k = model.num_concepts
    top = concept_prototypes(model.concepts(split.X_train), 8)
    values, decoded = latent_traversal(model, split.X_test[0], n_steps=7)
    figure, axes = plt.subplots(k, 2, figsize=(11, 2.0 * k))
    draw_prototypes(axes[:, 0], split.X_train[top], split.input_names)
    draw_traversals(axes[:, 1], decoded, values, split.input_names)
    figure.suptitle("DiSENN on credit-g: standardised inputs of each concept's most activating training rows "
                    "(left) and the decoded change along each latent (right)", fontsize=9)  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(figure)


# ----------------------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", choices=("lambda", "dev", "sensitivity", "concepts"))
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="tables and figures")
    parser.add_argument("--results_dir", type=Path, default=Path("results/senn_study"), help="the runs' results tree")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0-4 (lambda), 0-2 (others)")
    parser.add_argument("--datasets", type=int, nargs="+", default=None, help="OpenML ids (dev, sensitivity)")
    parser.add_argument("--nr_epochs", type=int, default=None, help="lambda: 30; sensitivity: 100 (the default)")
    parser.add_argument("--compas_path", type=Path, default=None, help="compas-scores-two-years.csv (lambda)")
    parser.add_argument("--openml_cache_dir", type=Path, default=None, help="OpenML cache (dev, sensitivity)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.seeds = args.seeds or ([0, 1, 2, 3, 4] if args.study == "lambda" else [0, 1, 2])
    args.nr_epochs = args.nr_epochs or (30 if args.study == "lambda" else 100)
    if args.study == "dev":
        args.datasets = args.datasets or list(DEV_DATASETS)
    if args.study == "sensitivity":
        args.datasets = args.datasets or list(SENSITIVITY_DATASETS)
    args.out.mkdir(parents=True, exist_ok=True)
    studies = {"lambda": lambda_study, "dev": dev_study, "sensitivity": sensitivity_study, "concepts": concept_study}
    studies[args.study](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
