"""The interpretability benchmark's metrics on plain arrays, corrected, with a ``compat`` mode for the public code.

A model is ``predict(X (M, d)) -> (M,)`` (regression outputs); attributions are ``(N, d)`` arrays aligned with the
rows ``X (N, d)``; a retraining metric takes ``fit(X_train, y_train) -> predict``. Every metric returns a
:class:`MetricResult` (the per-row scores, their mean, the direction) and is listed in :data:`METRICS` with its
direction (``higher`` or ``lower`` is better). Model calls are batched: all rows × samples (× removal steps) are
flattened and sent in chunks of ``chunk_size`` rows; nothing loops over rows in Python.

Metrics of XAI-Bench (Liu et al. 2021; definitions from its public code, abacusai/xai-bench f0431a7):
:func:`faithfulness`, :func:`monotonicity`, :func:`infidelity`, :func:`roar_faithfulness`,
:func:`roar_monotonicity`, :func:`shapley_mse` and :func:`shapley_corr` (against ``xai.shapley`` ground truth).
Removing a feature means, as there, replacing it by its conditional law given the kept features
(``conditional="observational"``, exact with ``data.synthetic.GaussianDistribution``) or by background values
(``"interventional"``; the public default background is the mean of the evaluated rows, one point).
Other methods' metrics: :func:`local_fidelity_error` (LFR-IMN, Hammer et al.), :func:`lipschitz_discrete` and
:func:`lipschitz_continuous` (SENN's stability, Alvarez-Melis & Jaakkola 2018).

Defects of the public code, corrected here; ``compat=True`` reproduces each one that changes numbers:

1. Monotonicity stores the value after adding feature ``j`` at position ``j + 1`` (the feature's index) instead
   of at the step at which it was added, so the successive differences compare states in feature-index order and
   the metric barely separates exact from random explanations. Corrected: step order. ``compat``: feature order.
   (Also, the public starting value is the mean prediction over the evaluated rows; here it is ``v(∅)`` of the
   chosen value function, so that a row's score does not depend on the other rows. ``compat`` restores it.)
2. ROAR faithfulness correlates ``|φ_i|`` in feature order with the prediction changes in rank order (the change
   after removing each row's r-th most important feature sits at position r). An explanation ranked in index
   order is rewarded and a reversed one scores positive. Corrected: each change is put back at the position of
   the feature it removed. ``compat``: rank order.
3. The interventional path of faithfulness and monotonicity writes the row's values into the shared background
   vector (aliasing), so after the first feature the "ablated" input equals the row and the changes collapse to
   0; the background also carries over from row to row. ``compat`` reproduces that state (one background point).
4. Infidelity divides by ``E[(Iᵀφ)²]``, which is 0 for an all-zero explanation: the public value is NaN. Here the
   optimal scale is 0 then (infidelity = ``E[Δf²]``); ``compat`` returns NaN.
5. The ground truth's missing intercept: see ``xai.shapley`` (``ground_truth_shapley(..., compat=True)``).
6. The data's piecewise-constant level and per-split standardisation: see ``data.synthetic``
   (``make_synthetic(..., compat=True)``).

ROAR monotonicity has no defect (``compat`` changes nothing there). Public-code conventions kept as they are:
faithfulness uses ``|f(x) − v(¬j)|`` and Pearson correlation with ``|φ|`` (NaN → 0); monotonicity adds features
from least to most important and counts non-decreasing successive changes; infidelity perturbs with the
"noisy baseline" ``x̃ = clip(−σz, 0, 1)`` (a baseline near 0, clipped to the image range ``[0, 1]`` of the code it
was ported from) and rescales the explanation optimally. Note that infidelity compares ``Iᵀφ`` with
``f(x) − f(x − I)``: it scores gradient-like explanations (a linear model's weights have infidelity 0), not
additive attributions such as ``w ⊙ x``.

The metrics live by concern: ``common`` (:data:`METRICS`, :class:`MetricResult`, :func:`row_correlation`),
``perturbation`` (faithfulness, monotonicity, infidelity), ``roar`` (remove and retrain), ``shapley_agreement``
(against ground-truth Shapley values) and ``neighbourhood`` (local fidelity, Lipschitz stability).
"""

from xai.metrics.common import METRICS, Direction, Explain, Fit, MetricInfo, MetricResult, row_correlation
from xai.metrics.neighbourhood import lipschitz_continuous, lipschitz_discrete, local_fidelity_error
from xai.metrics.perturbation import faithfulness, infidelity, monotonicity
from xai.metrics.roar import roar_faithfulness, roar_monotonicity
from xai.metrics.shapley_agreement import shapley_corr, shapley_mse

__all__ = [
    "METRICS",
    "Direction",
    "Explain",
    "Fit",
    "MetricInfo",
    "MetricResult",
    "faithfulness",
    "infidelity",
    "lipschitz_continuous",
    "lipschitz_discrete",
    "local_fidelity_error",
    "monotonicity",
    "roar_faithfulness",
    "roar_monotonicity",
    "row_correlation",
    "shapley_corr",
    "shapley_mse",
]
