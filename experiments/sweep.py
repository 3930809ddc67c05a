"""Benchmark sweeps: methods × datasets × seeds as numbered cells, run locally or as a SLURM job array.

A *cell* is one run of an experiment script (``main_experiment.py`` for ``inn``/``tabresnet``,
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
even by SIGKILL, so a killed cell is simply pending again. The lock's descriptor is inherited by the cell's
subprocess, so an orphaned experiment keeps its cell locked until it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import importlib.util
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from errors import UserError
from experiments.cli import positive_int, run_main, variant_name
from experiments.results import (
    ERROR_FILENAME,
    METHODS,
    is_complete,
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
    "--openml_cache_dir": "it is a sweep flag and is passed on",
    "--seed": "use --seeds",
    "--output_dir": "it is a sweep flag and is passed on",
    "--model_name": "use --methods",
    "--method": "use --methods",
    "--interpretable": "use --methods inn",
    "--variant": "it is a sweep flag and is passed on",
    "--force": "delete a cell's results to rerun it (finished cells are always skipped)",
}

CellState = Literal["done", "failed", "running", "pending"]
CellOutcome = Literal["done", "failed", "skipped_done", "skipped_failed", "busy", "interrupted"]
Backend = Literal["local", "slurm"]
SubmititCluster = Literal["slurm", "local", "debug"]


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
    seeds: list[int] = []
    for token in tokens:
        for part in filter(None, token.split(",")):
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
            if match is None:
                raise UserError(f"bad seed '{part}': use integers, ranges like 0-9, or lists like 0,3,5")
            low = int(match.group(1))
            high = int(match.group(2)) if match.group(2) is not None else low
            if high < low:
                raise UserError(f"bad seed range '{part}': the end is before the start")
            seeds += range(low, high + 1)
    if not seeds:
        raise UserError("no seeds given")
    return list(dict.fromkeys(seeds))


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


def cell_command(sweep: Sweep, cell: Cell, flags: Sequence[str] = ()) -> list[str]:
    """The command line that runs one cell."""
    script = SCRIPTS[cell.method]
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
    """Whether another process holds the lock file ``path`` right now."""
    fd = _open_lock(path)
    try:
        if not _flock(fd, path):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
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
    """The environment of a cell's subprocess, with every thread pool sized to ``threads``."""
    env = dict(os.environ)
    for name in THREAD_ENV_VARS:
        env[name] = str(threads)
    return env


class Runner:
    """Runs cells in subprocesses and can stop them all (on Ctrl-C, SIGTERM or pre-emption)."""

    def __init__(self, sweep: Sweep, flags: dict[str, list[str]], *, threads: int, retry_failed: bool) -> None:
        self.sweep = sweep
        self.flags = flags
        self.threads = threads
        self.retry_failed = retry_failed
        self.stopping = threading.Event()
        self._processes: set[subprocess.Popen] = set()
        self._guard = threading.Lock()

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop starting cells and end the running ones (SIGTERM, then SIGKILL after ``grace_s``)."""
        self.stopping.set()
        with self._guard:
            processes = list(self._processes)
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = time.monotonic() + grace_s
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()

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
        _remove_stale_temporaries(sweep.run_dir(cell))
        command = cell_command(sweep, cell, self.flags.get(cell.method, ()))
        out_path, err_path = sweep.log_paths(cell)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        started = datetime.now(timezone.utc)
        clock = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            out.write(f"$ {shlex.join(command)}\n".encode())
            out.flush()
            try:
                # The child inherits the lock's descriptor: if this process dies, the cell stays locked
                # until the orphaned experiment ends too, so nobody starts it twice.
                process = subprocess.Popen(
                    command, stdout=out, stderr=err, env=cell_environment(self.threads), pass_fds=(lock_fd,)
                )
            except OSError as error:
                err.write(f"cannot start the experiment: {error}\n".encode())
                returncode = 127
            else:
                with self._guard:
                    self._processes.add(process)
                try:
                    returncode = process.wait()
                finally:
                    with self._guard:
                        self._processes.discard(process)
            # A footer in the log: how long the cell took, including imports and data loading.
            out.write(f"# exit code {returncode} after {time.monotonic() - clock:.1f} s\n".encode())
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
                "stdout_log": str(out_path),
                "stderr_log": str(err_path),
                "started": started.isoformat(timespec="seconds"),
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "duration_s": round(time.monotonic() - clock, 3),
                "host": socket.gethostname(),
            },
        )
        return "failed"


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
# Backends


def run_local(runner: Runner, cells: Sequence[Cell], workers: int, *, progress: bool = True) -> Counter[str]:
    """Run ``cells`` in ``workers`` parallel subprocesses with a progress bar; returns outcome counts."""
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
                except Exception as error:  # a bug or a full disk in the sweep itself: report, go on
                    outcome = "failed"
                    bar.write(f"{cell.describe()}: sweep error {error!r}")
                outcomes[outcome] += 1
                if outcome == "failed":
                    bar.write(f"{cell.describe()} failed: see {runner.sweep.error_path(cell)}")
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


def task_command(sweep: Sweep, retry_failed: bool) -> list[str]:
    """The sweep command an array task runs, missing only the trailing cell index.

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
        "--no_progress",
    ]
    if sweep.openml_cache_dir is not None:
        command += ["--openml_cache_dir", str(sweep.openml_cache_dir)]
    if sweep.variant is not None:
        command += ["--variant", sweep.variant]
    if retry_failed:
        command.append("--retry_failed")
    return [*command, *sweep.passthrough, "--task_index"]


def submit_slurm(sweep: Sweep, cells: Sequence[Cell], options: SlurmOptions, *, retry_failed: bool) -> list[Any]:
    """Submit ``cells`` as one job array through submitit; each task runs ``sweep.py --task_index I``.

    With ``options.executor`` ``local`` or ``debug`` the same submission runs on this machine (submitit's
    local and in-process executors), which is how the path is tested without a cluster.
    """
    import submitit
    from submitit.helpers import CommandFunction

    folder = options.log_dir or sweep.state_dir / "submitit"
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=options.executor)
    except RuntimeError as error:  # submitit's "Could not detect srun": not on a SLURM login node
        raise UserError(f"cannot submit to SLURM here: {error}") from None
    parameters: dict[str, Any] = {
        "name": "inn-sweep",
        "timeout_min": options.time_min,
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
    function = CommandFunction(task_command(sweep, retry_failed), verbose=False, cwd=Path.cwd())
    return executor.map_array(function, [cell.index for cell in cells])


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
    what.add_argument("--count", action="store_true", help="print the number of cells, run nothing")
    what.add_argument(
        "--task_index",
        type=int,
        default=None,
        help="run exactly this cell (default: $SLURM_ARRAY_TASK_ID when set and no --backend is given)",
    )
    what.add_argument("--retry_failed", action="store_true", help="rerun cells that failed before")
    what.add_argument("--backend", choices=("local", "slurm"), default=None, help="default local")
    what.add_argument("--workers", type=positive_int, default=1, help="parallel cells of the local backend")
    what.add_argument("--no_progress", action="store_true", help="no progress bar")
    slurm = parser.add_argument_group("SLURM backend (submitit)")
    slurm.add_argument("--slurm_partition", default=None)
    slurm.add_argument("--slurm_account", default=None)
    slurm.add_argument("--slurm_time", type=positive_int, default=60, help="minutes per cell (default 60)")
    slurm.add_argument("--slurm_mem_gb", type=float, default=8.0, help="memory per cell in GB (default 8)")
    slurm.add_argument("--slurm_gpus", type=int, default=0, help="GPUs per cell (default 0)")
    slurm.add_argument("--slurm_cpus_per_task", type=positive_int, default=2, help="CPUs per cell (default 2)")
    slurm.add_argument(
        "--slurm_array_parallelism", type=positive_int, default=64, help="cells running at once (default 64)"
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


def _run_one(runner: Runner, cell: Cell) -> int:
    outcome = runner.run(cell)
    messages = {
        "done": "done",
        "skipped_done": "already done",
        "skipped_failed": f"failed before, skipped (use --retry_failed): {runner.sweep.error_path(cell)}",
        "busy": "running in another process, skipped",
        "failed": f"failed: see {runner.sweep.error_path(cell)}",
        "interrupted": "interrupted",
    }
    print(f"{cell.describe()}: {messages[outcome]}")
    return {"failed": 1, "interrupted": 143}.get(outcome, 0)


class _Terminated(Exception):
    """SIGTERM arrived (the job was cancelled, pre-empted or timed out)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(signal.Signals(signum).name)


def run(args: argparse.Namespace, passthrough: Sequence[str]) -> int:
    """Carry out a parsed sweep command; returns the exit code."""
    sweep = sweep_from_args(args, passthrough)
    cells = sweep.cells()
    task_index = args.task_index
    env_index = os.environ.get("SLURM_ARRAY_TASK_ID", "")
    if task_index is None and args.backend is None and not (args.list or args.count) and env_index.isdigit():
        task_index = int(env_index)
    if task_index is not None and not 0 <= task_index < len(cells):
        raise UserError(f"--task_index {task_index} is out of range: the sweep has {len(cells)} cells (0-based)")
    selected = [cells[task_index]] if task_index is not None else cells
    if args.count:
        print(len(cells))
        return 0
    if args.list:
        print_cells(sweep, selected)
        return 0
    flags = method_flags(sweep)
    if task_index is not None:
        runner = Runner(sweep, flags, threads=threads_per_cell(1), retry_failed=args.retry_failed)
        return _run_one(runner, cells[task_index])

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
        )
        if not todo:
            return 0
        jobs = submit_slurm(sweep, todo, options, retry_failed=args.retry_failed)
        print(f"submitted {len(jobs)} array tasks, first job {jobs[0].job_id}; logs in {jobs[0].paths.folder}")
        # Jobs of the local and debug executors live only as long as this process: always wait for them.
        if options.wait or options.executor != "slurm":
            wait_for_jobs(jobs, progress=not args.no_progress)
            states = Counter(cell_state(sweep, cell) for cell in cells)
            print(summary(len(cells), states))
            return 1 if states["failed"] else 0
        print("follow with: python sweep.py <the same grid flags> --list")
        return 0

    runner = Runner(sweep, flags, threads=threads_per_cell(args.workers), retry_failed=args.retry_failed)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    start = time.monotonic()
    try:
        outcomes = run_local(runner, todo, args.workers, progress=not args.no_progress)
    except _Terminated:
        print("error: terminated; running cells stopped and left pending", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    states = Counter(cell_state(sweep, cell) for cell in cells)
    print(
        f"this run: {outcomes['done']} done, {outcomes['failed']} failed, {outcomes['busy']} busy elsewhere "
        f"in {time.monotonic() - start:.0f} s with {args.workers} worker(s)"
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
