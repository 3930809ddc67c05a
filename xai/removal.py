"""Feature removal with retraining on real data: drop a method's most important features, refit it, score it.

The paper's removal test (its Figure 6) asks whether the features an explanation ranks first are the ones the
model needs: remove the top-``k`` features by the method's global importance, retrain the SAME method with the
same seed, and measure how much the test AUROC drops. An explanation that ranks well makes the score fall fast.

Removing a feature means dropping its column from the raw data (:func:`drop_features`) before
``data.prepare_split``, so every encoded column of that feature disappears together and the split is otherwise
unchanged: the test rows depend only on the rows, the seed and the test fraction, so every refit is scored on the
same test rows as the full model. The ranking (:func:`removal_order`) comes from the full model's explanation;
it is not recomputed after each removal (the ROAR protocol of Hooker et al. 2019).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from data import PreparedSplit, RawDataset, prepare_split
from methods import MethodSpec

__all__ = ["FittedMethod", "drop_features", "fit_method", "removal_curve", "removal_order", "held_out_auroc"]


def drop_features(raw: RawDataset, features: Sequence[str]) -> RawDataset:
    """The dataset without the columns ``features`` (original feature names); the rows and target are kept.

    Raises:
        ValueError: a name is not a column of ``raw.X``.
    """
    columns = [str(column) for column in raw.X.columns]
    unknown = sorted(set(map(str, features)) - set(columns))
    if unknown:
        raise ValueError(f"{raw.name} has no feature(s) {unknown}")
    removed = set(map(str, features))
    keep = [index for index, column in enumerate(columns) if column not in removed]
    return dataclasses.replace(
        raw,
        X=raw.X.iloc[:, keep],
        categorical=[raw.categorical[index] for index in keep],
    )


def removal_order(importance: Sequence[float] | np.ndarray, feature_names: Sequence[str]) -> list[str]:
    """Feature names by decreasing importance; ties keep the features' order (a stable sort).

    Shape:
        importance ``(F,)`` -> ``F`` names
    """
    values = np.asarray(importance, dtype=np.float64).reshape(-1)
    if values.shape[0] != len(feature_names):
        raise ValueError(f"{values.shape[0]} importances for {len(feature_names)} features")
    order = np.argsort(-values, kind="stable")
    return [str(feature_names[index]) for index in order]


@dataclasses.dataclass(frozen=True, eq=False)
class FittedMethod:
    """A registered method fitted on one split.

    Attributes:
        spec: the method.
        model: the fitted estimator.
        split: the split it was fitted on.
        fit_seconds: wall time of ``fit``.
    """

    spec: MethodSpec
    model: Any
    split: PreparedSplit
    fit_seconds: float

    def inputs(self) -> tuple[Any, Any]:
        """The model inputs ``(train, test)``."""
        return self.spec.inputs(self.split)


def fit_method(
    spec: MethodSpec,
    raw: RawDataset,
    *,
    seed: int,
    params: Mapping[str, Any] | None = None,
    n_jobs: int = 1,
) -> FittedMethod:
    """Split ``raw`` in the method's encoding (classification) and fit the method with its defaults (+ ``params``)
    on the CPU."""
    split = prepare_split(raw, mode="classification", seed=seed, encoding_type=spec.encoding)
    model = spec.build(split, seed=seed, device="cpu", n_jobs=n_jobs, params=params)
    train, _ = spec.inputs(split)
    start = time.perf_counter()
    model.fit(train, split.y_train)
    return FittedMethod(spec, model, split, time.perf_counter() - start)


def held_out_auroc(fitted: FittedMethod) -> float:
    """The test AUROC (one-vs-one for multiclass, the protocol's metric) of a fitted method."""
    from models.baselines import predict_output
    from models.metrics import auroc

    _, test = fitted.inputs()
    split = fitted.split
    return auroc(split.y_test, predict_output(fitted.model, test, split.task), int(split.n_classes))


def removal_curve(
    spec: MethodSpec,
    raw: RawDataset,
    order: Sequence[str],
    ks: Sequence[int],
    *,
    seed: int,
    params: Mapping[str, Any] | None = None,
    n_jobs: int = 1,
) -> dict[int, float]:
    """Test AUROC of the method refitted without the first ``k`` features of ``order``, for every ``k`` in ``ks``.

    ``k = 0`` refits on all features. Each refit uses the same seed, so only the removed features differ.

    Raises:
        ValueError: a ``k`` is negative or removes every feature ``order`` lists (at least one must remain).
    """
    scores: dict[int, float] = {}
    for k in ks:
        if not 0 <= k < len(order):
            raise ValueError(f"k must be in [0, {len(order) - 1}] for {len(order)} ranked features, got {k}")
        fitted = fit_method(spec, drop_features(raw, order[:k]), seed=seed, params=params, n_jobs=n_jobs)
        scores[int(k)] = held_out_auroc(fitted)
    return scores
