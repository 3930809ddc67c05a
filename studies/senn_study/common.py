"""What the stages share: the λ grid, the datasets and metrics, the runs (:func:`run_cell`, read back when
finished), and the tables of their runs (mean ± sd over seeds).
"""

from __future__ import annotations

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


def _lambda_tick(value: float) -> str:
    """``0``, ``1e-4``, ``0.01``, ``1``: short enough for six ticks side by side."""
    return "0" if value == 0 else f"1e{round(np.log10(value))}" if value < 0.01 else f"{value:g}"


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
