"""The control explainer: independent standard normal attributions, seeded, unrelated to the model.

XAI-Bench's ``random`` explainer: every metric of a real explainer should beat it. The values are drawn from a
generator created with the seed, so the same explainer object explains successive calls with successive draws
and a fresh one with the same seed repeats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from explainers.attribution import Attribution
from explainers.posthoc import DEFAULT_CHUNK_SIZE, PostHocExplainer, Predict


class RandomExplainer(PostHocExplainer):
    """i.i.d. ``N(0, 1)`` attributions of every feature (the model is called only for the explained outputs).

    Args:
        predict: the model, ``(M, D) -> (M,)`` or ``(M, C)``.
        background: background rows ``(B, D)`` (only their width is used).
        seed: seed of the draws.
        input_to_feature, feature_names, output_name, chunk_size: see :class:`~explainers.posthoc.PostHocExplainer`.
    """

    id = "random"
    exact = False

    def __init__(
        self,
        predict: Predict,
        background: np.ndarray,
        *,
        seed: int = 0,
        input_to_feature: Sequence[int] | np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        output_name: str = "prediction",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        super().__init__(
            predict,
            background,
            input_to_feature=input_to_feature,
            feature_names=feature_names,
            output_name=output_name,
            chunk_size=chunk_size,
        )
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def explain(self, X: Any) -> Attribution:
        """Random attributions ``(N, F, C)``; ``rest`` is what they leave of the output."""
        X = self.check_rows(X)
        output = self.outputs(X)
        values = self._rng.standard_normal((X.shape[0], self.grouping.n_features, output.shape[1]))
        return self.attribution(values, output, reference_name="none (random values)")
