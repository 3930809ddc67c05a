"""Tests of plots/explanations.py: the explanation figures of any method, from synthetic explanations.npz files.

Three kinds of explanation are built by hand: exact (INN's, EBM's: values + rest = output), signed but not exact
(gradient × input: the rest is what the values leave unexplained) and unsigned (TabNet's attention masks). The
files are written with the project's writer (``explanation_arrays``) or, for the schema-1 INN files, ``np.savez``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from errors import UserError
from experiments.results import EXPLANATIONS_FILENAME, explanation_arrays, npz_bytes
from models.attribution import Attribution
from plots import explanations as ex

N_FEATURES = 14


def attribution(kind: str, n_rows: int = 6, n_outputs: int = 1, seed: int = 0) -> Attribution:
    """An attribution of ``kind`` ``exact``, ``inexact`` or ``unsigned`` over 14 features."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n_rows, N_FEATURES, n_outputs))
    rest = rng.normal(size=(n_rows, n_outputs))
    names = tuple(f"feature_{j}" for j in range(N_FEATURES))
    if kind == "exact":
        return Attribution(
            values, rest, values.sum(axis=1) + rest, names, "ebm", True, np.zeros(N_FEATURES), "training mean", "logit"
        )
    if kind == "inexact":
        output = values.sum(axis=1) + rest  # the rest is the unexplained part: output - sum of values
        return Attribution(
            values, rest, output, names, "gradient_x_input", False, np.zeros(N_FEATURES), "zero", "logit"
        )
    masks = np.abs(values[:, :, :1])
    output = rng.uniform(0.5, 1.0, size=(n_rows, 1))
    return Attribution(
        masks,
        np.full((n_rows, 1), np.nan),
        output,
        names,
        "tabnet_masks",
        False,
        None,
        "none (attention masks)",
        "probability of the predicted class",
        signed=False,
    )


def write_attribution(directory: Path, attr: Attribution, classes=("bad", "good")) -> Path:
    """``explanations.npz`` (schema 2) of ``attr`` as the runner writes it."""
    n_rows = attr.n_examples
    split = SimpleNamespace(
        input_names=list(attr.feature_names),
        input_to_feature=np.arange(attr.n_features),
        y_test=np.arange(n_rows) % max(len(classes), 2),
        classes=list(classes),
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / EXPLANATIONS_FILENAME
    path.write_bytes(npz_bytes(explanation_arrays(attr, split)))
    return path


def write_v1(directory: Path, n_rows: int = 6, n_outputs: int = 1) -> dict:
    """A schema-1 INN file (contributions, bias, logits; one-hot features) whose bias + contributions = logits."""
    rng = np.random.default_rng(0)
    n_inputs = N_FEATURES + 2  # two features are one-hot encoded into two columns each
    input_to_feature = np.concatenate([np.arange(N_FEATURES), [0, 1]])
    weights = rng.normal(size=(n_rows, n_inputs + 1, n_outputs))
    x = rng.normal(size=(n_rows, n_inputs))
    contributions = np.zeros((n_rows, N_FEATURES, n_outputs))
    np.add.at(contributions, (slice(None), input_to_feature), weights[:, :-1, :] * x[:, :, None])
    bias = weights[:, -1, :]
    arrays = {
        "feature_names": np.array([f"feature_{j}" for j in range(N_FEATURES)]),
        "input_names": np.array([f"input_{j}" for j in range(n_inputs)]),
        "input_to_feature": input_to_feature,
        "weights": weights,
        "contributions": contributions,
        "bias": bias,
        "logits": bias + contributions.sum(axis=1),
        "y_true": rng.integers(0, max(n_outputs, 2), n_rows),
        "classes": np.array(["bad", "good"] if n_outputs == 1 else [f"class_{c}" for c in range(n_outputs)]),
    }
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / EXPLANATIONS_FILENAME, **arrays)
    return arrays


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_schema_1_inn_explanation_adds_up_and_the_waterfall_ends_at_the_logit(tmp_path: Path, n_outputs: int) -> None:
    arrays = write_v1(tmp_path, n_outputs=n_outputs)
    stored = ex.load_explanation(tmp_path / EXPLANATIONS_FILENAME)
    attr = stored.attribution
    assert attr.exact and attr.signed and attr.explainer == "inn" and attr.reference_name == "zero"
    assert attr.additivity_error() < 1e-9
    for index in range(stored.n_rows):
        column, output = ex.explained_output(stored, index)
        if n_outputs > 1:
            assert column == int(np.argmax(arrays["logits"][index])) and f"class_{column}" in output
        else:
            predicted = "good" if arrays["logits"][index, 0] > 0 else "bad"
            assert output == f"logit of class 'good' (predicted '{predicted}')"
        # THE property of an INN explanation: the bias plus every feature's contribution is the logit.
        steps = ex.waterfall_steps(stored, index, top_k=5)
        assert steps["label"].iloc[0] == ex.BASE_LABEL and steps["label"].iloc[-1] == "Logit"
        assert steps["value"].iloc[0] == pytest.approx(arrays["bias"][index, column])
        assert steps["label"].iloc[-2] == "Other 9 features"
        assert steps["end"].iloc[-2] == pytest.approx(steps["value"].iloc[-1])  # the waterfall reaches the logit
        assert steps["value"].iloc[-1] == pytest.approx(arrays["logits"][index, column])
        shown = steps[steps["kind"] == "feature"]["value"].abs().to_numpy()
        assert np.all(np.diff(shown) <= 0)  # sorted by magnitude
    importance = ex.global_importance(stored)
    assert importance.sum() == pytest.approx(1.0) and importance.is_monotonic_decreasing
    expected = np.abs(arrays["contributions"]).mean(axis=0).sum(axis=1)
    assert importance["feature_0"] == pytest.approx(expected[0] / expected.sum())
    with pytest.raises(UserError, match="out of range"):
        ex.waterfall_steps(stored, 99)


def test_inexact_explanation_ends_with_the_rest_not_a_bias(tmp_path: Path) -> None:
    attr = attribution("inexact")
    stored = ex.load_explanation(write_attribution(tmp_path, attr))
    steps = ex.waterfall_steps(stored, 2, top_k=4)
    assert steps["kind"].tolist() == ["feature"] * 4 + ["other", "rest", "total"]
    assert steps["start"].iloc[0] == 0.0  # no base value: the contributions start from 0
    rest = steps[steps["kind"] == "rest"].iloc[0]
    assert rest["label"] == ex.REST_LABEL == "Rest (not explained)"
    assert rest["value"] == pytest.approx(attr.rest[2, 0])
    assert rest["start"] == pytest.approx(attr.values[2, :, 0].sum(), rel=1e-5)
    assert rest["end"] == pytest.approx(steps["value"].iloc[-1], rel=1e-5) == pytest.approx(attr.output[2, 0])
    assert "not exact" in ex.describe(stored) and "reference: zero" in ex.describe(stored)


def test_unsigned_explanation_has_no_direction_and_no_sum(tmp_path: Path) -> None:
    attr = attribution("unsigned")
    stored = ex.load_explanation(write_attribution(tmp_path, attr))
    with pytest.raises(ValueError, match="unsigned"):
        ex.waterfall_steps(stored, 0)
    magnitudes = ex.local_magnitudes(stored, 1, top_k=5)
    assert magnitudes.is_monotonic_decreasing and magnitudes.iloc[0] == pytest.approx(attr.values[1, :, 0].max())
    from matplotlib.figure import Figure

    figure = Figure()
    left, right = ex.draw_explanation(figure, stored, title="TabNet", example=1, top_k=5)
    assert "unsigned" in right.get_xlabel() and "no direction" in right.get_xlabel()
    labels = [label.get_text() for label in right.get_yticklabels()]
    assert labels == list(magnitudes.index) and not any("Rest" in t or "Base" in t for t in labels)
    heading = figure.get_suptitle()
    assert "unsigned" in heading and "none (attention masks)" in heading
    assert "probability of the predicted class" in heading and "probability of the predicted class" in right.get_title()


def test_the_figure_says_what_the_values_are(tmp_path: Path) -> None:
    """Exact or not, the reference point and the explained output are written on the figure."""
    from matplotlib.figure import Figure

    for kind, exactness, reference in [("exact", "exact (base", "training mean"), ("inexact", "not exact", "zero")]:
        stored = ex.load_explanation(write_attribution(tmp_path / kind, attribution(kind)))
        figure = Figure()
        left, right = ex.draw_explanation(figure, stored, title="t", example=0, top_k=3)
        heading = figure.get_suptitle()
        assert exactness in heading and f"reference: {reference}" in heading and "output: logit" in heading
        assert right.get_xlabel() == "Contribution to the logit (red +, blue −)"
        assert "logit of class 'good' (predicted '" in right.get_title()  # the positive class, by its name
        labels = [label.get_text() for label in right.get_yticklabels()]
        assert (ex.BASE_LABEL in labels) == (kind == "exact") and (ex.REST_LABEL in labels) == (kind == "inexact")
        assert left.get_title() == "Global importance (top 3)"
    width, height = ex.explanation_size(stored, top_k=3)
    assert width == 10.0 and height > 1.8


def test_unreadable_files_are_value_errors_naming_the_file(tmp_path: Path) -> None:
    path = write_attribution(tmp_path / "a", attribution("exact"))
    path.write_bytes(path.read_bytes()[:150])  # truncated
    with pytest.raises(ValueError, match=str(path)):
        ex.load_explanation(path)
    bad = tmp_path / "b" / EXPLANATIONS_FILENAME
    bad.parent.mkdir()
    arrays = {key: value for key, value in np.load(write_attribution(tmp_path / "c", attribution("exact"))).items()}
    np.savez(bad, **{**arrays, "output": arrays["output"][:2]})  # inconsistent shapes
    with pytest.raises(ValueError, match="inconsistent"):
        ex.load_explanation(bad)


def runs_frame(root: Path, cells: list[tuple[str, str, str]]) -> pd.DataFrame:
    """The columns of ``load_runs`` that the explanation choice reads, for run folders under ``root``."""
    rows = []
    for method, dataset, seed in cells:
        folder = root / method / dataset / seed
        folder.mkdir(parents=True, exist_ok=True)
        rows.append((method, dataset, seed, f"data-{dataset}", str(folder / "output_info.json")))
    return pd.DataFrame(rows, columns=["method", "dataset_id", "seed", "dataset_name", "path"])


def test_explanation_choice_by_dataset_and_seed(tmp_path: Path) -> None:
    methods = ["inn", "tabnet", "decision_tree"]
    cells = [(m, d, s) for m in methods for d in ("3", "31", "54") for s in ("0", "1")]
    runs = runs_frame(tmp_path, cells)
    write_attribution(tmp_path / "inn" / "31" / "1", attribution("exact"))
    write_attribution(tmp_path / "tabnet" / "31" / "1", attribution("unsigned"))
    write_attribution(tmp_path / "inn" / "54" / "0", attribution("exact"))

    def chosen(**kwargs) -> set[tuple[str, str, str]]:
        targets, notes = ex.explanation_targets(runs, methods, **kwargs)
        return {(row.method, row.dataset_id, row.seed) for row in targets.itertuples()}, notes

    # Default: the first dataset with a file (31, not 3), every method at its first seed with a file.
    picked, notes = chosen()
    assert picked == {("inn", "31", "1"), ("tabnet", "31", "1")}
    assert len(notes) == 1 and "decision_tree/31/0" in notes[0]
    picked, _ = chosen(dataset="all")
    assert picked == {("inn", "31", "1"), ("tabnet", "31", "1"), ("inn", "54", "0")}
    picked, notes = chosen(dataset="54", seed="1")
    assert picked == set() and "inn/54/1" in notes[0]
    picked, _ = chosen(dataset="31", seed="1")
    assert picked == {("inn", "31", "1"), ("tabnet", "31", "1")}
    assert chosen(dataset="31", seed="9")[1][0].startswith("no explanation figure for inn on dataset 31")
    with pytest.raises(UserError, match="--explain_dataset 77"):
        ex.explanation_targets(runs, methods, dataset="77")
    targets, notes = ex.explanation_targets(runs[runs["method"] == "decision_tree"], ["decision_tree"])
    assert targets.empty and "no compared run saved an explanations.npz" in notes[0]


def test_load_targets_skips_unreadable_files_and_checks_the_example_first(tmp_path: Path) -> None:
    runs = runs_frame(tmp_path, [("inn", "31", "0"), ("ebm", "31", "0"), ("tabnet", "31", "0")])
    write_attribution(tmp_path / "inn" / "31" / "0", attribution("exact", n_rows=6))
    write_attribution(tmp_path / "ebm" / "31" / "0", attribution("exact", n_rows=3))
    broken = write_attribution(tmp_path / "tabnet" / "31" / "0", attribution("unsigned"))
    broken.write_bytes(broken.read_bytes()[:100])
    methods = ["inn", "ebm", "tabnet"]
    loaded, notes = ex.load_targets(runs, methods, example=2)
    assert [row["method"] for row, _ in loaded] == ["inn", "ebm"]
    assert len(notes) == 1 and str(broken) in notes[0] and notes[0].startswith("skipping ")
    with pytest.raises(UserError, match=r"--explain_example 3 is out of range for .*ebm.*3 test rows"):
        ex.load_targets(runs, methods, example=3)
    # An exact explanation that does not add up is drawn, with a note.
    attr = attribution("exact", n_rows=6)
    broken_sum = Attribution(attr.values, attr.rest + 1.0, attr.output, attr.feature_names, "inn", True)
    write_attribution(tmp_path / "inn" / "31" / "0", broken_sum)
    _, notes = ex.load_targets(runs[runs["method"] == "inn"], ["inn"])
    assert "differ from the output by up to 1" in notes[0]
