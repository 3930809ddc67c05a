"""The control explainer: independent standard normal attributions, seeded, unrelated to the model.

XAI-Bench's ``random`` explainer: every metric of a real explainer should beat it. The values are drawn from a
generator created with the seed, so the same explainer object explains successive calls with successive draws
and a fresh one with the same seed repeats them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from explainers.posthoc import PostHocExplainer, PostHocOptions, Predict
from models.attribution import Attribution

if TYPE_CHECKING:
    from typing import Unpack


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
        **options: Unpack[PostHocOptions],
    ) -> None:
        super().__init__(predict, background, **options)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def explain(self, X: Any) -> Attribution:
        """Random attributions ``(N, F, C)``; ``rest`` is what they leave of the output."""
        X = self.check_rows(X)
        output = self.outputs(X)
        values = self._rng.standard_normal((X.shape[0], self.grouping.n_features, output.shape[1]))
        return self.attribution(values, output, reference_name="none (random values)")
