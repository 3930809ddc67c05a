"""Running one cell: the cell's lock, its process (forked child or subprocess), its logs and its ``error.json``.

:class:`Runner` is what a fork worker (and ``--isolation subprocess``) uses for each cell; a cell stopped from
outside stays pending, a cell that fails records why.
"""

from __future__ import annotations

import contextlib
import gc
import os
import runpy
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol

from experiments.results import is_complete, remove_stale_siblings, write_json_atomic
from experiments.sweep.grid import SCRIPTS, Cell, MethodScript, Sweep, cell_command
from experiments.sweep.state import cell_lock

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
#: Seconds a stopped cell gets between SIGTERM and SIGKILL.
STOP_GRACE_S = 10.0

CellOutcome = Literal["done", "failed", "skipped_done", "skipped_failed", "busy", "interrupted"]
Isolation = Literal["fork", "subprocess"]
#: ``fork`` where it is safe with the scientific stack (Linux); macOS's system libraries are not fork-safe.
DEFAULT_ISOLATION: Isolation = "fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "subprocess"


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
    sys.argv = [script, *args]  # the worker imports from the repository root, where the experiment scripts are
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
