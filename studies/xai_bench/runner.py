"""A run: check the settings and the output directory, compute every unfinished unit (each written atomically when
done, so a killed run resumes where it stopped), then write the reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from errors import UserError
from experiments.results import resolve_inside
from studies.xai_bench.config import BenchmarkConfig
from studies.xai_bench.planning import plan, validate
from studies.xai_bench.reporting import warn, write_reports
from studies.xai_bench.unit import run_unit
from studies.xai_bench.unit_file import csv_bytes, unit_path


def run_benchmark(
    config: BenchmarkConfig,
    output_dir: str | Path,
    *,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Compute every unfinished unit (each written atomically when done), then the combined table and reports.

    Returns:
        A summary: units computed and skipped, seconds per computed unit, the written files.
    """
    from experiments.results import atomic_write_bytes

    validate(config)
    output_dir = Path(output_dir)
    units = plan(config, output_dir, force=force)
    todo, done = units.todo, units.done
    for path, reason in units.damaged.items():
        log(f"warning: unit file {path} is damaged ({reason}); computing it again")
    log(f"{len(todo)} unit(s) to compute, {len(done)} already done in {output_dir}")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    for unit in todo:
        frame = run_unit(config, unit, log=log)
        atomic_write_bytes(
            resolve_inside(unit_path(output_dir, unit), output_dir, what="--output_dir file"), csv_bytes(frame)
        )
        elapsed = float(frame["unit_seconds"].iloc[0]) if len(frame) else 0.0
        seconds[f"{unit.dataset}/rho{unit.rho:g}/seed{unit.seed}/{unit.model}"] = elapsed
        log(f"{unit}: done in {elapsed:.1f}s")
    files = write_reports(config, output_dir, log=log)
    summary = {
        "profile": config.profile,
        "computed": len(todo),
        "skipped": len(done),
        "damaged": [str(path) for path in units.damaged],
        "seconds": time.perf_counter() - start,
        "unit_seconds": seconds,
        "files": [str(path) for path in files],
    }
    return summary


def report_only(
    config: BenchmarkConfig, output_dir: str | Path, *, log: Callable[[str], None] = warn
) -> dict[str, Any]:
    """Rebuild ``results.csv``, the tables, the figures and ``config.json`` from the finished units; compute nothing.

    Returns:
        A summary: the units reported and the written files.

    Raises:
        UserError: before anything is written: the folder is missing or a file, holds units of other settings
            (the message names the profile they were computed with), or no finished unit of these settings.
    """
    validate(config)
    output_dir = Path(output_dir)
    if not output_dir.exists():
        raise UserError(f"--output_dir {output_dir} does not exist: nothing to report")
    units = plan(config, output_dir, report_only=True)
    files = write_reports(config, output_dir, log=log, require_units=True)
    return {"profile": config.profile, "computed": 0, "reported": len(units.done), "files": [str(p) for p in files]}
