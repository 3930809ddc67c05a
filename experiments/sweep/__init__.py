"""Benchmark sweeps: methods × datasets × seeds as numbered cells, run locally or as a SLURM job array.

A *cell* is one run of an experiment script (``main_experiment.py`` for the neural methods,
``baseline_experiment.py --model_name ...`` for the baselines) on one dataset with one seed. The grid is
expanded in a fixed order that depends only on the command line, never on which cells are done:

    datasets (outer, in the order given, suites expanded in place) → seeds (in the order given) → methods
    (inner, in the order given; duplicates dropped, first occurrence kept)

so ``index = (dataset_position × n_seeds + seed_position) × n_methods + method_position``. This order is
dataset-major on purpose: a sweep stopped half-way has every method on its first datasets and seeds, which
is what a paired comparison needs.

State lives in the results tree only: a cell is *done* when its ``output_info.json`` is complete
(:func:`experiments.results.is_complete`), *failed* when an ``error.json`` lies beside where it would be,
*running* while another process holds its lock, and *pending* otherwise. Locks are ``fcntl.flock`` locks on
``<output_dir>/.sweep/locks/<method>/<dataset>/<seed>.lock``: the kernel releases them when the holder dies,
even by SIGKILL, so a killed cell is simply pending again. The process that runs a cell inherits the lock's
descriptor, so an orphaned experiment keeps its cell locked until it ends.

Each cell runs in a process of its own (``--isolation``). ``fork`` (the default on Linux): long-lived *worker*
processes (:class:`WorkerPool`, one per ``--workers``) import Python, torch, scikit-learn and the other
libraries once, then run each cell in a freshly forked child that executes the experiment script as
``python script.py ...`` would, so a cell pays no start-up, and a cell that crashes, leaks memory or is
killed costs only itself. Workers fork before any parallel work of their own (their thread pools are
sized by the environment they are started with), and each child resets what a fresh process would have
fresh (signal handlers, torch's default generator, numpy's global generator). ``subprocess``: a new Python
process per cell (the original design; about 4 s of start-up per cell).

The package, by concern (each module imports only those listed before it):

- :mod:`~experiments.sweep.grid`: datasets, seeds, methods → numbered cells; pass-through flags; a cell's command.
- :mod:`~experiments.sweep.state`: the output directory check, cell states, locks.
- :mod:`~experiments.sweep.cells`: running one cell (:class:`Runner`), its logs and ``error.json``.
- :mod:`~experiments.sweep.pool`: fork workers (:class:`WorkerPool`) and what they import ahead.
- :mod:`~experiments.sweep.local` and :mod:`~experiments.sweep.slurm`: the backends.
- :mod:`~experiments.sweep.cli`: ``sweep.py``'s flags and ``main``.
"""

from __future__ import annotations

from experiments.sweep.cells import (
    DEFAULT_ISOLATION,
    STOP_GRACE_S,
    THREAD_ENV_VARS,
    CellOutcome,
    CellRunner,
    Isolation,
    Runner,
    available_cores,
    cell_environment,
    threads_per_cell,
)
from experiments.sweep.cli import (
    build_parser,
    main,
    print_cells,
    run,
    selected_cells,
    sweep_from_args,
)
from experiments.sweep.grid import (
    REPO_ROOT,
    RESERVED_FLAGS,
    SCRIPTS,
    STATE_DIRNAME,
    Cell,
    Dataset,
    MethodScript,
    Sweep,
    cached_dataset_ids,
    cell_command,
    expand_cells,
    expand_datasets,
    format_indices,
    group_flags,
    load_suites,
    method_flags,
    parse_indices,
    parse_methods,
    parse_seeds,
    script_parser,
)
from experiments.sweep.local import (
    describe_outcome,
    run_cells,
    run_local,
)
from experiments.sweep.pool import (
    WARM_IMPORTS,
    DatasetCache,
    WorkerLost,
    WorkerPool,
    WorkerSetup,
    make_runner,
    warm_up,
    worker_main,
)
from experiments.sweep.slurm import (
    SlurmOptions,
    Submission,
    queued_tasks,
    report_array,
    submit_slurm,
    task_command,
    task_endings,
    wait_for_array,
)
from experiments.sweep.state import (
    CellState,
    cell_lock,
    cell_state,
    check_output_dir,
    lock_is_held,
    summary,
)

__all__ = [
    "Cell",
    "CellOutcome",
    "CellRunner",
    "CellState",
    "DEFAULT_ISOLATION",
    "Dataset",
    "DatasetCache",
    "Isolation",
    "MethodScript",
    "REPO_ROOT",
    "RESERVED_FLAGS",
    "Runner",
    "SCRIPTS",
    "STATE_DIRNAME",
    "STOP_GRACE_S",
    "SlurmOptions",
    "Submission",
    "Sweep",
    "THREAD_ENV_VARS",
    "WARM_IMPORTS",
    "WorkerLost",
    "WorkerPool",
    "WorkerSetup",
    "available_cores",
    "build_parser",
    "cached_dataset_ids",
    "cell_command",
    "cell_environment",
    "cell_lock",
    "cell_state",
    "check_output_dir",
    "describe_outcome",
    "expand_cells",
    "expand_datasets",
    "format_indices",
    "group_flags",
    "load_suites",
    "lock_is_held",
    "main",
    "make_runner",
    "method_flags",
    "parse_indices",
    "parse_methods",
    "parse_seeds",
    "print_cells",
    "queued_tasks",
    "report_array",
    "run",
    "run_cells",
    "run_local",
    "script_parser",
    "selected_cells",
    "submit_slurm",
    "summary",
    "sweep_from_args",
    "task_command",
    "task_endings",
    "threads_per_cell",
    "wait_for_array",
    "warm_up",
    "worker_main",
]
