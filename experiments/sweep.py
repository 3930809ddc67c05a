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
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import gc
import importlib
import importlib.util
import json
import math
import os
import pickle
import queue
import re
import runpy
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol

from argtypes import positive_int
from errors import UserError
from experiments.cli import run_main, variant_name
from experiments.results import (
    ERROR_FILENAME,
    METHODS,
    is_complete,
    remove_stale_siblings,
    results_path,
    run_dir,
    write_json_atomic,
)
from methods import REGISTRY, run_id

REPO_ROOT = Path(__file__).resolve().parent.parent
SWEEP_SCRIPT = REPO_ROOT / "sweep.py"
SUITES_PATH = Path(__file__).with_name("suites.json")
#: Sweep bookkeeping inside the output directory: locks, cell logs, submitit folders.
STATE_DIRNAME = ".sweep"
#: Lines of a failed cell's stderr kept in its error.json.
STDERR_TAIL_LINES = 40
#: Environment variables that size the thread pools of torch (OpenMP), MKL, OpenBLAS and friends.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: Flags the sweep sets per cell; passing them through would silently break the grid.
RESERVED_FLAGS = {
    "--dataset_id": "use --datasets",
    "--dataset_path": "use --datasets with a file path",
    "--dataset": "use --datasets",
    "--openml_cache_dir": "it is a sweep flag and is passed on",
    "--seed": "use --seeds",
    "--output_dir": "it is a sweep flag and is passed on",
    "--model_name": "use --methods",
    "--method": "use --methods",
    "--interpretable": "use --methods inn",
    "--variant": "it is a sweep flag and is passed on",
    "--force": "delete a cell's results to rerun it (finished cells are always skipped)",
}

#: What a fork worker imports before its first cell, so that no cell imports it again: the run path shared by
#: every method, then each method's own libraries (a speed hint only: a cell imports whatever is missing itself,
#: and each method's native explainer module is imported through the registry).
WARM_IMPORTS: tuple[str, ...] = (
    "numpy",
    "pandas",
    "torch",
    "sklearn.metrics",
    "openml",
    "data",
    "experiments.runner",
    "models.metrics",
    "models.baselines",
)
METHOD_IMPORTS: dict[str, tuple[str, ...]] = {
    "inn": ("models.estimators",),
    "tabresnet": ("models.estimators",),
    "catboost": ("catboost",),
    "random_forest": ("sklearn.ensemble", "shap"),
    "decision_tree": ("sklearn.tree", "shap"),
    "logistic_regression": ("sklearn.linear_model", "sklearn.pipeline"),
    "tabnet": ("pytorch_tabnet.tab_model",),
    "ebm": ("interpret.glassbox",),
}
#: Seconds a stopped cell gets between SIGTERM and SIGKILL.
STOP_GRACE_S = 10.0

CellState = Literal["done", "failed", "running", "pending"]
CellOutcome = Literal["done", "failed", "skipped_done", "skipped_failed", "busy", "interrupted"]
Backend = Literal["local", "slurm"]
Isolation = Literal["fork", "subprocess"]
SubmititCluster = Literal["slurm", "local", "debug"]
#: ``fork`` where it is safe with the scientific stack (Linux); macOS's system libraries are not fork-safe.
DEFAULT_ISOLATION: Isolation = "fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "subprocess"


@dataclass(frozen=True)
class MethodScript:
    """How a method is run: an experiment script at the repository root and the flags that pick the method."""

    script: str
    args: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return REPO_ROOT / self.script


#: Method id -> how to run it, from the method registry. Tests may point it at stand-in scripts.
SCRIPTS: dict[str, MethodScript] = {
    method: MethodScript(spec.script, ("--method" if spec.kind == "neural" else "--model_name", method))
    for method, spec in REGISTRY.items()
}


@dataclass(frozen=True)
class Dataset:
    """One dataset of the grid: an OpenML id or a user file.

    Attributes:
        key: the ``<dataset_id>`` directory name in the results tree (the id, or the file's stem).
        dataset_id: the OpenML dataset id, or None for a file.
        path: the file, or None for an OpenML id.
    """

    key: str
    dataset_id: int | None = None
    path: Path | None = None

    def arguments(self, openml_cache_dir: Path | None) -> list[str]:
        """The experiment-script flags that select this dataset."""
        if self.path is not None:
            return ["--dataset_path", str(self.path)]
        args = ["--dataset_id", str(self.dataset_id)]
        if openml_cache_dir is not None:
            args += ["--openml_cache_dir", str(openml_cache_dir)]
        return args

    def token(self) -> str:
        """How to name this dataset again on a sweep command line."""
        return str(self.path) if self.path is not None else str(self.dataset_id)


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    index: int
    method: str
    dataset: Dataset
    seed: int

    def describe(self) -> str:
        return f"cell {self.index} ({self.method}, dataset {self.dataset.key}, seed {self.seed})"


@dataclass(frozen=True)
class Sweep:
    """Everything that defines a grid and how its cells run.

    Attributes:
        methods: method ids, in grid order.
        datasets: datasets, in grid order (suites already expanded).
        seeds: seeds, in grid order.
        output_dir: root of the results tree (absolute).
        openml_cache_dir: passed to every OpenML cell, or None.
        passthrough: extra experiment-script flags, as given.
        variant: the variant name of every cell (results in ``<method>-<variant>/``), or None.
    """

    methods: tuple[str, ...]
    datasets: tuple[Dataset, ...]
    seeds: tuple[int, ...]
    output_dir: Path
    openml_cache_dir: Path | None = None
    passthrough: tuple[str, ...] = ()
    variant: str | None = None

    def cells(self) -> list[Cell]:
        """All cells in the documented order (datasets → seeds → methods)."""
        return expand_cells(self.methods, self.datasets, self.seeds)

    @property
    def state_dir(self) -> Path:
        return self.output_dir / STATE_DIRNAME

    def run_dir(self, cell: Cell) -> Path:
        return run_dir(self.output_dir, cell.method, cell.dataset.key, cell.seed, self.variant)

    def results_path(self, cell: Cell) -> Path:
        return results_path(self.output_dir, cell.method, cell.dataset.key, cell.seed, self.variant)

    def error_path(self, cell: Cell) -> Path:
        return self.run_dir(cell) / ERROR_FILENAME

    def lock_path(self, cell: Cell) -> Path:
        return self.state_dir / "locks" / run_id(cell.method, self.variant) / cell.dataset.key / f"{cell.seed}.lock"

    def log_paths(self, cell: Cell) -> tuple[Path, Path]:
        """The cell's stdout and stderr logs (kept outside the results tree, overwritten by each attempt)."""
        stem = self.state_dir / "logs" / run_id(cell.method, self.variant) / cell.dataset.key / str(cell.seed)
        return stem.with_suffix(".out"), stem.with_suffix(".err")


# ----------------------------------------------------------------------------------------------------------
# Grid expansion


def load_suites(path: Path = SUITES_PATH) -> dict[str, dict[str, Any]]:
    """The named dataset suites kept as data in ``experiments/suites.json``."""
    return json.loads(path.read_text())


def cached_dataset_ids(openml_cache_dir: Path) -> list[int]:
    """Every dataset id in an OpenML cache (``<cache>/org/openml/www/datasets/<id>/``), in increasing order."""
    root = Path(openml_cache_dir)
    datasets_dir = root / "org" / "openml" / "www" / "datasets"
    if not datasets_dir.is_dir():
        raise UserError(f"no OpenML datasets under {root} (expected {datasets_dir})")
    ids = sorted(int(entry.name) for entry in datasets_dir.iterdir() if entry.is_dir() and entry.name.isdigit())
    if not ids:
        raise UserError(f"the OpenML cache {root} holds no datasets")
    return ids


def expand_datasets(tokens: Sequence[str], openml_cache_dir: Path | None = None) -> list[Dataset]:
    """Turn dataset tokens (OpenML ids, suite names, file paths) into datasets, duplicates dropped.

    Raises:
        UserError: a token is none of these, or ``cached`` is asked for without a cache directory.
    """
    suites = load_suites()
    datasets: list[Dataset] = []
    for token in tokens:
        if token.isdigit() and int(token) > 0:
            datasets.append(Dataset(key=str(int(token)), dataset_id=int(token)))
        elif token == "cached":
            if openml_cache_dir is None:
                raise UserError("the dataset suite 'cached' needs --openml_cache_dir")
            datasets += [Dataset(key=str(i), dataset_id=i) for i in cached_dataset_ids(openml_cache_dir)]
        elif token in suites:
            datasets += [Dataset(key=str(i), dataset_id=int(i)) for i in suites[token]["dataset_ids"]]
        elif Path(token).is_file():
            from data.loading import file_dataset_key  # imported here: pandas is slow to import

            path = Path(token).resolve()
            datasets.append(Dataset(key=file_dataset_key(path), path=path))
        else:
            names = ", ".join(sorted(suites))
            raise UserError(f"dataset '{token}' is not an OpenML id, a suite ({names}) or an existing file")
    unique: dict[str, Dataset] = {}
    for dataset in datasets:
        previous = unique.setdefault(dataset.key, dataset)
        if previous != dataset:
            raise UserError(f"two datasets share the results directory name '{dataset.key}'")
    return list(unique.values())


def parse_seeds(tokens: Sequence[str]) -> list[int]:
    """Seeds from tokens like ``0-9``, ``0,3,5`` or ``7``, in the order given, duplicates dropped."""
    return _parse_integers(tokens, "seed", "seeds")


def parse_indices(tokens: Sequence[str]) -> list[int]:
    """Cell indices from tokens like ``0-9``, ``3,7,9`` or ``12``, in the order given, duplicates dropped."""
    return _parse_integers(tokens, "cell index", "cell indices")


def format_indices(indices: Sequence[int]) -> str:
    """The shortest ``parse_indices`` token for ``indices``: runs of consecutive numbers become ranges."""
    parts: list[str] = []
    start = previous = None
    for index in [*indices, None]:
        if start is not None and index is not None and index == previous + 1:
            previous = index
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = index
    return ",".join(parts)


def _parse_integers(tokens: Sequence[str], what: str, plural: str) -> list[int]:
    numbers: list[int] = []
    for token in tokens:
        for part in filter(None, token.split(",")):
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
            if match is None:
                raise UserError(f"bad {what} '{part}': use integers, ranges like 0-9, or lists like 0,3,5")
            low = int(match.group(1))
            high = int(match.group(2)) if match.group(2) is not None else low
            if high < low:
                raise UserError(f"bad {what} range '{part}': the end is before the start")
            numbers += range(low, high + 1)
    if not numbers:
        raise UserError(f"no {plural} given")
    return list(dict.fromkeys(numbers))


def parse_methods(tokens: Sequence[str]) -> list[str]:
    """Method ids from tokens like ``inn tabresnet`` or ``inn,tabresnet``, in the order given, duplicates dropped.

    Raises:
        UserError: an id that is not in the method registry.
    """
    methods = [part.strip() for token in tokens for part in token.split(",") if part.strip()]
    unknown = [method for method in methods if method not in REGISTRY]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(REGISTRY)}")
    if not methods:
        raise UserError("no methods given")
    return list(dict.fromkeys(methods))


def expand_cells(methods: Sequence[str], datasets: Sequence[Dataset], seeds: Sequence[int]) -> list[Cell]:
    """Number the grid: datasets outer, then seeds, then methods (see the module docstring)."""
    methods = list(dict.fromkeys(methods))
    cells = []
    for dataset in datasets:
        for seed in seeds:
            for method in methods:
                cells.append(Cell(index=len(cells), method=method, dataset=dataset, seed=seed))
    return cells


# ----------------------------------------------------------------------------------------------------------
# Pass-through flags


def group_flags(tokens: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Split pass-through tokens into ``(flag, tokens)`` groups: a ``--flag`` and the values after it."""
    groups: list[tuple[str, list[str]]] = []
    for token in tokens:
        if token.startswith("--"):
            groups.append((token.split("=", 1)[0], [token]))
        elif groups:
            groups[-1][1].append(token)
        else:
            raise UserError(f"unexpected argument '{token}' (pass-through flags start with --)")
    return groups


def script_parser(script: MethodScript) -> argparse.ArgumentParser:
    """The experiment script's own parser: ``build_parser()`` of the script, loaded from its file."""
    if str(REPO_ROOT) not in sys.path:
        # The scripts import the project's packages from the repository root, which is on sys.path for
        # `python sweep.py` but not necessarily for a library caller (a notebook, a test).
        sys.path.insert(0, str(REPO_ROOT))
    name = "_sweep_script_" + re.sub(r"\W", "_", str(script.path.resolve()))
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, script.path)
        if spec is None or spec.loader is None or not script.path.is_file():
            raise UserError(f"cannot load the experiment script {script.path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # registered first, as the import system does (dataclasses look it up)
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return module.build_parser()


def method_flags(sweep: Sweep) -> dict[str, list[str]]:
    """The pass-through flags each method's script receives: those its parser knows.

    A flag known to some scripts only (``--nr_epochs`` for INN/TabResNet) goes to those only, so one
    command line can drive a sweep over all methods.

    Raises:
        UserError: a flag is reserved by the sweep, unknown to every script of the sweep, or its value is
            rejected by a script's parser.
    """
    groups = group_flags(sweep.passthrough)
    for flag, _ in groups:
        if flag in RESERVED_FLAGS:
            raise UserError(f"{flag} is set by the sweep for each cell: {RESERVED_FLAGS[flag]}")
    if not groups:
        return {method: [] for method in sweep.methods}
    parsers: dict[str, argparse.ArgumentParser] = {}
    flags: dict[str, list[str]] = {}
    used: set[str] = set()
    for method in sweep.methods:
        script = SCRIPTS[method]
        if script.script not in parsers:
            parsers[script.script] = script_parser(script)
        parser = parsers[script.script]
        # argparse has no public "does this flag exist"; _option_string_actions is its stable lookup table.
        known = [group for group in groups if group[0] in parser._option_string_actions]
        flags[method] = [token for _, tokens in known for token in tokens]
        used.update(flag for flag, _ in known)
    unknown = [flag for flag, _ in groups if flag not in used]
    if unknown:
        scripts = ", ".join(sorted(parsers))
        raise UserError(f"unknown flag(s) {' '.join(unknown)}: not accepted by {scripts}")
    for method in sweep.methods:
        parser = parsers[SCRIPTS[method].script]
        try:
            parser.parse_args([*SCRIPTS[method].args, *flags[method]])
        except SystemExit:
            # argparse has already printed its message; say which script refused.
            raise UserError(f"{SCRIPTS[method].script} rejects the flags {' '.join(flags[method])}") from None
    return flags


def cell_command(
    sweep: Sweep, cell: Cell, flags: Sequence[str] = (), scripts: dict[str, MethodScript] | None = None
) -> list[str]:
    """The command line that runs one cell (``scripts``: the method -> script table, :data:`SCRIPTS` by default).

    A forked cell runs the same script with the same arguments in a child of its worker.
    """
    script = (scripts or SCRIPTS)[cell.method]
    return [
        sys.executable,
        str(script.path),
        *script.args,
        *cell.dataset.arguments(sweep.openml_cache_dir),
        "--seed",
        str(cell.seed),
        "--output_dir",
        str(sweep.output_dir),
        *(("--variant", sweep.variant) if sweep.variant else ()),
        *flags,
    ]


# ----------------------------------------------------------------------------------------------------------
# Where results go


def check_output_dir(output_dir: Path, *, writable: bool = True) -> None:
    """Check, before any work, that ``output_dir`` is (or can become) a directory this process can write to.

    Args:
        output_dir: the results tree root.
        writable: also create ``<output_dir>/.sweep`` and a file in it (off for read-only commands like ``--list``).

    Raises:
        UserError: ``output_dir`` is a file, lies below a file, or cannot be created or written.
    """
    output_dir = Path(output_dir)
    for path in (output_dir, *output_dir.parents):
        if path.exists():
            if not path.is_dir():
                where = "is a file" if path == output_dir else f"is below {path}, which is a file"
                raise UserError(f"--output_dir {output_dir} {where}, not a directory")
            break
    if not writable:
        return
    state_dir = output_dir / STATE_DIRNAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        # os.access is no proof (root, ACLs, read-only mounts): write a file.
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=state_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise UserError(f"cannot write to --output_dir {output_dir}: {error.strerror or error}") from None


# ----------------------------------------------------------------------------------------------------------
# State and locks


def cell_state(sweep: Sweep, cell: Cell) -> CellState:
    """``done``, ``failed``, ``running`` (another process holds the lock) or ``pending``."""
    if is_complete(sweep.results_path(cell)):
        return "done"
    if sweep.lock_path(cell).exists() and lock_is_held(sweep.lock_path(cell)):
        return "running"
    if sweep.error_path(cell).exists():
        return "failed"
    return "pending"


def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _flock(fd: int, path: Path) -> bool:
    """Take an exclusive lock without waiting; False when someone else holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
            raise UserError(
                f"the file system of {path} does not support file locks ({error.strerror}); "
                "put --output_dir on a file system that does"
            ) from None
        raise
    return True


def lock_is_held(path: Path) -> bool:
    """Whether another process holds the lock file ``path`` right now (False when there is no such file)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:  # a results tree we may only read (--list of someone else's sweep)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
    try:
        if not _flock(fd, path):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:  # an exclusive lock through a read-only descriptor (NFS): cannot tell, say not running
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def cell_lock(path: Path) -> Iterator[int | None]:
    """Hold the cell's lock for the duration of the block; yields the descriptor, or None if it is taken.

    Lock files are never deleted: removing a file someone may be about to lock would let two processes
    lock two different files of the same name.
    """
    fd = _open_lock(path)
    try:
        if not _flock(fd, path):
            yield None
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        yield fd
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


# ----------------------------------------------------------------------------------------------------------
# Running one cell


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask, which SLURM and taskset restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_cell(workers: int) -> int:
    """Threads each of ``workers`` parallel cells gets: an equal share of the cores (SLURM's CPUs per task
    inside a SLURM job), at least one."""
    slurm_cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    cores = int(slurm_cpus) if slurm_cpus.isdigit() and int(slurm_cpus) > 0 else available_cores()
    return max(1, cores // max(1, workers))


def cell_environment(threads: int) -> dict[str, str]:
    """The environment of a cell's process (and of a fork worker), with every thread pool sized to ``threads``."""
    env = dict(os.environ)
    for name in THREAD_ENV_VARS:
        env[name] = str(threads)
    return env


class CellRunner(Protocol):
    """What the backends need from a runner: :class:`Runner` (one process) or :class:`WorkerPool` (workers)."""

    sweep: Sweep

    def run(self, cell: Cell) -> CellOutcome: ...

    def stop(self, grace_s: float = STOP_GRACE_S) -> None: ...

    def close(self) -> None: ...


#: Signals held back while a worker forks, so that a stop request sees the new child (and the child starts
#: with its own handlers, not the worker's).
_FORK_BLOCKED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGALRM}


class Runner:
    """Runs cells of ``sweep`` from this process, one new process per cell, and can stop them all.

    ``isolation="subprocess"``: each cell is a new Python process (``subprocess.Popen`` of :func:`cell_command`).
    ``isolation="fork"``: each cell is a forked child of this process that runs the same script with the same
    arguments (:func:`_run_forked_cell`); this is what a fork worker does, having imported the libraries once.
    Fork only from a process that has no other threads and has done no parallel work (a worker).

    Args:
        sweep: the grid.
        flags: pass-through flags per method (:func:`method_flags`).
        threads: thread-pool size of each cell (``OMP_NUM_THREADS`` and friends, torch's thread count).
        retry_failed: rerun cells that have an ``error.json``.
        isolation: ``subprocess`` or ``fork``.
        scripts: the method -> script table (:data:`SCRIPTS` by default).
        on_start: called with the process id of each cell as it starts.
        close_in_child: descriptors a forked child closes first (a worker's pipes to the sweep).
        preload: called with a forked cell's command before the fork (a worker's :class:`DatasetCache`).
    """

    def __init__(
        self,
        sweep: Sweep,
        flags: dict[str, list[str]],
        *,
        threads: int,
        retry_failed: bool,
        isolation: Isolation = "subprocess",
        scripts: dict[str, MethodScript] | None = None,
        on_start: Callable[[int], None] | None = None,
        close_in_child: Sequence[int] = (),
        preload: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self.sweep = sweep
        self.flags = flags
        self.threads = threads
        self.retry_failed = retry_failed
        self.isolation = isolation
        self.scripts = dict(scripts or SCRIPTS)
        self.on_start = on_start
        self.close_in_child = tuple(close_in_child)
        self.preload = preload
        self.stopping = threading.Event()
        self._processes: set[subprocess.Popen] = set()
        self._children: set[int] = set()
        # Reentrant: stop() may run in a signal handler while this thread holds the lock.
        self._guard = threading.RLock()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Start no more cells and end the running ones: SIGTERM, then SIGKILL after ``grace_s``.

        Subprocesses are waited for here; forked children are reaped where they were started (this may run in
        a signal handler of the worker, whose main thread is waiting for the child): a timer sends the SIGKILL.
        """
        self.stopping.set()
        with self._guard:
            processes, children = list(self._processes), list(self._children)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if children:
            signal.signal(signal.SIGALRM, lambda signum, frame: self._kill_children())
            signal.setitimer(signal.ITIMER_REAL, grace_s)
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = time.monotonic() + grace_s
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()

    def close(self) -> None:
        """Nothing to release (cells end with :meth:`run`); for symmetry with :class:`WorkerPool`."""

    def _kill_children(self) -> None:
        with self._guard:
            children = list(self._children)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def run(self, cell: Cell) -> CellOutcome:
        """Run ``cell`` unless it is done, failed (without retry) or locked by another process."""
        sweep = self.sweep
        if self.stopping.is_set():
            return "interrupted"
        if is_complete(sweep.results_path(cell)):
            return "skipped_done"
        with cell_lock(sweep.lock_path(cell)) as lock_fd:
            if lock_fd is None:
                return "busy"
            # Check again under the lock: another worker may have finished the cell meanwhile.
            if is_complete(sweep.results_path(cell)):
                return "skipped_done"
            if sweep.error_path(cell).exists() and not self.retry_failed:
                return "skipped_failed"
            return self._execute(cell, lock_fd)

    def _execute(self, cell: Cell, lock_fd: int) -> CellOutcome:
        sweep = self.sweep
        # What a killed attempt left behind (we hold the lock: nobody else is writing here).
        _remove_stale_temporaries(sweep.run_dir(cell))
        remove_stale_siblings(sweep.run_dir(cell))
        command = cell_command(sweep, cell, self.flags.get(cell.method, ()), self.scripts)
        out_path, err_path = sweep.log_paths(cell)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        started = datetime.now(timezone.utc)
        clock = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            out.write(f"$ {shlex.join(command)}\n".encode())
            if self.isolation == "fork":
                out.write(f"# forked from sweep worker {os.getpid()} on {socket.gethostname()}\n".encode())
            out.flush()
            launch = self._fork if self.isolation == "fork" else self._popen
            returncode = launch(command, out, err, lock_fd)
            # A footer in the log: how long the cell took, from start to exit (imports and data loading included).
            out.write(f"# exit code {returncode} after {time.monotonic() - clock:.3f} s\n".encode())
        if is_complete(sweep.results_path(cell)) and returncode == 0:
            sweep.error_path(cell).unlink(missing_ok=True)
            return "done"
        if self.stopping.is_set() or _interrupted(returncode):
            # Stopped from outside (Ctrl-C, SIGTERM, pre-emption): not the cell's fault, it stays pending.
            return "interrupted"
        write_json_atomic(
            sweep.error_path(cell),
            {
                "method": cell.method,
                "dataset_id": cell.dataset.key,
                "seed": cell.seed,
                "cell_index": cell.index,
                "returncode": returncode,
                "signal": signal.Signals(-returncode).name if returncode < 0 else None,
                "reason": _failure_reason(returncode),
                "stderr_tail": _tail(err_path, STDERR_TAIL_LINES),
                "command": command,
                "isolation": self.isolation,
                "stdout_log": str(out_path),
                "stderr_log": str(err_path),
                "started": started.isoformat(timespec="seconds"),
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "duration_s": round(time.monotonic() - clock, 3),
                "host": socket.gethostname(),
            },
        )
        return "failed"

    def _popen(self, command: list[str], out: Any, err: Any, lock_fd: int) -> int:
        try:
            # The child inherits the lock's descriptor: if this process dies, the cell stays locked until the
            # orphaned experiment ends too, so nobody starts it twice.
            process = subprocess.Popen(
                command, stdout=out, stderr=err, env=cell_environment(self.threads), pass_fds=(lock_fd,)
            )
        except OSError as error:
            err.write(f"cannot start the experiment: {error}\n".encode())
            return 127
        with self._guard:
            self._processes.add(process)
        if self.on_start is not None:
            self.on_start(process.pid)
        try:
            return process.wait()
        finally:
            with self._guard:
                self._processes.discard(process)

    def _fork(self, command: list[str], out: Any, err: Any, lock_fd: int) -> int:
        script, args = command[1], command[2:]
        if self.preload is not None:
            self.preload(command)
        # Everything this process holds now is shared with the child copy-on-write. A garbage collection in the
        # child would touch (so copy) every object of the worker, seconds for a worker with torch and
        # scikit-learn loaded: frozen objects are left out of collections.
        gc.freeze()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()  # or the child would write this process's pending output again
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _FORK_BLOCKED_SIGNALS)
        if self.stopping.is_set():  # checked with the stop signal held back: no child can slip past a stop
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            return 128 + signal.SIGTERM
        try:
            pid = os.fork()
        except OSError as error:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            err.write(f"cannot fork the experiment: {error}\n".encode())
            return 127
        if pid == 0:  # the child: like `python script args`, with the lock's descriptor inherited
            _run_forked_cell(
                script, args, out.fileno(), err.fileno(), threads=self.threads, mask=mask, close=self.close_in_child
            )
        with self._guard:
            self._children.add(pid)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a stop request held back until now sees the child
        try:
            if self.on_start is not None:
                self.on_start(pid)
            _, status = os.waitpid(pid, 0)
        finally:
            with self._guard:
                self._children.discard(pid)
                if not self._children:
                    signal.setitimer(signal.ITIMER_REAL, 0)  # no SIGKILL for a pid that may be reused
        return os.waitstatus_to_exitcode(status)


def _run_forked_cell(
    script: str, args: Sequence[str], out_fd: int, err_fd: int, *, threads: int, mask: Any, close: Sequence[int]
) -> NoReturn:
    """The forked child of a worker: run ``script`` with ``args`` as ``python script args`` would, then exit.

    The child ends with ``os._exit`` after flushing its output, as multiprocessing's forked processes do: the
    worker's exit handlers are not the cell's, and every file a cell keeps is written explicitly (atomically).
    """
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt, exit code 130
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        for fd in (null, out_fd, err_fd, *close):
            with contextlib.suppress(OSError):
                os.close(fd)
        code = _run_script(script, args, threads)
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def _run_script(script: str, args: Sequence[str], threads: int) -> int:
    """Run ``script`` as ``__main__`` with ``sys.argv = [script, *args]``; returns its exit code."""
    for name in THREAD_ENV_VARS:  # for libraries loaded from now on, and their subprocesses
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.manual_seed(torch.initial_seed())  # the default generator as a fresh process starts it
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # a fresh process seeds numpy's global generator from the OS, not from its parent
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))  # as `python script` puts the script's folder first
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        return _exit_code(exit_.code)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", file=sys.stderr)
        return 130
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _exit_code(code: object) -> int:
    """The exit status ``sys.exit(code)`` gives a process."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _interrupted(returncode: int) -> bool:
    # SIGINT/SIGTERM/SIGHUP reach the cell when the whole job or terminal is stopped (130 and 143 are the
    # shell's way to report them); SIGKILL alone is more often the OOM killer, so it counts as a failure.
    stopped = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    return returncode in (130, 143) or (returncode < 0 and -returncode in stopped)


def _failure_reason(returncode: int) -> str:
    if returncode == 0:
        return "exited with 0 but wrote no complete output_info.json"
    if returncode == -signal.SIGKILL:
        return "killed by SIGKILL (out of memory?)"
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    if returncode == 2:
        return "the experiment rejected its input (see stderr_tail)"
    return f"exited with code {returncode}"


def _remove_stale_temporaries(directory: Path) -> None:
    """Delete temporary files a killed run left behind (atomic writes use ``.<name>.<random>.tmp``)."""
    if directory.is_dir():
        for path in directory.glob(".*.tmp"):
            path.unlink(missing_ok=True)


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


# ----------------------------------------------------------------------------------------------------------
# Fork workers


def warm_modules(methods: Sequence[str]) -> tuple[str, ...]:
    """The modules a fork worker of a sweep over ``methods`` imports before its first cell."""
    modules = [*WARM_IMPORTS, *(name for method in methods for name in METHOD_IMPORTS.get(method, ()))]
    return tuple(dict.fromkeys(modules))


def warm_explainers(methods: Sequence[str]) -> tuple[str, ...]:
    """The native explainers (ids of ``explainers.NATIVE_EXPLAINERS``) of ``methods``, from the registry."""
    return tuple(dict.fromkeys(REGISTRY[method].explainer for method in methods if REGISTRY[method].explainer))


def warm_up(modules: Sequence[str], explainers: Sequence[str] = ()) -> None:
    """Import ``modules`` and the modules of the native ``explainers``; one that fails is left to the cells.

    Only imports: nothing here may start threads or parallel work (the worker forks after this).
    """
    for name in modules:
        with contextlib.suppress(Exception):  # ImportError, or a broken library's OSError: the cell reports it
            importlib.import_module(name)
    if explainers:
        from explainers import NATIVE_EXPLAINERS

        for explainer in explainers:
            with contextlib.suppress(Exception):
                NATIVE_EXPLAINERS[explainer]  # imports the explainer's module


class DatasetCache:
    """The datasets a fork worker has loaded (the ``size`` last used), which its next forked cells find loaded.

    Before each fork the worker parses the cell's arguments with the experiment script's own parser and loads the
    dataset they name (``experiments.config.DataConfig.load``); :meth:`install` makes that load look here first
    (``experiments.config.dataset_loader``), in the worker and so in its forked cells. A forked cell sees the dataset copy-on-write: whatever it
    changes stays in the cell. A dataset that fails to load here is left to the cell, which reports the error.
    """

    def __init__(self, size: int = 2, loader: Callable[[Any], Any] | None = None) -> None:
        self.size = size
        self.loader = loader
        self._datasets: dict[tuple[Any, ...], Any] = {}

    def install(self) -> None:
        """Route ``experiments.config.DataConfig.load`` through this cache (in this process only)."""
        from experiments import config

        if self.loader is None:
            self.loader = config.dataset_loader
            config.dataset_loader = self.load

    def load(self, config: Any) -> Any:
        """The raw dataset of ``config`` (a ``DataConfig``), from the cache when this worker loaded it already."""
        if self.loader is None:
            raise RuntimeError("DatasetCache: install() it, or give it a loader")
        key = self.key(config)
        if key in self._datasets:
            self._datasets[key] = self._datasets.pop(key)  # the most recently used is kept longest
        else:
            self._datasets[key] = self.loader(config)
            if len(self._datasets) > self.size:
                while len(self._datasets) > self.size:
                    self._datasets.pop(next(iter(self._datasets)))
                # The worker froze the dataset with everything else before forking (Runner._fork): unfreeze so
                # that the collector can free what the dataset kept in reference cycles (once per new dataset).
                gc.unfreeze()
                gc.collect()
        return self._datasets[key]

    @staticmethod
    def key(config: Any) -> tuple[Any, ...]:
        """What identifies a loaded dataset: the data fields (and a file's size and modification time)."""
        path, name = config.dataset_path, config.dataset
        file = None
        if path is not None:
            stat = Path(path).stat()
            file = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
        if name or file is not None:
            return ("named" if name else "file", name, file, config.target)
        cache = config.openml_cache_dir
        return ("openml", config.dataset_id, str(cache) if cache else None, config.target)

    def preload(self, command: Sequence[str]) -> None:
        """Load the dataset of a cell's command (``python script args``) unless it is loaded; never raises."""
        if self.loader is None:
            return
        try:
            from experiments.config import DataConfig

            parser = script_parser(MethodScript(command[1]))
            flags = vars(parser.parse_args(list(command[2:])))
            if {"dataset_path", "dataset_id", "target", "openml_cache_dir"} <= set(flags):
                self.load(DataConfig.from_mapping(flags))
        except (Exception, SystemExit):  # a stand-in script, a bad flag, unreadable data: the cell reports it
            pass


@dataclass(frozen=True)
class WorkerSetup:
    """What a fork worker needs, sent once when it starts (pickled over its command pipe)."""

    sweep: Sweep
    flags: dict[str, list[str]]
    threads: int
    retry_failed: bool
    scripts: dict[str, MethodScript]
    modules: tuple[str, ...] = ()
    explainers: tuple[str, ...] = ()
    grace_s: float = STOP_GRACE_S
    cached_datasets: int = 2


#: The command of a fork worker process; the two numbers are its command and result pipes.
_WORKER_CODE = (
    "import sys; sys.path[:] = [{root!r}] + [p for p in sys.path if p]; "
    "from experiments.sweep import worker_main; sys.exit(worker_main(sys.argv[1:]))"
)


def worker_main(argv: Sequence[str]) -> int:
    """A fork worker: import once, then run each cell the sweep sends in a forked child.

    Protocol (pickles): the sweep sends a :class:`WorkerSetup`, then one :class:`Cell` at a time; the worker answers
    ``("ready", pid)`` once, then ``("started", child_pid)`` and ``("outcome", outcome)`` (or ``("error", text)``
    for a failure of the sweep itself) per cell. End of input ends the worker; SIGTERM stops its cell (it stays
    pending). Ctrl-C is ignored here: it reaches the cells and the sweep, which stops the workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    command_fd, result_fd = (int(text) for text in argv)
    commands, results = os.fdopen(command_fd, "rb"), os.fdopen(result_fd, "wb")

    def send(message: tuple[Any, ...]) -> None:
        pickle.dump(message, results)
        results.flush()

    try:
        setup: WorkerSetup = pickle.load(commands)
        warm_up(setup.modules, setup.explainers)
        datasets = DatasetCache(setup.cached_datasets)
        if setup.cached_datasets > 0:
            datasets.install()
        runner = Runner(
            setup.sweep,
            setup.flags,
            threads=setup.threads,
            retry_failed=setup.retry_failed,
            isolation="fork",
            scripts=setup.scripts,
            on_start=lambda pid: send(("started", pid)),
            close_in_child=(command_fd, result_fd),
            preload=datasets.preload,
        )
        signal.signal(signal.SIGTERM, lambda signum, frame: runner.stop(setup.grace_s))
        send(("ready", os.getpid()))
        while True:
            try:
                cell = pickle.load(commands)
            except EOFError:
                return 0
            try:
                outcome = runner.run(cell)
            except Exception as error:  # the sweep's own failure (a full disk): the sweep reports it and goes on
                send(("error", f"{type(error).__name__}: {error}"))
            else:
                send(("outcome", outcome))
    except (BrokenPipeError, EOFError):  # the sweep is gone: nobody is waiting for this worker
        return 0


class WorkerLost(RuntimeError):
    """A fork worker ended (or broke its pipe) while the sweep was waiting for it."""


class _Worker:
    """The sweep's end of one fork worker process."""

    def __init__(self, setup: WorkerSetup, env: dict[str, str], log_path: Path) -> None:
        command_read, command_write = os.pipe()
        result_read, result_write = os.pipe()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _WORKER_CODE.format(root=str(REPO_ROOT)),
                        str(command_read),
                        str(result_write),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    pass_fds=(command_read, result_write),
                )
        except BaseException:
            for fd in (command_write, result_read):
                os.close(fd)
            raise
        finally:
            os.close(command_read)
            os.close(result_write)
        self.log_path = log_path
        self.child: int | None = None
        self.lost = False
        self._commands = os.fdopen(command_write, "wb")
        self._results = os.fdopen(result_read, "rb")
        self._send_lock = threading.Lock()
        self._send(setup)

    def run(self, cell: Cell) -> CellOutcome:
        """Run ``cell`` in this worker and wait for its outcome.

        Raises:
            WorkerLost: the worker died (the cell's own process may still finish it: it holds the lock).
            RuntimeError: the worker could not handle the cell (a failure of the sweep, not of the cell).
        """
        self._send(cell)
        while True:
            message = self._receive()
            if message[0] == "started":
                self.child = message[1]
            elif message[0] == "outcome":
                self.child = None
                return message[1]
            elif message[0] == "error":
                self.child = None
                raise RuntimeError(message[1])

    def close(self) -> None:
        """End of input: the worker exits after its current cell."""
        with self._send_lock, contextlib.suppress(OSError):
            self._commands.close()

    def terminate(self) -> None:
        """Stop the worker's cell (SIGTERM, then SIGKILL after the grace time) and let the worker exit."""
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        self.close()

    def wait(self, timeout: float) -> None:
        """Wait for the worker to exit; after ``timeout`` seconds SIGKILL it and the cell it was running."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in (self.child, self.process.pid):
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self.process.wait()

    def release(self) -> None:
        """Close the sweep's ends of the pipes (the worker has exited)."""
        self.close()
        self._results.close()

    def _send(self, message: Any) -> None:
        try:
            with self._send_lock:
                pickle.dump(message, self._commands)
                self._commands.flush()
        except (OSError, ValueError):  # a broken pipe, or closed by stop()
            self._lost()

    def _receive(self) -> tuple[Any, ...]:
        try:
            message = pickle.load(self._results)
        except (EOFError, OSError, pickle.UnpicklingError):
            self._lost()
        if message[0] == "ready":
            return self._receive()
        return message

    def _lost(self) -> NoReturn:
        self.lost = True
        try:
            code: int | None = self.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            code = None
        raise WorkerLost(f"a sweep worker (pid {self.process.pid}) ended with exit code {code}; see {self.log_path}")


class WorkerPool:
    """Long-lived fork workers: ``run(cell)`` runs ``cell`` in a forked child of an idle worker.

    Each worker is a fresh Python process started with the cells' environment (thread pools sized to
    ``threads``), which imports the libraries of the sweep's methods once (:func:`warm_modules`) and then forks
    one child per cell (:class:`Runner` with ``isolation="fork"``). Locks, logs, ``error.json`` and outcomes
    are the worker's business, exactly as with a subprocess per cell. A worker that dies is replaced.
    Thread-safe: one :meth:`run` per worker at a time, up to ``workers`` at once.
    """

    def __init__(
        self,
        sweep: Sweep,
        flags: dict[str, list[str]],
        *,
        threads: int,
        retry_failed: bool,
        workers: int,
        scripts: dict[str, MethodScript] | None = None,
    ) -> None:
        self.sweep = sweep
        self.stopping = threading.Event()
        self._setup = WorkerSetup(
            sweep=sweep,
            flags=flags,
            threads=threads,
            retry_failed=retry_failed,
            scripts=dict(scripts or SCRIPTS),
            modules=warm_modules(sweep.methods),
            explainers=warm_explainers(sweep.methods),
        )
        self._env = cell_environment(threads)
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        self._guard = threading.Lock()
        for _ in range(workers):
            self._idle.put(self._start())

    @property
    def log_path(self) -> Path:
        """Where the workers' own output goes (import warnings, a worker's crash); cells log per cell."""
        return self.sweep.state_dir / "logs" / "workers.log"

    def _start(self) -> _Worker:
        worker = _Worker(self._setup, self._env, self.log_path)
        with self._guard:
            self._workers.append(worker)
        return worker

    def run(self, cell: Cell) -> CellOutcome:
        """Run ``cell`` in an idle worker (see :meth:`Runner.run` for the outcomes)."""
        if self.stopping.is_set():
            return "interrupted"
        worker = self._idle.get()
        try:
            if worker.lost:
                if self.stopping.is_set():
                    return "interrupted"
                worker = self._start()
            outcome = worker.run(cell)
        finally:
            self._idle.put(worker)
        return outcome

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Start no more cells; end the running ones (SIGTERM, SIGKILL after ``grace_s``) and the workers."""
        self.stopping.set()
        with self._guard:
            workers = list(self._workers)
        for worker in workers:
            worker.terminate()
        deadline = time.monotonic() + grace_s + 5.0
        for worker in workers:
            worker.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Let the workers finish their cells and exit (after :meth:`stop`, or when the sweep is done)."""
        with self._guard:
            workers, self._workers = list(self._workers), []
        for worker in workers:
            worker.close()
        for worker in workers:
            worker.wait(STOP_GRACE_S + 5.0)
            worker.release()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def make_runner(
    sweep: Sweep,
    flags: dict[str, list[str]],
    *,
    isolation: Isolation,
    workers: int,
    threads: int,
    retry_failed: bool,
) -> CellRunner:
    """The runner of a local sweep or an array task: ``workers`` fork workers, or a subprocess per cell."""
    if isolation == "fork":
        if not hasattr(os, "fork"):
            raise UserError("--isolation fork needs os.fork (Linux, macOS); use --isolation subprocess")
        return WorkerPool(sweep, flags, threads=threads, retry_failed=retry_failed, workers=workers)
    return Runner(sweep, flags, threads=threads, retry_failed=retry_failed)


# ----------------------------------------------------------------------------------------------------------
# Backends


def describe_outcome(sweep: Sweep, cell: Cell, outcome: CellOutcome) -> str:
    """One line about a cell's outcome."""
    messages = {
        "done": "done",
        "skipped_done": "already done",
        "skipped_failed": f"failed before, skipped (use --retry_failed): {sweep.error_path(cell)}",
        "busy": "running in another process, skipped",
        "failed": f"failed: see {sweep.error_path(cell)}",
        "interrupted": "interrupted",
    }
    return f"{cell.describe()}: {messages[outcome]}"


def run_local(
    runner: CellRunner, cells: Sequence[Cell], workers: int, *, progress: bool = True, verbose: bool = False
) -> Counter[str]:
    """Run ``cells``, ``workers`` at a time, with a progress bar; returns outcome counts.

    ``verbose``: one line per cell (array tasks); otherwise failures only.
    """
    from tqdm import tqdm

    outcomes: Counter[str] = Counter()
    bar = tqdm(total=len(cells), desc="sweep", unit="cell", disable=not progress, dynamic_ncols=True)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cell")
    try:
        futures = {pool.submit(runner.run, cell): cell for cell in cells}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                cell = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # a bug, a full disk or a lost worker in the sweep itself: report, go on
                    outcome = "failed"
                    bar.write(f"{cell.describe()}: sweep error: {error}")
                else:
                    if verbose:
                        bar.write(describe_outcome(runner.sweep, cell, outcome))
                    elif outcome == "failed":
                        bar.write(f"{cell.describe()} failed: see {runner.sweep.error_path(cell)}")
                outcomes[outcome] += 1
                bar.set_postfix({key: outcomes[key] for key in ("done", "failed", "busy") if outcomes[key]})
                bar.update()
    except BaseException:
        # Ctrl-C or SIGTERM: start nothing new, end the running cells, leave them pending.
        runner.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown(wait=True)
    return outcomes


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of each array task and of the array (see ``--slurm_*`` flags)."""

    executor: SubmititCluster = "slurm"
    partition: str | None = None
    time_min: int = 60
    mem_gb: float = 8.0
    gpus: int = 0
    cpus_per_task: int = 2
    array_parallelism: int = 64
    account: str | None = None
    setup: tuple[str, ...] = ()
    log_dir: Path | None = None
    wait: bool = False
    cells_per_task: int = 1


def task_command(sweep: Sweep, retry_failed: bool, isolation: Isolation = DEFAULT_ISOLATION) -> list[str]:
    """The sweep command an array task runs, missing only its trailing cell indices (``--cells 3,7-9``).

    Datasets are written out (suites expanded), so a cache that changes after submission cannot shift
    the cell indices.
    """
    command = [
        sys.executable,
        str(SWEEP_SCRIPT),
        "--methods",
        *sweep.methods,
        "--datasets",
        *(dataset.token() for dataset in sweep.datasets),
        "--seeds",
        ",".join(str(seed) for seed in sweep.seeds),
        "--output_dir",
        str(sweep.output_dir),
        "--isolation",
        isolation,
        "--no_progress",
    ]
    if sweep.openml_cache_dir is not None:
        command += ["--openml_cache_dir", str(sweep.openml_cache_dir)]
    if sweep.variant is not None:
        command += ["--variant", sweep.variant]
    if retry_failed:
        command.append("--retry_failed")
    return [*command, *sweep.passthrough, "--cells"]


def submit_slurm(
    sweep: Sweep,
    cells: Sequence[Cell],
    options: SlurmOptions,
    *,
    retry_failed: bool,
    isolation: Isolation = DEFAULT_ISOLATION,
) -> list[Any]:
    """Submit ``cells`` as one job array through submitit, ``options.cells_per_task`` cells per array task.

    Each task runs ``sweep.py ... --cells <its cells>``: one process that runs its cells one after another,
    each in its own forked child (or subprocess), so the start-up is paid once per task. Its time limit is
    ``options.time_min`` per cell. With ``options.executor`` ``local`` or ``debug`` the same submission runs on
    this machine (submitit's local and in-process executors), which is how the path is tested without a cluster.
    """
    import submitit
    from submitit.helpers import CommandFunction

    folder = options.log_dir or sweep.state_dir / "submitit"
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=options.executor)
    except RuntimeError as error:  # submitit's "Could not detect srun": not on a SLURM login node
        raise UserError(f"cannot submit to SLURM here: {error}") from None
    per_task = max(1, options.cells_per_task)
    parameters: dict[str, Any] = {
        "name": "inn-sweep",
        "timeout_min": options.time_min * per_task,
        "mem_gb": options.mem_gb,
        "cpus_per_task": options.cpus_per_task,
        "slurm_array_parallelism": options.array_parallelism,
    }
    if options.gpus > 0:  # "--gpus-per-node=0" is rejected by some clusters: leave it out
        parameters["gpus_per_node"] = options.gpus
    if options.partition:
        parameters["slurm_partition"] = options.partition
    if options.account:
        parameters["slurm_account"] = options.account
    if options.setup:
        parameters["slurm_setup"] = list(options.setup)
    executor.update_parameters(**parameters)
    # verbose: the task's lines (one per cell) go to its log in the submitit folder too.
    function = CommandFunction(task_command(sweep, retry_failed, isolation), verbose=True, cwd=Path.cwd())
    chunks = [cells[start : start + per_task] for start in range(0, len(cells), per_task)]
    return executor.map_array(function, [format_indices([cell.index for cell in chunk]) for chunk in chunks])


def wait_for_jobs(jobs: Sequence[Any], *, progress: bool = True) -> int:
    """Wait for submitted jobs; returns how many ended in an error (a failed cell fails its task)."""
    from tqdm import tqdm

    failures = 0
    for job in tqdm(jobs, desc="jobs", unit="task", disable=not progress):
        try:
            job.result()
        except Exception:
            failures += 1
    return failures


# ----------------------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    """The sweep's flags; every other ``--flag`` is passed to the experiment scripts that accept it."""
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description=(
            "Run methods x datasets x seeds as numbered cells (order: datasets, then seeds, then methods), "
            "locally in parallel or as a SLURM job array. Finished cells are skipped; killed cells are redone. "
            "Any other --flag is passed to the experiment scripts that know it."
        ),
        allow_abbrev=False,  # a pass-through flag must never be mistaken for a prefix of a sweep flag
    )
    grid = parser.add_argument_group("grid")
    grid.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        metavar="METHOD",
        help=f"method ids, space- or comma-separated (default: all {len(METHODS)}: {', '.join(METHODS)})",
    )
    grid.add_argument(
        "--variant",
        type=variant_name,
        default=None,
        help="variant name of every cell: results go to <method>-<variant>/ (e.g. a penalty strength)",
    )
    grid.add_argument(
        "--datasets",
        nargs="+",
        required=True,
        metavar="DATASET",
        help="OpenML ids, suites (paper, cc18, cached = every id in --openml_cache_dir) or data files",
    )
    grid.add_argument("--seeds", nargs="+", default=["0-9"], help="e.g. 0-9, 0,3,5 or 0 1 2 (default 0-9)")
    grid.add_argument("--output_dir", type=Path, default=Path("results"), help="results tree root (default results)")
    grid.add_argument("--openml_cache_dir", type=Path, default=None, help="OpenML cache passed to every cell")
    what = parser.add_argument_group("what to do")
    what.add_argument("--list", action="store_true", help="print the cells and their state, run nothing")
    what.add_argument(
        "--count",
        action="store_true",
        help="print the number of cells (of array tasks with --cells_per_task), run nothing",
    )
    what.add_argument(
        "--task_index",
        type=int,
        default=None,
        help="run exactly this cell, or this array task's cells with --cells_per_task "
        "(default: $SLURM_ARRAY_TASK_ID when set and no --backend is given)",
    )
    what.add_argument(
        "--cells_per_task",
        type=positive_int,
        default=None,
        help="cells per array task: task I runs cells I*K to I*K+K-1 in one process (with --task_index or "
        "$SLURM_ARRAY_TASK_ID); with --backend slurm, K pending cells per submitted task (default 1)",
    )
    what.add_argument(
        "--cells", nargs="+", default=None, metavar="INDEX", help="run exactly these cells, e.g. 3 7-9 or 3,7,8,9"
    )
    what.add_argument("--retry_failed", action="store_true", help="rerun cells that failed before")
    what.add_argument("--backend", choices=("local", "slurm"), default=None, help="default local")
    what.add_argument("--workers", type=positive_int, default=1, help="parallel cells of the local backend")
    what.add_argument(
        "--isolation",
        choices=("fork", "subprocess"),
        default=DEFAULT_ISOLATION,
        help="fork: long-lived workers import the libraries once and fork a child per cell; subprocess: a new "
        f"Python process per cell (~4 s of start-up each) (default {DEFAULT_ISOLATION})",
    )
    what.add_argument("--no_progress", action="store_true", help="no progress bar")
    slurm = parser.add_argument_group("SLURM backend (submitit)")
    slurm.add_argument("--slurm_partition", default=None)
    slurm.add_argument("--slurm_account", default=None)
    slurm.add_argument(
        "--slurm_time", type=positive_int, default=60, help="minutes per cell; a task gets K times that (default 60)"
    )
    slurm.add_argument("--slurm_mem_gb", type=float, default=8.0, help="memory per task in GB (default 8)")
    slurm.add_argument("--slurm_gpus", type=int, default=0, help="GPUs per task (default 0)")
    slurm.add_argument("--slurm_cpus_per_task", type=positive_int, default=2, help="CPUs per task (default 2)")
    slurm.add_argument(
        "--slurm_array_parallelism", type=positive_int, default=64, help="tasks running at once (default 64)"
    )
    slurm.add_argument(
        "--slurm_setup", action="append", default=[], help="shell line run before each task (repeatable)"
    )
    slurm.add_argument(
        "--slurm_log_dir", type=Path, default=None, help="submitit folder (default <output_dir>/.sweep/submitit)"
    )
    slurm.add_argument("--slurm_wait", action="store_true", help="wait for the array to finish")
    slurm.add_argument(
        "--slurm_executor",
        choices=("slurm", "local", "debug"),
        default="slurm",
        help="submitit executor: local/debug run the same submission on this machine (tests, dry runs)",
    )
    return parser


def sweep_from_args(args: argparse.Namespace, passthrough: Sequence[str]) -> Sweep:
    """Build the :class:`Sweep` a parsed command line describes."""
    cache = args.openml_cache_dir.resolve() if args.openml_cache_dir is not None else None
    return Sweep(
        methods=tuple(parse_methods(args.methods)),
        datasets=tuple(expand_datasets(args.datasets, cache)),
        seeds=tuple(parse_seeds(args.seeds)),
        output_dir=args.output_dir.resolve(),
        openml_cache_dir=cache,
        passthrough=tuple(passthrough),
        variant=args.variant,
    )


def print_cells(sweep: Sweep, cells: Sequence[Cell]) -> Counter[str]:
    """Print one line per cell with its state, then the counts."""
    states: Counter[str] = Counter()
    width = len(str(max((cell.index for cell in cells), default=0)))
    print(f"{'index':>{max(width, 5)}}  {'method':<19} {'dataset':<10} {'seed':>4}  state")
    for cell in cells:
        state = cell_state(sweep, cell)
        states[state] += 1
        print(f"{cell.index:>{max(width, 5)}}  {cell.method:<19} {cell.dataset.key:<10} {cell.seed:>4}  {state}")
    print(summary(len(cells), states))
    return states


def summary(total: int, states: Counter[str]) -> str:
    parts = ", ".join(f"{states[key]} {key}" for key in ("done", "failed", "running", "pending"))
    return f"{total} cells: {parts}"


def selected_cells(args: argparse.Namespace, cells: Sequence[Cell]) -> list[Cell] | None:
    """The cells ``--cells``, ``--task_index`` or ``$SLURM_ARRAY_TASK_ID`` pick, or None for the whole grid.

    Task ``I`` with ``--cells_per_task K`` is cells ``I*K`` to ``I*K+K-1`` (the last task may have fewer).

    Raises:
        UserError: an index out of range, ``--cells`` with ``--task_index``, or a ``$SLURM_ARRAY_TASK_ID`` that
            is not a number (an array task must never run the whole grid).
    """
    if args.cells is not None:
        if args.task_index is not None:
            raise UserError("--cells and --task_index exclude each other")
        indices = parse_indices(args.cells)
        outside = [index for index in indices if index >= len(cells)]
        if outside:
            raise UserError(f"--cells {outside[0]} is out of range: the sweep has {len(cells)} cells (0-based)")
        return [cells[index] for index in indices]
    index, source = args.task_index, "--task_index"
    if index is None and args.backend is None and not (args.list or args.count):
        text = os.environ.get("SLURM_ARRAY_TASK_ID", "").strip()
        if text:
            if not text.isdigit():
                raise UserError(
                    f"SLURM_ARRAY_TASK_ID is {text!r}, not a task number; pass --task_index, "
                    "or --backend local to run the whole grid"
                )
            index, source = int(text), "SLURM_ARRAY_TASK_ID"
    if index is None:
        return None
    per_task = args.cells_per_task or 1
    tasks = math.ceil(len(cells) / per_task)
    if not 0 <= index < tasks:
        grid = f"{len(cells)} cells" if per_task == 1 else f"{len(cells)} cells in {tasks} tasks of {per_task}"
        raise UserError(f"{source} {index} is out of range: the sweep has {grid} (0-based)")
    return list(cells[index * per_task : (index + 1) * per_task])


class _Terminated(Exception):
    """SIGTERM arrived (the job was cancelled, pre-empted or timed out)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(signal.Signals(signum).name)


def _run_cells(
    runner: CellRunner, cells: Sequence[Cell], workers: int, *, progress: bool, verbose: bool
) -> Counter[str] | None:
    """Run ``cells`` with SIGTERM handled like Ctrl-C; None when SIGTERM stopped them (they stay pending)."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return run_local(runner, cells, workers, progress=progress, verbose=verbose)
    except _Terminated:
        print("error: terminated; running cells stopped and left pending", file=sys.stderr)
        return None
    finally:
        signal.signal(signal.SIGTERM, previous)
        runner.close()


def run(args: argparse.Namespace, passthrough: Sequence[str]) -> int:
    """Carry out a parsed sweep command; returns the exit code."""
    sweep = sweep_from_args(args, passthrough)
    cells = sweep.cells()
    selected = selected_cells(args, cells)
    if args.count:
        print(len(cells) if args.cells_per_task is None else math.ceil(len(cells) / args.cells_per_task))
        return 0
    if args.list:
        check_output_dir(sweep.output_dir, writable=False)
        print_cells(sweep, cells if selected is None else selected)
        return 0
    flags = method_flags(sweep)
    check_output_dir(sweep.output_dir)
    isolation: Isolation = args.isolation
    threads = threads_per_cell(args.workers)
    if selected is not None:  # an array task (or a hand-picked list): its cells, a line each
        workers = min(args.workers, len(selected))
        if not any(_wanted(sweep, cell, args.retry_failed) for cell in selected):
            isolation = "subprocess"  # nothing will start: no worker to warm up for "already done"
        runner = make_runner(
            sweep, flags, isolation=isolation, workers=workers, threads=threads, retry_failed=args.retry_failed
        )
        outcomes = _run_cells(runner, selected, workers, progress=False, verbose=True)
        if outcomes is None or outcomes["interrupted"]:
            return 143
        return 1 if outcomes["failed"] else 0

    todo = [cell for cell in cells if _wanted(sweep, cell, args.retry_failed)]
    print(f"{len(cells)} cells, {len(todo)} to run ({len(cells) - len(todo)} done or failed before)")
    if args.backend == "slurm":
        options = SlurmOptions(
            executor=args.slurm_executor,
            partition=args.slurm_partition,
            time_min=args.slurm_time,
            mem_gb=args.slurm_mem_gb,
            gpus=args.slurm_gpus,
            cpus_per_task=args.slurm_cpus_per_task,
            array_parallelism=args.slurm_array_parallelism,
            account=args.slurm_account,
            setup=tuple(args.slurm_setup),
            log_dir=args.slurm_log_dir.resolve() if args.slurm_log_dir is not None else None,
            wait=args.slurm_wait,
            cells_per_task=args.cells_per_task or 1,
        )
        if not todo:
            return 0
        jobs = submit_slurm(sweep, todo, options, retry_failed=args.retry_failed, isolation=isolation)
        print(f"submitted {len(jobs)} array tasks, first job {jobs[0].job_id}; logs in {jobs[0].paths.folder}")
        # Jobs of the local and debug executors live only as long as this process: always wait for them.
        if options.wait or options.executor != "slurm":
            wait_for_jobs(jobs, progress=not args.no_progress)
            states = Counter(cell_state(sweep, cell) for cell in cells)
            print(summary(len(cells), states))
            return 1 if states["failed"] else 0
        print("follow with: python sweep.py <the same grid flags> --list")
        return 0

    if not todo:
        print(summary(len(cells), Counter(cell_state(sweep, cell) for cell in cells)))
        return 0
    workers = min(args.workers, len(todo))  # threads stay a share of --workers, as for the full grid
    runner = make_runner(
        sweep, flags, isolation=isolation, workers=workers, threads=threads, retry_failed=args.retry_failed
    )
    start = time.monotonic()
    outcomes = _run_cells(runner, todo, workers, progress=not args.no_progress, verbose=False)
    if outcomes is None:
        return 143
    states = Counter(cell_state(sweep, cell) for cell in cells)
    print(
        f"this run: {outcomes['done']} done, {outcomes['failed']} failed, {outcomes['busy']} busy elsewhere "
        f"in {time.monotonic() - start:.0f} s with {workers} worker(s), isolation {isolation}"
    )
    print(summary(len(cells), states))
    return 1 if outcomes["failed"] else 0


def _wanted(sweep: Sweep, cell: Cell, retry_failed: bool) -> bool:
    state = cell_state(sweep, cell)
    return state == "pending" or (state == "failed" and retry_failed)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sweep.py``; returns the exit code (2 for a user error)."""
    parser = build_parser()
    args, passthrough = parser.parse_known_args(argv)
    code = 0

    def work() -> None:
        nonlocal code
        code = run(args, passthrough)

    return run_main(work) or code
