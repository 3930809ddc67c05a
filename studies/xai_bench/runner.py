"""A run: check the settings and the output directory, compute every unfinished unit (each written atomically when
done, so a killed run resumes where it stopped), then write the reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studies.xai_bench.config import BenchmarkConfig, validate
from studies.xai_bench.planning import plan
from studies.xai_bench.reporting import write_reports
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
    todo, done = plan(config, output_dir, force=force)
    log(f"{len(todo)} unit(s) to compute, {len(done)} already done in {output_dir}")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    for unit in todo:
        frame = run_unit(config, unit, log=log)
        atomic_write_bytes(unit_path(output_dir, unit), csv_bytes(frame))
        elapsed = float(frame["unit_seconds"].iloc[0]) if len(frame) else 0.0
        seconds[f"{unit.dataset}/rho{unit.rho:g}/seed{unit.seed}/{unit.model}"] = elapsed
        log(f"{unit}: done in {elapsed:.1f}s")
    files = write_reports(config, output_dir)
    summary = {
        "profile": config.profile,
        "computed": len(todo),
        "skipped": len(done),
        "seconds": time.perf_counter() - start,
        "unit_seconds": seconds,
        "files": [str(path) for path in files],
    }
    return summary
