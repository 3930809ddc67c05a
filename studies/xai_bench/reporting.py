"""The reports of a run: :func:`combine` gathers the unit files into one tidy table (dataset × ρ × seed × model ×
explanation × metric, with the model's test error and the seconds spent), :func:`write_reports` writes it with
the paper-layout tables, the figures and ``config.json``, each file atomically.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from studies.xai_bench.config import BenchmarkConfig, settings_hash
from studies.xai_bench.tables import paper_table, table_latex, table_markdown
from studies.xai_bench.unit_file import UNITS_DIRNAME, csv_bytes


def combine(
    output_dir: str | Path,
    *,
    config: BenchmarkConfig | None = None,
    datasets: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The tidy table of every unit file under ``output_dir`` (optionally only those of ``config``'s settings).

    Returns:
        One row per (dataset, ρ, seed, model, entry, metric), sorted.
    """
    paths = sorted((Path(output_dir) / UNITS_DIRNAME).glob("*/rho*/seed*/*.csv"))
    frames = [pd.read_csv(path) for path in paths]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    if config is not None:
        expected = {model: settings_hash(config.unit_settings(model)) for model in frame["model"].unique()}
        frame = frame[frame["settings_hash"] == frame["model"].map(expected)]
    if datasets is not None:
        frame = frame[frame["dataset"].isin(list(datasets))]
    if models is not None:
        frame = frame[frame["model"].isin(list(models))]
    return frame.sort_values(["dataset", "rho", "seed", "model", "entry", "metric"]).reset_index(drop=True)


def write_reports(config: BenchmarkConfig, output_dir: str | Path) -> list[Path]:
    """The combined table, the paper-layout tables and the figures of every finished unit of ``config``.

    Every file is written atomically: ``results.csv`` (tidy), ``table_rho<ρ>.{md,tex,csv}`` (at ρ = 0, or the
    smallest ρ present) and ``figures/<dataset>.png`` (every metric against ρ), and ``config.json``.
    """
    from experiments.results import atomic_write_bytes, json_bytes, library_versions

    output_dir = Path(output_dir)
    frame = combine(output_dir, config=config, datasets=config.datasets, models=config.models)
    written: list[Path] = []

    def write(name: str, data: bytes) -> None:
        path = output_dir / name
        atomic_write_bytes(path, data)
        written.append(path)

    from methods import REGISTRY

    settings = {model: config.unit_settings(model) for model in config.models}
    resolved = {
        model: REGISTRY[model].resolve_params("regression", config.params_for(model)) for model in config.models
    }
    write(
        "config.json",
        json_bytes(
            {
                "config": asdict(config),
                "unit_settings": settings,
                "resolved_model_params": resolved,
                "versions": library_versions(),
                "created": time.ctime(),
            }
        ),
    )
    if frame.empty:
        return written
    write("results.csv", csv_bytes(frame))
    rho = 0.0 if np.isclose(frame["rho"], 0.0).any() else float(frame["rho"].min())
    table = paper_table(frame, rho=rho)
    stem = f"table_rho{rho:g}"
    write(f"{stem}.md", table_markdown(table, rho=rho).encode())
    write(f"{stem}.tex", table_latex(table, rho=rho).encode())
    write(f"{stem}.csv", csv_bytes(table))
    from studies.xai_bench.figures import figure_bytes, metric_vs_rho_figure

    for dataset in dict.fromkeys(frame["dataset"]):
        figure = metric_vs_rho_figure(frame, dataset)
        write(f"figures/{dataset}.png", figure_bytes(figure))
    return written
