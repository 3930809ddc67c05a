"""Saved runs and ``explain.py``: a finished run is reusable and loading a results folder never executes code.

Tiny runs (two epochs of a small network, a few trees) are trained once per module into ``tmp_path`` through the
experiment scripts; every check compares with something the run recorded independently (its own
``explanations.npz``, its report's metrics, the encoder that was fitted), with a closed form, or with a crafted
file that would run code if it were unpickled.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import baseline_experiment
import explain
import main_experiment
from data import FeatureEncoder, load_dataset, prepare_split
from experiments import saved_run
from experiments.results import read_explanations
from models.metrics import classification_metrics

FAST = ["--nr_epochs", "2", "--hidden_size", "16", "--nr_blocks", "1", "--device", "cpu"]
QUIET = ["--explanation_metrics", "off"]
#: credit-g runs of every method whose model is saved, with settings that make each fit take about a second.
CREDIT_G_RUNS = {
    "inn": ["--method", "inn", *FAST],
    "tabresnet": ["--method", "tabresnet", *FAST],
    "senn": ["--method", "senn", "--conceptizer", "autoencoder", "--num_concepts", "3", *FAST],
    "logistic_regression": ["--model_name", "logistic_regression"],
    "decision_tree": ["--model_name", "decision_tree"],
    "random_forest": ["--model_name", "random_forest"],
    "catboost": ["--model_name", "catboost", "--catboost_iterations", "20"],
}


def _train(argv: list[str], output: Path) -> None:
    script = main_experiment if argv[0] == "--method" else baseline_experiment
    assert script.main([*argv, *QUIET, "--output_dir", str(output)]) == 0


def _csv(path: Path, *, n: int = 120, target: str = "multiclass", seed: int = 0) -> Path:
    """A small file with a numeric, a gappy numeric and a categorical feature, and a target (last column)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
    colour = rng.choice(["red", "green", "blue"], size=n)
    y = (
        np.array(["low", "mid", "high"])[np.digitize(a + (colour == "red"), [-0.3, 0.6])]
        if target == "multiclass"
        else 500.0 + 100.0 * a - 50.0 * (colour == "red") + rng.normal(size=n)
    )
    pd.DataFrame({"a": a, "b": b, "colour": colour, "label": y}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run folders by name: the credit-g runs, and multiclass and regression runs on a small file."""
    output = tmp_path_factory.mktemp("results")
    folder = tmp_path_factory.mktemp("data")
    multiclass, regression = _csv(folder / "colours.csv"), _csv(folder / "amounts.csv", target="regression")
    for argv in CREDIT_G_RUNS.values():
        _train(argv, output)
    found = {name: output / name / "31" / "0" for name in CREDIT_G_RUNS}
    from data import file_dataset_key

    named = folder / "named.csv"  # features named like explain.py's fixed output columns
    rng = np.random.default_rng(0)
    a, b = 100 * rng.normal(size=150), rng.normal(size=150)
    columns = {"rest": a, "row": b, "output": rng.normal(size=150), "feature:x": rng.choice(["u", "v"], 150)}
    pd.DataFrame({**columns, "label": np.where(a / 100 + b > 0, "yes", "no")}).to_csv(named, index=False)
    for name, argv, path, mode in (
        ("named", ["--model_name", "logistic_regression"], named, "classification"),
        ("inn_multiclass", ["--method", "inn", *FAST], multiclass, "classification"),
        ("inn_regression", ["--method", "inn", *FAST], regression, "regression"),
        ("ridge_regression", ["--model_name", "logistic_regression"], regression, "regression"),
        ("forest_regression", ["--model_name", "random_forest"], regression, "regression"),
    ):
        _train([*argv, "--dataset_path", str(path), "--mode", mode], output)
        method = argv[1]
        found[name] = output / method / file_dataset_key(path) / "0"
    return found


# ----------------------------------------------------------------------------------------------------------
# The encoder's state


@pytest.mark.parametrize("encoding", ["paper", "onehot", "ordinal"])
def test_a_restored_encoder_encodes_exactly_like_the_fitted_one(encoding, tmp_path):
    raw = load_dataset(31)
    split = prepare_split(raw, seed=1, encoding_type=encoding)
    state = json.loads(json.dumps(split.encoder.to_state(), allow_nan=False))  # through JSON text
    restored = FeatureEncoder.from_state(state)
    frame = split.frame_test.copy()
    frame.iloc[0, split.categorical_feature_indices[0]] = "a category never seen"
    np.testing.assert_array_equal(restored.transform(frame), split.encoder.transform(frame))
    assert restored.input_names == split.input_names
    assert restored.categorical_cardinalities == split.categorical_cardinalities


@pytest.mark.parametrize(("target", "mode"), [("multiclass", "classification"), ("regression", "regression")])
def test_restored_target_encodings_of_multiclass_and_scaled_regression_targets(target, mode, tmp_path):
    # Multiclass: one table column per class; regression: target encodings standardised; a numeric column with
    # gaps (missing -> 0 after scaling).
    raw = load_dataset(dataset_path=_csv(tmp_path / "data.csv", target=target))
    split = prepare_split(raw, mode=mode, seed=0, encoding_type="target")
    restored = FeatureEncoder.from_state(json.loads(json.dumps(split.encoder.to_state(), allow_nan=False)))
    np.testing.assert_array_equal(restored.transform(split.frame_test), split.encoder.transform(split.frame_test))
    if target == "multiclass":
        assert split.n_inputs == 2 + 3  # a, b, colour[high], colour[low], colour[mid]


def test_a_malformed_encoder_state_is_a_value_error():
    split = prepare_split(load_dataset(31), seed=0)
    state = split.encoder.to_state()
    with pytest.raises(ValueError, match="malformed"):
        FeatureEncoder.from_state({**state, "order": state["order"][:-1]})
    with pytest.raises(ValueError, match="malformed"):
        FeatureEncoder.from_state({key: value for key, value in state.items() if key != "input_names"})


# ----------------------------------------------------------------------------------------------------------
# Saved runs rebuild their models


@pytest.mark.parametrize(
    "name", [*CREDIT_G_RUNS, "named", "inn_multiclass", "inn_regression", "ridge_regression", "forest_regression"]
)
def test_a_reloaded_run_reproduces_its_own_explanations_and_metrics(runs, name):
    run = saved_run.load_run(runs[name])
    report = run.report
    assert sorted(report["saved_files"]) == sorted(p.name for p in runs[name].iterdir())
    rows = saved_run.test_set_rows(run)  # the test rows, reloaded from the dataset and re-encoded
    frame, warnings = saved_run.prepare_rows(run, rows)
    inputs = run.model_inputs(frame)
    attribution = run.spec.explain(run.model, run.split_view(inputs), inputs, reference="mean")
    stored = read_explanations(runs[name] / "explanations.npz")  # what the run computed when it was trained
    np.testing.assert_allclose(attribution.values, stored["values"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(attribution.output, stored["output"], rtol=1e-5, atol=1e-5)
    if stored["reference"].size:  # the same reference point (the training mean of the model inputs)
        np.testing.assert_allclose(attribution.reference, stored["reference"], rtol=1e-12)
    predicted, probabilities = run.predict(inputs)
    if run.task == "regression":
        assert np.mean((predicted - stored["y_true"]) ** 2) == pytest.approx(report["test_mse"], rel=1e-5)
    else:
        codes = np.asarray(stored["y_true"], dtype=np.int64)
        metrics = classification_metrics(codes, probabilities, len(run.classes), "test")
        assert metrics["test_auroc"] == pytest.approx(report["test_auroc"], abs=1e-9)
        assert (np.asarray(run.classes)[codes] == rows.y_true).all()  # the reloaded rows are the test rows


def test_runs_of_models_that_cannot_be_reloaded_safely_are_refused(runs, tmp_path):
    # An EBM run's folder (as written: no model file) is refused with the reason, not unpickled.
    folder = tmp_path / "ebm" / "31" / "0"
    shutil.copytree(runs["logistic_regression"], folder)
    report = json.loads((folder / "output_info.json").read_text())
    (folder / "output_info.json").write_text(json.dumps({**report, "method": "ebm", "run_id": "ebm"}))
    state = json.loads((folder / "preprocessing.json").read_text())
    (folder / "preprocessing.json").write_text(json.dumps({**state, "method": "ebm"}))
    with pytest.raises(saved_run.UserError, match="EBM run cannot be reloaded: interpret saves an EBM only by pickl"):
        saved_run.load_run(folder)


def test_loading_a_run_never_unpickles(runs, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used to read a results folder")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    for name in runs:
        saved_run.load_run(runs[name])


# ----------------------------------------------------------------------------------------------------------
# Crafted files


class _RunsCode:
    """Unpickling this creates the directory ``marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.mkdir, (str(self.marker),)


def _copy(run: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy" / run.parent.parent.name / run.parent.name / run.name
    shutil.copytree(run, folder)
    return folder


def test_a_tabresnet_saved_with_inns_parameters_still_loads(runs, tmp_path):
    """TabResNet took INN's weight_norm, weight_norm_scale and product_inputs (and ignored them) until flags that set
    nothing became errors: a model.pt that lists them still loads, to the same predictions."""
    import torch

    folder = _copy(runs["tabresnet"], tmp_path)
    payload = torch.load(folder / "model.pt", weights_only=True)
    assert "weight_norm" not in payload["params"]
    payload["params"] |= {"weight_norm": 0.1, "weight_norm_scale": "none", "product_inputs": "raw"}
    torch.save(payload, folder / "model.pt")
    old, new = saved_run.load_run(folder), saved_run.load_run(runs["tabresnet"])
    x = np.zeros((3, old.model.n_features_in_), dtype=np.float32)
    np.testing.assert_array_equal(old.model.decision_function(x), new.model.decision_function(x))


def test_a_crafted_model_file_that_would_run_code_is_refused(runs, tmp_path, capsys):
    folder = _copy(runs["inn"], tmp_path)
    payload = torch.load(folder / "model.pt", weights_only=True)
    marker = tmp_path / "code_ran"
    torch.save({**payload, "fitted": {**payload["fitted"], "threads_": _RunsCode(marker)}}, folder / "model.pt")
    # The file is potent: a plain unpickling runs its code ...
    torch.load(folder / "model.pt", weights_only=False)
    assert marker.is_dir()
    marker.rmdir()
    # ... and explain.py refuses it without running it, writing nothing.
    out = tmp_path / "out"
    assert explain.main(["--run", str(folder), "--rows", "0", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and "refused" in error and "model.pt" in error
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(("name", "file"), [("inn", "background.npz"), ("random_forest", "model.npz")])
def test_a_crafted_npz_with_a_pickled_object_is_refused(runs, tmp_path, capsys, name, file):
    folder = _copy(runs[name], tmp_path)
    marker = tmp_path / "code_ran"
    arrays = dict(np.load(folder / file, allow_pickle=False))
    arrays[next(iter(arrays))] = np.array([_RunsCode(marker)], dtype=object)
    np.savez(folder / file, **arrays)  # numpy pickles the object array
    assert explain.main(["--run", str(folder), "--rows", "0", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "refused" in error and file in error and not marker.exists() and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------------
# explain.py


def test_explain_writes_contributions_that_add_up_and_match_the_run(runs, tmp_path):
    out = tmp_path / "out"
    assert explain.main(["--run", str(runs["inn"]), "--rows", "0", "5", "17", "--out", str(out), "--figures", "2"]) == 0
    stored = read_explanations(runs["inn"] / "explanations.npz")
    table = pd.read_csv(out / "contributions.csv")
    features = list(stored["feature_names"])
    assert list(table.columns) == ["row", "dataset_row", "explained_output", *features, "rest", "output"]
    assert table["row"].tolist() == [0, 5, 17] and set(table["explained_output"]) == {"logit of class 'good'"}
    np.testing.assert_allclose(table[features].to_numpy(), stored["values"][[0, 5, 17], :, 0], atol=1e-6)
    np.testing.assert_allclose(table[features].sum(axis=1) + table["rest"], table["output"], atol=1e-5)
    predictions = pd.read_csv(out / "predictions.csv")
    # A binary logit: P(good) = sigmoid(output), and the prediction is the more probable class.
    np.testing.assert_allclose(predictions["probability_good"], 1 / (1 + np.exp(-table["output"])), atol=1e-6)
    assert (predictions["prediction"] == np.where(predictions["probability_good"] > 0.5, "good", "bad")).all()
    assert (predictions["y_true"] == np.asarray(stored["classes"])[stored["y_true"][[0, 5, 17]]]).all()
    sidecar = json.loads((out / "explain.json").read_text())
    assert sidecar["explanation"]["exact"] is True and sidecar["explanation"]["reference"] == "training mean"
    assert sorted(sidecar["files"]) == sorted(path.name for path in out.iterdir())
    figures = {name for name in sidecar["files"] if name.startswith("waterfall")}
    assert figures == {f"waterfall_row{r}.{s}" for r in (0, 5) for s in ("png", "pdf")}  # --figures 2
    # A second, smaller explanation into the same folder leaves none of the first one's figures behind.
    assert explain.main(["--run", str(runs["inn"]), "--rows", "3", "--out", str(out), "--predict_only"]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["explain.json", "predictions.csv"]


CREDIT_G_ROWS = """checking_status,duration,credit_history,purpose,credit_amount,savings_status,employment,installment_commitment,personal_status,other_parties,residence_since,property_magnitude,age,other_payment_plans,housing,existing_credits,job,num_dependents,own_telephone,foreign_worker
<0,6,critical/other existing credit,radio/tv,1169,no known savings,>=7,4,male single,none,4,real estate,67,none,own,2,skilled,1,yes,yes
0<=X<200,48,existing paid,radio/tv,5951,<100,1<=X<4,2,female div/dep/mar,none,2,real estate,22,none,own,1,skilled,1,none,yes
no checking,12,critical/other existing credit,spaceship,2096,<100,4<=X<7,2,male single,none,3,real estate,49,none,own,1,unskilled resident,2,none,yes
<0,42,existing paid,furniture/equipment,7882,<100,4<=X<7,2,male single,guarantor,4,life insurance,45,none,for free,1,skilled,2,none,yes
<0,24,delayed previously,new car,4870,<100,1<=X<4,3,male single,none,4,,53,none,for free,2,skilled,2,none,yes
"""


def test_explain_rows_of_a_new_file_warns_about_unseen_categories(runs, tmp_path, capsys):
    data = tmp_path / "new.csv"
    data.write_text(CREDIT_G_ROWS)
    out = tmp_path / "out"
    assert explain.main(["--run", str(runs["catboost"]), "--data", str(data), "--out", str(out), "--figures", "0"]) == 0
    err = capsys.readouterr().err
    assert "warning: column 'purpose': unseen category 'spaceship' (row 2) treated as missing" in err
    table = pd.read_csv(out / "contributions.csv")
    assert table["row"].tolist() == [0, 1, 2, 3, 4] and "dataset_row" not in table
    # The unseen category is encoded as the missing category: the same model inputs as an empty cell.
    run = saved_run.load_run(runs["catboost"])
    written = data.read_text().replace("spaceship", "")
    (tmp_path / "missing.csv").write_text(written)
    unseen, _ = saved_run.prepare_rows(run, saved_run.file_rows(run, data))
    missing, none = saved_run.prepare_rows(run, saved_run.file_rows(run, tmp_path / "missing.csv"))
    pd.testing.assert_frame_equal(unseen, missing)
    assert none == [] and unseen.loc[4, "property_magnitude"] == "<missing>"
    assert json.loads((out / "explain.json").read_text())["warnings"] == [
        "column 'purpose': unseen category 'spaceship' (row 2) treated as missing"
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace("credit_amount,", "amount,", 1), "missing feature column(s) 'credit_amount'"),
        (lambda text: text.replace(",5951,", ",lots,"), "column 'credit_amount', row 1: 'lots' is not a number"),
    ],
)
def test_bad_rows_are_one_error_line_and_nothing_is_written(runs, tmp_path, capsys, edit, message):
    data = tmp_path / "bad.csv"
    data.write_text(edit(CREDIT_G_ROWS))
    assert explain.main(["--run", str(runs["inn"]), "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and message in error
    assert not (tmp_path / "out").exists()


def _named_rows(runs: Path, tmp_path: Path, edit=None) -> Path:
    """Four rows of the ``named`` run's file, optionally edited (a frame -> a frame), as a new CSV."""
    data = next(runs["named"].parents[3].glob("data*/named.csv"))
    frame = pd.read_csv(data).head(4)
    path = tmp_path / "rows.csv"
    (edit(frame) if edit is not None else frame).to_csv(path, index=False)
    return path


def test_features_named_like_the_fixed_columns_leave_the_fixed_columns_their_names(runs, tmp_path):
    out = tmp_path / "out"
    data = _named_rows(runs, tmp_path)
    assert explain.main(["--run", str(runs["named"]), "--data", str(data), "--out", str(out), "--figures", "0"]) == 0
    table = pd.read_csv(out / "contributions.csv")
    features = ["feature:rest", "feature:row", "feature:output", "feature:feature:x"]
    assert list(table.columns) == ["row", "explained_output", *features, "rest", "output"]
    assert table["row"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(table[features].sum(axis=1) + table["rest"], table["output"], atol=1e-5)
    renamed = json.loads((out / "explain.json").read_text())["explanation"]["renamed_columns"]
    assert renamed == {
        "rest": "feature:rest",
        "row": "feature:row",
        "output": "feature:output",
        "feature:x": features[3],
    }


def _infinite(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[1, "rest"] = np.inf
    return frame


def test_an_infinite_value_is_missing_as_in_training_with_a_recorded_warning(runs, tmp_path, capsys):
    out, missing = tmp_path / "out", tmp_path / "missing"
    data = _named_rows(runs, tmp_path, _infinite)
    assert explain.main(["--run", str(runs["named"]), "--data", str(data), "--out", str(out), "--figures", "0"]) == 0
    warning = "column 'rest': infinite value (row 1) treated as missing, as in training"
    assert f"warning: {warning}" in capsys.readouterr().err
    assert json.loads((out / "explain.json").read_text())["warnings"] == [warning]
    # The same prediction as an empty cell.
    data.write_text(data.read_text().replace("inf", ""))
    assert (
        explain.main(["--run", str(runs["named"]), "--data", str(data), "--out", str(missing), "--figures", "0"]) == 0
    )
    assert (out / "predictions.csv").read_bytes() == (missing / "predictions.csv").read_bytes()


def _huge(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[2, "rest"] = 1e308
    return frame


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda frame: frame.iloc[:0], "has no rows"),
        (_huge, "column 'rest', row 2: 1e+308 is too large: its standardised model input leaves float32's range"),
        (lambda frame: frame.rename(columns={"output": "row"}), "duplicated column names ['row']"),
    ],
    ids=["header only", "1e308", "duplicated header"],
)
def test_bad_files_are_one_error_line(runs, tmp_path, capsys, edit, message):
    data = _named_rows(runs, tmp_path, edit)
    assert explain.main(["--run", str(runs["named"]), "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and message in error, error
    assert not (tmp_path / "out").exists()


def test_a_row_number_beyond_64_bits_is_out_of_range(runs, tmp_path, capsys):
    argv = ["--run", str(runs["named"]), "--rows", str(10**30), "--out", str(tmp_path / "out")]
    assert explain.main(argv) == 2
    assert f"row {10**30} is out of range" in capsys.readouterr().err


def test_a_crafted_listing_of_an_earlier_output_is_refused_not_followed(runs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.csv"
    victim.write_text("keep me")
    (out / "explain.json").write_text(json.dumps({"files": ["../victim.csv"]}))
    assert explain.main(["--run", str(runs["named"]), "--rows", "0", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "field 'files[0]'" in error and "not a file explain.py writes" in error
    assert victim.read_text() == "keep me" and sorted(p.name for p in out.iterdir()) == ["explain.json"]


def _old(folder: Path) -> None:
    (folder / "preprocessing.json").unlink()


def _schema_1(folder: Path) -> None:
    report = json.loads((folder / "output_info.json").read_text())
    del report["schema_version"]
    (folder / "output_info.json").write_text(json.dumps(report))


def _future(folder: Path) -> None:
    state = json.loads((folder / "preprocessing.json").read_text())
    (folder / "preprocessing.json").write_text(json.dumps({**state, "format_version": 99}))


def _no_model(folder: Path) -> None:
    (folder / "model.pt").unlink()


def _old_model(folder: Path) -> None:
    payload = torch.load(folder / "model.pt", weights_only=True)
    del payload["format_version"]
    torch.save(payload, folder / "model.pt")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_old, "has no preprocessing.json: it is incomplete or was written before runs saved their preprocessing"),
        (_schema_1, "schema version 1"),
        (_future, "unknown format version 99"),
        (_no_model, "incomplete run folder, model.pt is missing"),
        (_old_model, "model file format 1"),
    ],
)
def test_incomplete_old_or_unknown_run_folders_are_one_error_line(runs, tmp_path, capsys, damage, message):
    folder = _copy(runs["inn"], tmp_path)
    damage(folder)
    assert explain.main(["--run", str(folder), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and not (tmp_path / "out").exists()


def test_flags_that_do_not_fit_are_errors(runs, tmp_path, capsys):
    inn, out = str(runs["inn"]), ["--out", str(tmp_path / "out")]
    cases = [
        (["--run", inn, "--rows", "200", *out], "row 200 is out of range: the run's test set has 200 rows"),
        (["--run", inn, "--out", str(runs["inn"] / "explain")], "lies inside the run folder"),
        (["--run", str(runs["random_forest"]), "--explainer", "cd", *out], "cd explains the project's networks"),
        (["--run", str(runs["catboost"]), "--explainer", "lime", *out], "takes the unencoded frame"),
        (["--run", str(runs["senn"]), "--explainer", "cd", *out], "cannot decompose this SENN model"),
    ]
    for argv, message in cases:
        assert explain.main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error, (argv, error)
    assert not (tmp_path / "out").exists() and not (runs["inn"] / "explain").exists()


def test_acd_through_explain_writes_trees_whose_first_level_is_the_contributions(runs, tmp_path):
    out = tmp_path / "out"
    argv = [
        "--run",
        str(runs["inn_multiclass"]),
        "--explainer",
        "acd",
        "--rows",
        "0",
        "1",
        "--out",
        str(out),
        "--figures",
        "1",
    ]
    assert explain.main(argv) == 0
    table = pd.read_csv(out / "contributions.csv")
    trees = json.loads((out / "acd_trees.json").read_text())["trees"]
    predictions = pd.read_csv(out / "predictions.csv")
    assert [tree["row"] for tree in trees] == [0, 1]
    for index, tree in enumerate(trees):
        level0 = dict(
            zip(
                [tree["feature_names"][g[0]] for g in tree["levels"][0]["groups"]],
                tree["levels"][0]["scores"],
                strict=True,
            )
        )
        assert table.loc[index, list(level0)].to_numpy() == pytest.approx(list(level0.values()), abs=1e-9)
        assert len(tree["levels"]) == 3 and tree["output_name"] == table.loc[index, "explained_output"]
        # Multiclass: the explained output is the predicted class's logit.
        assert tree["output_name"] == f"logit of class '{predictions.loc[index, 'prediction']}'"
        assert tree["output_value"] == pytest.approx(table.loc[index, "output"])
    assert {"acd_row0.png", "acd_row0.pdf"} <= {path.name for path in out.iterdir()}
    assert json.loads((out / "explain.json").read_text())["explanation"]["exact"] is False


def test_post_hoc_kernel_shap_of_the_linear_baseline_is_its_closed_form(runs, tmp_path):
    # Interventional Shapley values of a linear logit over a background B: w·(x − mean(B)) per feature's columns.
    out = tmp_path / "out"
    argv = ["--run", str(runs["logistic_regression"]), "--explainer", "kernel_shap", "--rows", "0", "1"]
    assert explain.main([*argv, "--out", str(out), "--figures", "0"]) == 0
    run = saved_run.load_run(runs["logistic_regression"])
    scaler, linear = run.model.steps[0][1], run.model.steps[1][1]
    weights = linear.coef_[0] / scaler.scale_
    inputs = run.model_inputs(saved_run.prepare_rows(run, saved_run.test_set_rows(run, [0, 1]))[0])
    columns = weights * (inputs - run.background.astype(np.float64).mean(axis=0))
    expected = np.stack([columns[:, run.input_to_feature == j].sum(axis=1) for j in range(len(run.feature_names))], 1)
    table = pd.read_csv(out / "contributions.csv")
    np.testing.assert_allclose(table[run.feature_names].to_numpy(), expected, atol=1e-6)


def test_a_tree_whose_nodes_point_backwards_is_refused_before_it_is_walked(runs, tmp_path, capsys):
    # scikit-learn's compiled predict trusts the child indices: a cycle would never end, an index out of range
    # would read outside the table. The loader checks the table first.
    folder = _copy(runs["decision_tree"], tmp_path)
    arrays = dict(np.load(folder / "model.npz", allow_pickle=False))
    nodes = arrays["tree0_nodes"].copy()
    nodes["left_child"][0] = 0  # the root is its own child
    np.savez(folder / "model.npz", **{**arrays, "tree0_nodes": nodes})
    assert explain.main(["--run", str(folder), "--rows", "0", "--out", str(tmp_path / "out")]) == 2
    assert "children or features are out of range" in capsys.readouterr().err


def test_a_regression_run_explains_its_predictions_in_target_units(runs, tmp_path):
    out = tmp_path / "out"
    assert (
        explain.main(
            ["--run", str(runs["inn_regression"]), "--rows", "0", "1", "2", "--out", str(out), "--figures", "0"]
        )
        == 0
    )
    predictions, table = pd.read_csv(out / "predictions.csv"), pd.read_csv(out / "contributions.csv")
    assert list(predictions.columns) == ["row", "dataset_row", "y_true", "prediction"]
    # The explained output is the prediction itself (target units, not the network's standardised logit) ...
    np.testing.assert_allclose(table["output"], predictions["prediction"], rtol=1e-5)
    assert set(table["explained_output"]) == {"prediction"}
    features = ["a", "b", "colour"]
    np.testing.assert_allclose(table[features].sum(axis=1) + table["rest"], table["output"], rtol=1e-5)
    # ... and the true targets are the file's values of these test rows.
    data = pd.read_csv(next(runs["inn_regression"].parents[3].glob("data*/amounts.csv")))
    np.testing.assert_allclose(predictions["y_true"], data["label"].to_numpy()[predictions["dataset_row"]])


# ----------------------------------------------------------------------------------------------------------
# Names and paths read from a results folder never move a write (tests/test_crafted_runs.py crafts every field)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (folders as None, files by content), symlinks not followed."""
    return {
        str(path.relative_to(root)): None if path.is_dir() and not path.is_symlink() else path.read_bytes()
        for path in sorted(root.rglob("*"))
        if not path.is_symlink()
    }


@pytest.mark.parametrize("field", ["run_id", "dataset_id", "seed"])
@pytest.mark.parametrize("value", ["/ABSOLUTE", "../../../escaped", "..", "a/b"])
def test_a_run_id_dataset_id_or_seed_that_is_a_path_moves_no_write(runs, tmp_path, monkeypatch, capsys, field, value):
    folder = _copy(runs["logistic_regression"], tmp_path)
    report = json.loads((folder / "output_info.json").read_text())
    value = str(tmp_path / "escaped") if value == "/ABSOLUTE" else value
    (folder / "output_info.json").write_text(json.dumps({**report, field: value}))
    work = tmp_path / "work" / "deeper" / "still"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    assert explain.main(["--run", str(folder), "--rows", "0", "--figures", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and field in error.replace(str(tmp_path), ""), error
    assert _tree(tmp_path) == before


def test_a_symlink_out_of_the_run_folder_is_refused_before_it_is_read(runs, tmp_path, capsys, monkeypatch):
    folder = _copy(runs["logistic_regression"], tmp_path)
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes((folder / "preprocessing.json").read_bytes())
    (folder / "preprocessing.json").unlink()
    (folder / "preprocessing.json").symlink_to(outside)
    opened = []
    real_open = open

    def recording_open(file, *args, **kwargs):
        opened.append(Path(file).resolve() if isinstance(file, str | Path) else file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", recording_open)
    monkeypatch.setattr("io.open", recording_open)
    assert explain.main(["--run", str(folder), "--rows", "0", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "refused: a symlink" in error and "preprocessing.json" in error
    assert outside.resolve() not in opened and not (tmp_path / "out").exists()
    # A link that stays inside the folder is fine.
    (folder / "preprocessing.json").unlink()
    (folder / "inside.json").write_bytes(outside.read_bytes())
    (folder / "preprocessing.json").symlink_to(folder / "inside.json")
    assert explain.main(["--run", str(folder), "--rows", "0", "--out", str(tmp_path / "out"), "--figures", "0"]) == 0


def test_a_dataset_id_that_is_a_path_in_both_files_moves_no_write_with_data(runs, tmp_path, monkeypatch, capsys):
    # The two files agree, so only the one path rule stands between the value and the default output folder.
    folder = _copy(runs["logistic_regression"], tmp_path)
    for name in ("output_info.json", "preprocessing.json"):
        document = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps({**document, "dataset_id": "../../../escaped"}))
    data = tmp_path / "rows.csv"
    data.write_text(CREDIT_G_ROWS)
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    assert explain.main(["--run", str(folder), "--data", str(data), "--figures", "0"]) == 2
    error = capsys.readouterr().err
    assert "field 'dataset_id'" in error and "a name read from a file must be one plain path component" in error
    assert _tree(tmp_path) == before
