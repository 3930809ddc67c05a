"""Habits CI enforces: one import order over every package and script, declared dependencies, and one set of
defaults for flags and estimators."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
import sys
from pathlib import Path

import pytest

from methods import REGISTRY, RUN_PARAMETERS, neural_estimator_class, neural_methods

ROOT = Path(__file__).resolve().parent.parent
#: The project's import order, bottom to top (docs/DESIGN.md, "Layers"): a unit imports only itself and units below
#: it, function-local imports included. ``scripts`` are the command-line shells in the repository root; they import
#: no other script.
LAYERS = (
    "errors",
    "argtypes",
    "data",
    "models",
    "explainers",
    "methods",
    "xai",
    "experiments",
    "plots",
    "studies",
    "benchmarks",
    "scripts",
)
SCRIPTS = ("main_experiment", "baseline_experiment", "sweep", "explain", "xai_benchmark")
#: Project-level packages and modules (not third-party).
PROJECT = {*LAYERS, "tests"} | {path.stem for path in ROOT.glob("*.py")}
#: The one script run by path from inside a package (``python plots/comparison.py``, as the README shows) may keep
#: its one ``sys.path`` line; everything else runs from the repository root (``python -m studies.cdep.compas``).
SYS_PATH_ALLOWED = {"plots/comparison.py"}
#: Third-party modules imported under a name other than their distribution's (when metadata cannot tell).
ALIASES = {"sklearn": "scikit-learn", "yaml": "pyyaml"}


def python_files(*folders: str) -> list[Path]:
    files = []
    for folder in folders:
        files += [path for path in (ROOT / folder).rglob("*.py") if "openml_cache" not in path.parts]
    return files


def project_sources() -> list[Path]:
    """Every Python file of the project outside ``tests/``: the root modules and every folder's files."""
    files = sorted(ROOT.glob("*.py"))
    for folder in sorted(path for path in ROOT.iterdir() if path.is_dir()):
        if not folder.name.startswith(".") and folder.name not in ("tests", "docs"):
            files += python_files(folder.name)
    return files


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions (``ast.walk`` sees both)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def layer_of(path: Path) -> str:
    """The layer of a project file: its top-level package, its module name, or ``scripts``."""
    relative = path.relative_to(ROOT)
    if len(relative.parts) > 1:
        return relative.parts[0]
    return "scripts" if relative.stem in SCRIPTS else relative.stem


def test_every_package_and_script_has_a_place_in_the_import_order() -> None:
    unplaced = sorted({layer_of(path) for path in project_sources()} - set(LAYERS))
    assert not unplaced, f"add {unplaced} to LAYERS here and to the layer diagram of docs/DESIGN.md"


def test_nothing_imports_upward_and_no_script_imports_another() -> None:
    rank = {layer: position for position, layer in enumerate(LAYERS)}
    offenders = []
    for path in project_sources():
        layer = layer_of(path)
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top not in PROJECT or top == "tests":
                continue
            target = "scripts" if top in SCRIPTS else top
            if rank[target] > rank[layer] or (layer == target == "scripts" and top != path.stem):
                offenders.append(f"{path.relative_to(ROOT)} ({layer}) imports {name} ({target})")
    assert not offenders, "\n".join(sorted(offenders))


def test_the_design_doc_states_the_enforced_order() -> None:
    text = (ROOT / "docs" / "DESIGN.md").read_text()
    assert " → ".join(LAYERS) in text, "docs/DESIGN.md must state the import order as enforced here"


def test_modules_run_from_the_repository_root_without_editing_sys_path() -> None:
    pattern = re.compile(r"sys\.path\.(insert|append)|sys\.path\[0\] =")
    edits = {str(path.relative_to(ROOT)) for path in project_sources() if pattern.search(path.read_text())}
    assert edits <= SYS_PATH_ALLOWED, f"sys.path edited in {sorted(edits - SYS_PATH_ALLOWED)}"


def test_every_imported_package_is_declared_in_requirements() -> None:
    declared = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            declared.add(re.split(r"[<>=!~\[ ;]", line)[0].lower().replace("_", "-"))
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for path in project_sources() + python_files("tests"):
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
def test_model_flags_have_one_default_the_estimators(method: str) -> None:
    """A model flag sets its estimator parameter only when given (the estimator's default applies otherwise), and
    the help shows that default: the defaults live in one place, the estimators' signatures."""
    from experiments import cli
    from experiments.config import NEURAL_FLAGS, flag_parameter

    assert cli.neural_config(["--method", method]).model_params == {}
    # argparse has no public lookup of an option's action; _option_string_actions is its stable table.
    actions = cli.neural_parser()._option_string_actions
    for mode in ("classification", "regression"):
        estimator = neural_estimator_class(method, mode)
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(estimator.__init__).parameters.items()
            if name != "self"
        }
        assert REGISTRY[method].resolve_params(mode) == {
            name: value for name, value in defaults.items() if name not in RUN_PARAMETERS
        }
        shared = [name for name in NEURAL_FLAGS if flag_parameter(REGISTRY[method], name, mode) is not None]
        assert shared, f"no flag of main_experiment.py sets a parameter of {estimator.__name__}"
        for name in shared:
            assert name in defaults, f"--{name} sets no parameter of {estimator.__name__}"
            shown = re.search(r"\(default ([^)]*)", actions[f"--{name}"].help)
            assert shown and repr(defaults[name]) in shown.group(1), f"--{name}'s help does not show {defaults[name]!r}"
