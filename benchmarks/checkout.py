"""Run a benchmark's code against another checkout of the project, in a child process.

A benchmark that times or compares another checkout (an older commit) must import that checkout's packages
(``data``, ``models``, ``methods``, ...) and nothing of this one. ``python -c`` puts its working directory first on
``sys.path``, so a child started with the checkout as its working directory imports the checkout's packages, and
no process edits ``sys.path``. The child runs a function of a benchmark file of THIS checkout (loaded by path with
:mod:`runpy`), so the measuring code is the same for every checkout compared. The child's environment has no
``PYTHONPATH``: a package missing from the checkout is an ``ImportError``, never silently this checkout's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

#: ``python -c CALL <file> <function> <args...>``: runs ``<function>()`` of ``<file>`` with ``sys.argv[1:]`` = args.
CALL = (
    "import runpy, sys; script, function = sys.argv[1:3]; del sys.argv[:2]; "
    "sys.exit(runpy.run_path(script)[function]())"
)


def checkout_root(path: Path | str) -> Path:
    """``path`` resolved, after checking that it is a checkout of the project (it has ``data/`` and ``models/``)."""
    root = Path(path).resolve()
    missing = [name for name in ("data", "models") if not (root / name / "__init__.py").is_file()]
    if missing:
        raise SystemExit(f"error: {root} is not a checkout of this project (no {' or '.join(missing)} package)")
    return root


def call_command(script: Path | str, function: str, args: Sequence[str] = ()) -> list[str]:
    """The command line that runs ``function()`` of the benchmark file ``script``, with ``sys.argv[1:]`` = ``args``,
    importing the project from the working directory."""
    return [sys.executable, "-c", CALL, str(Path(script).resolve()), function, *args]


def checkout_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``PYTHONPATH`` (so only the checkout is importable), plus ``extra``."""
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return environment | dict(extra or {})


def run_in_checkout(
    root: Path | str, script: Path | str, args: Sequence[str], environment: Mapping[str, str] | None = None
) -> int:
    """Run ``main()`` of the benchmark file ``script`` with ``args`` in a child process that imports the project
    from the checkout ``root``; returns its exit code (its output goes to this process's output)."""
    command = call_command(script, "main", args)
    return subprocess.run(command, cwd=checkout_root(root), env=checkout_environment(environment)).returncode


def without_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--name value`` or ``--name=value``)."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == option:
            skip = True
        elif not argument.startswith(option + "="):
            kept.append(argument)
    return kept
