"""SENN in the project: CLI runs (credit-g, digits), named datasets (digits, COMPAS), the explanation metrics of
``xai.stability`` and the concept pictures of ``plots.senn``. Offline, CPU, tiny networks."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

import main_experiment
from data.compas import COLUMNS, compas_task, load_compas
from data.named import load_digits_dataset, load_named_dataset
from experiments.results import read_explanations, read_report
from models.attribution import Attribution, linear_attribution
from xai.stability import (
    concept_removal_faithfulness,
    explained_columns,
    neighbour_radius,
    relevance_lipschitz,
    removal_drops,
    removal_faithfulness,
)

matplotlib.use("Agg")

FAST = ["--nr_epochs", "1", "--hidden_size", "16", "--nr_blocks", "1", "--batch_size", "64", "--device", "cpu"]


# ---------------------------------------------------------------------------------------------------------------
# End to end


@pytest.mark.parametrize(
    ("method", "dataset", "flags"),
    [
        ("senn", "31", []),
        ("disenn", "31", []),
        ("senn", "digits", ["--conceptizer", "autoencoder", "--robust_estimator", "hutchinson"]),
        ("disenn", "digits", ["--robust_estimator", "hutchinson"]),
    ],
)
def test_cli_runs_write_exact_explanations_and_senn_metrics(tmp_path, method, dataset, flags):
    data = ["--dataset", "digits"] if dataset == "digits" else []
    argv = ["--method", method, *FAST, *flags, *data, "--output_dir", str(tmp_path)]
    assert main_experiment.main(argv) == 0
    run = tmp_path / method / dataset / "0"
    report = read_report(run / "output_info.json")
    arrays = read_explanations(run / "explanations.npz")
    concepts = method == "disenn" or "autoencoder" in flags
    for key in ("test_lipschitz_discrete", "test_lipschitz_continuous", "test_removal_faithfulness"):
        assert np.isfinite(report[key]), key
    assert report["explanation_metrics"]["n_rows"] == min(200, report["n_test"])
    assert arrays["exact"] is True and report["explanation"]["additivity_error"] < 1e-4
    np.testing.assert_allclose(arrays["values"].sum(axis=1) + arrays["rest"], arrays["output"], atol=1e-4)
    if concepts:
        k = 5
        assert arrays["explainer"] == "senn_concepts" and arrays["feature_names"].tolist() == [
            f"c{i}" for i in range(k)
        ]
        assert arrays["extra_relevances"].shape == (report["n_test"], k, arrays["values"].shape[2])
        assert arrays["extra_activations"].shape == (report["n_test"], k)
        # A concept explanation maps to no feature: the per-feature fields stay empty, the concepts have theirs.
        assert report["feature_importances"] == {} and report["top_10_features"] == []
        assert sum(report["concept_importances"].values()) == pytest.approx(1.0)
        assert "concepts" in report["explanation_metrics"]["removal"]
        for key in ("test_relevance_lipschitz", "test_relevance_lipschitz_input"):
            assert np.isfinite(report[key]) and report[key] >= 0, key
    else:
        # Identity concepts h = x: SENN's estimate of θ (intercept included) per change of the input, both keys.
        assert np.isfinite(report["test_relevance_lipschitz"]) and report["test_relevance_lipschitz"] >= 0
        assert report["test_relevance_lipschitz_input"] == report["test_relevance_lipschitz"]
        assert arrays["explainer"] == "senn" and arrays["feature_names"].tolist() == report["feature_names"]
        assert sum(report["feature_importances"].values()) == pytest.approx(1.0)
        assert report["config"]["model_params"]["robust_reg"] == 0.1
    if dataset == "digits":
        assert (report["dataset_name"], report["n_classes"]) == ("digits", 10)
        assert arrays["values"].shape[2] == 10


def test_explanation_metrics_can_be_switched_off(tmp_path):
    argv = ["--method", "senn", *FAST, "--explanation_metrics", "off", "--output_dir", str(tmp_path)]
    assert main_experiment.main(argv) == 0
    report = json.loads((tmp_path / "senn" / "31" / "0" / "output_info.json").read_text())
    assert "test_lipschitz_discrete" not in report and "explanation_metrics" not in report


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--dataset", "compas_score"], "needs --dataset_path"),
        (["--dataset", "mnist"], "unknown dataset name"),
        (["--dataset", "digits", "--target", "x"], "fixed target"),
    ],
)
def test_named_dataset_errors_exit_2(tmp_path, capsys, flags, expected):
    argv = ["--method", "senn", *FAST, *flags, "--output_dir", str(tmp_path / "out")]
    assert main_experiment.main(argv) == 2
    assert expected in capsys.readouterr().err and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------------
# Named datasets


def test_digits_are_the_bundled_8x8_images():
    raw = load_digits_dataset()
    assert raw.X.shape == (1797, 64) and raw.dataset_id == "digits" and not any(raw.categorical)
    assert raw.X.columns[9] == "pixel_1_1" and set(raw.y.unique()) == set(range(10))


def _published_compas(path) -> pd.DataFrame:
    """A COMPAS-shaped frame as ProPublica publishes it: the 13 columns plus the filter columns, 8 rows."""
    frame = pd.DataFrame(
        {
            "sex": ["Male", "Female", "Male", "Male", "Female", "Male", "Male", "Female"],
            "age": [69, 34, 24, 23, 43, 44, 41, 39],
            "age_cat": ["Greater than 45", "25 - 45", "Less than 25", "Less than 25", "25 - 45", "25 - 45",
                        "25 - 45", "25 - 45"],
            "race": ["Other", "African-American", "African-American", "Caucasian", "Hispanic", "Asian",
                     "Native American", "Caucasian"],
            "juv_fel_count": [0, 0, 0, 0, 0, 0, 0, 1],
            "juv_misd_count": [0, 0, 0, 1, 0, 0, 0, 0],
            "juv_other_count": [0, 0, 1, 0, 0, 0, 0, 0],
            "priors_count": [0, 0, 4, 1, 2, 0, 14, 0],
            "c_charge_degree": ["F", "F", "F", "M", "O", "M", "F", "M"],
            "c_charge_desc": ["Assault", "Battery", "Possession", "Battery", "Other", "Theft", "Burglary", "Theft"],
            "decile_score": [1, 3, 4, 8, 1, 1, 6, 4],
            "score_text": ["Low", "Low", "Low", "High", "Low", "Low", "Medium", "N/A"],
            "two_year_recid": [0, 1, 1, 0, 0, 0, 1, 0],
            "days_b_screening_arrest": [-1, -1, -1, 99, 0, 0, -1, 0],
            "is_recid": [0, 1, 1, 0, 0, -1, 1, 0],
            "name": ["a", "b", "c", "d", "e", "f", "g", "h"],
        }
    )  # fmt: skip
    frame.to_csv(path, index=False)
    return frame


def test_compas_filters_the_published_file_and_builds_both_tasks(tmp_path):
    _published_compas(tmp_path / "compas.csv")
    # Filters: row 3 (screening 99 days out), 4 (charge degree O), 5 (is_recid -1), 7 (score N/A) go.
    recidivism = load_compas(tmp_path / "compas.csv", "recidivism")
    assert recidivism.X.shape == (4, 10) and list(recidivism.X.columns) == list(COLUMNS[:10])
    assert recidivism.y.tolist() == [0, 1, 1, 1] and recidivism.target == "two_year_recid"
    assert [name for name, flag in zip(recidivism.X.columns, recidivism.categorical, strict=True) if flag] == [
        "sex", "age_cat", "race", "c_charge_degree", "c_charge_desc"
    ]  # fmt: skip
    score = load_named_dataset("compas_score", path=tmp_path / "compas.csv")
    assert score.X.shape == (4, 11) and not any(score.categorical) and score.target == "score_factor"
    assert score.y.tolist() == [0, 0, 0, 1]  # Medium counts as not Low
    first = score.X.iloc[0]
    assert first["Other"] == 1 and first["Age_Above_FourtyFive"] == 1 and first["Female"] == 0
    assert score.X["African_American"].tolist() == [0, 1, 1, 0] and score.X["Native_American"].tolist()[-1] == 1
    assert score.X["Number_of_Priors"].tolist() == [0, 0, 4, 14] and score.X["Two_yr_Recidivism"].sum() == 3
    # The filtered, de-identified file (only the 13 columns) reads the same.
    filtered = tmp_path / "filtered.csv"
    pd.read_csv(tmp_path / "compas.csv").loc[[0, 1, 2, 6], list(COLUMNS)].to_csv(filtered, index=False)
    pd.testing.assert_frame_equal(load_compas(filtered, "score").X, score.X)
    with pytest.raises(ValueError, match="task"):
        compas_task(pd.read_csv(filtered), "decile")


# ---------------------------------------------------------------------------------------------------------------
# xai.stability


def test_removal_faithfulness_is_one_for_a_linear_model_and_detects_hidden_interactions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    weights = np.array([2.0, -1.0, 0.5, 0.0])
    reference = X.mean(axis=0)
    groups = [np.array([0]), np.array([1]), np.array([2, 3])]  # feature 2 spans two columns

    def linear(rows):
        return (np.asarray(rows, dtype=np.float64) @ weights + 1.0)[:, None]

    attribution = linear_attribution(weights[:, None], np.ones(1), X, reference, feature_names=list("abcd"),
                                     explainer="linear", reference_name="mean")  # fmt: skip
    values = np.stack([attribution.values[:, 0], attribution.values[:, 1], attribution.values[:, 2:].sum(1)], 1)
    score = removal_faithfulness(linear, X, values, reference, groups)
    np.testing.assert_allclose(score.extras["drops"], values[:, :, 0], rtol=1e-5, atol=1e-5)
    assert score.value == pytest.approx(1.0)

    # A model with an interaction the explanation leaves out: the drops no longer follow the attributions.
    def interacting(rows):
        rows = np.asarray(rows, dtype=np.float64)
        return linear(rows) + 3.0 * (rows[:, 0] * rows[:, 1])[:, None]

    assert removal_faithfulness(interacting, X, values, reference, groups).value < 0.9


def test_removal_drops_are_batched_by_feature_chunks():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    calls = []

    def output(rows):
        calls.append(len(rows))
        return np.stack([rows.sum(1), -rows.sum(1)], axis=1)

    columns = np.array([0, 1, 0, 1])
    groups = [np.array([0]), np.array([1]), np.array([2])]
    drops = removal_drops(output, X, np.zeros(3), groups, columns, max_rows_per_call=8)
    sign = np.where(columns == 0, 1.0, -1.0)[:, None]
    np.testing.assert_allclose(drops, sign * X)  # removing column j to 0 drops the sum by x_j
    assert calls == [4, 8, 4]  # the base call, then two features per call


def test_concept_removal_faithfulness_follows_senn():
    relevances = np.array([[[1.0], [2.0], [-1.0]], [[0.5], [0.5], [3.0]]])
    activations = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, 1.0]])
    score = concept_removal_faithfulness(relevances, activations, np.zeros(3), np.zeros(2, dtype=int))
    np.testing.assert_allclose(score.extras["drops"], [[1.0, 2.0, -1.0], [1.0, 0.0, 3.0]])
    # Row 0: drops equal the relevances (activations 1): correlation 1; row 1 by hand.
    expected = np.corrcoef([0.5, 0.5, 3.0], [1.0, 0.0, 3.0])[0, 1]
    np.testing.assert_allclose(score.per_row, [1.0, expected])


def test_relevance_lipschitz_follows_senn_modes_1_and_2():
    X = np.array([[0.0, 0.0], [5.0, 5.0]])
    pool = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    theta = np.array([[1.0, 0.0], [2.0, 2.0]])
    pool_theta = np.array([[1.0, 0.0], [1.0, 3.0], [5.0, 0.0], [2.0, 2.0]])
    h = np.array([[0.0], [1.0]])
    pool_h = np.array([[0.0], [2.0], [0.5], [1.0]])
    scores = relevance_lipschitz(theta[:, :, None], h, X, pool_theta[:, :, None], pool_h, pool, radius=2.5)
    # Row 0's neighbours (the row itself, distance 0, excluded): pool 1 (|Δθ| 3, |Δx| 1, |Δh| 2) and pool 2
    # (|Δθ| 4, |Δx| 2, |Δh| 0.5); mode 1 max(3, 2) = 3, mode 2 max(1.5, 8) = 8. Row 1 has none within 2.5.
    np.testing.assert_allclose(scores["input"].per_row, [3.0, np.nan])
    np.testing.assert_allclose(scores["concepts"].per_row, [8.0, np.nan])
    assert scores["input"].value == 3.0 and scores["concepts"].value == 8.0
    # Constant relevances: zero whatever the concepts do.
    constant = relevance_lipschitz(np.ones((2, 2)), h, X, np.ones((4, 2)), pool_h, pool, radius=2.5)
    assert constant["input"].value == 0.0 and constant["concepts"].value == 0.0


def test_neighbour_radius_is_the_median_kth_neighbour_distance():
    X = np.array([[0.0], [10.0]])
    pool = np.array([[0.0], [1.0], [3.0], [10.0], [12.0], [16.0]])
    # Row 0: distinct neighbours at 1, 3, 10 -> 2nd is 3; row 1: 2, 6, 7 -> 6; median 4.5.
    assert neighbour_radius(X, pool, k=2) == pytest.approx(4.5)
    assert explained_columns(np.array([[0.1], [-2.0]])).tolist() == [0, 0]
    assert explained_columns(np.array([[0.1, 0.3], [2.0, -1.0]])).tolist() == [1, 0]


def test_explanation_metrics_of_identity_senn_at_constant_relevances_are_those_of_a_linear_model():
    from data import load_dataset, prepare_split
    from methods import get_method
    from models.senn import SENNClassifier
    from xai.stability import explanation_metrics

    spec = get_method("senn")
    split = prepare_split(load_dataset(dataset_id=31), mode="classification", seed=0, encoding_type=spec.encoding)
    model = SENNClassifier(nr_epochs=1, hidden_size=8, nr_blocks=1, device="cpu").fit(split.X_train, split.y_train)
    head = model.model_.members[0].parameterizer.head
    for member in model.model_.members:  # constant relevances: the model is one linear model
        member.parameterizer.head.weight.data.zero_()
        member.parameterizer.head.bias.data.copy_(head.bias.data)
    scores = explanation_metrics(spec, model, split, n_rows=40, seed=0)
    assert scores["test_removal_faithfulness"] == pytest.approx(1.0, abs=1e-5)
    # e(x) = w ⊙ (x − m): the Lipschitz estimates lie between the smallest and largest |w| (per feature, summed
    # over the columns of a feature: credit-g's target encoding gives one column per feature).
    w = np.abs(head.bias.detach().numpy()[:-1])
    for key in ("test_lipschitz_discrete", "test_lipschitz_continuous"):
        assert w.min() - 1e-6 <= scores[key] <= w.max() + 1e-6, key
    # SENN's own estimate of the relevances θ (identity concepts: per change of the input) is 0 for constant θ.
    assert scores["test_relevance_lipschitz"] == pytest.approx(0.0, abs=1e-6)
    assert scores["test_relevance_lipschitz_input"] == scores["test_relevance_lipschitz"]


# ---------------------------------------------------------------------------------------------------------------
# plots.senn


def test_image_layout_reads_both_pixel_namings():
    from plots.senn import image_layout

    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8) if (r, c) != (0, 0)]
    layout = image_layout(names)
    assert (layout.height, layout.width) == (8, 8)
    images = layout.images(np.arange(63.0)[None])
    assert np.isnan(images[0, 0, 0]) and images[0, 0, 1] == 0.0 and images[0, 7, 7] == 62.0
    flat = image_layout([f"pixel{i}" for i in range(1, 17)])
    assert (flat.height, flat.width) == (4, 4) and flat.rows[5] == 1 and flat.cols[5] == 1
    assert image_layout(["age", "pixel_1_1"]) is None and image_layout([f"pixel{i}" for i in range(1, 6)]) is None


def test_concept_figures_draw_images_and_tabular_heatmaps():
    import matplotlib.pyplot as plt

    from plots.senn import draw_concept_explanation, draw_prototypes, draw_traversals

    rng = np.random.default_rng(0)
    pixels = [f"pixel_{r}_{c}" for r in range(3) for c in range(3)]
    figure, axes = plt.subplots(2, 4)
    draw_prototypes(axes, rng.normal(size=(2, 4, 9)), pixels)
    assert axes[0, 0].images and axes[1, 0].get_ylabel() == "c1"
    figure, axes = plt.subplots(2, 1)
    draw_traversals(axes, rng.normal(size=(2, 5, 3)), np.linspace(-1, 1, 5), ["age", "income", "debt"])
    assert [tick.get_text() for tick in axes[0].get_xticklabels()] == ["age", "income", "debt"]
    values = rng.normal(size=(1, 3, 2))
    attribution = Attribution(
        values=values, rest=np.ones((1, 2)), output=values.sum(1) + 1, feature_names=("c0", "c1", "c2"),
        explainer="senn_concepts", exact=True,
        extras={"relevances": values, "activations": np.ones((1, 3)), "reference_activations": np.zeros(3)},
    )  # fmt: skip
    figure, axes = plt.subplots(1, 3)
    draw_concept_explanation(axes, attribution, row=0, output=1)
    assert f"{float(attribution.output[0, 1]):+.2f}" in axes[2].get_title()
    plt.close("all")


# ---------------------------------------------------------------------------------------------------------------
# The study script's tables and figure (its runs are the CLI's, tested above)


def test_study_tables_summarise_seeds_and_the_lambda_figure_draws(tmp_path):
    from studies.senn_study import lambda_figure, lambda_name, markdown, summarise

    assert (lambda_name(0.0), lambda_name(1e-4), lambda_name(1.0)) == ("lambda=0", "lambda=1e-04", "lambda=1e00")
    runs = pd.DataFrame(
        {
            "dataset": ["d"] * 6,
            "model": ["senn"] * 4 + ["inn"] * 2,
            "robust_reg": [0.0, 0.0, 0.1, 0.1, np.nan, np.nan],
            "seed": [0, 1, 0, 1, 0, 1],
            "test_accuracy": [0.8, 0.6, 0.7, 0.7, 0.9, 0.9],
            "test_lipschitz_continuous": [2.0, 2.0, 1.0, 3.0, 4.0, 4.0],
        }
    )
    summary = summarise(runs, ["dataset", "model", "robust_reg"], ["test_accuracy", "test_lipschitz_continuous"])
    assert summary["seeds"].tolist() == [2, 2, 2]
    np.testing.assert_allclose(summary["test_accuracy_mean"], [0.7, 0.7, 0.9])
    np.testing.assert_allclose(summary["test_accuracy_sd"], [np.std([0.8, 0.6], ddof=1), 0.0, 0.0], atol=1e-12)
    table = markdown(summary, ["test_accuracy"])
    assert "| 0.700 ± 0.141 |" in table and "test_lipschitz_continuous" not in table
    lambda_figure(summary, tmp_path / "lambda.png")
    assert (tmp_path / "lambda.png").stat().st_size > 0


def test_relevance_stability_recomputed_from_a_saved_run_equals_the_runners(tmp_path):
    from studies.senn_study import RELEVANCE_METRICS, with_relevance_stability

    flags = ["--conceptizer", "autoencoder", "--robust_estimator", "hutchinson", "--dataset", "digits"]
    assert main_experiment.main(["--method", "senn", *FAST, *flags, "--output_dir", str(tmp_path)]) == 0
    report = read_report(tmp_path / "senn" / "digits" / "0" / "output_info.json")
    older = {key: value for key, value in report.items() if key not in RELEVANCE_METRICS}  # as before the keys
    recomputed = with_relevance_stability(older, tmp_path)
    for key in RELEVANCE_METRICS:
        assert recomputed[key] == pytest.approx(report[key], rel=1e-5), key
    assert with_relevance_stability(report, tmp_path) is report  # nothing to add
    tampered = {**older, "test_lipschitz_discrete": older["test_lipschitz_discrete"] * 2}
    with pytest.raises(RuntimeError, match="differs from the saved"):
        with_relevance_stability(tampered, tmp_path)


def test_the_senn_codes_compas_rows_prune_conflicting_and_unique_feature_vectors(tmp_path):
    from studies.senn_study import senn_compas_rows

    base = {"sex": "Male", "age": 30, "age_cat": "25 - 45", "race": "Caucasian", "juv_fel_count": 0,
            "juv_misd_count": 0, "juv_other_count": 0, "priors_count": 4, "c_charge_degree": "F",
            "c_charge_desc": "x", "decile_score": 1, "two_year_recid": 0}  # fmt: skip
    rows = (
        [{**base, "score_text": "Low"}] * 4 + [{**base, "score_text": "High"}]  # 4 of 5 agree: the dissenter goes
        + [{**base, "priors_count": 9, "score_text": text} for text in ("Low", "High", "Low", "High")]  # 50/50: kept
        + [{**base, "priors_count": 1, "score_text": "Low"}]  # a unique feature vector: dropped (the code's quirk)
    )  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "compas.csv", index=False)
    path = senn_compas_rows(tmp_path / "compas.csv", tmp_path / "senn.csv")
    score = load_compas(path, "score")
    assert len(score.y) == 8 and score.y.tolist() == [0, 0, 0, 0, 0, 1, 0, 1]
    np.testing.assert_allclose(sorted(set(score.X["Number_of_Priors"])), [2 / np.sqrt(38), 3 / np.sqrt(38)])


def test_the_selection_rules_pick_as_stated():
    from studies.senn_study import disenn_choice, lambda_choice

    summary = pd.DataFrame({
        "dataset": [1, 1, 1, 2, 2, 2],
        "model": ["senn lambda=0", "senn lambda=1e-01", "senn lambda=1e00"] * 2,
        "spearman_mean": [0.5, 0.7, 0.9, 0.5, 0.7, 0.9],
        "test_auroc_mean": [0.80, 0.80, 0.79, 0.90, 0.90, 0.89],  # λ = 1 is 0.01 below: not eligible
    })  # fmt: skip
    assert lambda_choice(summary) == pytest.approx(0.1)
    settings = pd.DataFrame({
        "setting": ["reproduction", "a", "b", "c"],
        "test_accuracy_mean": [0.980, 0.950, 0.975, 0.978],  # a: more than a point below the reproduction
        "active_visible_latents_mean": [0.0, 5.0, 4.0, 4.0],
    })  # fmt: skip
    assert disenn_choice(settings) == "c"


def test_the_tables_of_docs_senn_md_are_those_of_their_csvs():
    """Every ``<!-- table:NAME -->`` block of docs/senn.md is what ``studies.senn_study docs`` writes from the CSVs in
    docs/figures: a number changed by hand, or a CSV regenerated without the doc, fails here."""
    import re
    from pathlib import Path

    from studies.senn_study import doc_tables

    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "senn.md").read_text()
    tables = doc_tables(root / "docs" / "figures")
    blocks = re.findall(r"<!-- table:(\S+) -->\n(.*?)<!-- /table:\1 -->", text, re.S)
    assert {name for name, _ in blocks} >= {"senn_paper", "senn_select", "senn_report", "senn_disenn"}
    for name, body in blocks:
        assert body == tables[name], name
