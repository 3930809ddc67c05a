"""Tests of ``xai.sensitivity``: behavioural sensitivity per feature and its comparison with an explanation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xai.sensitivity import compare_with_explanation, feature_groups, resampling_sensitivity


def test_sensitivity_of_a_linear_model_follows_its_weights_and_ignores_unused_features() -> None:
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(4000, 3))
    X = rng.normal(size=(300, 3))
    weights = np.array([2.0, -1.0, 0.0])
    sensitivity = resampling_sensitivity(lambda rows: rows @ weights[:, None], X, pool, n_repeats=20, seed=1)
    # For independent standard normals, E|w (x - x')| = |w| · E|N(0, 2)| = |w| · 2 / sqrt(pi).
    np.testing.assert_allclose(sensitivity, np.abs(weights) * 2 / np.sqrt(np.pi), rtol=0.05, atol=1e-12)
    assert sensitivity[2] == 0.0


def test_a_feature_s_columns_move_together_and_frames_work() -> None:
    # Two one-hot columns of one feature: resampling them separately could create impossible rows (1, 1).
    pool = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 5.0]] * 50)
    X = pool[:10].copy()
    seen: list[np.ndarray] = []

    def output(rows: np.ndarray) -> np.ndarray:
        seen.append(rows)
        return rows[:, :1] * 3.0

    groups = feature_groups([0, 0, 1], 2)
    assert [group.tolist() for group in groups] == [[0, 1], [2]]
    resampling_sensitivity(output, X, pool, groups, n_repeats=4)
    for rows in seen:
        assert set(rows[:, :2].sum(axis=1)) == {1.0}  # every row still has exactly one hot column
    frame = pd.DataFrame({"colour": ["red", "blue"] * 20, "size": np.arange(40.0)})
    values = resampling_sensitivity(
        lambda rows: (rows["colour"] == "red").to_numpy(dtype=float)[:, None], frame, frame, n_repeats=3
    )
    assert values[0] > 0.3 and values[1] == 0.0


def test_comparison_flags_a_feature_the_explanation_hides() -> None:
    comparison = compare_with_explanation(
        sensitivity=np.array([0.6, 0.3, 0.1]), explanation_importance=np.array([0.05, 0.55, 0.40]), feature_names="abc"
    )
    assert comparison.flagged == ("a", "c")  # a: 60 % of the behaviour, 5 % of the explanation; c the reverse
    np.testing.assert_allclose(comparison.sensitivity_share.sum(), 1.0)
    assert comparison.rank_correlation == pytest.approx(-0.5)  # ranks (3, 2, 1) against (1, 3, 2)
    table = comparison.table()
    assert table["feature"].tolist() == ["a", "b", "c"] and table["flagged"].tolist() == [True, False, True]
    agreeing = compare_with_explanation(np.array([3.0, 2.0, 1.0]), np.array([0.5, 0.3, 0.2]), ["x", "y", "z"])
    assert agreeing.rank_correlation == pytest.approx(1.0) and agreeing.flagged == ()
