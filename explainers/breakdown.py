"""BreakDown (Staniak & Biecek 2018): a greedy path from the row to the background, one feature at a time.

Direction ``down`` (XAI-Bench's setting): start from ``v(all) = f(x)``; at every step remove (replace by the
background rows, all its columns at once) the open feature whose removal keeps the mean prediction closest to
``f(x)``; a feature's contribution is the drop in ``v`` at its step. Direction ``up``: start from ``v(∅)``, the
mean over the background, and add the open feature that moves the mean furthest from ``v(∅)``; a feature's
contribution is the rise at its step. Either way the contributions add up to ``f(x) − v(∅)``. All rows take each
step together (one batched evaluation of every row's open candidates per step): ``N · F(F + 1)/2 · B`` inputs.

Defect of XAI-Bench's port (``compat=True`` reproduces it): it returns the contributions in the order the
features were visited (the reverse of the removal order), not at the features' own positions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from explainers.posthoc import BackgroundSampleExplainer, Predict, SampleOptions, interventional_values
from models.attribution import Attribution

if TYPE_CHECKING:
    from typing import Unpack

Direction = Literal["down", "up"]
DIRECTIONS: tuple[Direction, ...] = ("down", "up")


class BreakDown(BackgroundSampleExplainer):
    """Greedy sequential attributions against a background sample.

    Args:
        predict: the model, ``(M, D) -> (M,)`` or ``(M, C)``.
        background: background rows ``(B, D)``; ``background_size`` of them are drawn with ``seed``.
        direction: ``down`` (remove features from the row) or ``up`` (add them to the background).
        compat: return each row's contributions in visit order, as XAI-Bench's port does.
        background_size, seed: the background sample, see :class:`~explainers.posthoc.BackgroundSampleExplainer`.
        input_to_feature, feature_names, output_name, chunk_size: see :class:`~explainers.posthoc.PostHocExplainer`.
    """

    id = "breakdown"
    exact = True

    def __init__(
        self,
        predict: Predict,
        background: np.ndarray,
        *,
        direction: Direction = "down",
        compat: bool = False,
        **options: Unpack[SampleOptions],
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        super().__init__(predict, background, **options)
        self.direction = direction
        self.compat = compat

    def _path(self, X: np.ndarray, output: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Contributions ``(N, F)`` by feature, the visit order ``(N, F)`` and ``(v(all), v(∅))`` of one output."""
        n, n_features = X.shape[0], self.grouping.n_features
        rows = np.arange(n)
        down = self.direction == "down"
        # ``present``: features currently taken from x. Down starts with all of them, up with none.
        present = np.full((n, n_features), down)
        ends = interventional_values(
            self.predict,
            X,
            np.array([np.ones(n_features, bool), np.zeros(n_features, bool)]),
            self.sample,
            self.grouping,
            chunk_size=self.chunk_size,
        )[:, :, output]
        full, empty = ends[:, 0], ends[:, 1]
        current = full.copy() if down else empty.copy()
        contributions = np.zeros((n, n_features))
        visited = np.empty((n, n_features), dtype=np.int64)
        for step in range(n_features):
            # Every row has the same number of open features: gather them as an (N, open) index matrix.
            open_features = np.nonzero(present == down)[1].reshape(n, n_features - step)
            candidates = np.repeat(present[:, None, :], open_features.shape[1], axis=1)
            candidates[rows[:, None], np.arange(open_features.shape[1])[None, :], open_features] = not down
            values = interventional_values(
                self.predict, X, candidates, self.sample, self.grouping, chunk_size=self.chunk_size
            )[:, :, output]
            if down:  # the removal that keeps the mean closest to f(x)
                pick = np.argmin(np.abs(full[:, None] - values), axis=1)
            else:  # the addition that moves the mean furthest from v(∅)
                pick = np.argmax(np.abs(values - empty[:, None]), axis=1)
            feature = open_features[rows, pick]
            chosen = values[rows, pick]
            contributions[rows, feature] = current - chosen if down else chosen - current
            visited[:, step] = feature
            present[rows, feature] = not down
            current = chosen
        return contributions, visited, ends

    def explain(self, X: Any) -> Attribution:
        """Contributions ``(N, F, C)``; ``rest`` is ``v(∅)``, the mean output over the background sample."""
        X = self.check_rows(X)
        output = self.outputs(X)
        values = np.empty((X.shape[0], self.grouping.n_features, output.shape[1]))
        rest = np.empty_like(output)
        order = np.empty((X.shape[0], self.grouping.n_features, output.shape[1]), dtype=np.int64)
        for c in range(output.shape[1]):  # a greedy path per output
            contributions, visited, ends = self._path(X, c)
            rest[:, c] = ends[:, 1]
            order[:, :, c] = visited
            if self.compat:
                # Public port: the down path's contributions in reverse removal order (the up path's in add order).
                sequence = visited[:, ::-1] if self.direction == "down" else visited
                contributions = np.take_along_axis(contributions, sequence, axis=1)
            values[:, :, c] = contributions
        return self.attribution(
            values,
            output,
            rest=None if self.compat else rest,
            reference_name=self.sample_name,
            extras={"visit_order": order, "base_value": rest},
        )
