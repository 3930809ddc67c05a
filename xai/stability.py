"""SENN's evaluation of local explanations: stability (local Lipschitz estimates) and removal faithfulness.

Alvarez-Melis & Jaakkola (2018) ask two things of a local explanation ``e(x)``:

* **Stability**: similar inputs get similar explanations. The local Lipschitz estimate
  ``L(x) = max_z ‖e(x) − e(z)‖₂ / ‖x − z‖₂`` is taken over dataset neighbours within a radius (the *discrete*
  estimate, :func:`xai.metrics.lipschitz_discrete`) and by a search inside an ε-box around ``x`` (the
  *continuous* estimate, :func:`xai.metrics.lipschitz_continuous`). Lower is more stable.
* **Faithfulness**: what the explanation credits a feature (or concept) with is what the prediction loses when
  that feature is removed. :func:`removal_faithfulness` sets each original feature (all its input columns) to its
  reference value, measures the drop of the explained output (logits for networks) of the row's predicted class,
  and correlates, per row, the drops with the attributions (Pearson; higher is better; 1 for a model that is
  exactly linear around the row). For learned concepts, a concept can only be removed inside the aggregator,
  with θ(x) held fixed: the drop is then ``θ_k(x)·(h_k(x) − h_k(m))`` exactly, which would correlate 1 with the
  attribution by construction; :func:`concept_removal_faithfulness` follows the paper instead and correlates
  the drops with the relevances ``θ_k(x)``. :func:`relevance_lipschitz` also gives SENN's own stability
  estimate of the relevances alone, ``‖θ(x) − θ(z)‖ / ‖h(x) − h(z)‖`` (the quantity of the SENN paper's figures),
  beside the estimate of the whole explanation: for learned concepts, and for every explanation that carries
  generated weights (identity-concept SENN and INN: θ with the intercept's row, ``h = x``, as the SENN code's
  COMPAS evaluation).

:func:`explanation_metrics` runs all three for a registered method's fitted model on a seeded subset of the test
rows, on the explanation the method reports (``spec.explain``: the attribution vector over features, or over
concepts; every output column), and is what the experiment runner reports in ``output_info.json``. Everything is
batched (one model call per removal of all rows, chunked explainer calls for the Lipschitz searches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from xai.metrics import lipschitz_continuous, lipschitz_discrete, row_correlation

#: Defaults of the runner's step (sized to cost a few percent of a default neural run; see docs/senn.md).
N_ROWS = 200
N_POOL = 2000
K_NEIGHBOURS = 10
EPSILON = 0.1
N_CANDIDATES = 10
N_ROUNDS = 3


@dataclass(frozen=True)
class Score:
    """One metric's value (mean over the rows where it is defined) and its per-row scores.

    Attributes:
        value: the mean of ``per_row`` over finite entries (NaN if none).
        per_row: ``(N,)`` per-row scores (NaN where undefined).
        extras: metric-specific arrays (e.g. ``drops`` ``(N, F)``).
    """

    value: float
    per_row: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def _score(per_row: np.ndarray, **extras: np.ndarray) -> Score:
    per_row = np.asarray(per_row, dtype=np.float64)
    finite = per_row[np.isfinite(per_row)]
    return Score(float(finite.mean()) if finite.size else float("nan"), per_row, dict(extras))


def explained_columns(output: np.ndarray) -> np.ndarray:
    """The output column each row is judged on: its predicted class (argmax), or 0 for one output.

    Shape:
        output ``(N, C)`` -> ``(N,)``
    """
    output = np.asarray(output)
    return np.zeros(output.shape[0], dtype=np.int64) if output.shape[1] == 1 else output.argmax(axis=1)


def removal_drops(
    output: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    reference: np.ndarray,
    groups: Sequence[np.ndarray],
    columns: np.ndarray,
    *,
    max_rows_per_call: int = 100_000,
) -> np.ndarray:
    """``f_c(x) − f_c(x with feature j set to the reference)`` for every row and feature (``c``: ``columns``).

    Args:
        output: ``output(X (M, D)) -> (M, C)``, the explained output.
        X: the rows ``(N, D)`` (model input columns).
        reference: ``(D,)`` the reference input (a removed feature takes its values).
        groups: the input columns of every feature.
        columns: ``(N,)`` the output column of every row.
        max_rows_per_call: rows per model call.

    Shape:
        X ``(N, D)`` -> ``(N, F)``
    """
    X = np.asarray(X, dtype=np.float32)
    n = X.shape[0]
    rows = np.arange(n)
    base = np.asarray(output(X), dtype=np.float64)[rows, columns]
    point = np.asarray(reference, dtype=np.float32)
    drops = np.empty((n, len(groups)))
    # Several features' removals per model call, at most ``max_rows_per_call`` rows (memory stays bounded).
    per_call = max(1, max_rows_per_call // max(n, 1))
    for first in range(0, len(groups), per_call):
        chunk = groups[first : first + per_call]
        removed = np.repeat(X[None], len(chunk), axis=0)  # (f, N, D)
        for position, group in enumerate(chunk):
            removed[position][:, group] = point[group]
        after = np.asarray(output(removed.reshape(-1, X.shape[1])), dtype=np.float64).reshape(len(chunk), n, -1)
        drops[:, first : first + len(chunk)] = base[:, None] - after[:, rows, columns].T
    return drops


def removal_faithfulness(
    output: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    attributions: np.ndarray,
    reference: np.ndarray,
    groups: Sequence[np.ndarray],
    columns: np.ndarray | None = None,
) -> Score:
    """Per-row Pearson correlation between each feature's attribution and the output's drop when it is removed.

    A feature is removed by setting all its input columns to the reference (the point the attributions are
    relative to); a row whose attributions or drops are constant scores 0 (:func:`xai.metrics.row_correlation`).

    Args:
        output: the explained output ``(M, D) -> (M, C)``.
        X: rows ``(N, D)``.
        attributions: ``(N, F, C)`` (or ``(N, F)`` for the row's column already chosen).
        reference: ``(D,)``.
        groups: the input columns of each of the ``F`` features.
        columns: the output column of every row (default: the predicted class of ``output(X)``).

    Shape:
        X ``(N, D)``, attributions ``(N, F, C)`` -> per_row ``(N,)``; extras ``drops`` ``(N, F)``
    """
    X = np.asarray(X, dtype=np.float32)
    attributions = np.asarray(attributions, dtype=np.float64)
    if columns is None:
        columns = explained_columns(np.asarray(output(X)))
    chosen = attributions if attributions.ndim == 2 else attributions[np.arange(X.shape[0]), :, columns]
    if chosen.shape != (X.shape[0], len(groups)):
        raise ValueError(f"attributions {attributions.shape} do not match {X.shape[0]} rows and {len(groups)} features")
    drops = removal_drops(output, X, reference, groups, columns)
    return _score(row_correlation(chosen, drops), drops=drops)


def concept_removal_faithfulness(
    relevances: np.ndarray, activations: np.ndarray, reference_activations: np.ndarray, columns: np.ndarray
) -> Score:
    """SENN's faithfulness of concept relevances: removal inside the linear aggregator, θ(x) held fixed.

    The drop of the output when concept ``k`` is set to its reference activation is ``θ_kc(x)·(h_k(x) −
    h_k(m))``; it is correlated, per row, with the relevance ``θ_kc(x)`` (with the attribution it would be 1 by
    construction).

    Shape:
        relevances ``(N, K, C)``, activations ``(N, K)``, reference_activations ``(K,)``, columns ``(N,)`` ->
        per_row ``(N,)``
    """
    relevances = np.asarray(relevances, dtype=np.float64)
    rows = np.arange(relevances.shape[0])
    chosen = relevances[rows, :, columns]
    drops = chosen * (np.asarray(activations, dtype=np.float64) - np.asarray(reference_activations)[None, :])
    return _score(row_correlation(chosen, drops), drops=drops)


def relevance_lipschitz(
    relevances: np.ndarray,
    activations: np.ndarray,
    X: np.ndarray,
    pool_relevances: np.ndarray,
    pool_activations: np.ndarray,
    pool: np.ndarray,
    radius: float,
) -> dict[str, Score]:
    """SENN's own stability estimates of the relevances θ alone, over the dataset neighbours within ``radius``.

    The SENN code's ``sample_local_lipschitz`` takes, for each row, the neighbour that maximises
    ``‖θ(x) − θ(z)‖₂ / ‖x − z‖₂`` (its mode 1) or ``‖θ(x) − θ(z)‖₂ / ‖h(x) − h(z)‖₂`` (mode 2, its default: the
    relevances' change per change of the concepts, which is what the robustness loss asks to be small). Unlike
    :func:`xai.metrics.lipschitz_discrete` of the explanation ``θ·(h − h(m))``, neither sees the activations'
    scale in the numerator. The neighbours are the pool rows within ``radius`` of the row in input space (as the
    discrete estimate); a pair with equal concepts is skipped in mode 2; NaN for a row without a neighbour.

    Returns:
        ``{"input": mode 1, "concepts": mode 2}``.

    Shape:
        relevances ``(N, K, C)`` (or ``(N, K)``), activations ``(N, K)``, X ``(N, D)``; the pool's ``(M, ...)``
        -> per_row ``(N,)`` each
    """
    theta = np.asarray(relevances, dtype=np.float64).reshape(len(relevances), -1)
    pool_theta = np.asarray(pool_relevances, dtype=np.float64).reshape(len(pool_relevances), -1)
    change = cdist(theta, pool_theta)
    distance = cdist(np.asarray(X, dtype=np.float64), np.asarray(pool, dtype=np.float64))
    concept_distance = cdist(np.asarray(activations, dtype=np.float64), np.asarray(pool_activations, np.float64))
    near = (distance > 0) & (distance <= radius)
    scores = {}
    for name, denominator in (("input", distance), ("concepts", concept_distance)):
        valid = near & (denominator > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(valid, change / np.where(valid, denominator, 1.0), -np.inf).max(axis=1)
        scores[name] = _score(np.where(np.isfinite(ratio), ratio, np.nan))
    return scores


def neighbour_radius(X: np.ndarray, pool: np.ndarray, k: int = K_NEIGHBOURS) -> float:
    """The median, over the rows of ``X``, of the distance to their ``k``-th nearest (distinct) row of ``pool``.

    A scale-free radius for the discrete Lipschitz estimate: about half the rows have ``k`` neighbours within it,
    whatever the number of input columns (SENN's fixed radius 1 finds no neighbour in 20 standardised columns).
    """
    distance = cdist(np.asarray(X, dtype=np.float64), np.asarray(pool, dtype=np.float64))
    distance[distance == 0] = np.inf  # the row itself (or a duplicate) is no neighbour
    k = min(k, distance.shape[1])
    kth = np.partition(distance, k - 1, axis=1)[:, k - 1]
    finite = kth[np.isfinite(kth)]
    return float(np.median(finite)) if finite.size else float("nan")


def explanation_metrics(
    spec: Any,
    model: Any,
    split: Any,
    *,
    reference: str = "mean",
    n_rows: int = N_ROWS,
    n_pool: int = N_POOL,
    k_neighbours: int = K_NEIGHBOURS,
    epsilon: float = EPSILON,
    n_candidates: int = N_CANDIDATES,
    n_rounds: int = N_ROUNDS,
    seed: int = 0,
) -> dict[str, Any]:
    """SENN's stability and faithfulness of a registered method's native explanation, for ``output_info.json``.

    Evaluated on ``n_rows`` seeded test rows; the discrete estimate's neighbours are up to ``n_pool`` training
    rows within :func:`neighbour_radius`; the continuous one searches the box ``x ± epsilon`` (in model input
    units: standardised numerical columns) clipped to the training range.

    Returns:
        ``test_lipschitz_discrete``, ``test_lipschitz_continuous``, ``test_removal_faithfulness`` (floats), for
        learned concepts and for generated weights (``extras["weights"]``: identity-concept SENN, INN) also SENN's
        estimates of the relevances alone (:func:`relevance_lipschitz`: ``test_relevance_lipschitz``, per change
        of the concepts, and ``test_relevance_lipschitz_input``, per change of the input; the two are equal for
        identity concepts), and an ``explanation_metrics`` block with the settings, the discrete estimate's
        coverage and what was removed.
        Methods fed frames (native categoricals) get only the block, saying why.
    """
    if spec.input_kind != "matrix":
        return {"explanation_metrics": {"skipped": "needs a numeric input matrix (this method reads frames)"}}
    rng = np.random.default_rng(seed)
    X_train, X_test = (np.asarray(part, dtype=np.float32) for part in spec.inputs(split))
    rows = np.sort(rng.choice(X_test.shape[0], size=min(n_rows, X_test.shape[0]), replace=False))
    pool = X_train[np.sort(rng.choice(X_train.shape[0], size=min(n_pool, X_train.shape[0]), replace=False))]
    X = X_test[rows]
    attribution = spec.explain(model, split, X, reference=reference)
    concepts = spec.explains_concepts(model)

    def explain(points: np.ndarray) -> np.ndarray:
        values = spec.explain(model, split, np.asarray(points, dtype=np.float32), reference=reference).values
        return values.reshape(values.shape[0], -1)

    radius = neighbour_radius(X, pool, k_neighbours)
    discrete = lipschitz_discrete(explain, X, neighbours=pool, radius=radius)
    continuous = lipschitz_continuous(
        explain,
        X,
        radius=epsilon,
        ball="box",
        n_candidates=n_candidates,
        n_rounds=n_rounds,
        data_range=(X_train.min(axis=0), X_train.max(axis=0)),
        rng=seed,
    )
    columns = explained_columns(attribution.output)
    if concepts:
        extras = attribution.extras
        faithfulness = concept_removal_faithfulness(
            extras["relevances"], extras["activations"], extras["reference_activations"], columns
        )
        removal = "concepts: relevance θ_k(x) vs the drop θ_k(x)·(h_k(x) − h_k(m)) with θ(x) held fixed (SENN)"
        pooled = spec.explain(model, split, pool, reference=reference).extras
        relevance = relevance_lipschitz(
            extras["relevances"], extras["activations"], X, pooled["relevances"], pooled["activations"], pool, radius
        )
        concept_scores = {
            "test_relevance_lipschitz": relevance["concepts"].value,
            "test_relevance_lipschitz_input": relevance["input"].value,
        }
    else:
        groups = [np.flatnonzero(split.input_to_feature == feature) for feature in range(len(split.feature_names))]
        point = attribution.reference if attribution.reference is not None else X_train.mean(axis=0)
        faithfulness = removal_faithfulness(
            lambda points: spec.output(model, points), X, attribution.values, point, groups, columns
        )
        removal = f"features set to the reference ({attribution.reference_name}); attribution vs drop"
        concept_scores = {}
        weights = attribution.extras.get("weights")
        if weights is not None and weights.shape[1] == X.shape[1] + 1:
            # Identity concepts h = x: SENN's estimate of θ (its intercept's row included, as the SENN code's).
            pooled = spec.explain(model, split, pool, reference=reference).extras["weights"]
            relevance = relevance_lipschitz(weights, X, X, pooled, pool, pool, radius)
            concept_scores = {
                "test_relevance_lipschitz": relevance["concepts"].value,
                "test_relevance_lipschitz_input": relevance["input"].value,
            }
    return {
        "test_lipschitz_discrete": discrete.value,
        "test_lipschitz_continuous": continuous.value,
        "test_removal_faithfulness": faithfulness.value,
        **concept_scores,
        "explanation_metrics": {
            "explanation": f"{attribution.explainer} over {'concepts' if concepts else 'features'}, every output",
            "output": attribution.output_name,
            "n_rows": int(X.shape[0]),
            "discrete_radius": radius,
            "discrete_neighbours": int(pool.shape[0]),
            "discrete_coverage": float(discrete.extras["coverage"]),
            "continuous_epsilon": epsilon,
            "continuous_evaluations": int(X.shape[0] * n_candidates * n_rounds),
            "removal": removal,
            "removal_output": "the row's predicted class" if attribution.n_outputs > 1 else "the single output",
        },
    }
