"""The benchmarks run end to end on the embedded credit-g (one epoch; nothing here is timed).

They are modules of the ``benchmarks`` package, imported as such (``python -m benchmarks.<name>`` from the
repository root); a run against another checkout happens in a child process (``benchmarks.checkout``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks import checkout, compare_revisions, inn_overhead, train_speed, xai_ground_truth_noise

ROOT = Path(__file__).resolve().parents[1]


def test_paired_ratio_is_the_median_of_the_per_round_ratios():
    fits = {"inn": (None, [9.0, 9.0, 9.0], [1.1, 3.0, 2.2]), "tabresnet": (None, [1.0, 1.0, 1.0], [1.0, 2.0, 2.0])}
    # per round: 1.1, 1.5, 1.1 -> median 1.1 (the ratio of the minima would be 1.1 / 1.0 as well, the mean 1.23)
    assert train_speed.paired_ratio(fits) == pytest.approx(1.1)
    assert train_speed.paired_ratio({"inn": fits["inn"]}) is None


def test_train_speed_writes_one_row_per_method_and_the_ratio(tmp_path, capsys):
    output = tmp_path / "speed.csv"
    argv = ["--nr_epochs", "1", "--repeats", "2", "--predict_rows", "300", "--output", str(output)]
    assert train_speed.main(argv) == 0
    with output.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["method"] for row in rows] == ["inn", "tabresnet"]
    for row in rows:
        assert row["steps"] == "13" and float(row["fit_s_min"]) > 0 and 0.5 < float(row["test_auroc"]) <= 1
        assert float(row["explain_rows_per_s"]) > 0 and float(row["predict_out_mb"]) > 0
    printed = capsys.readouterr().out
    assert "INN / TabResNet fit time (median of paired fits)" in printed
    assert "| 31 | 0.0 | " in printed


@pytest.mark.slow
def test_train_speed_runs_another_checkout_in_a_child_process(tmp_path):
    # This checkout stands in for another one: the child imports the project from --code_root, not from here.
    output = tmp_path / "speed.csv"
    argv = ["--code_root", str(ROOT), "--nr_epochs", "1", "--repeats", "1", "--predict_rows", "0", "--methods", "inn"]
    assert train_speed.main([*argv, "--label", "other", "--output", str(output)]) == 0
    with output.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["method"], row["label"]) for row in rows] == [("inn", "other")]


def test_a_folder_that_is_no_checkout_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="not a checkout of this project"):
        checkout.run_in_checkout(tmp_path, ROOT / "benchmarks" / "train_speed.py", [])


def test_without_option_drops_the_option_and_its_value():
    argv = ["--a", "1", "--code_root", "/x", "--b", "--code_root=/y", "--code_rooted", "2"]
    assert checkout.without_option(argv, "--code_root") == ["--a", "1", "--b", "--code_rooted", "2"]


def test_compare_revisions_takes_the_newer_registry_and_says_what_it_skips():
    newer, older = ["inn", "tabresnet", "inn_shapley", "ebm"], ["inn", "tabresnet", "ebm"]
    assert compare_revisions.select_methods(newer, older, None) == (["inn", "tabresnet", "ebm"], ["inn_shapley"])
    assert compare_revisions.select_methods(newer, older, ["ebm", "inn_shapley"]) == (["ebm"], ["inn_shapley"])
    with pytest.raises(SystemExit, match="not in the newer checkout's registry"):
        compare_revisions.select_methods(newer, older, ["moons"])


@pytest.mark.slow
def test_compare_revisions_finds_a_checkout_identical_to_itself(capsys):
    argv = ["--before", str(ROOT), "--after", str(ROOT), "--datasets", "31", "--settings", "smoke", "--rounds", "2",
            "--methods", "decision_tree", "logistic_regression", "--max_ratio", "1e9"]  # fmt: skip
    assert compare_revisions.main(argv) == 0
    printed = capsys.readouterr().out
    assert "skipped, not in the older registry: none" in printed
    rows = [line.split("|") for line in printed.splitlines() if line.startswith("| 31 |")]
    assert [(row[2].strip(), row[3].strip(), row[4].strip()) for row in rows] == [
        ("decision_tree", "yes", "yes"),
        ("logistic_regression", "yes", "yes"),
    ]
    assert "identical predictions: 2; differ: 0; failed: 0" in printed


def test_compare_revisions_tells_identical_from_different_predictions():
    import numpy as np

    proba, label = np.array([[0.25, 0.75]]), np.array([1])
    assert compare_revisions.same((proba, label), (proba.copy(), label.copy()))
    one_ulp = proba.copy()
    one_ulp[0, 1] = np.nextafter(0.75, 1.0)
    assert not compare_revisions.same((proba, label), (one_ulp, label))
    assert not compare_revisions.same((proba, label), (proba.astype(np.float32), label))
    assert compare_revisions.decode(compare_revisions.encode(proba)).tobytes() == proba.tobytes()


def test_inn_overhead_prints_the_four_networks(capsys):
    assert inn_overhead.main(["--nr_epochs", "1", "--repeats", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    names = [line.split("|")[1].strip() for line in lines[1:]]
    assert names == ["tabresnet", "wide head", "inn, weight_norm 0", "inn"]
    assert lines[1].split("|")[3].strip() == "1.000"  # TabResNet against itself


def test_ground_truth_noise_falls_with_the_sample_count(capsys):
    script = xai_ground_truth_noise
    args = script.build_parser().parse_args(
        ["--model", "tabresnet", "--nr_epochs", "1", "--n_train", "100", "--n_test", "10", "--samples", "20", "320"]
    )
    rows = script.measure(args)
    assert [row["samples"] for row in rows] == [20, 320]
    small, large = rows
    # Independent streams: the two estimates differ, less so with 16 times the draws (about 16 times less variance).
    assert 0 < large["noise_var"] < small["noise_var"] / 4
    assert small["corr"] < large["corr"] <= 1
    assert script.main(["--model", "tabresnet", "--nr_epochs", "1", "--n_train", "100", "--n_test", "5",
                        "--samples", "20"]) == 0  # fmt: skip
    assert "| 20 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rho", "1"], "--rho must be in [0, 1)"),
        (["--samples", "0"], "must be an integer >= 1"),
        (["--dataset", "moons"], "invalid choice"),
        (["--model", "ebm", "--nr_epochs", "1"], "networks only"),
    ],
)
def test_ground_truth_noise_rejects_bad_input_with_exit_code_2(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        xai_ground_truth_noise.main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_shap_gap_scores_every_explanation_against_every_removal_change(capsys):
    from benchmarks import xai_shap_gap

    argv = ["--nr_epochs", "1", "--n_train", "120", "--n_test", "8", "--repeats", "2", "--background_seeds", "2",
            "--exact_draws", "3000", "--exact_background", "3000"]  # fmt: skip
    args = xai_shap_gap.build_parser().parse_args(argv)
    report = xai_shap_gap.measure(args)
    assert len(report["scores"]) == len(report["explanations"]) * len(report["removal"]) == 10 * 6
    assert all(-1 <= mean <= 1 for mean, _ in report["scores"].values())
    # At rho = 0 the true function is additive: its exact Shapley values are the removal changes (up to sign), so
    # against noise-free changes they correlate almost perfectly.
    exact = next(key for key in report["explanations"] if key[0] == "truth" and key[1].startswith("exact"))
    assert report["scores"][(exact, ("truth", "noise-free"))][0] > 0.98
    assert xai_shap_gap.main(argv) == 0
    assert "| true function | 120 rows |" in capsys.readouterr().out
