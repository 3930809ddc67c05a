"""One unit, step by step: fit its model (``fitting``), compute its ground truth (``scoring``), explain its rows
with every explanation of the model (step 3, here), score each explanation by every metric (``scoring``), and
return the tidy rows (``unit_file.UnitRow``) of :func:`run_unit`.

Every explainer of a unit explains the same trained model: the model's own explanation (its registry's native
explainer) and, for the models of ``posthoc_models``, every post-hoc explainer that applies to it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from studies.xai_bench.config import BenchmarkConfig, metric_direction, settings_hash, unit_metrics
from studies.xai_bench.fitting import FittedModel, fit_model, timed
from studies.xai_bench.planning import Entry, applicable, entries_of
from studies.xai_bench.scoring import (
    Score,
    faithfulness_deltas,
    ground_truths,
    score_explanation,
)
from studies.xai_bench.unit_file import Unit, UnitRow, unit_frame


def _posthoc_options(config: BenchmarkConfig, explainer: str) -> dict[str, Any]:
    """The benchmark's settings of one post-hoc explainer."""
    if explainer in ("exact_shap", "bruteforce_shap", "breakdown", "kernel_shap"):
        options: dict[str, Any] = {"background_size": config.background_size}
        if explainer in ("bruteforce_shap", "breakdown"):
            options["compat"] = config.compat
        if explainer == "kernel_shap":
            options["n_samples"] = config.kernel_shap_samples
        return options
    if explainer == "lime":
        return {"n_samples": config.lime_samples, "kernel_width": config.lime_kernel_width * math.sqrt(config.d)}
    if explainer == "integrated_gradients":
        return {"n_steps": config.ig_steps}
    return {}


def _values(attribution: Any) -> np.ndarray:
    """The ``(N, F)`` attributions of the single output."""
    return np.asarray(attribution.values, dtype=np.float64)[:, :, 0]


@dataclass(frozen=True)
class Explanation:
    """One entry's attributions of a unit's rows (step 3).

    Attributes:
        entry: the explanation.
        test: ``(N, F)`` attributions of the test rows.
        train: ``(M, F)`` attributions of the training rows (for the ROAR metrics; ``None`` without them).
        seconds, train_seconds: wall seconds of explaining the test and the training rows.
    """

    entry: Entry
    test: np.ndarray
    train: np.ndarray | None
    seconds: float
    train_seconds: float


def explain_entry(
    config: BenchmarkConfig, unit: Unit, fitted: FittedModel, entry: Entry, *, log: Callable[[str], None]
) -> Explanation | None:
    """Explain the unit's test rows (and training rows, for ROAR) with one entry; ``None`` if it does not apply."""
    from explainers import POSTHOC_EXPLAINERS

    spec, to_input = fitted.spec, fitted.trained.to_input
    if entry.native:

        def explain(X: np.ndarray) -> np.ndarray:
            return _values(spec.explain(fitted.model, fitted.split, to_input(X), reference=config.reference))

    else:
        if not applicable(entry.explainer, spec):
            log(f"{unit}: {entry.explainer} does not apply to {unit.model}; skipped")
            return None
        explainer = POSTHOC_EXPLAINERS[entry.explainer].from_target(
            fitted.posthoc_target(config.reference), seed=unit.seed, **_posthoc_options(config, entry.explainer)
        )

        def explain(X: np.ndarray) -> np.ndarray:
            return _values(explainer.explain(X))

    data = fitted.data
    phi, seconds = timed(lambda: explain(data.X_test))
    phi_train, train_seconds = None, 0.0
    if any(metric.startswith("roar") for metric in unit_metrics(config)):
        phi_train, train_seconds = timed(lambda: explain(data.X_train))
    return Explanation(entry, phi, phi_train, seconds, train_seconds)


def run_unit(config: BenchmarkConfig, unit: Unit, *, log: Callable[[str], None] = lambda _: None) -> pd.DataFrame:
    """Train, explain and score one unit; returns its tidy rows (one per explanation and metric).

    Args:
        config: the run's settings.
        unit: the (dataset, ρ, seed, model).
        log: receives one line per finished step (progress).

    Returns:
        The unit file's rows (``unit_file.UNIT_COLUMNS``), with the unit's own wall and CPU seconds.
    """
    start, cpu = time.perf_counter(), time.process_time()
    fitted = fit_model(config, unit, log=log)
    truth = ground_truths(config, unit, fitted, log=log)
    deltas = faithfulness_deltas(config, unit, fitted)
    entries = entries_of(config, unit.model)
    scored: list[tuple[Explanation, list[Score]]] = []
    for entry in entries:
        explanation = explain_entry(config, unit, fitted, entry, log=log)
        if explanation is None:
            continue
        scores = score_explanation(
            config,
            unit,
            fitted,
            explanation.test,
            explanation.train,
            deltas=deltas,
            truth=truth,
            n_entries=len(entries),
        )
        scored.append((explanation, scores))
        log(
            f"{unit}: {entry.id} explained in {explanation.seconds:.1f}s "
            f"(+{explanation.train_seconds:.1f}s training rows)"
        )
    unit_hash = settings_hash(config.unit_settings(unit.model))
    unit_seconds, unit_cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    rows = [
        _row(config, unit, fitted, explanation, score, unit_hash, unit_seconds, unit_cpu_seconds)
        for explanation, scores in scored
        for score in scores
    ]
    return unit_frame(rows)


def _row(
    config: BenchmarkConfig,
    unit: Unit,
    fitted: FittedModel,
    explanation: Explanation,
    score: Score,
    unit_hash: str,
    unit_seconds: float,
    unit_cpu_seconds: float,
) -> UnitRow:
    entry = explanation.entry
    low, high = score.result.confidence_interval()
    return UnitRow(
        dataset=unit.dataset,
        rho=unit.rho,
        seed=unit.seed,
        model=unit.model,
        entry=entry.id,
        entry_label=entry.label,
        explainer=entry.explainer,
        native=entry.native,
        metric=score.metric,
        value=score.result.value,
        ci_low=low,
        ci_high=high,
        direction=metric_direction(score.metric),
        model_test_mse=fitted.test_mse,
        model_train_mse=fitted.train_mse,
        fit_seconds=fitted.fit_seconds,
        explain_seconds=explanation.seconds,
        explain_train_seconds=explanation.train_seconds,
        metric_seconds=score.seconds,
        ground_truth_seconds=score.ground_truth_seconds,
        roar_fits=score.roar_fits,
        roar_cached_fits=score.roar_cached_fits,
        n_train=config.n_train,
        n_test=config.n_test,
        d=config.d,
        compat=config.compat,
        profile=config.profile,
        settings_hash=unit_hash,
        unit_seconds=unit_seconds,
        unit_cpu_seconds=unit_cpu_seconds,
    )
