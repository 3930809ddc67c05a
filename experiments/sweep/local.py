"""The local backend: a sweep's cells on this machine, ``--workers`` at a time, with a progress bar; SIGTERM
and Ctrl-C stop the running cells and leave them pending.
"""

from __future__ import annotations

import signal
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from experiments.sweep.cells import CellOutcome, CellRunner
from experiments.sweep.grid import Cell, Sweep


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


class _Terminated(Exception):
    """SIGTERM arrived (the job was cancelled, pre-empted or timed out)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(signal.Signals(signum).name)


def run_cells(
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
