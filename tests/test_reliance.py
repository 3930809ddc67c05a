"""Behavioural reliance (``xai.reliance``): closed forms for models that ignore or copy ``S``, the draws shared
with ``xai.sensitivity``, the AUROC drop, the explanation share and the runner's report for a baseline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import baseline_experiment
from xai.reliance import (
    PROBABILITY_FLOOR,
    behavioural_reliance,
    explanation_share,
    log_odds,
    logit_differences,
    permuted_rows,
    resampled_rows,
)
from xai.sensitivity import resampling_sensitivity


def _rows(n: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Test rows with S = column 1 all 0, and a pool whose S is all 1 (every draw changes S)."""
    rng = np.random.default_rng(seed)
    X = np.c_[rng.normal(size=n), np.zeros(n), rng.normal(size=n)]
    pool = np.c_[rng.normal(size=3 * n), np.ones(3 * n), rng.normal(size=3 * n)]
    return X, pool


def _auroc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(roc_auc_score(y, proba[:, 1]))


def _proba_of(score) -> callable:
    def proba(rows):
        p = 1.0 / (1.0 + np.exp(-score(np.asarray(rows))))
        return np.c_[1.0 - p, p]

    return proba


def test_a_blind_model_has_zero_reliance_and_a_copying_model_flips_every_prediction():
    X, pool = _rows()
    blind = _proba_of(lambda rows: rows[:, 0])  # ignores S
    copy = _proba_of(lambda rows: 8.0 * (rows[:, 1] - 0.5))  # the prediction is S
    y = (X[:, 0] > 0).astype(int)
    ignoring = behavioural_reliance(X, pool, [1], predict_proba=blind, y=y, auroc=_auroc)
    assert (ignoring.flip_rate, ignoring.mean_abs_delta_logit, ignoring.auroc_drop) == (0.0, 0.0, 0.0)
    copying = behavioural_reliance(X, pool, [1], predict_proba=copy)
    assert copying.flip_rate == 1.0
    assert copying.mean_abs_delta_logit == pytest.approx(8.0, rel=1e-9)  # log-odds -4 -> +4


def test_mean_abs_delta_is_the_sensitivity_of_s_with_the_same_draws():
    rng = np.random.default_rng(1)
    X, pool = rng.normal(size=(40, 4)), rng.normal(size=(90, 4))
    weights = np.array([0.5, -2.0, 1.0, 3.0])

    def logits(rows):
        return (np.asarray(rows) @ weights)[:, None]

    result = behavioural_reliance(X, pool, [1, 3], logits=logits, n_repeats=4, seed=7)
    expected = resampling_sensitivity(logits, X, pool, [np.array([1, 3])], n_repeats=4, seed=7)[0]
    assert result.mean_abs_delta_logit == pytest.approx(expected, rel=1e-12)
    # and, independently, the closed form of a linear logit with the documented draws
    donors = np.random.default_rng(7).integers(0, len(pool), size=len(X) * 4)
    tiled = np.tile(X, (4, 1))
    change = (pool[donors][:, [1, 3]] - tiled[:, [1, 3]]) @ weights[[1, 3]]
    assert result.mean_abs_delta_logit == pytest.approx(np.abs(change).mean(), rel=1e-12)
    assert result.flip_rate is None and result.auroc_drop is None  # no probabilities: a regressor's view


def test_the_auroc_drop_of_a_model_that_reads_only_s():
    rng = np.random.default_rng(2)
    n = 400
    y = rng.integers(0, 2, n)
    X = np.c_[rng.normal(size=n), y + 0.1 * rng.normal(size=n)]
    proba = _proba_of(lambda rows: 5.0 * (rows[:, 1] - 0.5))
    result = behavioural_reliance(X, X, [1], predict_proba=proba, y=y, auroc=_auroc, n_repeats=3)
    assert result.auroc == pytest.approx(1.0)
    # the permuted copies, scored one by one, give the reported mean
    moved = permuted_rows(X, [1], n_repeats=3, seed=1)
    scores = [roc_auc_score(y, proba(moved[k * n : (k + 1) * n])[:, 1]) for k in range(3)]
    assert result.auroc_permuted == pytest.approx(np.mean(scores), rel=1e-12)
    assert result.auroc_drop == pytest.approx(1.0 - np.mean(scores)) and result.auroc_drop > 0.4


def test_permutations_keep_the_columns_of_s_together_and_the_other_columns_in_place():
    X = np.arange(30, dtype=float).reshape(10, 3)
    X[:, 2] = X[:, 1] + 100  # S = columns 1 and 2, tied within a row
    moved = permuted_rows(X, [1, 2], n_repeats=2, seed=0)
    np.testing.assert_array_equal(moved[:, 0], np.tile(X[:, 0], 2))
    np.testing.assert_array_equal(moved[:, 2], moved[:, 1] + 100)
    assert sorted(moved[:10, 1]) == sorted(X[:, 1])


def test_frames_are_resampled_by_column_position_like_matrices():
    X, pool = _rows(8)
    frame, pool_frame = pd.DataFrame(X, columns=list("abc")), pd.DataFrame(pool, columns=list("abc"))
    np.testing.assert_array_equal(
        resampled_rows(frame, pool_frame, [1], n_repeats=2, seed=3).to_numpy(),
        resampled_rows(X, pool, [1], n_repeats=2, seed=3),
    )


def test_logit_differences_and_log_odds():
    np.testing.assert_allclose(logit_differences(np.array([[1.0, 2.0, 6.0]])), [[-2.0, -1.0, 3.0]])
    np.testing.assert_allclose(log_odds(np.array([[0.2, 0.8]])), [[np.log(4.0)]])
    assert log_odds(np.array([[1.0, 0.0]]))[0, 0] == pytest.approx(np.log(PROBABILITY_FLOOR))
    three = np.array([[0.5, 0.25, 0.25]])
    np.testing.assert_allclose(log_odds(three), logit_differences(np.log(three)))


def test_explanation_share_is_the_share_of_s_in_the_global_importance():
    assert explanation_share(np.array([1.0, 3.0, 0.0, 4.0]), [1, 3]) == pytest.approx(7.0 / 8.0)
    assert explanation_share(np.zeros(3), [0]) == 0.0
    assert explanation_share(np.array([1.0, 1.0]), []) == 0.0


def test_a_baseline_run_audits_a_feature(tmp_path):
    out = str(tmp_path)
    flags = ["--model_name", "logistic_regression", "--explanation_metrics", "off", "--output_dir", out]
    assert baseline_experiment.main([*flags, "--audit_features", "checking_status"]) == 0
    report = json.loads((tmp_path / "logistic_regression" / "31" / "0" / "output_info.json").read_text())
    reliance = report["reliance"]
    assert reliance["features"] == ["checking_status"] and not reliance["blind"]
    assert 0.0 < report["test_flip_rate"] < 1.0 and report["test_auroc_drop"] > 0.0
    # the explanation's share is the report's own normalised importance of the feature
    assert reliance["explanation_share"] == pytest.approx(report["feature_importances"]["checking_status"], rel=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# The CDEP experiments' derived data (studies/cdep): the decoy is informative in training rows only


def test_the_decoy_copies_the_label_in_training_rows_only_and_files_keep_the_protocols_split(tmp_path):
    from data import load_dataset
    from studies.cdep import common, decoy_feature

    raw = load_dataset(dataset_id=31)
    paths = common.write_seed_files(raw, [3], tmp_path, decoy_feature.add_decoy, name="credit-g_decoy")
    derived = load_dataset(dataset_path=paths[3])
    from data import prepare_split

    split = prepare_split(derived, seed=3)
    decoy = derived.X["decoy"].to_numpy()
    train, test = split.train_index, split.test_index
    codes = common.label_codes(derived, split)
    assert np.corrcoef(decoy[train], codes[train])[0, 1] > 0.6
    assert abs(np.corrcoef(decoy[test], codes[test])[0, 1]) < 0.2
    assert decoy_feature.base_name(derived.name) == "credit-g"


def test_diagonal_cells_pair_every_file_with_its_own_seed():
    from experiments.sweep import Dataset, expand_cells
    from studies.cdep.common import diagonal_cells

    # 2 datasets x 3 seeds = 6 files (dataset-major, one per seed), 2 methods, numbered by the sweep itself
    seeds = [4, 7, 9]
    files = [Dataset(key=f"d{d}_s{seed}") for d in range(2) for seed in seeds]
    grid = expand_cells(["inn", "senn"], files, seeds)
    chosen = [grid[index] for index in diagonal_cells(len(files), len(seeds), 2)]
    assert [(cell.dataset.key, cell.seed) for cell in chosen[::2]] == [(f.key, int(f.key[-1])) for f in files]
    assert {cell.method for cell in chosen} == {"inn", "senn"} and len(chosen) == 12


def test_the_claimed_versus_behaviour_panel_draws_one_point_per_penalty_and_strength():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plots.reliance import draw_claimed_vs_behaviour, draw_metric_by_penalty

    frame = pd.DataFrame({
        "method": "inn",
        "penalty": ["vanilla", "vanilla", "blind", "weights", "weights", "counterfactual"],
        "strength": [np.nan, np.nan, np.nan, 1.0, 10.0, 1.0],
        "explanation_share": [0.4, 0.2, 0.0, 0.01, 0.02, 0.05],
        "test_flip_rate": [0.5, 0.3, 0.0, 0.4, 0.41, 0.01],
        "test_auroc": [0.6, 0.7, 0.8, 0.6, 0.6, 0.79],
    })  # fmt: skip
    figure, (left, right) = plt.subplots(1, 2)
    draw_claimed_vs_behaviour(left, frame)
    points = np.concatenate([collection.get_offsets() for collection in left.collections])
    # vanilla is the mean of its two runs; every other (penalty, λ) is one point
    assert points.shape == (5, 2) and np.allclose(points[0], [0.3, 0.4])
    assert left.get_title() == "INN"
    draw_metric_by_penalty(right, frame, "test_auroc")
    assert [tick.get_text() for tick in right.get_xticklabels()] == ["weights", "counterfactual"]
    plt.close(figure)


def test_the_claimed_versus_behaviour_figure_clips_no_panel_and_lists_every_penalty():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plots.reliance import claimed_vs_behaviour_figure

    # TabResNet's points stay low; INN's reach higher and INN alone has `weights` (as on COMPAS).
    frame = pd.DataFrame({
        "method": ["tabresnet"] * 3 + ["inn"] * 4,
        "penalty": ["vanilla", "blind", "cd_strict", "vanilla", "blind", "cd_strict", "weights"],
        "strength": [np.nan, np.nan, 1.0, np.nan, np.nan, 1.0, 1.0],
        "explanation_share": [0.07, 0.0, 0.01, 0.08, 0.0, 0.01, 0.0004],
        "test_flip_rate": [0.058, 0.0, 0.007, 0.084, 0.0, 0.021, 0.069],
    })  # fmt: skip
    figure = claimed_vs_behaviour_figure(frame, ["tabresnet", "inn"])
    panels = figure.axes
    for ax in panels:
        points = np.concatenate([collection.get_offsets() for collection in ax.collections])
        (x_low, x_high), (y_low, y_high) = ax.get_xlim(), ax.get_ylim()
        assert (points[:, 0] > x_low).all() and (points[:, 0] < x_high).all()
        assert (points[:, 1] > y_low).all() and (points[:, 1] < y_high).all()
    assert panels[0].get_ylim() == panels[1].get_ylim()
    legend_labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert legend_labels == ["vanilla", "blind", "cd_strict", "weights"]
    plt.close(figure)
