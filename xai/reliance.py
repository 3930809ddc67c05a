"""Reliance on a set of features ``S``, measured by behaviour, next to what the explanation claims.

An explanation penalty (``models.penalties``) can be met by changing the explanation instead of the model: a
hypernetwork can route the effect of ``S`` through its other generated weights, and CDEP's softmax share can be
met by inflating every class's irrelevant stream. So reliance is measured on the predictions:

* **flip rate**: the share of test predictions whose class changes when ``x_S`` is resampled from its training
  marginal (all columns of ``S`` taken together from one random training row, ``n_repeats`` draws per row);
* **mean |Δ logit|**: the mean absolute change of the logit differences under the same draws (binary: the
  log-odds; multiclass: the centred logits ``z − mean_c z``, averaged over classes; regression: the prediction).
  Models without logits (trees) use ``log p`` from ``predict_proba``, clipped at :data:`PROBABILITY_FLOOR`;
* **AUROC drop**: test AUROC minus the mean test AUROC over ``n_repeats`` joint permutations of ``S``'s columns
  across the test rows;

and, beside them, the **explanation share** of ``S``: its share of the native explanation's global importance
(mean |attribution| per feature, normalised to sum 1), which is what the explanation claims. A model that does not
see ``S`` at all (a *blind* model) has flip rate 0, Δ 0 and AUROC drop 0 exactly; a model that copies ``S`` into
its prediction flips whenever a draw changes ``S``'s class.

The draws are those of :func:`xai.sensitivity.resampling_sensitivity` (same seed, same donors), so for one output
column the mean |Δ logit| here equals its sensitivity of ``S``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

Rows = np.ndarray | pd.DataFrame
#: ``log p`` of a model without logits is taken of ``max(p, PROBABILITY_FLOOR)``: a tree's probability of 0
#: would otherwise give an infinite change.
PROBABILITY_FLOOR = 1e-6
#: Draws (resampling) and permutations per test row.
N_REPEATS = 5


def _tile(X: Rows, n_repeats: int) -> Rows:
    if isinstance(X, pd.DataFrame):
        return X.iloc[np.tile(np.arange(len(X)), n_repeats)].reset_index(drop=True)
    return np.tile(X, (n_repeats, 1))


def _assign(target: Rows, columns: Sequence[int], values: Rows, rows: np.ndarray) -> None:
    """``target[:, columns] = values[rows][:, columns]`` for matrices and frames (column positions)."""
    if isinstance(target, pd.DataFrame):
        for column in columns:
            name = target.columns[column]
            target[name] = np.asarray(values[name])[rows]
    else:
        target[:, columns] = np.asarray(values)[rows][:, columns]


def resampled_rows(X: Rows, pool: Rows, columns: Sequence[int], *, n_repeats: int = N_REPEATS, seed: int = 0) -> Rows:
    """``X`` tiled ``n_repeats`` times with the columns of ``S`` taken from random rows of ``pool``.

    Row ``r · N + i`` is row ``i`` of ``X`` with ``x_S`` of a random pool row (draw ``r``); the draws are those of
    :func:`xai.sensitivity.resampling_sensitivity` with the same seed.

    Shape:
        X ``(N, D)``, pool ``(M, D)`` -> ``(N · n_repeats, D)``
    """
    rng = np.random.default_rng(seed)
    donors = rng.integers(0, len(pool), size=len(X) * n_repeats)
    moved = _tile(X, n_repeats).copy()
    _assign(moved, list(columns), pool, donors)
    return moved


def permuted_rows(X: Rows, columns: Sequence[int], *, n_repeats: int = N_REPEATS, seed: int = 0) -> Rows:
    """``X`` tiled ``n_repeats`` times, the columns of ``S`` permuted jointly across the rows in every copy.

    Shape:
        X ``(N, D)`` -> ``(N · n_repeats, D)``
    """
    rng = np.random.default_rng(seed)
    n_rows = len(X)
    order = np.concatenate([rng.permutation(n_rows) for _ in range(n_repeats)]) if n_rows else np.zeros(0, int)
    moved = _tile(X, n_repeats).copy()
    _assign(moved, list(columns), X, order)
    return moved


def logit_differences(scores: np.ndarray) -> np.ndarray:
    """``z`` for one output column, else ``z − mean_c z`` (invariant to adding a constant to every class).

    Shape:
        ``(N, C)`` -> ``(N, C)``
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    return scores if scores.shape[1] == 1 else scores - scores.mean(axis=1, keepdims=True)


def log_odds(proba: np.ndarray) -> np.ndarray:
    """Logit differences from class probabilities: binary ``log(p_1 / p_0)`` ``(N, 1)``, else centred ``log p``.

    Shape:
        ``(N, C)`` -> ``(N, 1)`` for ``C = 2``, else ``(N, C)``
    """
    logs = np.log(np.maximum(np.asarray(proba, dtype=np.float64), PROBABILITY_FLOOR))
    if logs.shape[1] == 2:
        return logs[:, 1:] - logs[:, :1]
    return logit_differences(logs)


@dataclass(frozen=True)
class Reliance:
    """Behavioural reliance on ``S`` (see the module docstring). Classification-only fields are None otherwise.

    Attributes:
        flip_rate: share of (row, draw) pairs whose predicted class changes when ``x_S`` is resampled.
        mean_abs_delta_logit: mean |Δ logit differences| under the same draws.
        auroc: test AUROC as it is.
        auroc_permuted: mean test AUROC with ``S`` permuted.
        auroc_drop: ``auroc − auroc_permuted``.
        n_rows: test rows; n_repeats: draws and permutations per row.
    """

    flip_rate: float | None
    mean_abs_delta_logit: float
    auroc: float | None
    auroc_permuted: float | None
    auroc_drop: float | None
    n_rows: int
    n_repeats: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def behavioural_reliance(
    X: Rows,
    pool: Rows,
    columns: Sequence[int],
    *,
    logits: Callable[[Rows], np.ndarray] | None = None,
    predict_proba: Callable[[Rows], np.ndarray] | None = None,
    y: np.ndarray | None = None,
    auroc: Callable[[np.ndarray, np.ndarray], float] | None = None,
    n_repeats: int = N_REPEATS,
    seed: int = 0,
) -> Reliance:
    """Flip rate, mean |Δ logit| and AUROC drop of a model on the columns ``S`` of the rows ``X``.

    Args:
        X: test rows ``(N, D)`` (matrix or frame).
        pool: training rows ``(M, D)``: the marginal ``x_S`` is resampled from.
        columns: the positions of ``S``'s columns in ``X`` (all columns of its features).
        logits: ``logits(X) -> (N, C)``: the model's logits (networks, linear models; a regressor's prediction).
            ``None``: :func:`log_odds` of ``predict_proba``.
        predict_proba: ``predict_proba(X) -> (N, C)`` class probabilities; ``None`` for a regressor (no flip rate
            and no AUROC).
        y: test labels ``(N,)`` (integer codes) for the AUROC drop; ``auroc``: ``auroc(y, proba) -> float``
            (the protocol's metric); the AUROC drop is None unless both are given.
        n_repeats: draws (and permutations) per row.
        seed: seeds the draws and permutations.
    """
    if logits is None and predict_proba is None:
        raise ValueError("give logits, predict_proba or both")
    if len(columns) == 0:
        raise ValueError("S has no columns")
    moved = resampled_rows(X, pool, columns, n_repeats=n_repeats, seed=seed)

    def differences(rows: Rows) -> np.ndarray:
        if logits is not None:
            return logit_differences(logits(rows))
        return log_odds(predict_proba(rows))

    delta = np.abs(differences(moved) - np.tile(differences(X), (n_repeats, 1)))
    mean_delta = float(delta.mean()) if delta.size else 0.0
    flip = score = permuted_score = drop = None
    if predict_proba is not None:
        proba = np.asarray(predict_proba(X))
        before = np.tile(proba.argmax(axis=1), n_repeats)
        after = np.asarray(predict_proba(moved)).argmax(axis=1)
        flip = float(np.mean(before != after)) if before.size else 0.0
        if y is not None and auroc is not None:
            score = float(auroc(np.asarray(y), proba))
            permuted = permuted_rows(X, columns, n_repeats=n_repeats, seed=seed + 1)
            permuted_proba = np.asarray(predict_proba(permuted))
            n_rows = len(X)
            scores = [
                auroc(np.asarray(y), permuted_proba[repeat * n_rows : (repeat + 1) * n_rows])
                for repeat in range(n_repeats)
            ]
            permuted_score = float(np.mean(scores))
            drop = score - permuted_score
    return Reliance(flip, mean_delta, score, permuted_score, drop, len(X), n_repeats)


def explanation_share(importance: np.ndarray, features: Sequence[int]) -> float:
    """The share of ``S`` (feature indices) in a global importance ``(F,)`` (mean |attribution| per feature).

    Shape:
        importance ``(F,)`` -> a float in [0, 1]
    """
    values = np.abs(np.asarray(importance, dtype=np.float64))
    total = values.sum()
    return float(values[list(features)].sum() / total) if total > 0 else 0.0


def reliance_metrics(
    spec: Any,
    model: Any,
    split: Any,
    features: Sequence[int],
    *,
    model_split: Any = None,
    attribution: Any = None,
    auroc: Callable[[np.ndarray, np.ndarray], float] | None = None,
    n_repeats: int = N_REPEATS,
    seed: int = 0,
) -> dict[str, Any]:
    """The reliance of a registered method's fitted model on the original features ``features`` of ``split``.

    Args:
        spec: the method's ``MethodSpec``.
        model: the fitted model.
        split: the full split (with ``S``); its test rows are perturbed, its training rows are the pool.
        features: indices into ``split.feature_names``.
        model_split: the split the model was trained on when it differs from ``split`` (a *blind* model that never
            saw ``S``): the model is fed the columns of ``model_split.input_names`` out of ``split``'s.
        attribution: the run's native explanation over ``model_split``'s (or ``split``'s) features; its share of
            ``S`` is reported (0 when ``S`` is not among its features; None for concept explanations or without one).
        auroc: ``auroc(y, proba) -> float`` (the protocol's metric) for the AUROC drop.
        n_repeats: draws and permutations per test row.
        seed: seeds them.

    Returns:
        ``test_flip_rate``, ``test_mean_abs_delta_logit``, ``test_auroc_drop`` (classification; regression: only
        the Δ) and a ``reliance`` block: the features, their columns, the settings, the AUROC before and after
        permutation and the explanation's share of ``S``.
    """
    from methods.spec import split_inputs

    names = [split.feature_names[feature] for feature in features]
    train, test = split_inputs(split, spec.input_kind)
    if spec.input_kind == "frame":
        columns = [list(train.columns).index(name) for name in names]
    else:
        columns = np.flatnonzero(np.isin(split.input_to_feature, list(features))).tolist()
    select = _column_selector(spec, split, model_split)
    classification = split.task != "regression"
    neural = spec.kind == "neural"

    def model_logits(rows: Rows) -> np.ndarray:
        return np.asarray(spec.output(model, select(rows)), dtype=np.float64)

    def model_proba(rows: Rows) -> np.ndarray:
        return np.asarray(model.predict_proba(select(rows)), dtype=np.float64)

    result = behavioural_reliance(
        test,
        train,
        columns,
        # Networks and other models whose native output is a logit give it directly; probability models (trees)
        # and regressors' predictions go through predict_proba / predict.
        logits=model_logits if neural or not classification else None,
        predict_proba=model_proba if classification else None,
        y=split.y_test if classification else None,
        auroc=auroc,
        n_repeats=n_repeats,
        seed=seed,
    )
    share = None
    if attribution is not None and not spec.explains_concepts(model):
        own = list(attribution.feature_names)
        share = explanation_share(
            attribution.global_importance("mean_abs"), [own.index(name) for name in names if name in own]
        )
    metrics: dict[str, Any] = {"test_mean_abs_delta_logit": result.mean_abs_delta_logit}
    if classification:
        metrics["test_flip_rate"] = result.flip_rate
        if result.auroc_drop is not None:
            metrics["test_auroc_drop"] = result.auroc_drop
    metrics["reliance"] = {
        "features": names,
        "columns": [str(train.columns[column]) for column in columns]
        if spec.input_kind == "frame"
        else [split.input_names[column] for column in columns],
        "blind": model_split is not None,
        "resampled_from": "training rows (all columns of S from one row)",
        "explanation_share": share,
        "explainer": None if attribution is None else attribution.explainer,
        **result.as_dict(),
    }
    return metrics


def _column_selector(spec: Any, split: Any, model_split: Any) -> Callable[[Rows], Rows]:
    """Rows of ``split``'s inputs -> the inputs of the model trained on ``model_split`` (identity when None)."""
    if model_split is None:
        return lambda rows: rows
    if spec.input_kind == "frame":
        keep_names = list(model_split.feature_names)
        return lambda rows: rows.loc[:, keep_names]
    position = {name: index for index, name in enumerate(split.input_names)}
    missing = [name for name in model_split.input_names if name not in position]
    if missing:
        raise ValueError(f"the model's input columns {missing[:3]} are not columns of the full split")
    keep = np.array([position[name] for name in model_split.input_names], dtype=np.int64)
    return lambda rows: np.asarray(rows)[:, keep]
