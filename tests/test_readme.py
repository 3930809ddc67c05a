"""The README is what is tested: its Python block runs, its command lines parse, its promises hold (tabm style).

Everything is read from README.md itself (and the docs it points to), so the README cannot drift from the code:
the Python block is executed, every ``python <script> ...`` line is parsed by that script's own parser, the two
set-up commands are the ones ``.ci/run`` runs, every registered method has a row in the methods table, and the
README stays a five-minute read.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

from methods import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: Scripts whose command lines the README and the docs show, and the module that builds each one's parser.
SCRIPTS = {
    "main_experiment.py": "main_experiment",
    "baseline_experiment.py": "baseline_experiment",
    "sweep.py": "experiments.sweep",
    "plots/comparison.py": "plots.comparison",
    "explain.py": "explain",
    "xai_benchmark.py": "xai_benchmark",
}


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def command_lines(text: str) -> list[str]:
    """Every ``python <script> ...`` command of the bash blocks, continuation lines joined, comments removed."""
    commands = []
    for block in code_blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip()
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("python ") and not part.startswith("python -"):
                    commands.append(part)
    return commands


def parser_of(script: str):
    return importlib.import_module(SCRIPTS[script]).build_parser()


def test_readme_is_a_five_minute_read() -> None:
    assert len(README.read_bytes()) <= 15_500, "README.md grew past ~15 KB: move detail into docs/"


def test_the_two_set_up_commands_are_what_ci_runs() -> None:
    text = README.read_text()
    block = code_blocks(text.split("## Two commands", 1)[1], "bash")[0]
    commands = [line.split("  #")[0].strip() for line in block.strip().splitlines()]
    assert commands[0] == "pip install -r requirements.txt && python main_experiment.py --interpretable"
    assert commands[1] == "pip install -r requirements.txt && python -m pytest -q"
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_every_registered_method_has_a_row_in_the_methods_table() -> None:
    table = README.read_text().split("## Methods", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip().strip("`") for line in table.splitlines() if line.startswith("| `")}
    assert rows == set(REGISTRY), f"methods table rows {sorted(rows)} != registry {sorted(REGISTRY)}"


@pytest.mark.parametrize("document", ["README.md", "docs/usage.md", "docs/baselines.md", "docs/plots.md"])
def test_every_command_line_of_the_docs_parses(document: str) -> None:
    path = ROOT / document
    commands = command_lines(path.read_text())
    assert commands, f"{document} shows no command"
    parsers = {}
    for command in commands:
        words = shlex.split(command)
        script = words[1]
        if script not in SCRIPTS or not (ROOT / script).exists():
            continue  # a script of a later issue, or a benchmark: not parsed here
        if script not in parsers:
            parsers[script] = parser_of(script)
        try:
            if script == "sweep.py":
                parsers[script].parse_known_args(words[2:])  # other flags pass through to the experiment scripts
            else:
                parsers[script].parse_args(words[2:])
        except SystemExit as error:
            pytest.fail(f"{document}: `{command}` does not parse ({error})")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_python_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    blocks = code_blocks(README.read_text(), "python")
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)  # it must not need (or write) anything in the working directory
    namespace: dict = {"__name__": "readme"}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert namespace["attribution"].exact and len(capsys.readouterr().out.splitlines()) == 2
    assert list(tmp_path.iterdir()) == []
