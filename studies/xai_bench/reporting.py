"""The reports of a run: :func:`combine` gathers the unit files into one tidy table (dataset × ρ × seed × model ×
explanation × metric, with the model's test error and the seconds spent), :func:`write_reports` writes it with
the paper-layout tables, the figures and ``config.json``, each file atomically and under the output directory.
A damaged unit file is left out with a warning that names it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from errors import UserError
from experiments.results import plain_component, resolve_inside
from studies.xai_bench.config import BenchmarkConfig, settings_hash
from studies.xai_bench.planning import check_complete
from studies.xai_bench.tables import paper_table, table_latex, table_markdown
from studies.xai_bench.unit_file import (
    UNITS_DIRNAME,
    DamagedUnitFile,
    csv_bytes,
    read_unit,
    unit_of_path,
)


def warn(line: str) -> None:
    """Print a warning line on stderr (the default ``log`` of the reports)."""
    print(line, file=sys.stderr)


def combine(
    output_dir: str | Path,
    *,
    config: BenchmarkConfig | None = None,
    datasets: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
    log: Callable[[str], None] = warn,
) -> pd.DataFrame:
    """The tidy table of every unit file under ``output_dir`` (optionally only those of ``config``'s settings).

    Every file is checked on load (``unit_file.read_unit``; with ``config``, a file of its settings must also hold
    every row of a finished unit); a file that fails is left out, with one ``warning:`` line to ``log`` naming it.

    Returns:
        One row per (dataset, ρ, seed, model, entry, metric), sorted.
    """
    output_dir = Path(output_dir)
    wanted = None if models is None else set(models)
    frames = []
    for path in sorted((output_dir / UNITS_DIRNAME).glob("*/rho*/seed*/*.csv")):
        unit = unit_of_path(path)
        try:
            if unit is None:
                raise DamagedUnitFile("its path names no unit: units/<dataset>/rho<ρ>/seed<s>/<model>.csv")
            try:
                resolve_inside(path, output_dir, what="--output_dir file")
            except UserError:
                raise DamagedUnitFile("it links outside --output_dir") from None
            frame = read_unit(path, unit)
            mine = config is not None and (wanted is None or unit.model in wanted) and unit.model in config.models
            if mine and frame["settings_hash"].iloc[0] == settings_hash(config.unit_settings(unit.model)):
                check_complete(config, unit.model, frame)
        except DamagedUnitFile as reason:
            log(f"warning: unit file {path} is damaged ({reason}); left out of the reports")
            continue
        frames.append(frame)
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


def write_reports(
    config: BenchmarkConfig,
    output_dir: str | Path,
    *,
    log: Callable[[str], None] = warn,
    require_units: bool = False,
) -> list[Path]:
    """The combined table, the paper-layout tables and the figures of every finished unit of ``config``.

    Every file is written atomically: ``results.csv`` (tidy), ``table_rho<ρ>.{md,tex,csv}`` (at ρ = 0, or the
    smallest ρ present) and ``figures/<dataset>.png`` (every metric against ρ), and ``config.json``; each path is
    checked to resolve under ``output_dir`` before it is written.

    Args:
        config: the run's settings.
        output_dir: the output directory.
        log: receives a ``warning:`` line per damaged unit file left out.
        require_units: with no finished unit of ``config``, write nothing and raise (reporting only).

    Raises:
        UserError: ``require_units`` and nothing to report, or a path that resolves outside ``output_dir``.
    """
    from experiments.results import atomic_write_bytes, json_bytes, library_versions

    output_dir = Path(output_dir)
    frame = combine(output_dir, config=config, datasets=config.datasets, models=config.models, log=log)
    if frame.empty and require_units:
        raise UserError(
            f"{output_dir} holds no finished unit of these settings: nothing to report "
            "(run without --report_only to compute them)"
        )
    written: list[Path] = []

    def write(name: str, data: bytes) -> None:
        path = resolve_inside(output_dir / name, output_dir, what="--output_dir file")
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
        write(f"figures/{plain_component(dataset, 'dataset')}.png", figure_bytes(figure))
    return written
