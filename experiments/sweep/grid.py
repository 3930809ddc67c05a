"""The grid: datasets, seeds and methods as numbered cells, and the pass-through flags of each cell's script.

Cell order (datasets → seeds → methods) and what a cell's command line is are defined here; nothing here touches
the results tree except :class:`Sweep`'s path helpers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errors import UserError
from experiments.results import ERROR_FILENAME, results_path, run_dir
from methods import REGISTRY, run_id

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITES_PATH = Path(__file__).resolve().parent.parent / "suites.json"

#: Sweep bookkeeping inside the output directory: locks, cell logs, submitit folders.
STATE_DIRNAME = ".sweep"
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
    """The pass-through flags each method's script receives: those its parser knows and, for a model flag, those
    that set a parameter of the method (``experiments.config.flag_parameter``).

    A flag known to some scripts only (``--nr_epochs`` for INN/TabResNet) goes to those only, and a model flag of
    some methods only (``--weight_norm`` for INN, ``--num_concepts`` for SENN/DiSENN) goes to those only, so one
    command line can drive a sweep over all methods (a single run refuses a model flag of another method).

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
    from experiments.config import model_flag_names

    model_flags = model_flag_names()
    parsers: dict[str, argparse.ArgumentParser] = {}
    flags: dict[str, list[str]] = {}
    used: set[str] = set()
    for method in sweep.methods:
        script = SCRIPTS[method]
        if script.script not in parsers:
            parsers[script.script] = script_parser(script)
        parser = parsers[script.script]
        # argparse has no public "does this flag exist"; _option_string_actions is its stable lookup table.
        known = [
            group
            for group in groups
            if group[0] in parser._option_string_actions and _applies(group[0], REGISTRY[method], model_flags)
        ]
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


def _applies(flag: str, spec: Any, model_flags: set[str]) -> bool:
    """Whether a pass-through flag goes to a method: any flag that is not a model flag, and a model flag that sets a
    parameter of the method (in either mode)."""
    from experiments.config import flag_parameter

    name = flag.removeprefix("--")
    if name not in model_flags:
        return True
    return any(flag_parameter(spec, name, mode) is not None for mode in ("classification", "regression"))


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
