"""Tests of the interpretability benchmark (``studies.xai_bench``, ``xai_benchmark.py``, ``studies.xai_bench.figures``).

A unit with a ridge model is fast and has answers: its own explanation ``coef ⊙ (x − mean)`` is the
interventional Shapley value of a linear model (correlation 1 with the interventional ground truth, and equal to
brute-force SHAP of the same model), it beats Random on faithfulness, and ROAR retrains are shared through the
cache. The runner resumes (finished units are skipped, a deleted one is recomputed), refuses bad input with one
``error:`` line before writing anything (model parameters included, checked as the estimator checks them), and
the tables mark the best value by each metric's direction. A results folder may come from anyone: unit files are
checked on load (a damaged one is named, left out of the reports and computed again), names read from them never
become paths, and links out of the folder are refused. The smoke profile runs end to end (the one slow test).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xai_benchmark
from errors import UserError
from experiments.results import metric_direction as results_direction
from studies import xai_bench as benchmark
from studies.xai_bench import BENCHMARK_METRICS, Unit, make_config, paper_table, run_benchmark, run_unit, unit_path
from studies.xai_bench.planning import check_complete

FAST = {
    "datasets": ("gaussianLinear",),
    "rhos": (0.0,),
    "seeds": (0,),
    "models": ("logistic_regression",),
    "posthoc_models": ("logistic_regression",),
    "explainers": ("random", "bruteforce_shap"),
    "n_train": 150,
    "n_test": 12,
    "gt_samples": 300,
    "gt_background": 150,
    "faithfulness_samples": 30,
    "infidelity_perturbations": 50,
    "background_size": 150,
}


@pytest.fixture(scope="module")
def fast_rows() -> pd.DataFrame:
    return run_unit(make_config(**FAST), Unit("gaussianLinear", 0.0, 0, "logistic_regression"))


def test_a_linear_unit_scores_its_exact_explanation_as_exact(fast_rows: pd.DataFrame) -> None:
    entries = {"logistic_regression", "random@logistic_regression", "bruteforce_shap@logistic_regression"}
    assert set(fast_rows["entry"]) == entries
    assert len(fast_rows) == len(entries) * len(BENCHMARK_METRICS)
    assert fast_rows["settings_hash"].nunique() == 1 and (fast_rows["model_test_mse"] < 0.01).all()
    value = fast_rows.set_index(["entry", "metric"])["value"]
    # coef ⊙ (x − training mean) is the interventional Shapley value of a linear model, up to the difference between
    # the training mean and the mean of the ground truth's draws from N(0, Σ).
    assert value["logistic_regression", "shapley_corr_interventional"] > 0.95
    assert value["logistic_regression", "shapley_mse_interventional"] < 0.05
    for metric in BENCHMARK_METRICS:  # the same explanation of the same model scores the same
        assert np.isclose(
            value["logistic_regression", metric], value["bruteforce_shap@logistic_regression", metric], atol=1e-6
        ), metric
    assert (
        value["logistic_regression", "faithfulness"] > 0.9 > 0.3 > value["random@logistic_regression", "faithfulness"]
    )
    assert value["logistic_regression", "roar_faithfulness"] > value["random@logistic_regression", "roar_faithfulness"]
    # ROAR retrains: d + (d + 1) per explanation, the rest from the cache (no-removal and same-ranking fits).
    roar = fast_rows[fast_rows["metric"].str.startswith("roar")]
    assert roar["roar_fits"].sum() + roar["roar_cached_fits"].sum() == 3 * (5 + 6)
    assert roar["roar_cached_fits"].sum() >= 5 + 6  # brute-force SHAP repeats the exact explanation's retrains
    assert (fast_rows["direction"] == fast_rows["metric"].map(benchmark.metric_direction)).all()


def test_every_reported_metric_has_the_same_direction_in_the_results_table() -> None:
    for metric in BENCHMARK_METRICS:
        expected = "max" if benchmark.metric_direction(metric) == "higher" else "min"
        assert results_direction(metric) == expected, metric
        assert results_direction(f"test_{metric}") == expected


def test_the_runner_resumes_and_rebuilds_the_reports(tmp_path) -> None:
    config = make_config(**{**FAST, "seeds": (0, 1), "explainers": ("random",), "metrics": ("faithfulness",)})
    first = run_benchmark(config, tmp_path, log=lambda _: None)
    assert first["computed"] == 2 and first["skipped"] == 0
    again = run_benchmark(config, tmp_path, log=lambda _: None)
    assert again["computed"] == 0 and again["skipped"] == 2
    removed = unit_path(tmp_path, Unit("gaussianLinear", 0.0, 1, "logistic_regression"))
    removed.unlink()
    assert run_benchmark(config, tmp_path, log=lambda _: None)["computed"] == 1
    results = pd.read_csv(tmp_path / "results.csv")
    assert sorted(results["seed"].unique()) == [0, 1] and set(results["metric"]) == {"faithfulness"}
    for name in ("table_rho0.md", "table_rho0.tex", "table_rho0.csv", "figures/gaussianLinear.png", "config.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    leftovers = [name for _, _, files in os.walk(tmp_path) for name in files if name.endswith(".tmp")]
    assert not leftovers
    # Other settings in the same directory are refused before any work, unless --force.
    other = make_config(
        **{**FAST, "seeds": (0, 1), "explainers": ("random",), "metrics": ("faithfulness",), "n_test": 10}
    )
    with pytest.raises(UserError, match="other settings"):
        benchmark.plan(other, tmp_path)
    planned = benchmark.plan(other, tmp_path, force=True)
    assert len(planned.todo) == 2 and not planned.done and not planned.damaged


def test_bad_input_is_one_error_line_before_any_work(tmp_path, capsys) -> None:
    output = tmp_path / "out"
    for argv in (
        ["--rho", "1.0"],
        ["--rho", "0", "0"],
        ["--d", "1"],
        ["--param", "inn.no_such_parameter=3"],
        ["--seeds", "a"],
        ["--param", "inn.nr_epochs=abc"],  # the estimator's own check, before any training
        ["--param", "tabresnet.dropout=2"],
        ["--param", "ebm.outer_bags=0"],  # the registry flag's type
        ["--report_only"],  # a missing folder: nothing to report, nothing created
    ):
        assert xai_benchmark.main([*argv, "--output_dir", str(output)]) == 2, argv
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("error: "), (argv, error)
        assert "Traceback" not in error[0] and not output.exists(), argv
    messages = {}
    for argv in (["--param", "inn.nr_epochs=abc"], ["--param", "tabresnet.dropout=2"]):
        xai_benchmark.main([*argv, "--output_dir", str(output)])
        messages[argv[1]] = capsys.readouterr().err
    assert "nr_epochs must be an integer >= 1, got 'abc'" in messages["inn.nr_epochs=abc"]
    assert "dropout must be in [0, 1), got 2" in messages["tabresnet.dropout=2"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert xai_benchmark.main(["--report_only", "--output_dir", str(empty)]) == 2
    assert "nothing to report" in capsys.readouterr().err and not any(empty.iterdir())
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert xai_benchmark.main(["--profile", "smoke", "--output_dir", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err


#: The command line of a fast run (a ridge model, two explanations, two metrics).
FAST_ARGV = [
    "--datasets", "gaussianLinear", "--rho", "0", "--models", "logistic_regression",
    "--posthoc_models", "logistic_regression", "--explainers", "random", "--metrics", "faithfulness", "shapley_corr",
    "--n_train", "150", "--n_test", "12", "--gt_samples", "300", "--faithfulness_samples", "30",
]  # fmt: skip


def test_units_of_another_profile_are_reported_with_that_profile_not_recomputed(tmp_path, capsys) -> None:
    argv = [*FAST_ARGV, "--seeds", "0", "--output_dir", str(tmp_path)]
    assert xai_benchmark.main([*argv, "--profile", "smoke"]) == 0
    unit = unit_path(tmp_path, Unit("gaussianLinear", 0.0, 0, "logistic_regression"))
    stored = unit.read_bytes()
    capsys.readouterr()
    for extra in (["--report_only"], []):  # without --profile: the paper profile's settings
        assert xai_benchmark.main([*argv, *extra]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "computed with --profile smoke" in error[0], error
        assert "add --profile smoke to report" in error[0] if extra else "add --profile smoke to resume" in error[0]
        assert ("--force" in error[0]) == (not extra)  # reporting never advises recomputing
    assert xai_benchmark.main([*argv, "--report_only", "--profile", "smoke"]) == 0
    assert unit.read_bytes() == stored and (tmp_path / "table_rho0.md").exists()


def _truncate(path: Path) -> None:
    """Cut the file inside its last row (a copy interrupted, a disk full)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])


def _drop_last_row(path: Path) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def _edit(column: str, value: str):
    def edit(path: Path) -> None:
        frame = pd.read_csv(path, dtype={"settings_hash": str})
        frame[column] = frame[column].astype(object)
        frame.loc[0, column] = value
        frame.to_csv(path, index=False)

    return edit


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncate, "missing"),
        (_drop_last_row, "of the 2 rows"),
        (lambda path: path.write_text(""), "not a readable CSV"),
        (lambda path: path.write_bytes(b"\xff\xfe\x00garbage"), "not a readable CSV"),
        (_edit("value", "inf"), "infinite"),
        (_edit("seed", "abc"), "not numbers"),
        (_edit("roar_fits", "-1"), "negative"),
        (_edit("native", "maybe"), "True and False"),
        (_edit("dataset", "../../../elsewhere"), "as its path says"),
        (_edit("settings_hash", "/tmp/x"), "settings_hash"),
        (_edit("metric", "accuracy"), "unknown metrics"),
        (lambda path: path.write_text("a,b\n1,2\n"), "columns differ"),
    ],
)
def test_a_damaged_unit_file_is_named_left_out_of_the_reports_and_computed_again(tmp_path, damage, reason) -> None:
    config = make_config(**{**FAST, "seeds": (0, 1), "explainers": (), "metrics": ("faithfulness", "shapley_corr")})
    run_benchmark(config, tmp_path, log=lambda _: None)
    unit = Unit("gaussianLinear", 0.0, 1, "logistic_regression")
    path = unit_path(tmp_path, unit)
    whole = pd.read_csv(path)
    damage(path)
    with pytest.raises(benchmark.DamagedUnitFile, match=reason):
        check_complete(config, unit.model, benchmark.read_unit(path, unit))
    planned = benchmark.plan(config, tmp_path, report_only=True)
    assert list(planned.damaged) == [path] and unit in planned.todo and len(planned.done) == 1
    lines: list[str] = []
    benchmark.report_only(config, tmp_path, log=lines.append)  # the other unit is reported
    assert len(lines) == 1 and lines[0].startswith("warning: ") and str(path) in lines[0] and "damaged" in lines[0]
    assert sorted(pd.read_csv(tmp_path / "results.csv")["seed"].unique()) == [0]
    lines.clear()
    summary = run_benchmark(config, tmp_path, log=lines.append)  # not done: computed again
    assert summary["computed"] == 1 and summary["damaged"] == [str(path)]
    assert any("computing it again" in line and str(path) in line for line in lines)
    again = pd.read_csv(path)
    assert again.drop(columns=[c for c in again if c.endswith("seconds")]).equals(
        whole.drop(columns=[c for c in whole if c.endswith("seconds")])
    )


def test_names_read_from_a_folder_never_become_paths_outside_it(tmp_path, capsys) -> None:
    from experiments.results import plain_component, resolve_inside

    for name in ("", ".", "..", "a/b", "/abs", "..\\x"):
        with pytest.raises(UserError):
            plain_component(name, "dataset")
    assert plain_component("gaussianLinear", "dataset") == "gaussianLinear"
    with pytest.raises(UserError):
        unit_path(tmp_path, Unit("../../escape", 0.0, 0, "inn"))
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(UserError, match="outside"):
        resolve_inside(tmp_path / "out" / ".." / "outside" / "x.csv", tmp_path / "out")
    # A results folder whose units/ (or one unit file) links out of it: refused before any work, nothing written.
    for link in ("units", "units/gaussianLinear/rho0/seed0/logistic_regression.csv"):
        output = tmp_path / f"out_{link.count('/')}"
        (output / link).parent.mkdir(parents=True, exist_ok=True)
        (output / link).symlink_to(outside / "x.csv" if link.endswith(".csv") else outside)
        assert xai_benchmark.main([*FAST_ARGV, "--seeds", "0", "--output_dir", str(output)]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "--output_dir file" in error[0] and "outside" in error[0], error
        assert not any(outside.iterdir()) and not (output / "config.json").exists()


def _frame() -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for entry, native, base in (("inn", True, 0.9), ("kernel_shap", False, 0.8), ("random", False, 0.1)):
            for metric, offset in (("faithfulness", 0.0), ("infidelity", 0.0)):
                for rho in (0.0, 0.5):
                    rows.append(
                        {
                            "dataset": "gaussianLinear",
                            "rho": rho,
                            "seed": seed,
                            "model": "inn" if native else "tabresnet",
                            "entry": entry,
                            "entry_label": {"inn": "INN", "kernel_shap": "KernelSHAP", "random": "Random"}[entry],
                            "explainer": entry,
                            "native": native,
                            "metric": metric,
                            "value": base + offset + 0.01 * seed - 0.1 * rho,
                            "model_test_mse": 0.05,
                        }
                    )
    return pd.DataFrame(rows)


def test_the_paper_table_marks_the_best_by_direction_and_counts_wins() -> None:
    table = paper_table(_frame(), rho=0.0)
    assert list(table["entry"].unique()) == ["inn", "kernel_shap", "random"]  # own explanations first, Random last
    best = table[table["best"]].set_index("metric")["entry"]
    assert best["faithfulness"] == "inn" and best["infidelity"] == "random"  # infidelity: lower is better
    row = table[(table["metric"] == "faithfulness") & (table["entry"] == "inn")].iloc[0]
    assert (
        np.isclose(row["mean"], 0.905) and np.isclose(row["std"], np.std([0.9, 0.91], ddof=1)) and row["n_seeds"] == 2
    )
    markdown = benchmark.table_markdown(table)
    assert "| **Wins** | | 1 | 0 | 1 |" in markdown and "**0.905** ± 0.007" in markdown
    latex = benchmark.table_latex(table)
    assert r"\textbf{0.905}" in latex and r"Wins & & 1 & 0 & 1 \\" in latex
    with pytest.raises(ValueError):
        paper_table(_frame(), rho=0.25)


def test_the_rho_figure_has_a_line_per_explanation_in_its_stable_colour() -> None:
    from methods import REGISTRY
    from studies.xai_bench.figures import metric_vs_rho_figure

    figure = metric_vs_rho_figure(_frame(), "gaussianLinear")
    axes = [ax for ax in figure.axes if ax.lines]
    assert len(axes) == 2
    lines = {line.get_label(): line for line in axes[0].lines}
    assert set(lines) == {"INN", "KernelSHAP", "Random"}
    assert lines["INN"].get_color() == REGISTRY["inn"].color
    assert lines["Random"].get_linestyle() == "--"
    assert list(lines["INN"].get_xdata()) == [0.0, 0.5]


@pytest.mark.slow
def test_the_smoke_profile_runs_every_model_explainer_and_metric(tmp_path, capsys) -> None:
    assert xai_benchmark.main(["--profile", "smoke", "--output_dir", str(tmp_path)]) == 0
    results = pd.read_csv(tmp_path / "results.csv")
    config = xai_benchmark.make_config({"profile": "smoke"})
    assert set(results["model"]) == set(config.models)
    posthoc = results[~results["native"]]
    assert set(posthoc["explainer"]) == set(config.explainers)
    assert set(results["metric"]) == set(BENCHMARK_METRICS)
    assert results.groupby("entry")["metric"].nunique().eq(len(BENCHMARK_METRICS)).all()
    assert results["value"].notna().mean() > 0.95
    table = (tmp_path / "table_rho0.5.md").read_text()
    assert "**Wins**" in table and "INN" in table
    assert (tmp_path / "figures" / "gaussianNonLinearAdditive.png").stat().st_size > 10_000
    capsys.readouterr()
    assert xai_benchmark.main(["--profile", "smoke", "--output_dir", str(tmp_path)]) == 0
    assert "0 unit(s) computed" in capsys.readouterr().out
