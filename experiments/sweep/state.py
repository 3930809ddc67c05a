"""What the results tree says about each cell (done, failed, running, pending) and the locks that keep two
processes from running one cell: the state of a sweep lives beside its runs, nowhere else.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from errors import UserError
from experiments.results import is_complete
from experiments.sweep.grid import STATE_DIRNAME, Cell, Sweep

CellState = Literal["done", "failed", "running", "pending"]


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


def summary(total: int, states: Counter[str]) -> str:
    parts = ", ".join(f"{states[key]} {key}" for key in ("done", "failed", "running", "pending"))
    return f"{total} cells: {parts}"


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
