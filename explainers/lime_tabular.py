"""LIME (Ribeiro et al. 2016) from the ``lime`` package: a weighted linear model fitted around each row.

Without a feature grouping (one column per feature) this is ``lime.lime_tabular.LimeTabularExplainer`` in
regression mode, as XAI-Bench runs it: continuous features discretised into training quartiles, perturbations
drawn from the training statistics, an exponential kernel of width ``kernel_width`` (XAI-Bench: ``0.5·√F``;
LIME's default ``0.75·√F``), ``n_samples`` perturbations per row (LIME's default 5000); the attribution of a
feature is the coefficient of its "in the row's quartile" indicator. lime stores regression coefficients under
label 1 and their negatives under label 0 (XAI-Bench reads label 0 and negates); label 1 is read here.
Feature selection is off (``"none"``): with as many features as the data has, LIME's ``"auto"`` selects them all
and fits the same final model, only more slowly.

With a feature grouping (encoded columns), LIME's per-column sampling would break one-hot blocks, so the
interpretable representation is the one LIME uses for images and text: a binary vector ``z`` over features
(``z_j = 1``: feature ``j`` keeps the row's columns, ``0``: it takes all its columns from one random background
row), ``z`` uniform with the first sample all ones, weights ``√exp(−‖1 − z‖²/width²)``, and lime's own
weighted ridge (``lime.lime_base.LimeBase``). The attribution is the coefficient of ``z_j``.

Rows are explained one by one (each is its own regression); every row's perturbations go to the model in one
call. ``lime`` is optional (:class:`~errors.MissingDependencyError` without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from errors import MissingDependencyError
from explainers.posthoc import PostHocExplainer, PostHocOptions, Predict, predict_outputs
from models.attribution import Attribution

if TYPE_CHECKING:
    from typing import Unpack


def _import_lime() -> Any:
    try:
        import lime.lime_base
        import lime.lime_tabular
    except ImportError as exc:
        raise MissingDependencyError("lime", "the LIME explainer") from exc
    return lime


class Lime(PostHocExplainer):
    """LIME attributions of every feature.

    Args:
        predict: the model, ``(M, D) -> (M,)`` or ``(M, C)``.
        background: the training rows ``(B, D)`` (LIME's statistics; off features' values when grouped).
        n_samples: perturbations per row.
        kernel_width: the kernel's width (``None``: LIME's default ``0.75·√F``).
        discretize_continuous: LIME's quartile discretisation (ungrouped data only).
        categorical_features: columns LIME treats as categorical codes (ungrouped data only, e.g. a frame-level
            predict function over codes).
        seed: seed of LIME's sampling.
        input_to_feature, feature_names, output_name, chunk_size: see :class:`~explainers.posthoc.PostHocExplainer`.
    """

    id = "lime"
    exact = False

    def __init__(
        self,
        predict: Predict,
        background: np.ndarray,
        *,
        n_samples: int = 5000,
        kernel_width: float | None = None,
        discretize_continuous: bool = True,
        categorical_features: Sequence[int] | None = None,
        seed: int = 0,
        **options: Unpack[PostHocOptions],
    ) -> None:
        super().__init__(predict, background, **options)
        if n_samples < 2:
            raise ValueError(f"n_samples must be at least 2, got {n_samples=}")
        if kernel_width is not None and not kernel_width > 0:
            raise ValueError(f"kernel_width must be positive, got {kernel_width=}")
        if categorical_features and not self.grouping.identity:
            raise ValueError("categorical_features apply to ungrouped data; a grouping already moves whole features")
        self.n_samples = n_samples
        self.kernel_width = kernel_width if kernel_width is not None else 0.75 * np.sqrt(self.grouping.n_features)
        self.discretize_continuous = discretize_continuous
        self.categorical_features = list(categorical_features or [])
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def _tabular(self, X: np.ndarray, n_outputs: int) -> np.ndarray:
        lime = _import_lime()
        explainer = lime.lime_tabular.LimeTabularExplainer(
            self.background,
            mode="regression",
            feature_names=list(self.feature_names),
            categorical_features=self.categorical_features,
            kernel_width=self.kernel_width,
            feature_selection="none",
            discretize_continuous=self.discretize_continuous,
            random_state=self.seed,
        )
        n_features = self.grouping.n_features
        values = np.zeros((X.shape[0], n_features, n_outputs))
        for c in range(n_outputs):

            def function(points: np.ndarray, c: int = c) -> np.ndarray:
                return predict_outputs(self.predict, np.asarray(points, dtype=np.float64), self.chunk_size)[:, c]

            for i in range(X.shape[0]):  # one local regression per row: LIME's unit of work
                explanation = explainer.explain_instance(
                    X[i], function, num_features=n_features, num_samples=self.n_samples
                )
                for feature, weight in explanation.local_exp[1]:
                    values[i, feature, c] = weight
        return values

    def _grouped(self, X: np.ndarray, n_outputs: int) -> np.ndarray:
        lime = _import_lime()
        n_features = self.grouping.n_features
        base = lime.lime_base.LimeBase(
            lambda d, width=self.kernel_width: np.sqrt(np.exp(-(d**2) / width**2)), random_state=self.seed
        )
        values = np.zeros((X.shape[0], n_features, n_outputs))
        for i in range(X.shape[0]):  # one local regression per row
            z = self._rng.integers(0, 2, size=(self.n_samples, n_features)).astype(bool)
            z[0] = True
            donors = self.background[self._rng.integers(0, self.background.shape[0], size=self.n_samples)]
            points = np.where(self.grouping.columns(z), X[i][None, :], donors)
            outputs = predict_outputs(self.predict, points, self.chunk_size)
            distances = np.sqrt((~z).sum(axis=1).astype(np.float64))
            for c in range(n_outputs):
                _, weights, _, _ = base.explain_instance_with_data(
                    z.astype(np.float64), outputs[:, c : c + 1], distances, 0, n_features, feature_selection="none"
                )
                for feature, weight in weights:
                    values[i, feature, c] = weight
        return values

    def explain(self, X: Any) -> Attribution:
        """LIME coefficients ``(N, F, C)``; ``rest`` is what they leave of the output."""
        X = self.check_rows(X)
        output = self.outputs(X)
        if self.grouping.identity:
            values = self._tabular(X, output.shape[1])
            name = "training statistics (LIME's quartile sampling)"
        else:
            values = self._grouped(X, output.shape[1])
            name = "background rows (features switched off)"
        return self.attribution(values, output, reference_name=name)
