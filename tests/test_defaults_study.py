"""Tests of the defaults study's options: every encoded input standardised (``--scale_inputs all``), INN's L1 term
weighted by each column's standard deviation (``weight_norm_scale="std"``), the runner's sensitivity audit
(``--audit_sensitivity``), and the study's orchestration and tables (``studies/defaults_study``).

Offline and fast: synthetic frames, the embedded credit-g, tiny networks and logistic regression.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

import baseline_experiment
import main_experiment
from data import RawDataset, load_dataset, prepare_split
from experiments.runner import SENSITIVITY_REPEATS
from models.estimators import INNClassifier, INNRegressor, TabResNetClassifier
from models.networks import NetworkOutput
from models.training import TaskLoss
from studies.defaults_study import run_study

FAST = ["--nr_epochs", "2", "--hidden_size", "16", "--nr_blocks", "1", "--device", "cpu"]


def _mixed_raw(n: int = 150, n_classes: int = 2, seed: int = 0) -> RawDataset:
    """Two numerical and two categorical features; the label depends on ``colour``."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n)
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "colour": colour,
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["x", "y"], n),
        }
    )
    codes = (colour == "red").astype(int) + (rng.random(n) < 0.3)
    y = pd.Series(np.array([f"c{i}" for i in range(n_classes)])[codes % n_classes], name="target")
    return RawDataset("synthetic", "synthetic", X, y, [False, True, False, True], "target")


# ---------------------------------------------------------------------------------------------------------------
# --scale_inputs all: every encoded input column standardised on the training rows


@pytest.mark.parametrize("n_classes", [2, 3])
def test_scale_all_standardises_the_encoded_columns_with_the_training_statistics(n_classes):
    raw = _mixed_raw(n_classes=n_classes)
    plain = prepare_split(raw, seed=1)
    scaled = prepare_split(raw, seed=1, scale_all_inputs=True)
    assert scaled.scale_all_inputs and not plain.scale_all_inputs
    assert scaled.input_names == plain.input_names  # binary: target encoding; multiclass: one-hot
    categorical = np.asarray(plain.categorical_features)[plain.input_to_feature]
    # The same encoding, then (x - mean) / std with the TRAINING rows' statistics, on train and test alike.
    mean = plain.X_train.astype(np.float64).mean(axis=0)
    std = plain.X_train.astype(np.float64).std(axis=0)
    for part in ("train", "test"):
        before, after = getattr(plain, f"X_{part}"), getattr(scaled, f"X_{part}")
        np.testing.assert_allclose(after[:, categorical], ((before - mean) / std)[:, categorical], atol=1e-5)
        np.testing.assert_array_equal(after[:, ~categorical], before[:, ~categorical])  # already standardised
    np.testing.assert_allclose(scaled.X_train.std(axis=0), 1.0, atol=1e-4)
    # Unscaled, the encodings are frequencies or indicators in [0, 1], far from standardised.
    assert plain.X_train[:, categorical].min() >= 0 and plain.X_train[:, categorical].max() <= 1
    assert np.all(plain.X_train[:, categorical].std(axis=0) < 0.6)


def test_scale_all_transforms_new_rows_like_the_test_rows_and_leaves_ordinal_codes_alone():
    raw = _mixed_raw()
    scaled = prepare_split(raw, seed=0, scale_all_inputs=True)
    np.testing.assert_array_equal(scaled.transform(raw.X.iloc[scaled.test_index]), scaled.X_test)
    ordinal = prepare_split(raw, seed=0, encoding_type="ordinal", scale_all_inputs=True)
    codes = ordinal.X_test[:, ordinal.categorical_input_indices]
    np.testing.assert_array_equal(codes, np.round(codes))  # codes, not standardised
    np.testing.assert_array_equal(ordinal.X_test, prepare_split(raw, seed=0, encoding_type="ordinal").X_test)


def test_scale_inputs_flag_reaches_the_split_and_the_config(tmp_path):
    args = [*FAST, "--interpretable", "--output_dir", str(tmp_path), "--explanation_metrics", "off"]
    assert main_experiment.main([*args, "--scale_inputs", "all", "--variant", "scaled"]) == 0
    assert main_experiment.main(args) == 0
    scaled = json.loads((tmp_path / "inn-scaled" / "31" / "0" / "output_info.json").read_text())
    plain = json.loads((tmp_path / "inn" / "31" / "0" / "output_info.json").read_text())
    assert (scaled["config"]["scale_inputs"], plain["config"]["scale_inputs"]) == ("all", "numerical")
    assert scaled["test_auroc"] != plain["test_auroc"]  # credit-g has 13 target-encoded features


# ---------------------------------------------------------------------------------------------------------------
# weight_norm_scale="std": INN's L1 term on each column's weight times the column's standard deviation


def _loss_of(model, weights: torch.Tensor, scale: np.ndarray | None) -> float:
    """INN's loss hook on fixed logits and weights, with the task loss of a binary problem."""
    model.task_loss_ = TaskLoss("binary", None)
    model.l1_column_scale_ = scale
    model._l1_scale = None
    logits = torch.zeros(weights.shape[0], 1)
    y = torch.ones(weights.shape[0])
    output = NetworkOutput(logits=logits, weights=weights)
    return float(model._loss(None, None, y, output, None))


def test_the_scaled_l1_term_is_the_closed_form():
    rng = np.random.default_rng(0)
    weights = torch.as_tensor(rng.normal(size=(6, 4 + 1, 1)), dtype=torch.float32)  # (B, D + 1, C)
    scale = np.array([0.2, 1.0, 3.0, 0.5, 1.0])  # four columns, then the bias
    task = float(np.log(2.0))  # BCE of logit 0
    w = weights.numpy().astype(np.float64)
    paper = _loss_of(INNClassifier(weight_norm=0.3), weights, None)
    scaled = _loss_of(INNClassifier(weight_norm=0.3, weight_norm_scale="std"), weights, scale)
    np.testing.assert_allclose(paper, task + 0.3 * np.abs(w).mean(), rtol=1e-6)
    np.testing.assert_allclose(scaled, task + 0.3 * (np.abs(w) * scale[None, :, None]).mean(), rtol=1e-6)
    # Weights of standardised inputs (W_j·σ_j for the same function) cost under the paper's term what W costs here.
    standardised = weights * torch.as_tensor(scale, dtype=torch.float32)[None, :, None]
    np.testing.assert_allclose(_loss_of(INNClassifier(weight_norm=0.3), standardised, None), scaled, rtol=1e-6)


def test_the_column_scale_is_the_training_std_before_oversampling(binary_problem):
    X = binary_problem.X_train.copy()
    X[:, 1] *= 0.1
    X[:, 3] = 2.0  # a constant column keeps weight 1
    y = binary_problem.y_train
    y = np.where(np.arange(len(y)) < 20, "yes", "no")  # imbalanced: oversampling repeats the 20 "yes" rows
    model = INNClassifier(nr_epochs=1, hidden_size=8, nr_blocks=1, weight_norm_scale="std", class_balance="oversample")
    model.fit(X, y)
    expected = np.append(X.astype(np.float64).std(axis=0), 1.0)
    expected[3] = 1.0
    np.testing.assert_allclose(model.l1_column_scale_, expected, rtol=1e-6)
    assert not hasattr(model, "_l1_scale")  # the device copy does not outlive the fit
    assert INNClassifier(nr_epochs=1, hidden_size=8).fit(X, y).l1_column_scale_ is None


def test_the_scaled_l1_term_equals_the_papers_on_standardised_columns_and_not_otherwise(regression_problem):
    X = regression_problem.X_train.astype(np.float64)
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32)  # every std is 1 up to float rounding
    y = regression_problem.y_train
    params = {"nr_epochs": 2, "hidden_size": 8, "nr_blocks": 1, "batch_size": 32}
    paper = INNRegressor(**params).fit(X, y).predict(X)
    model = INNRegressor(**params, weight_norm_scale="std").fit(X, y)
    assert model.l1_column_scale_ is None  # every column standardised: the paper's term, bit for bit
    same = model.predict(X)
    np.testing.assert_array_equal(same, paper)
    shrunk = X * np.array([1.0, 0.05, 1.0, 1.0], dtype=np.float32)  # column 1's weight now costs 20 times less
    a = INNRegressor(**params).fit(shrunk, y).predict(shrunk)
    b = INNRegressor(**params, weight_norm_scale="std").fit(shrunk, y).predict(shrunk)
    assert np.abs(a - b).max() > 1e-3


def test_weight_norm_scale_is_checked_and_is_no_parameter_of_tabresnet(binary_problem):
    with pytest.raises(ValueError, match="weight_norm_scale"):
        INNClassifier(nr_epochs=1, weight_norm_scale="l2").fit(binary_problem.X_train, binary_problem.y_train)
    for name in ("weight_norm", "weight_norm_scale", "product_inputs"):  # INN's: TabResNet generates no weights
        assert name not in TabResNetClassifier().get_params()
        with pytest.raises(TypeError, match=name):
            TabResNetClassifier(**{name: INNClassifier().get_params()[name]})


# ---------------------------------------------------------------------------------------------------------------
# --audit_sensitivity: the faithfulness measure in output_info.json


def test_audit_sensitivity_reports_the_rank_correlation_of_an_independent_recomputation(tmp_path):
    from methods import get_method
    from xai.sensitivity import model_sensitivity

    args = ["--model_name", "logistic_regression", "--output_dir", str(tmp_path), "--seed", "2"]
    assert baseline_experiment.main([*args, "--audit_sensitivity"]) == 0
    report = json.loads((tmp_path / "logistic_regression" / "31" / "2" / "output_info.json").read_text())
    audit = report["sensitivity_audit"]
    names = report["feature_names"]
    # Refit the same (deterministic) model and measure the sensitivity again, the same way.
    spec = get_method("logistic_regression")
    split = prepare_split(load_dataset(31), seed=2, encoding_type=spec.encoding)
    model = spec.build(split, seed=2, params={})
    model.fit(spec.inputs(split)[0], split.y_train)
    sensitivity = model_sensitivity(spec, model, split, n_repeats=SENSITIVITY_REPEATS, seed=2)
    np.testing.assert_allclose([audit["sensitivity"][name] for name in names], sensitivity, rtol=1e-6)
    importance = [report["feature_importances"][name] for name in names]  # the explanation on the test rows
    expected = spearmanr(sensitivity, importance).statistic
    np.testing.assert_allclose(report["sensitivity_rank_correlation"], expected, rtol=1e-9)
    shares = np.array([audit["explanation_share"][name] for name in names])
    np.testing.assert_allclose(shares, np.asarray(importance) / np.sum(importance), rtol=1e-6)
    assert baseline_experiment.main([*args, "--seed", "3"]) == 0
    plain = json.loads((tmp_path / "logistic_regression" / "31" / "3" / "output_info.json").read_text())
    assert "sensitivity_rank_correlation" not in plain and "sensitivity_audit" not in plain


# ---------------------------------------------------------------------------------------------------------------
# The study's grid


def test_every_candidate_parses_and_the_inn_only_ones_change_nothing_for_tabresnet():
    from experiments import cli

    parsed = {}
    for name, flags in run_study.CANDIDATES.items():
        config = cli.neural_config([*run_study.COMMON_FLAGS, *flags, *run_study.AUDIT_FLAGS, "--method", "inn"])
        parsed[name] = {**config.spec.resolve_params(config.mode, config.model_params), "data": config.data}
        assert config.audit_sensitivity and config.explanation_metrics == "off"
    inn_only = {"weight_norm", "weight_norm_scale", "product_inputs"}  # TabResNet has no L1 term, no linear models
    for name in run_study.INN_ONLY:
        differs = {key for key in parsed[name] if parsed[name][key] != parsed["current"][key]}
        assert differs and differs <= inn_only, (name, differs)
    for name in set(run_study.CANDIDATES) - run_study.INN_ONLY - {"current"}:
        assert {key for key in parsed[name] if parsed[name][key] != parsed["current"][key]} - inn_only
    assert (parsed["neurips"]["nr_epochs"], parsed["neurips"]["weight_norm"], parsed["neurips"]["dropout"]) == (
        500,
        0.1,
        0.25,
    )
    assert (parsed["v1"]["nr_epochs"], parsed["v1"]["weight_norm"], parsed["v1"]["dropout"]) == (100, 1.0, 0.0)


def test_the_plan_covers_the_cache_and_skips_only_cells_that_repeat_current():
    cache = Path("/work/shared/openml_cache/org/openml/www/datasets")
    ids = run_study.ALL_DATASETS
    assert len(ids) == len(set(ids)) == 23
    if cache.is_dir():  # the team's cache; elsewhere the count above is the check
        assert sorted(ids) == sorted(int(path.name) for path in cache.iterdir())
    blocks = run_study.grid_blocks([stage for stage, _, _ in run_study.PLAN])
    covered = {}
    for stage, name, methods, datasets, seeds in blocks:
        assert seeds is None  # the command's --seeds
        if stage == "point3":
            assert set(methods) == set(run_study.BASELINES) and datasets == run_study.DEV_DATASETS
            continue
        for method in methods:
            covered.setdefault((method, name), set()).update(datasets)
        if name in run_study.CATEGORICAL_ONLY:
            assert set(datasets) <= set(run_study.CATEGORICAL_DATASETS)
    every = set(ids)
    for name in ("current", "neurips"):
        assert covered[("inn", name)] == covered[("tabresnet", name)] == every
    assert covered[("inn", "v1")] == every and ("tabresnet", "v1") not in covered
    for name in run_study.CATEGORICAL_ONLY:
        assert covered[("inn", name)] == set(run_study.CATEGORICAL_DATASETS)
    # The 500-epoch candidate of a dataset runs after its 100-epoch candidates.
    order = [(name, dataset) for _, name, _, datasets, _ in blocks for dataset in datasets]
    for dataset in ids:
        positions = [i for i, (name, d) in enumerate(order) if d == dataset]
        assert order[positions[-1]][0] == "neurips"


def test_the_half_stages_take_their_datasets_and_seeds_from_the_suites():
    from experiments.sweep import load_suites

    suites = load_suites()
    stages = [stage for stage, _, _ in run_study.HALF_STAGES]
    with pytest.raises(ValueError, match="chosen"):
        run_study.grid_blocks(stages)
    blocks = run_study.grid_blocks(stages, chosen=("l1std", "current"))
    covered: dict[tuple[str, str], set[int]] = {}
    for stage, name, methods, datasets, seeds in blocks:
        suite = suites["report" if stage == "report" else "selection"]
        assert seeds == tuple(suite["seeds"])
        skipped = run_study.HALF_SKIPPED.get(stage, ())
        expected = [d for d in suite["dataset_ids"] if d not in skipped]
        if name in run_study.CATEGORICAL_ONLY and stage != "report":
            expected = [d for d in expected if d in run_study.CATEGORICAL_DATASETS]
        assert list(datasets) == expected, (stage, name)
        for method in methods:
            covered.setdefault((stage, method), set()).add(name)
    assert covered[("selection", "inn")] == {"current", "scaled", "l1std", "v1", "product"}
    assert covered[("selection", "tabresnet")] == {"current", "scaled"}
    assert covered[("selection-neurips", "inn")] == covered[("selection-neurips", "tabresnet")] == {"neurips"}
    # The report half: INN and TabResNet with the candidates chosen for each, the six baselines with their defaults.
    assert covered[("report", "inn")] == {"l1std"} and covered[("report", "tabresnet")] == {"current"}
    assert all(covered[("report", method)] == {""} for method in run_study.BASELINES)
    assert not set(suites["selection"]["dataset_ids"]) & set(suites["report"]["dataset_ids"])


def test_the_report_stage_may_run_some_of_the_report_seeds_and_runs_ebm_last():
    blocks = run_study.grid_blocks(["report"], ("current", "current"), report_seeds=(0, 1, 2))
    assert {seeds for *_, seeds in blocks} == {(0, 1, 2)}
    assert blocks[-1][2] == run_study.LAST_BASELINES == ("ebm",)
    assert sorted(m for _, _, methods, _, _ in blocks for m in methods) == sorted(
        ["inn", "tabresnet", *run_study.BASELINES]
    )
    with pytest.raises(ValueError, match="report half"):
        run_study.grid_blocks(["report"], ("current", "current"), report_seeds=(0, 7))


def test_the_report_table_leaves_out_a_method_the_stage_did_not_finish_not_the_datasets():
    from studies.defaults_study.halves import Choice, report_methods

    rows = []
    for method in ["inn-current", "tabresnet-current", *run_study.BASELINES]:
        for dataset in ("3", "11"):
            for seed in ("0", "1", "2"):
                if method == "ebm" and dataset == "11":
                    continue
                base = method.partition("-")[0]
                rows.append({"half": "report", "method": method, "base_method": base, "dataset_id": dataset,
                             "seed": seed, "test_auroc": 0.9})  # fmt: skip
    choice = Choice("current", "current", pd.DataFrame(), pd.DataFrame(), "")
    kept, methods, left_out = report_methods(pd.DataFrame(rows), choice)
    assert methods == ["inn", "tabresnet", *[m for m in run_study.BASELINES if m != "ebm"]]
    assert left_out == {"ebm": 3}
    assert set(kept["dataset_id"]) == {"3", "11"} and set(kept["method"]) == set(methods)


def test_every_sweep_of_the_study_routes_each_flag_to_the_methods_it_sets_a_parameter_of():
    """The study's sweep commands under the rule that a model flag setting nothing in a method is an error of a
    single run: each cell's flags must build its run's configuration, and INN's flags must not reach TabResNet."""
    from experiments import cli, sweep

    stages = [stage for stage, _, _ in (*run_study.PLAN, *run_study.HALF_STAGES)]
    seen = set()
    for chosen in (("current", "current"), ("neurips", "scaled")):
        for _, name, methods, datasets, _ in run_study.grid_blocks(stages, chosen):
            if (name, methods) in seen:
                continue
            seen.add((name, methods))
            flags = run_study.block_flags(name, methods)
            if name and "inn" in methods:  # INN's blocks: every flag of the candidate
                assert flags == (*run_study.COMMON_FLAGS, *run_study.CANDIDATES[name], *run_study.AUDIT_FLAGS)
            command = run_study.sweep_command(
                methods, datasets[:1], seeds="0", output_dir=Path("unused"), cache=Path("unused"), workers=2,
                variant=name or None, flags=flags,
            )  # fmt: skip
            args, passthrough = sweep.build_parser().parse_known_args(command[2:])
            spec = sweep.Sweep(
                methods=tuple(sweep.parse_methods(args.methods)),
                datasets=tuple(sweep.expand_datasets(args.datasets)),
                seeds=(0,),
                output_dir=Path("unused"),
                passthrough=tuple(passthrough),
                variant=args.variant,
            )
            routed = sweep.method_flags(spec)
            for method in methods:
                script = sweep.SCRIPTS[method]
                parse = cli.neural_config if script.script == "main_experiment.py" else cli.baseline_config
                config = parse([*script.args, "--dataset_id", str(datasets[0]), *routed[method]])
                assert config.audit_sensitivity and config.explanation_metrics == "off"
                if method == "tabresnet":
                    assert not {"--weight_norm", "--weight_norm_scale", "--product_inputs"} & set(routed[method])
            if "inn" in methods and name:
                assert routed["inn"][-len(run_study.AUDIT_FLAGS) :] == list(run_study.AUDIT_FLAGS)
                assert "--weight_norm" in routed["inn"]


def _candidate_runs(shifts: dict[str, tuple[float, float]], datasets: int = 8, seeds: int = 3, resnet=None):
    """Selection runs of INN's candidates: ``current`` random, every other one shifted by ``(Δ AUROC, Δ ρ)`` with a
    little noise; TabResNet's ``current`` and ``resnet``'s shifts likewise."""
    rng = np.random.default_rng(0)
    rows = []
    base = {(d, s): (0.8 + 0.1 * rng.random(), 0.5 + 0.3 * rng.random()) for d in range(datasets) for s in range(seeds)}
    for method, table in (
        ("inn", {"current": (0.0, 0.0), **shifts}),
        ("tabresnet", {"current": (0.0, 0.0), **(resnet or {})}),
    ):
        for name, (da, dr) in table.items():
            for (d, s), (a, r) in base.items():
                noise = 0.0 if name == "current" else 1e-4 * rng.standard_normal()
                rows.append({"method": f"{method}-{name}", "dataset_id": str(d), "seed": str(s),
                             "test_auroc": a + da + noise, "sensitivity_rank_correlation": r + dr + noise})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_rule_puts_auroc_first_then_rho_and_changes_the_defaults_only_on_evidence():
    from studies.defaults_study.halves import AUROC_MARGIN, choose

    # Within the margin on AUROC (a loss, significant or not), clearly better on ρ: chosen. A candidate better on ρ
    # but outside the margin is not.
    shifts = {"v1": (-0.001, 0.05), "scaled": (-0.02, 0.2), "l1std": (0.0, 0.0), "product": (-AUROC_MARGIN - 5e-4, 0.1)}
    choice = choose(_candidate_runs(shifts))
    assert choice.inn == "v1" and choice.tabresnet == "current"
    table = choice.inn_table.set_index("candidate")
    assert table.loc["v1", "AUROC step"] and not table.loc["scaled", "AUROC step"]
    assert not table.loc["product", "AUROC step"] and table.loc["l1std", "AUROC step"]
    assert table.loc["v1", "p AUROC"] < 0.05 and table.loc["v1", "p ρ"] < 0.05
    np.testing.assert_allclose(table.loc["scaled", "Δ AUROC"], -0.02, atol=1e-3)
    # Tiny differences, within noise: current stays although a candidate has the highest mean ρ.
    choice = choose(_candidate_runs({"v1": (0.0, 1e-5), "l1std": (0.0, -1e-5)}, datasets=2, seeds=2))
    assert choice.inn == "current" and "current stays" in choice.reason
    # One candidate clearly more accurate: current falls out of the AUROC step; the accurate one wins on evidence,
    # unless it is significantly worse on ρ.
    choice = choose(_candidate_runs({"neurips": (AUROC_MARGIN + 0.01, 0.0), "v1": (0.0, 0.05)}))
    assert choice.inn == "neurips"
    assert not choice.inn_table.set_index("candidate").loc["current", "AUROC step"]
    assert choose(_candidate_runs({"neurips": (AUROC_MARGIN + 0.01, -0.01), "v1": (0.0, 0.05)})).inn == "current"
    # TabResNet on its AUROC alone: the significantly better one.
    choice = choose(_candidate_runs({"scaled": (0.0, 0.0)}, resnet={"scaled": (0.01, 0.0), "neurips": (0.0, 0.0)}))
    assert choice.tabresnet == "scaled" and choice.inn == "current"


def test_scaled_and_l1std_are_current_bit_for_bit_without_categorical_columns(binary_problem):
    """The premise of skipping them there: the same input matrix, and L1 weights of exactly 1."""
    raw = _mixed_raw()
    numerical = RawDataset("synthetic", "synthetic", raw.X[["age", "income"]], raw.y, [False, False], "target")
    np.testing.assert_array_equal(
        prepare_split(numerical, seed=3, scale_all_inputs=True).X_train, prepare_split(numerical, seed=3).X_train
    )
    split = prepare_split(numerical, seed=3)
    model = INNClassifier(nr_epochs=1, hidden_size=8, nr_blocks=1, weight_norm_scale="std")
    assert model.fit(split.X_train, split.y_train).l1_column_scale_ is None


# ---------------------------------------------------------------------------------------------------------------
# The study's tables


def _runs(values: dict[str, dict[tuple[str, int], float]]) -> pd.DataFrame:
    """A tidy runs frame (as ``load_runs`` gives) from ``{method: {(dataset, seed): test_auroc}}``."""
    rows = []
    for method, cells in values.items():
        base, _, variant = method.partition("-")
        for (dataset, seed), value in cells.items():
            rows.append(
                {
                    "method": method,
                    "run_id": method,
                    "base_method": base,
                    "variant": variant or None,
                    "dataset_id": dataset,
                    "dataset_name": f"d{dataset}",
                    "seed": str(seed),
                    "test_auroc": value,
                    "train_time": 1.0,
                }
            )
    return pd.DataFrame(rows)


def test_gaps_are_the_mean_over_datasets_with_their_spread_over_seeds():
    from studies.defaults_study.tabulate import gap_table

    a = {("1", 0): 0.9, ("1", 1): 0.8, ("2", 0): 0.7, ("2", 1): 0.6}
    b = {("1", 0): 0.85, ("1", 1): 0.86, ("2", 0): 0.5, ("2", 1): 0.7}
    table = gap_table(_runs({"inn": a, "tabresnet": b}), [("inn", "tabresnet")], ["1", "2"]).iloc[0]
    # differences: d1 (+0.05, -0.06), d2 (+0.2, -0.1); per seed: 0.125, -0.08; per dataset: -0.005, 0.05
    np.testing.assert_allclose(table["mean gap"], 0.0225)
    np.testing.assert_allclose(table["std over seeds"], np.std([0.125, -0.08], ddof=1))
    assert (table["min over seeds"], table["max over seeds"]) == pytest.approx((-0.08, 0.125))
    assert table["datasets a wins"] == 1 and table["datasets"] == 2 and table["seeds"] == 2


def test_skipped_cells_are_filled_in_from_current_only_where_they_repeat_it():
    from studies.defaults_study.tabulate import complete_datasets, fill_in

    current = {("31", 0): 0.8, ("37", 0): 0.7, ("37", 1): 0.75}
    runs = _runs({"inn-current": current, "inn-scaled": {("31", 0): 0.6}, "tabresnet-current": current})
    filled = fill_in(runs)
    scaled = filled[filled["method"] == "inn-scaled"].set_index(["dataset_id", "seed"])["test_auroc"]
    assert scaled.to_dict() == {("31", "0"): 0.6, ("37", "0"): 0.7, ("37", "1"): 0.75}  # 31 has categoricals: run
    assert set(filled.loc[filled["filled_in"], "method"]) == {
        "inn-scaled",
        "inn-l1std",
        "inn-product",
        "tabresnet-scaled",
    }
    assert "tabresnet-l1std" not in set(filled["method"])  # an INN-only candidate
    assert complete_datasets(filled, ["inn-current", "inn-scaled"], "test_auroc", 2) == ["37"]
    assert complete_datasets(filled, ["inn-current", "inn-scaled"], "test_auroc", 1) == ["31", "37"]


def test_the_zero_reference_correlation_from_a_runs_files_equals_a_run_with_the_zero_reference(tmp_path):
    from studies.defaults_study.tabulate import zero_reference_correlation

    args = [*FAST, "--interpretable", "--explanation_metrics", "off", "--audit_sensitivity", "--seed", "1"]
    assert main_experiment.main([*args, "--output_dir", str(tmp_path / "mean")]) == 0
    assert main_experiment.main([*args, "--output_dir", str(tmp_path / "zero"), "--reference", "zero"]) == 0
    mean_run = tmp_path / "mean" / "inn" / "31" / "1" / "output_info.json"
    zero = json.loads((tmp_path / "zero" / "inn" / "31" / "1" / "output_info.json").read_text())
    assert zero["explanation"]["reference"] == "zero"
    np.testing.assert_allclose(zero_reference_correlation(mean_run), zero["sensitivity_rank_correlation"], atol=1e-12)
    assert zero["sensitivity_rank_correlation"] != json.loads(mean_run.read_text())["sensitivity_rank_correlation"]


# ---------------------------------------------------------------------------------------------------------------
# product_inputs="standardised": INN's linear models on standardised inputs, the hypernetwork on the raw ones


def test_standardised_product_inputs_give_an_exact_explanation_in_standardised_units(binary_problem):
    X = binary_problem.X_train * np.array([1.0, 0.05, 3.0, 1.0, 1.0], dtype=np.float32) + 2.0
    y = binary_problem.y_train
    model = INNClassifier(nr_epochs=2, hidden_size=8, nr_blocks=1, product_inputs="standardised").fit(X, y)
    values = X.astype(np.float64)
    np.testing.assert_allclose(model.product_mean_, values.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(model.product_scale_, values.std(axis=0), rtol=1e-9)
    explanation = model.explain(X)
    standardised = (values - model.product_mean_) / model.product_scale_
    weights = explanation.extras["weights"].astype(np.float64)  # (N, D + 1, 1), standardised units
    # The logit is the linear model applied to the STANDARDISED row, and the explanation adds up to it.
    logits = (weights[:, :-1, 0] * standardised).sum(axis=1) + weights[:, -1, 0]
    np.testing.assert_allclose(model.decision_function(X), logits, rtol=1e-4, atol=1e-4)
    assert explanation.additivity_error() < 1e-4
    # Reference: the training mean, i.e. standardised zero: a row at the mean gets no attribution.
    np.testing.assert_allclose(explanation.values[:, :, 0], weights[:, :-1, 0] * standardised, rtol=1e-4, atol=1e-5)
    at_mean = model.explain(model.product_mean_[None, :].astype(np.float32))
    np.testing.assert_allclose(at_mean.values, 0.0, atol=1e-6)


def test_standardised_product_inputs_are_the_papers_inn_on_standardised_columns(regression_problem):
    X = regression_problem.X_train.astype(np.float64)
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32)
    y = regression_problem.y_train
    params = {"nr_epochs": 2, "hidden_size": 8, "nr_blocks": 1, "batch_size": 32}
    model = INNRegressor(**params, product_inputs="standardised").fit(X, y)
    assert model.product_mean_ is None and type(model.model_.members[0]).__name__ == "INNNetwork"
    np.testing.assert_array_equal(model.predict(X), INNRegressor(**params).fit(X, y).predict(X))
    with pytest.raises(ValueError, match="product_inputs"):
        INNRegressor(**params, product_inputs="minmax").fit(X, y)


def test_a_saved_run_with_standardised_product_inputs_reloads_with_its_own_predictions(tmp_path):
    from experiments import saved_run
    from experiments.results import read_explanations

    args = [*FAST, "--interpretable", "--explanation_metrics", "off", "--product_inputs", "standardised"]
    assert main_experiment.main([*args, "--output_dir", str(tmp_path)]) == 0
    folder = tmp_path / "inn" / "31" / "0"
    run = saved_run.load_run(folder)
    assert (
        run.model.product_mean_ is not None and type(run.model.model_.members[0]).__name__ == "StandardisedProductINN"
    )
    frame, _ = saved_run.prepare_rows(run, saved_run.test_set_rows(run))
    inputs = run.model_inputs(frame)
    attribution = run.spec.explain(run.model, run.split_view(inputs), inputs, reference="mean")
    stored = read_explanations(folder / "explanations.npz")
    np.testing.assert_allclose(attribution.values, stored["values"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(attribution.output, stored["output"], rtol=1e-5, atol=1e-5)


def test_point3_compares_every_method_on_the_same_seeds_only():
    from studies.defaults_study.tabulate import common_seeds

    five = {("31", s): 0.8 for s in range(5)}
    runs = _runs({"inn": five, "catboost": {("31", 0): 0.7, ("31", 1): 0.7, ("37", 0): 0.6}, "tabnet": five})
    kept = common_seeds(runs, ["inn", "catboost", "tabnet"])
    assert sorted(set(zip(kept["dataset_id"], kept["seed"], strict=True))) == [("31", "0"), ("31", "1")]
    assert kept.groupby("method").size().to_dict() == {"catboost": 2, "inn": 2, "tabnet": 2}


def test_the_halves_tables_of_docs_defaults_md_are_those_of_their_runs_file():
    """Every ``<!-- table:NAME -->`` block of docs/defaults.md is what ``tabulate --halves`` renders from
    docs/figures/defaults_halves_runs.csv: a number changed by hand, or a file regenerated without the doc, fails."""
    import re

    from studies.defaults_study.halves import HALVES_CSV, halves_tables, read_halves

    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "defaults.md").read_text()
    tables = halves_tables(read_halves(root / "docs" / "figures" / HALVES_CSV))
    blocks = re.findall(r"<!-- table:(\S+) -->\n(.*?)<!-- /table:\1 -->", text, re.S)
    assert {name for name, _ in blocks} >= {"defaults_rule", "defaults_selection_auroc", "defaults_report_auroc"}
    for name, body in blocks:
        assert body == tables[name], name
