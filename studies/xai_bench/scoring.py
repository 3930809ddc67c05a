"""Steps 2 and 4 of a unit: its ground-truth Shapley values, and the score of an explanation by every metric.

What is shared within a unit, and why that is fair: every metric draws its random numbers from a stream that
depends only on the unit and the metric (:func:`random_stream`), the same for every explainer (common random numbers), so
differences between explainers are not sampling noise; faithfulness's removal changes do not depend on the
explanation and are computed once (:func:`faithfulness_deltas`); ROAR retrains are cached by their training data
(``fitting.TrainedModels``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from data.synthetic import SyntheticData
from studies.xai_bench.config import BENCHMARK_METRICS, BenchmarkConfig, unit_metrics
from studies.xai_bench.fitting import FittedModel, timed
from studies.xai_bench.unit_file import Unit
from xai.metrics import (
    MetricResult,
    faithfulness,
    infidelity,
    monotonicity,
    roar_faithfulness,
    roar_monotonicity,
    row_correlation,
    shapley_corr,
    shapley_mse,
)
from xai.shapley import ShapleyValues, ground_truth_shapley


def random_stream(*parts: Any) -> np.random.Generator:
    """A generator that depends only on ``parts`` (the same for every explainer: common random numbers)."""
    return np.random.default_rng([zlib.crc32(repr(part).encode()) for part in parts])


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth Shapley values of a unit's model at its test rows, and the wall seconds they took."""

    shapley: ShapleyValues
    seconds: float


def ground_truths(
    config: BenchmarkConfig, unit: Unit, fitted: FittedModel, *, log: Callable[[str], None] = lambda _: None
) -> dict[str, GroundTruth]:
    """The ground truths the unit's metrics compare with (step 2): ``observational`` and/or ``interventional``."""
    data, predict, metrics = fitted.data, fitted.predict, unit_metrics(config)
    truth: dict[str, GroundTruth] = {}
    if any(metric.startswith("shapley") and not metric.endswith("interventional") for metric in metrics):
        truth["observational"] = GroundTruth(
            *timed(
                lambda: ground_truth_shapley(
                    predict,
                    data.X_test,
                    distribution=data.distribution,
                    n_samples=config.gt_samples,
                    rng=random_stream(unit.seed, unit.dataset, unit.rho, "ground truth"),
                    compat=config.compat,
                )
            )
        )
    if any(metric.endswith("interventional") for metric in metrics):
        truth["interventional"] = GroundTruth(
            *timed(
                lambda: ground_truth_shapley(
                    predict,
                    data.X_test,
                    value_function="interventional",
                    distribution=data.distribution,
                    n_samples=config.gt_background,
                    rng=random_stream(unit.seed, unit.dataset, unit.rho, "interventional ground truth"),
                    compat=config.compat,
                )
            )
        )
    for name, ground_truth in truth.items():
        log(f"{unit}: {name} ground truth in {ground_truth.seconds:.1f}s")
    return truth


def faithfulness_deltas(config: BenchmarkConfig, unit: Unit, fitted: FittedModel) -> tuple[np.ndarray | None, float]:
    """Faithfulness's removal changes ``|f(x) − v(all but j)|`` of the unit's test rows and their wall seconds.

    They do not depend on the explanation, so they are computed once per unit (``None`` without faithfulness).
    """
    if "faithfulness" not in unit_metrics(config):
        return None, 0.0
    data = fitted.data
    result, seconds = timed(
        lambda: faithfulness(
            fitted.predict,
            data.X_test,
            np.zeros_like(data.X_test),
            distribution=data.distribution,
            n_samples=config.faithfulness_samples,
            rng=random_stream(unit.seed, unit.dataset, unit.rho, "faithfulness"),
            compat=config.compat,
        )
    )
    return result.extras["deltas"], seconds


@dataclass(frozen=True)
class Score:
    """One metric of one explanation (step 4).

    Attributes:
        metric: the benchmark metric (a key of ``config.BENCHMARK_METRICS``).
        result: its value and per-row scores.
        seconds: wall seconds (faithfulness: with its share of the unit's removal changes).
        ground_truth_seconds: wall seconds of the ground truth it compares with (0 for the other metrics).
        roar_fits, roar_cached_fits: retrains fitted and taken from the cache.
    """

    metric: str
    result: MetricResult
    seconds: float
    ground_truth_seconds: float
    roar_fits: int
    roar_cached_fits: int


def score_explanation(
    config: BenchmarkConfig,
    unit: Unit,
    fitted: FittedModel,
    phi: np.ndarray,
    phi_train: np.ndarray | None,
    *,
    deltas: tuple[np.ndarray | None, float],
    truth: Mapping[str, GroundTruth],
    n_entries: int,
) -> list[Score]:
    """Every metric of one explanation of the unit's test rows (``phi_train``: of its training rows, for ROAR).

    Args:
        deltas: :func:`faithfulness_deltas` of the unit (its seconds are shared among the unit's ``n_entries``).
        truth: :func:`ground_truths` of the unit.
        n_entries: the number of the unit's explanations.
    """
    trained, data = fitted.trained, fitted.data
    shared_deltas, deltas_seconds = deltas
    scores = []
    for metric in unit_metrics(config):
        fits_before, hits_before = trained.fits, trained.hits
        result, seconds = timed(
            lambda metric=metric: _score(
                metric, config, unit, data, fitted.predict, trained.fit, phi, phi_train, shared_deltas, truth
            )
        )
        if metric == "faithfulness":
            seconds += deltas_seconds / max(1, n_entries)
        ground_truth = "interventional" if metric.endswith("interventional") else "observational"
        scores.append(
            Score(
                metric=metric,
                result=result,
                seconds=seconds,
                ground_truth_seconds=truth[ground_truth].seconds if metric.startswith("shapley") else 0.0,
                roar_fits=trained.fits - fits_before,
                roar_cached_fits=trained.hits - hits_before,
            )
        )
    return scores


def _score(
    metric: str,
    config: BenchmarkConfig,
    unit: Unit,
    data: SyntheticData,
    predict: Callable[[np.ndarray], np.ndarray],
    fit: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]],
    phi: np.ndarray,
    phi_train: np.ndarray | None,
    deltas: np.ndarray | None,
    truth: Mapping[str, GroundTruth],
) -> MetricResult:
    """One metric of one explanation (the random streams depend on the unit and the metric only)."""
    stream = random_stream(unit.seed, unit.dataset, unit.rho, metric)
    if metric == "faithfulness":  # xai.metrics.faithfulness with the unit's shared removal changes
        per_row = row_correlation(np.abs(phi), deltas)
        return MetricResult("faithfulness", float(per_row.mean()), per_row, {"deltas": deltas})
    if metric == "monotonicity":
        return monotonicity(
            predict,
            data.X_test,
            phi,
            distribution=data.distribution,
            n_samples=config.faithfulness_samples,
            rng=stream,
            compat=config.compat,
        )
    if metric == "infidelity":
        return infidelity(
            predict, data.X_test, phi, n_perturbations=config.infidelity_perturbations, rng=stream, compat=config.compat
        )
    if metric == "roar_faithfulness":
        return roar_faithfulness(
            fit,
            predict,
            data.X_train,
            data.y_train,
            phi_train,
            data.X_test,
            phi,
            distribution=data.distribution,
            compat=config.compat,
        )
    if metric == "roar_monotonicity":
        return roar_monotonicity(
            fit, data.X_train, data.y_train, phi_train, data.X_test, phi, distribution=data.distribution
        )
    ground_truth = truth["interventional" if metric.endswith("interventional") else "observational"].shapley.values
    return (shapley_mse if BENCHMARK_METRICS[metric] == "shapley_mse" else shapley_corr)(phi, ground_truth)
