"""Fork workers: long-lived processes that import the libraries once and run each cell in a forked child.

The protocol between the sweep and a worker is in :func:`worker_main`; what a worker imports ahead comes from the
method registry (:func:`warm_modules`).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from errors import UserError
from experiments.sweep.cells import (
    STOP_GRACE_S,
    CellOutcome,
    CellRunner,
    Isolation,
    Runner,
    cell_environment,
)
from experiments.sweep.grid import REPO_ROOT, SCRIPTS, Cell, MethodScript, Sweep, script_parser
from methods import REGISTRY

#: What a fork worker imports before its first cell, so that no cell imports it again: the run path shared by
#: every method; each method's own modules and libraries come from the registry (``MethodSpec.imports``, and its
#: native explainer's module). A speed hint only: a cell imports whatever is missing itself.
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


def warm_modules(methods: Sequence[str]) -> tuple[str, ...]:
    """The modules a fork worker of a sweep over ``methods`` imports before its first cell."""
    modules = [*WARM_IMPORTS, *(name for method in methods for name in REGISTRY[method].imports)]
    return tuple(dict.fromkeys(modules))


def warm_explainers(methods: Sequence[str]) -> tuple[str, ...]:
    """The modules of the native explainers of ``methods`` (``MethodSpec.explainer``), from the registry."""
    locations = (REGISTRY[method].explainer for method in methods if REGISTRY[method].explainer)
    return tuple(dict.fromkeys(location.partition(":")[0] for location in locations))


def warm_up(modules: Sequence[str], explainers: Sequence[str] = ()) -> None:
    """Import ``modules`` and the modules of the native ``explainers``; one that fails is left to the cells.

    Only imports: nothing here may start threads or parallel work (the worker forks after this).
    """
    for name in modules:
        with contextlib.suppress(Exception):  # ImportError, or a broken library's OSError: the cell reports it
            importlib.import_module(name)
    for name in explainers:  # the native explainers' modules
        with contextlib.suppress(Exception):
            importlib.import_module(name)


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


#: The command of a fork worker process; the two numbers are its command and result pipes. The worker imports the
#: project from the repository root, which its environment puts first (``PYTHONPATH``, see :func:`worker_environment`).
_WORKER_CODE = "import sys; from experiments.sweep.pool import worker_main; sys.exit(worker_main(sys.argv[1:]))"


def worker_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the repository root first on ``PYTHONPATH``: the worker, started in the user's folder (relative
    paths of the cells stay the user's), imports this checkout's packages and never a same-named folder there."""
    paths = [str(REPO_ROOT), *(path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path)]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


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
                        _WORKER_CODE,
                        str(command_read),
                        str(result_write),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=worker_environment(env),
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
