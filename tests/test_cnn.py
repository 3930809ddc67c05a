"""The CNN (``models.cnn``) and its contextual decomposition: image layout, completeness, the layer rules against hand
computations, the CD penalties on it, a learning floor on the digits, the command line and a saved run.

Completeness (relevant + irrelevant = logit) is checked to 1e-10 in float64, as for the other networks
(``tests/test_cd.py``), on random networks (both rules, with and without a reference point, ensembles) and on a
trained estimator.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

import main_experiment
from data.images import pixel_layout
from data.named import load_digits_dataset
from models.cnn import CNNClassifier, CNNNetwork, CNNRegressor, image_layout
from models.decomposition import RULES, cd_module, contextual_decomposition, share_bias, split_input
from models.networks import SnapshotEnsemble
from models.penalties import PENALTIES, PenaltyError, build_penalty, check_penalty, decompose_logits

TOLERANCE = 1e-10  # completeness in float64
#: An 8×8 image whose pixels 0 and 39 are not inputs (the digits' constant corner and edge pixels are dropped).
MISSING = (0, 39)
POSITIONS = [pixel for pixel in range(64) if pixel not in MISSING]


def cnn(n_outputs: int = 3, seed: int = 0, **sizes) -> CNNNetwork:
    """A random CNN over the 62 pixels of :data:`POSITIONS`, parameters large enough for every ReLU to matter."""
    torch.manual_seed(seed)
    sizes = {"channels": 3, "nr_blocks": 2, "hidden_size": 10} | sizes
    network = CNNNetwork(n_inputs=len(POSITIONS), n_outputs=n_outputs, image_shape=(8, 8), pixel_positions=POSITIONS,
                         **sizes)  # fmt: skip
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0.0, 0.5)
    return network.eval()


def rows(n: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, len(POSITIONS)))


def logits64(network: nn.Module, x: np.ndarray) -> np.ndarray:
    twin = copy.deepcopy(network).double().eval()
    with torch.no_grad():
        return twin(torch.as_tensor(x)).logits.numpy()


# ---------------------------------------------------------------------------------------------------------------
# The image layout


def test_pixel_layout_reads_both_namings_and_keeps_dropped_pixels_in_place() -> None:
    grid = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    assert pixel_layout(grid) == ((8, 8), list(range(64)))
    kept = [name for name in grid if name not in ("pixel_0_0", "pixel_4_7")]
    shape, positions = pixel_layout(kept, also={"pixel_0_0": "constant", "pixel_4_7": "constant"})
    assert shape == (8, 8) and positions == [p for p in range(64) if p not in (0, 39)]
    assert pixel_layout(grid[:-8]) == ((7, 8), list(range(56)))  # a missing last row shrinks the image ...
    assert pixel_layout(grid[:-8], also=["pixel_7_7"])[0] == (8, 8)  # ... unless a dropped name says otherwise
    flat = [f"pixel{n}" for n in range(1, 785)]
    assert pixel_layout(flat)[0] == (28, 28) and pixel_layout(flat[:-1])[0] == (28, 28)
    for not_an_image in (["duration", "pixel_0_1"], ["pixel_0_1", "pixel1"], [], ["pixel_0_1", "pixel_0_1"]):
        assert pixel_layout(not_an_image) is None


def test_the_network_puts_each_column_at_its_pixel_and_missing_pixels_at_zero() -> None:
    network = cnn()
    x = torch.arange(1.0, 63.0).unsqueeze(0)
    image = network.body.image(x)[0, 0].flatten()
    assert image.shape == (64,) and (image[list(MISSING)] == 0).all()
    assert torch.equal(image[POSITIONS], x[0])
    assert image_layout(64) == ((8, 8), list(range(64))) and image_layout(5)[0] == (1, 5)
    with pytest.raises(ValueError, match="pixel_positions"):
        image_layout(62, (8, 8))
    with pytest.raises(ValueError, match="distinct"):
        image_layout(2, (1, 4), [1, 1])
    for n_inputs, blocks in ((1, 2), (7, 3), (49, 3)):  # one-row and odd images pool down without losing a side
        assert CNNNetwork(n_inputs=n_inputs, n_outputs=2, nr_blocks=blocks, channels=2)(torch.randn(3, n_inputs)
                                                                                        ).logits.shape == (3, 2)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Contextual decomposition


def masks() -> np.ndarray:
    out = np.zeros((6, len(POSITIONS)), dtype=bool)
    out[1, :6] = True  # the top rows
    out[2, 20:40] = True
    out[3, ::3] = True
    out[4] = True  # every column
    out[5, [0, 5, 6, 7]] = True  # the top corners' neighbours
    return out  # out[0]: the empty group


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("reference", ["zero", "mean"])
@pytest.mark.parametrize("n_outputs", [1, 4])
def test_relevant_plus_irrelevant_is_the_logit_of_random_cnns(rule, reference, n_outputs) -> None:
    x = rows()
    point = None if reference == "zero" else x.mean(0) + 0.3
    for network in (cnn(n_outputs), cnn(n_outputs, kernel_size=5, nr_blocks=1), cnn(n_outputs, nr_blocks=3)):
        rel, irrel = contextual_decomposition(network, x, masks(), reference=point, rule=rule)
        assert rel.shape == (len(x), 6, n_outputs)
        assert np.abs(rel + irrel - logits64(network, x)[:, None, :]).max() < TOLERANCE
        assert np.abs(rel[:, 0]).max() == 0.0  # the empty group scores exactly 0
        if point is None:  # classic CD: the group of all columns holds everything
            assert np.abs(irrel[:, 4]).max() < TOLERANCE


def test_the_snapshot_ensemble_and_a_trained_estimator_are_complete() -> None:
    x = rows()
    ensemble = SnapshotEnsemble([cnn(3, seed=1), cnn(3, seed=2)]).eval()
    rel, irrel = contextual_decomposition(ensemble, x, masks())
    assert np.abs(rel + irrel - logits64(ensemble, x)[:, None, :]).max() < TOLERANCE
    digits = load_digits_dataset()
    model = CNNClassifier(nr_epochs=3, channels=4, hidden_size=16, batch_size=64, device="cpu")
    model.fit(digits.X.to_numpy()[:400] / 16.0, digits.y.to_numpy()[:400])  # 64 columns: the 8×8 image
    x = digits.X.to_numpy()[400:440] / 16.0
    groups = np.zeros((3, 64), dtype=bool)
    groups[0, [0, 1, 8, 9]] = groups[1, 27:37] = groups[2] = True
    rel, irrel = contextual_decomposition(model.model_, x, groups, reference=model.reference_)
    assert np.abs(rel + irrel - model.decision_function(x)[:, None, :]).max() < 1e-4  # float32 network
    assert np.abs(rel + irrel - logits64(model.model_, x)[:, None, :]).max() < TOLERANCE


def test_convolution_shares_its_bias_by_magnitude_per_pixel_and_channel() -> None:
    layer = nn.Conv2d(1, 2, 3, padding=1).double()
    torch.manual_seed(3)
    rel, total = torch.randn(2, 3, 1, 4, 4, dtype=torch.float64), torch.randn(2, 1, 1, 4, 4, dtype=torch.float64)
    out_rel, out_total = cd_module(layer, rel, total)
    convolve = nn.functional.conv2d
    weighted_rel = convolve(rel.reshape(-1, 1, 4, 4), layer.weight, padding=1).reshape(2, 3, 2, 4, 4)
    weighted_total = convolve(total.reshape(-1, 1, 4, 4), layer.weight, padding=1).reshape(2, 1, 2, 4, 4)
    expected, _ = share_bias(weighted_rel, weighted_total, layer.bias[:, None, None])
    torch.testing.assert_close(out_rel, expected, rtol=0, atol=1e-14)
    torch.testing.assert_close(out_total, layer(total.reshape(-1, 1, 4, 4)).reshape(2, 1, 2, 4, 4))
    bias_share = (out_rel - weighted_rel) / layer.bias[:, None, None]
    magnitude = weighted_rel.abs() / (weighted_rel.abs() + (weighted_total - weighted_rel).abs())
    torch.testing.assert_close(bias_share, magnitude)


def test_max_pooling_reads_the_relevant_stream_where_the_total_wins() -> None:
    pool = nn.MaxPool2d(2)
    total = torch.tensor([[1.0, 5.0], [2.0, 0.0]], dtype=torch.float64).reshape(1, 1, 1, 2, 2)
    rel = torch.tensor([[[9.0, -1.0], [4.0, 3.0]], [[0.5, 0.25], [7.0, 0.0]]], dtype=torch.float64)
    out_rel, out_total = cd_module(pool, rel.reshape(1, 2, 1, 2, 2), total)
    assert out_total.flatten().tolist() == [5.0]
    assert out_rel.flatten().tolist() == [-1.0, 0.25]  # at the total's winner, not the relevant stream's own max
    for rule in RULES:  # one rule for both
        assert torch.equal(cd_module(pool, rel.reshape(1, 2, 1, 2, 2), total, rule=rule)[0], out_rel)


def test_flatten_keeps_rows_and_groups_apart() -> None:
    rel, total = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 1, 4, 2, 2)
    out_rel, out_total = cd_module(nn.Flatten(), rel, total)
    assert out_rel.shape == (2, 3, 16) and out_total.shape == (2, 1, 16)
    with pytest.raises(ValueError, match="batch"):
        cd_module(nn.Flatten(0), rel, total)


def test_cd_of_the_cnn_keeps_gradients_for_penalties() -> None:
    network = cnn(3).train()
    x = torch.as_tensor(rows(), dtype=torch.float32)
    mask = torch.zeros(1, len(POSITIONS), dtype=torch.bool)
    mask[0, :6] = True
    rel, total = cd_module(network, *split_input(x, mask))
    rel.abs().sum().backward()
    assert network.body.convolutions[0].weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------------------------
# The penalties on the CNN


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_every_penalty_but_weights_applies_to_the_cnn_and_has_a_finite_gradient(n_outputs) -> None:
    network = cnn(n_outputs).train()
    x = torch.as_tensor(rows(16), dtype=torch.float32)
    objective = "binary" if n_outputs == 1 else "multiclass"
    rel, total = decompose_logits(network, *split_input(x, torch.ones(1, len(POSITIONS), dtype=torch.bool)),
                                  centred=False)  # fmt: skip
    torch.testing.assert_close(total[:, 0], network(x).logits, rtol=1e-5, atol=1e-5)
    for name in PENALTIES:
        if name == "weights":
            with pytest.raises(PenaltyError, match="weights penalty"):
                check_penalty(name, network)
            continue
        network.zero_grad()
        term = build_penalty(name, network, columns=[0, 5, 6, 7], pool=x.flip(0), reference=x.mean(0),
                             objective=objective)(network, x, network(x))  # fmt: skip
        term.backward()
        gradients = torch.cat([parameter.grad.flatten() for parameter in network.parameters()])
        assert torch.isfinite(term) and torch.isfinite(gradients).all() and gradients.abs().sum() > 0, name


def test_the_cnn_learns_the_digits_and_a_strong_cd_strict_penalty_unlearns_a_patch() -> None:
    from data import prepare_split

    split = prepare_split(load_digits_dataset(), mode="classification", seed=0, encoding_type="paper")
    shape, positions = pixel_layout(split.input_names, also=split.dropped_columns)
    sizes = {"nr_epochs": 10, "channels": 8, "hidden_size": 32, "device": "cpu", "image_shape": shape,
             "pixel_positions": positions}  # fmt: skip
    model = CNNClassifier(**sizes).fit(split.X_train, split.y_train)
    assert (model.predict(split.X_test) == split.y_test).mean() > 0.9
    # A shortcut: the label written into the top-left corner's columns in the training rows, noise in the test rows.
    corner = [split.input_names.index(name) for name in ("pixel_0_1", "pixel_0_2", "pixel_1_1", "pixel_1_2")]
    train, test = split.X_train.copy(), split.X_test.copy()
    train[:, corner] = split.y_train[:, None] / 3.0
    test[:, corner] = np.random.default_rng(0).integers(0, 10, size=(len(test), 1)) / 3.0
    vanilla = CNNClassifier(**sizes).fit(train, split.y_train)
    strict = CNNClassifier(**sizes, penalize_features=corner, penalty="cd_strict", penalty_strength=10.0)
    strict.fit(train, split.y_train)
    accuracy = {name: (m.predict(test) == split.y_test).mean() for name, m in (("v", vanilla), ("s", strict))}
    assert accuracy["s"] > accuracy["v"] + 0.08 and accuracy["s"] > 0.75  # measured: 0.71 and 0.82


def test_the_regressor_predicts_in_target_units() -> None:
    digits = load_digits_dataset()
    x, y = digits.X.to_numpy()[:300] / 16.0, digits.y.to_numpy()[:300].astype(float) * 10 + 5
    prediction = CNNRegressor(nr_epochs=3, channels=2, hidden_size=8, device="cpu").fit(x, y).predict(x)
    assert prediction.shape == (300,) and abs(prediction.mean() - y.mean()) < y.std()


# ---------------------------------------------------------------------------------------------------------------
# The command line, blind runs and the saved run

FAST = ["--nr_epochs", "3", "--hidden_size", "16", "--channels", "4", "--device", "cpu", "--explanation_metrics", "off"]
CORNER = ["pixel_0_1", "pixel_0_2", "pixel_1_1", "pixel_1_2"]


def test_cli_trains_penalises_blinds_and_reloads_the_cnn_on_the_digits(tmp_path, capsys) -> None:
    from experiments.saved_run import load_run

    out = ["--dataset", "digits", "--output_dir", str(tmp_path)]
    assert main_experiment.main(["--method", "cnn", *FAST, *out]) == 0
    penalised = ["--penalize_features", *CORNER, "--penalty", "cd_strict"]
    assert main_experiment.main(["--method", "cnn", *FAST, *out, *penalised, "--variant", "strict"]) == 0
    blind = ["--penalize_features", *CORNER, "--blind", "--variant", "blind"]
    assert main_experiment.main(["--method", "cnn", *FAST, *out, *blind]) == 0
    report = json.loads((tmp_path / "cnn-strict" / "digits" / "0" / "output_info.json").read_text())
    assert report["test_accuracy"] > 0.2 and 0.0 <= report["test_flip_rate"] <= 1.0  # chance: 0.1
    assert report["explanation"]["explainer"] == "gradient_x_input" and not report["explanation"]["exact"]
    blind_report = json.loads((tmp_path / "cnn-blind" / "digits" / "0" / "output_info.json").read_text())
    assert blind_report["n_inputs"] == 61 - len(CORNER) and blind_report["test_flip_rate"] == 0.0
    # The network is saved as state dicts with the estimator's parameters (its image layout included) and
    # rebuilt: it gives the logits the run explained on its test rows.
    from data import prepare_split
    from experiments.results import read_explanations

    run = load_run(tmp_path / "cnn" / "digits" / "0")
    assert tuple(run.model.image_shape) == (8, 8) and len(run.model.pixel_positions) == 61
    split = prepare_split(load_digits_dataset(), mode="classification", seed=0, encoding_type="paper")
    saved = read_explanations(tmp_path / "cnn" / "digits" / "0" / "explanations.npz")
    np.testing.assert_allclose(run.model.decision_function(split.X_test), saved["output"], rtol=1e-5, atol=1e-5)


def test_cli_refuses_tabular_data_for_the_cnn_in_one_line(tmp_path, capsys) -> None:
    assert main_experiment.main(["--method", "cnn", *FAST, "--output_dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: cnn needs image-shaped data") and "\n" not in error
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------------
# The study (studies.cdep.cnn_digits): λ chosen on the selection seeds only, verdicts, the sweep's flags


def test_the_digits_selection_and_report_seeds_are_disjoint_and_stated_once() -> None:
    from studies.cdep.cnn_digits import suite_seeds

    selection, report = suite_seeds()
    assert selection == [100, 101, 102] and report == [0, 1, 2, 3, 4]


def test_lambda_is_chosen_on_the_selection_seeds_only_and_ties_go_to_the_smaller() -> None:
    import pandas as pd

    from studies.cdep.cnn_digits import choose_strengths, headline, verdict

    rows = []
    for seed, base in ((100, 0.0), (101, 0.0), (0, 0.5), (1, 0.5)):  # the report seeds prefer another λ
        rows += [
            {"method": "cnn", "penalty": "vanilla", "strength": np.nan, "seed": seed, "test_accuracy": 0.6,
             "test_flip_rate": 0.4, "claim_cdep": 0.5},
            {"method": "cnn", "penalty": "blind", "strength": np.nan, "seed": seed, "test_accuracy": 0.9,
             "test_flip_rate": 0.0, "claim_cdep": 0.0},
            {"method": "cnn", "penalty": "cdep", "strength": 1.0, "seed": seed, "test_accuracy": 0.7,
             "test_flip_rate": 0.38, "claim_cdep": 0.05},
            {"method": "cnn", "penalty": "cdep", "strength": 10.0, "seed": seed, "test_accuracy": 0.7 + base,
             "test_flip_rate": 0.3, "claim_cdep": 0.05},
            {"method": "cnn", "penalty": "cdep", "strength": 100.0, "seed": seed, "test_accuracy": 0.7,
             "test_flip_rate": 0.3, "claim_cdep": 0.05},
        ]  # fmt: skip
    runs = pd.DataFrame(rows)
    assert choose_strengths(runs[runs["seed"] >= 100]) == {("cnn", "cdep"): 1.0}  # a tie: the smaller λ
    table = headline(runs, [100, 101], [0, 1]).set_index("variant")
    assert (
        table.loc["cdep", "λ (selection seeds)"] == "1" and table.loc["cdep", "λ the report seeds would pick"] == "10"
    )
    assert table.loc["cdep", "test accuracy"] == "0.700 ± 0.000" and table.loc["cdep", "verdict"] == "gamed"
    assert verdict(0.1, 0.2) == "removed" and verdict(np.nan, 0.5) == "partly removed"
    assert verdict(0.5, 0.9) == "not removed" and verdict(0.2, 0.8) == "gamed"


def test_the_grid_runs_every_method_with_its_own_flags(monkeypatch, tmp_path) -> None:
    from experiments import sweep
    from studies.cdep import common
    from studies.cdep.cnn_digits import variants

    calls = []
    monkeypatch.setattr(sweep, "main", lambda argv: calls.append(argv) or 0)
    grid = [common.Variant("vanilla", methods=("tabresnet", "senn", "cnn"))]
    common.run_grid([tmp_path / "a.parquet"], [0], grid, ["x"], tmp_path)
    methods = [call[call.index("--methods") + 1 : call.index("--datasets")] for call in calls]
    assert methods == [["tabresnet", "cnn"], ["senn"]]
    assert "--robust_reg" not in calls[0] and calls[1][calls[1].index("--robust_reg") + 1] == "0"
    names = [variant.name for variant in variants(["cnn", "tabresnet"], [1.0, 100.0])]
    assert names[:4] == ["vanilla", "blind", "cdep-1", "cdep-100"] and not any("weights" in n for n in names)
    assert all(v.methods == ("cnn",) for v in variants(["cnn", "tabresnet"], [1.0]) if v.penalty == "rrr")


def test_the_docs_table_is_regenerated_from_the_runs_file() -> None:
    """docs/cdep.md's CNN table is ``cnn_digits.md``, which ``headline`` makes from ``cnn_digits_runs.csv``."""
    from pathlib import Path

    import pandas as pd

    from studies.cdep.cnn_digits import headline, suite_seeds

    figures = Path(__file__).resolve().parents[1] / "docs" / "figures" / "cdep"
    runs = pd.read_csv(figures / "cnn_digits_runs.csv")
    table = headline(runs, *suite_seeds())
    published = pd.read_csv(figures / "cnn_digits.csv", dtype=str, keep_default_na=False)
    assert table.astype(str).to_numpy().tolist() == published.to_numpy().tolist()
    doc = (figures.parents[1] / "cdep.md").read_text()
    assert (figures / "cnn_digits.md").read_text().strip() in doc
