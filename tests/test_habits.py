"""Habits CI enforces: library layering, declared dependencies, and one set of defaults for flags and estimators."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
import sys
from pathlib import Path

import pytest

from methods import REGISTRY, neural_estimator_class, neural_methods

ROOT = Path(__file__).resolve().parent.parent
#: Packages that make up the import-safe library: they import nothing from the experiment layer.
LIBRARY = ("data", "models", "explainers")
#: Project-level packages and modules (not third-party).
PROJECT = {"data", "models", "explainers", "xai", "methods", "experiments", "plots", "errors", "tests", "benchmarks"}
PROJECT |= {path.stem for path in ROOT.glob("*.py")}
#: Third-party modules imported under a name other than their distribution's (when metadata cannot tell).
ALIASES = {"sklearn": "scikit-learn", "yaml": "pyyaml"}


def python_files(*folders: str) -> list[Path]:
    files = []
    for folder in folders:
        files += [path for path in (ROOT / folder).rglob("*.py") if "openml_cache" not in path.parts]
    return files


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_library_imports_nothing_from_the_experiment_layer() -> None:
    offenders = []
    for path in python_files(*LIBRARY):
        for name in imported_modules(path):
            if name.split(".")[0] in ("experiments", "plots") or name.split(".")[0].endswith("_experiment"):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_every_imported_package_is_declared_in_requirements() -> None:
    declared = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            declared.add(re.split(r"[<>=!~\[ ;]", line)[0].lower().replace("_", "-"))
    distributions = importlib.metadata.packages_distributions()
    folders = ("data", "models", "explainers", "xai", "methods", "experiments", "plots", "benchmarks", "tests")
    missing = {}
    for path in python_files(*folders) + list(ROOT.glob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in PROJECT or top in sys.stdlib_module_names or top == "__future__":
                continue
            candidates = {d.lower().replace("_", "-") for d in distributions.get(top, [])} | {ALIASES.get(top, top)}
            if not candidates & declared:
                missing.setdefault(top, []).append(str(path.relative_to(ROOT)))
    # Optional tools imported only when asked for (and named in the error message instead): a tracker, and the
    # reference implementation a benchmark compares against.
    for optional in ("wandb", "acd"):
        missing.pop(optional, None)
    assert not missing, f"imported but not in requirements.txt: {missing}"


@pytest.mark.parametrize("method", neural_methods())
def test_every_cli_default_equals_the_estimator_default(method: str) -> None:
    import main_experiment

    args = vars(main_experiment.build_parser().parse_args(["--method", method]))
    for mode in ("classification", "regression"):
        estimator = neural_estimator_class(method, mode)
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(estimator.__init__).parameters.items()
            if name != "self"
        }
        shared = {name: value for name, value in args.items() if name in defaults}
        assert shared, f"no flag of main_experiment.py sets a parameter of {estimator.__name__}"
        for name, value in shared.items():
            expected = defaults[name]
            if name == "compile":  # a store_true flag: off means False
                assert value is False and expected is False
                continue
            assert value == expected, f"--{name} defaults to {value!r}, {estimator.__name__}({name}={expected!r})"
    # Flags of a method's own (SENN's ...) default to the method's value: they are not set unless given.
    for flag in REGISTRY[method].flags:
        assert flag.name not in args
