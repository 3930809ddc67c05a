"""The method registry: every registered method is complete, and one API and explanation suite runs over all of them.

imodels-style: the suites below are parametrized over ``methods.REGISTRY`` itself, so a new entry is tested the
moment it is added, and :func:`test_every_registered_method_is_complete` fails when an entry lacks a label, a
colour, a search space for either task, smoke settings, a native explainer, its explanation kind or its model
format (``MethodSpec.explanation_kind`` and ``model_format``, the one place where a method declares them; an entry
without them is not even constructed). Every list of methods in the project (script choices, sweep, HPO, plots,
results, saved runs) is checked to come from the registry.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pytest

from data import load_dataset, prepare_split
from experiments.saved_run import MODEL_FILES, model_file
from methods import MODES, REGISTRY, MethodSpec, get_method, parse_run_id, reference_inputs, run_id
from methods.spec import EXPLANATION_KINDS, MODEL_FORMATS

#: Methods too slow for the registry-wide fit on every task, with the reason (they are tested elsewhere).
BINARY_ONLY = {"tabnet": "TabNet's fits are tested per task in test_baselines.py; here binary only for time"}


def test_every_registered_method_is_complete() -> None:
    for method, spec in REGISTRY.items():
        assert spec.id == method and re.fullmatch(r"[a-z][a-z0-9_]*", method), method  # a directory name, no '-'
        assert spec.label and spec.summary and spec.explanation, method
        assert re.fullmatch(r"#[0-9A-Fa-f]{6}", spec.color), method
        assert set(spec.search_space) == set(MODES) and all(spec.search_space[mode] for mode in MODES), method
        assert spec.smoke_params or spec.id == "logistic_regression", f"{method} has no smoke settings"
        assert re.fullmatch(r"explainers\.\w+:\w+", spec.explainer), f"{method}: explainer is 'module:Class'"
        assert spec.native_explainer().id == spec.explainer_id and spec.explainer_id, method
        assert spec.explanation_kind in EXPLANATION_KINDS, f"{method}: declare its explanation_kind"
        assert spec.model_format in MODEL_FORMATS, f"{method}: declare its model_format"
        file = model_file(spec)  # a saved model, or the reason there is none: never neither
        assert (file is None) == (spec.model_format == "none") and (file is not None or spec.model_not_saved), method
        for mode in MODES:
            defaults = spec.defaults(mode)
            assert isinstance(defaults, dict)
            if spec.closed_parameters:  # every tuned parameter is a parameter of the estimator
                assert set(spec.search_space[mode]) <= set(defaults) or method == "tabnet", method
    colors = [spec.color for spec in REGISTRY.values()]
    assert len(set(colors)) == len(colors), "two methods share a colour"
    assert set(MODEL_FILES) == set(MODEL_FORMATS) - {"none"}, "a model format without a writer and reader"


def test_an_entry_without_a_model_format_or_explanation_kind_is_refused() -> None:
    import dataclasses

    spec = REGISTRY["inn"]
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    for missing in ("model_format", "explanation_kind"):
        with pytest.raises(TypeError, match=missing):
            MethodSpec(**{name: value for name, value in fields.items() if name != missing})
    for change, message in (
        ({"model_format": "pickle"}, "model_format must be one of"),
        ({"model_format": "none"}, "needs model_not_saved"),  # no model, and no reason why
        ({"model_not_saved": "a reason"}, "needs model_not_saved"),  # a reason, but a model format
        ({"explanation_kind": "exactish"}, "explanation_kind must be one of"),
    ):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(spec, **change)


def test_every_list_of_methods_comes_from_the_registry() -> None:
    import baseline_experiment
    import main_experiment
    from experiments import hpo, results, sweep
    from plots import style

    neural = [method for method, spec in REGISTRY.items() if spec.kind == "neural"]
    baselines = [method for method, spec in REGISTRY.items() if spec.kind == "baseline"]
    assert list(results.METHODS) == list(REGISTRY)
    assert list(results.NEURAL_METHODS) == neural and list(results.BASELINE_METHODS) == baselines
    method_action = next(a for a in main_experiment.build_parser()._actions if a.dest == "method")
    assert list(method_action.choices) == neural
    model_action = next(a for a in baseline_experiment.build_parser()._actions if a.dest == "model_name")
    assert list(model_action.choices) == baselines
    assert set(sweep.SCRIPTS) == set(REGISTRY)
    assert all(sweep.SCRIPTS[m].script == REGISTRY[m].script for m in REGISTRY)
    assert set(hpo.SEARCH_SPACES) == set(REGISTRY)
    assert style.method_order(reversed(list(REGISTRY))) == list(REGISTRY)
    assert all(
        style.method_label(m) == REGISTRY[m].label and style.method_color(m) == REGISTRY[m].color for m in REGISTRY
    )


def test_run_ids_name_variants_in_the_results_tree() -> None:
    assert run_id("inn") == "inn" and run_id("inn", "cdep-0.1") == "inn-cdep-0.1"
    assert parse_run_id("inn-cdep-0.1") == ("inn", "cdep-0.1") and parse_run_id("random_forest") == (
        "random_forest",
        None,
    )
    assert get_method("inn-cdep-0.1").id == "inn"
    for bad in ("-x", "a/b", "a b", ".."):
        with pytest.raises(ValueError, match="variant"):
            run_id("inn", bad)
    with pytest.raises(ValueError, match="unknown method"):
        get_method("xgboost")


# ---------------------------------------------------------------------------------------------------------------
# One API and explanation suite over the whole registry, on the embedded credit-g (numerical and categorical
# features) and on a small multiclass/regression frame


@pytest.fixture(scope="module")
def credit_g():
    return load_dataset(dataset_id=31)


@pytest.fixture(scope="module")
def small_frames():
    import pandas as pd

    from data.loading import RawDataset

    rng = np.random.default_rng(0)
    n = 180
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    score = 2 * x1 - x2 + 1.5 * (colour == "red") + 0.3 * rng.normal(size=n)
    X = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour})
    classes = pd.Series(np.array(["low", "mid", "high"])[np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))])
    return {
        "multiclass": RawDataset(
            name="small", dataset_id="small", X=X, y=classes, categorical=[False, False, True], target="y"
        ),
        "regression": RawDataset(
            name="small", dataset_id="small", X=X, y=pd.Series(10 * score + 50), categorical=[False, False, True],
            target="y",
        ),
    }  # fmt: skip


@pytest.fixture(scope="module")
def digit_frames():
    """The tasks of an image method (``spec.image_inputs``): scikit-learn's 8×8 digits (pixel columns), 0 vs 1, all
    ten digits, and the digit as a number."""
    from data.named import load_digits_dataset

    raw = load_digits_dataset()
    pair = raw.y.isin([0, 1]).to_numpy()
    some = np.arange(len(raw.y)) % 3 == 0
    return {
        "binary": dataclasses.replace(raw, X=raw.X[pair].reset_index(drop=True), y=raw.y[pair].reset_index(drop=True)),
        "multiclass": raw,
        "regression": dataclasses.replace(
            raw, X=raw.X[some].reset_index(drop=True), y=raw.y[some].astype(float).reset_index(drop=True)
        ),
    }


CASES = [
    (method, task)
    for method in REGISTRY
    for task in ("binary", "multiclass", "regression")
    if task == "binary" or method not in BINARY_ONLY
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("method", "task"), CASES, ids=[f"{m}-{t}" for m, t in CASES])
def test_every_method_fits_predicts_and_explains(method, task, credit_g, small_frames, digit_frames) -> None:
    spec = REGISTRY[method]
    raw = credit_g if task == "binary" else small_frames[task]
    if spec.image_inputs:
        raw = digit_frames[task]
    mode = "regression" if task == "regression" else "classification"
    split = prepare_split(raw, mode=mode, seed=0, encoding_type=spec.encoding)
    model = spec.build(split, seed=0, device="cpu", params=spec.smoke_params)
    X_train, X_test = spec.inputs(split)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, split.y_train)
    # Predictions of the right shape and kind.
    if task == "regression":
        prediction = np.asarray(model.predict(X_test), dtype=np.float64)
        assert prediction.shape == (split.n_test,) and np.isfinite(prediction).all()
    else:
        proba = np.asarray(model.predict_proba(X_test))
        assert proba.shape == (split.n_test, split.n_classes)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    # The native explanation: over original features (or the concepts a model learned, e.g. DiSENN's), of the
    # output the method says it explains.
    attribution = spec.explain(model, split, X_test)
    n_outputs = split.n_classes if task == "multiclass" and spec.explanation_kind != "unsigned" else 1
    names = model.concept_names() if spec.explains_concepts(model) else split.feature_names
    assert attribution.values.shape == (split.n_test, len(names), n_outputs), method
    assert attribution.feature_names == tuple(names)
    assert attribution.explainer == spec.explainer_id or method == "tabresnet"
    np.testing.assert_allclose(attribution.output, spec.output(model, X_test), rtol=1e-5, atol=1e-5)
    importance = attribution.global_importance()
    assert importance.shape == (len(names),) and importance.sum() == pytest.approx(1.0)
    kind = spec.explanation_kind
    scale = max(1.0, float(np.abs(attribution.output).max()))
    if kind == "exact":
        assert attribution.exact and attribution.signed
        assert attribution.additivity_error() < 1e-4 * scale, f"{method}: not additive"
        # A row equal to the reference gets zero values (every exact explainer is relative to the training mean).
        if spec.kind == "neural":
            reference = model.reference_[None, :].astype(np.float32)
        else:
            reference, _ = reference_inputs(X_train, "mean")
            reference = reference if spec.input_kind == "frame" else reference[None, :].astype(np.float32)
        at_reference = spec.explain(model, split, reference)
        assert np.abs(at_reference.values).max() < 1e-5 * scale, f"{method}: non-zero at the reference"
    elif kind == "exact_centred":  # relative to the training distribution: the rest is the mean training output
        assert attribution.exact and attribution.signed and attribution.reference is None
        assert attribution.additivity_error() < 1e-4 * scale, f"{method}: not additive"
        training_mean = spec.output(model, X_train).mean(axis=0)
        np.testing.assert_allclose(
            attribution.rest, np.broadcast_to(training_mean, attribution.rest.shape), atol=1e-4 * scale
        )
    elif kind == "approximate":
        assert not attribution.exact and attribution.signed
        assert (attribution.values < 0).any() and (attribution.values > 0).any()
    else:
        assert not attribution.exact and not attribution.signed and (attribution.values >= 0).all()
        assert np.isnan(attribution.rest).all()


@pytest.mark.parametrize("method", [method for method, spec in REGISTRY.items() if spec.image_inputs])
def test_image_methods_refuse_other_data_in_one_line(method, credit_g) -> None:
    from errors import UserError

    spec = REGISTRY[method]
    split = prepare_split(credit_g, mode="classification", seed=0, encoding_type=spec.encoding)
    with pytest.raises(UserError, match=r"needs image-shaped data.*credit-g are checking_status") as error:
        spec.build(split, seed=0, device="cpu", params=spec.smoke_params)
    assert "\n" not in str(error.value)
