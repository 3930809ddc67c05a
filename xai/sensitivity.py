"""How much a fitted model actually uses each feature, measured by behaviour, and whether its explanation agrees.

An explanation can be exact (its values add up to the output) and still understate how much the model relies on
a feature: a hypernetwork can route a feature's influence through the OTHER generated weights and the bias
rather than through its own weight. Behaviour settles it. :func:`resampling_sensitivity` replaces one original
feature (all its input columns together, so one-hot blocks stay valid) by the same feature of random training
rows and measures the mean absolute change of the model's output; :func:`compare_with_explanation` puts that next
to the explanation's global importance: the rank correlation over features, each feature's share of both, and the
features on which the two disagree.

Everything is batched: one model call per feature over ``N × n_repeats`` rows (chunked to bound memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

OutputFunction = Callable[[np.ndarray | pd.DataFrame], np.ndarray]

#: A feature whose shares of sensitivity and explanation differ by more than this factor is flagged
#: (when it holds at least :data:`FLAG_MIN_SHARE` of either).
FLAG_RATIO = 2.0
FLAG_MIN_SHARE = 0.05


def feature_groups(input_to_feature: Sequence[int] | np.ndarray, n_features: int) -> list[np.ndarray]:
    """The input columns of every original feature (a one-hot feature's columns form one group)."""
    mapping = np.asarray(input_to_feature, dtype=np.int64)
    return [np.flatnonzero(mapping == feature) for feature in range(n_features)]


def resampling_sensitivity(
    output: OutputFunction,
    X: np.ndarray | pd.DataFrame,
    pool: np.ndarray | pd.DataFrame,
    groups: Sequence[np.ndarray] | None = None,
    *,
    n_repeats: int = 5,
    seed: int = 0,
    max_rows_per_call: int = 200_000,
) -> np.ndarray:
    """Mean |change of the output| when each feature is resampled from ``pool``, per feature ``(F,)``.

    For every feature ``f`` and every row of ``X``, the columns of ``f`` are replaced ``n_repeats`` times by those
    of a random row of ``pool`` (the training rows: the feature's marginal, all its columns from one row), and
    ``|output(x') − output(x)|`` is averaged over rows and repeats and summed over the output columns.

    Args:
        output: ``output(X) -> (N, C)``, the output the explanation under test explains (e.g.
            ``spec.output(model, ·)``: logits for networks).
        X: the rows to perturb ``(N, D)`` (matrix or frame).
        pool: rows to draw replacement values from ``(M, D)``, same columns as ``X``.
        groups: the input columns of each feature (default: one column each).
        n_repeats: draws per row and feature.
        seed: seeds the draws (the same draws for every model explained with the same seed and data).
        max_rows_per_call: rows per model call.

    Shape:
        X ``(N, D)``, pool ``(M, D)`` -> ``(F,)``
    """
    frame = isinstance(X, pd.DataFrame)
    n_rows = len(X)
    if groups is None:
        groups = [np.array([column]) for column in range(X.shape[1])]
    base = np.asarray(output(X), dtype=np.float64).reshape(n_rows, -1)
    rng = np.random.default_rng(seed)
    repeated = (
        X.iloc[np.tile(np.arange(n_rows), n_repeats)].reset_index(drop=True) if frame else np.tile(X, (n_repeats, 1))
    )
    reference = np.tile(base, (n_repeats, 1))
    sensitivity = np.zeros(len(groups))
    for feature, columns in enumerate(groups):
        donors = rng.integers(0, len(pool), size=n_rows * n_repeats)
        perturbed = repeated.copy()
        if frame:
            for column in columns:
                name = X.columns[column]
                perturbed[name] = pool[name].to_numpy()[donors]
        else:
            perturbed[:, columns] = np.asarray(pool)[donors][:, columns]
        changes = []
        for start in range(0, len(perturbed), max_rows_per_call):
            part = (
                perturbed.iloc[start : start + max_rows_per_call]
                if frame
                else perturbed[start : start + max_rows_per_call]
            )
            moved = np.asarray(output(part), dtype=np.float64).reshape(len(part), -1)
            changes.append(np.abs(moved - reference[start : start + max_rows_per_call]).sum(axis=1))
        sensitivity[feature] = float(np.concatenate(changes).mean()) if changes else 0.0
    return sensitivity


@dataclass(frozen=True)
class SensitivityComparison:
    """A model's measured sensitivity to each feature next to its explanation's importance.

    Attributes:
        feature_names: ``F`` names.
        sensitivity: mean |Δ output| per feature (:func:`resampling_sensitivity`).
        sensitivity_share: the same, normalised to sum 1.
        explanation_share: the explanation's global importance (mean |attribution|), normalised to sum 1.
        rank_correlation: Spearman's ρ between the two over features (NaN when either is constant).
        flagged: features whose two shares differ by more than :data:`FLAG_RATIO` while one of them is at
            least :data:`FLAG_MIN_SHARE`: where the explanation and the behaviour disagree.
    """

    feature_names: tuple[str, ...]
    sensitivity: np.ndarray
    sensitivity_share: np.ndarray
    explanation_share: np.ndarray
    rank_correlation: float
    flagged: tuple[str, ...]

    def table(self) -> pd.DataFrame:
        """One row per feature, sorted by sensitivity: the shares, their ratio and the flag."""
        frame = pd.DataFrame(
            {
                "feature": self.feature_names,
                "sensitivity": self.sensitivity,
                "sensitivity_share": self.sensitivity_share,
                "explanation_share": self.explanation_share,
            }
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            frame["explanation_over_sensitivity"] = frame["explanation_share"] / frame["sensitivity_share"]
        frame["flagged"] = frame["feature"].isin(self.flagged)
        return frame.sort_values("sensitivity", ascending=False, kind="stable").reset_index(drop=True)


def _shares(values: np.ndarray) -> np.ndarray:
    values = np.abs(np.asarray(values, dtype=np.float64))
    total = values.sum()
    return values / total if total > 0 else np.full(values.shape, 1.0 / max(values.size, 1))


def compare_with_explanation(
    sensitivity: np.ndarray, explanation_importance: np.ndarray, feature_names: Sequence[str]
) -> SensitivityComparison:
    """Rank correlation and per-feature shares of measured sensitivity and explained importance."""
    sensitivity_share = _shares(sensitivity)
    explanation_share = _shares(explanation_importance)
    if np.ptp(sensitivity_share) == 0 or np.ptp(explanation_share) == 0:
        correlation = float("nan")
    else:
        correlation = float(spearmanr(sensitivity_share, explanation_share).statistic)
    large = np.maximum(sensitivity_share, explanation_share) >= FLAG_MIN_SHARE
    with np.errstate(divide="ignore"):
        ratio = np.where(explanation_share > 0, sensitivity_share / np.maximum(explanation_share, 1e-300), np.inf)
    disagree = large & ((ratio > FLAG_RATIO) | (ratio < 1.0 / FLAG_RATIO))
    names = tuple(str(name) for name in feature_names)
    return SensitivityComparison(
        feature_names=names,
        sensitivity=np.asarray(sensitivity, dtype=np.float64),
        sensitivity_share=sensitivity_share,
        explanation_share=explanation_share,
        rank_correlation=correlation,
        flagged=tuple(name for name, flag in zip(names, disagree, strict=True) if flag),
    )


def model_sensitivity(spec, model, split, *, n_repeats: int = 5, seed: int = 0) -> np.ndarray:
    """:func:`resampling_sensitivity` of a registered method's fitted model on ``split``'s test rows, per original
    feature, on the output its native explanation explains; replacements come from the training rows."""
    train, test = spec.inputs(split)
    if spec.input_kind == "frame":
        groups = [np.array([column]) for column in range(train.shape[1])]
    else:
        groups = feature_groups(split.input_to_feature, len(split.feature_names))
    return resampling_sensitivity(
        lambda rows: spec.output(model, rows), test, train, groups, n_repeats=n_repeats, seed=seed
    )
