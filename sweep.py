"""Run the benchmark as a grid of methods × datasets × seeds, locally or as a SLURM job array.

A thin shell over :mod:`experiments.sweep` (cell order, resume, locks, fork workers and backends are documented
there and in ``docs/sweeps.md``)::

    python sweep.py --methods inn catboost --datasets 31 37 --seeds 0-2 --workers 2 --nr_epochs 20
    python sweep.py --datasets paper --list
    python sweep.py --datasets cc18 --backend slurm --cells_per_task 8 --slurm_gpus 1 --device cuda
"""

from __future__ import annotations

import sys

from experiments.sweep import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
