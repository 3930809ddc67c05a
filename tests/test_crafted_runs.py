"""Crafted run folders: nothing from a stranger's results folder escapes or silently changes an answer (issue 23).

One tiny logistic-regression run on a small file (a numerical and a categorical feature, target encoding) is
trained once for the module. Each case copies it, changes one field of ``output_info.json`` or
``preprocessing.json`` (or puts a symlink where a file was) and runs ``explain.py`` with the default output folder
from a working folder deep inside the temporary tree, so a name that became part of a path would show as a write
anywhere in that tree. Every case must end with exit code 2, one ``error:`` line and the whole tree unchanged; the
few values that are legitimate (free text, a negative mean) are listed with the reason and must write only inside
the output location. Last, the untouched run still gives the predictions it gave before.

The hand list covers every field the run writes with every kind of bad value the issue names; a hypothesis
generator (derandomized: the same examples every run) then tries other values at any depth of either file.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import baseline_experiment
import explain

FILES = ("output_info.json", "preprocessing.json")
#: Kinds of bad value: a value of another JSON type, an absolute path, a path up, NaN, infinity, a huge and a
#: negative number.
KINDS = ("type", "absolute", "dotdot", "nan", "inf", "huge", "negative")
#: ``(file, field, kind)`` whose value is legitimate, and why: the run is explained (exit 0) and every write stays
#: inside the output location.
LEGITIMATE = {
    **{
        ("output_info.json", field, kind): "free text shown to people, never a name or a path"
        for field in ("importance_method", "training_warning")
        for kind in ("absolute", "dotdot")
    },
    **{
        ("preprocessing.json", field, kind): reason
        for field, reason in (
            ("target", "a column name: any text is one (it finds y_true in --data only)"),
            (
                "encoder.categorical_columns[0].categories[0]",
                "a category is data: any text is one (a changed vocabulary shows as an 'unseen category' warning)",
            ),
            ("encoder.input_names[0]", "a label of a model input column, never a name or a path"),
            ("model_format", "the model file's format in words (the registry decides the file and its reader)"),
        )
        for kind in ("absolute", "dotdot")
    },  # fmt: skip
    ("preprocessing.json", "encoder.numerical_scaler.mean[0]", "negative"): "a negative training mean is real",
    **{
        ("output_info.json", f"feature_importances_signed.{feature}", "negative"): "a feature that lowers the output"
        for feature in ("amount", "colour")
    },
    **{
        ("output_info.json", "config.openml_cache_dir", kind): "a cache folder of the machine that trained: only "
        "read, one dataset's folder copied to a temporary one, and unused for a run on a file"
        for kind in ("absolute", "dotdot")
    },
}


# ----------------------------------------------------------------------------------------------------------
# The run, its copies and the tree


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Any]:
    """The run folder, its files' documents and the predictions ``explain.py`` gives for it untouched."""
    root = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(0)
    n = 120
    amount, colour = 100 * rng.normal(size=n), rng.choice(["red", "green", "blue"], size=n)
    label = np.where(amount / 100 + (colour == "red") + rng.normal(size=n) > 0.5, "yes", "no")
    data = root / "shop.csv"
    pd.DataFrame({"amount": amount, "colour": colour, "label": label}).to_csv(data, index=False)
    argv = ["--model_name", "logistic_regression", "--dataset_path", str(data), "--explanation_metrics", "off"]
    assert baseline_experiment.main([*argv, "--output_dir", str(root / "results")]) == 0
    (folder,) = (root / "results" / "logistic_regression").glob("*/0")
    out = root / "untouched"
    assert explain.main(["--run", str(folder), "--rows", "0", "1", "--out", str(out), "--figures", "0"]) == 0
    documents = {name: json.loads((folder / name).read_text()) for name in FILES}
    return {"folder": folder, "documents": documents, "predictions": (out / "predictions.csv").read_bytes()}


def _tree(root: Path) -> dict[str, bytes | str | None]:
    """Every path under ``root``: a file's bytes, a symlink's target, None for a folder (links not followed)."""
    found: dict[str, bytes | str | None] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = str(path.readlink())
        else:
            found[key] = None if path.is_dir() else path.read_bytes()
    return found


#: Records in ``output_info.json`` whose entries ``explain.py`` never reads (the command line as given, library
#: versions, the run's explanation in words): crafted whole, as one field each. ``config``'s data flags, which
#: reload the test rows, are crafted one by one.
RECORDS = {
    "config": ("dataset", "dataset_id", "dataset_path", "target", "openml_cache_dir"),
    "versions": (),
    "explanation": (),
}


def _fields(value: Any, field: str = "") -> Iterator[tuple[str, Any]]:
    """Every field of a JSON document: each key at any depth and, for a list, the list and its first entry (of
    :data:`RECORDS`, the whole and the entries named there)."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{field}.{key}" if field else key
            yield name, item
            if name in RECORDS:
                yield from ((f"{name}.{entry}", item[entry]) for entry in RECORDS[name] if entry in item)
                continue
            yield from _fields(item, name)
    elif isinstance(value, list) and value:
        yield f"{field}[0]", value[0]
        yield from _fields(value[0], f"{field}[0]")


def _set(document: Any, field: str, value: Any) -> Any:
    """A deep copy of ``document`` with ``field`` (``a.b[0].c``) set to ``value``."""
    document = json.loads(json.dumps(document))
    steps = [int(part) if part.isdigit() else part for part in field.replace("[", ".").replace("]", "").split(".")]
    target = document
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value
    return document


def _bad(kind: str, original: Any, escape: Path) -> Any:
    """A bad value of ``kind`` for a field whose value is ``original``."""
    if kind == "type":  # another JSON type
        if isinstance(original, bool):
            return "true"
        if isinstance(original, str):
            return 7
        if isinstance(original, int | float):
            return str(original)
        if isinstance(original, list):
            return {"0": original[:1]}
        return [1] if isinstance(original, dict) else 7  # null -> a number
    if kind == "absolute":
        return str(escape)
    if kind == "dotdot":
        return "../../../../escaped"
    if kind in ("nan", "inf"):
        return math.nan if kind == "nan" else math.inf
    if kind == "huge":
        return 1e308 if isinstance(original, float) else 10**30
    return -1.0 if isinstance(original, float) else -1


def _explain_copy(trained, root: Path, file: str, document: Any) -> tuple[Path, Path]:
    """Copy the run under ``root`` with ``document`` as its ``file``; returns the copy and a deep working folder
    (``explain.py`` runs there, with the default output folder under it)."""
    folder = root / "copy" / "logistic_regression" / trained["folder"].parent.name / "0"
    shutil.copytree(trained["folder"], folder, copy_function=os.link)  # hard links: nothing is copied
    (folder / file).unlink()  # never write through a hard link into the trained run
    (folder / file).write_text(json.dumps(document))  # NaN and Infinity as JSON's extension writes them
    work = root / "work" / "a" / "b" / "c"
    work.mkdir(parents=True)
    return folder, work


# ----------------------------------------------------------------------------------------------------------
# The hand list: every field, every kind of bad value


def _run_case(trained, root: Path, file: str, document: Any, capsys, monkeypatch) -> tuple[int, str, dict, dict]:
    folder, work = _explain_copy(trained, root, file, document)
    monkeypatch.chdir(work)
    before = _tree(root)
    code = explain.main(["--run", str(folder), "--rows", "0", "1", "--figures", "0"])
    after = _tree(root)
    return code, capsys.readouterr().err, before, after


def test_every_field_with_every_kind_of_bad_value_is_refused_before_anything_is_written(
    trained, tmp_path, capsys, monkeypatch
):
    problems, cases, legitimate = [], 0, 0
    for file in FILES:
        for field, original in _fields(trained["documents"][file]):
            for kind in KINDS:
                root = tmp_path / f"case{cases}"
                root.mkdir()
                value = _bad(kind, original, root / "escaped")
                document = _set(trained["documents"][file], field, value)
                code, error, before, after = _run_case(trained, root, file, document, capsys, monkeypatch)
                cases += 1
                label = f"{file} {field} {kind} ({value!r:.40})"
                if (file, field, kind) in LEGITIMATE:
                    legitimate += 1
                    written = set(after) - set(before)
                    outside = [path for path in written if not path.startswith("work/a/b/c/explanations")]
                    if code != 0 or outside or any(before[path] != after.get(path) for path in before):
                        problems.append(f"{label}: legitimate, but exit {code}, writes outside {outside}: {error}")
                elif code != 2 or error.count("\n") != 1 or not error.startswith("error: ") or after != before:
                    problems.append(f"{label}: exit {code}, tree changed: {after != before}, stderr: {error!r:.200}")
                shutil.rmtree(root)
    assert not problems, f"{len(problems)} of {cases} cases:\n" + "\n".join(problems)
    assert cases > 500 and legitimate == len(LEGITIMATE)  # every field of both files, and each exemption was tried
    _untouched_run_is_unchanged(trained, tmp_path)


def test_a_special_file_in_the_run_folder_is_refused_before_it_is_read(trained, tmp_path, capsys):
    # Reading a FIFO blocks until someone writes to it: the reader would hang, so the folder is refused first.
    folder, work = _explain_copy(trained, tmp_path, "output_info.json", trained["documents"]["output_info.json"])
    (folder / "preprocessing.json").unlink()
    os.mkfifo(folder / "preprocessing.json")
    assert explain.main(["--run", str(folder), "--rows", "0", "--out", str(work / "out")]) == 2
    assert "refused: not a regular file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["output_info.json", "preprocessing.json", "background.npz", "model.npz", "."])
def test_a_symlink_out_of_the_run_folder_is_refused_and_its_target_never_opened(
    trained, tmp_path, capsys, monkeypatch, name
):
    folder, work = _explain_copy(trained, tmp_path, "output_info.json", trained["documents"]["output_info.json"])
    outside = tmp_path / "outside"
    if name == ".":  # a linked subfolder
        outside.mkdir()
        (outside / "notes.txt").write_text("read me")
        (folder / "extra").symlink_to(outside, target_is_directory=True)
    else:
        shutil.move(folder / name, outside)
        (folder / name).symlink_to(outside)
    opened: list[Path] = []
    real_open = open

    def recording_open(file, *args, **kwargs):
        if isinstance(file, str | Path):
            opened.append(Path(file).resolve())
        return real_open(file, *args, **kwargs)

    before = _tree(tmp_path)
    monkeypatch.chdir(work)
    monkeypatch.setattr("builtins.open", recording_open)
    monkeypatch.setattr("io.open", recording_open)
    code = explain.main(["--run", str(folder), "--rows", "0", "--figures", "0"])
    monkeypatch.undo()
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "refused: a symlink" in error, error
    assert not any(path == outside or outside in path.parents for path in opened)
    assert _tree(tmp_path) == before
    _untouched_run_is_unchanged(trained, tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a["input_mean"].__setitem__(0, np.nan), "field 'input_mean': nan at [0]"),
        (lambda a: a["rows"].__setitem__((1, 1), np.inf), "field 'rows': inf at [1, 1]"),
        (lambda a: a.update(input_mean=a["input_mean"] * 1e300), "is not a finite float32 value"),
        (lambda a: a.update(rows=a["rows"][:0]), "0 rows; a run keeps 1 to 100"),
        (lambda a: a.update(rows=np.repeat(a["rows"], 2, axis=0)), "rows; a run keeps 1 to 100"),
        (lambda a: a.update(rows=a["rows"].astype(np.int64)), "int64 values where floats are expected"),
        (lambda a: a.update(rows=a["rows"][:, :1]), "arrays of shapes"),
        (lambda a: a.pop("format_version"), "missing 'format_version'"),
        (lambda a: a.update(format_version=np.asarray(2)), "this code reads version 1"),
    ],
    ids=["NaN mean", "inf row", "beyond float32", "no rows", "too many rows", "integers", "shape", "no version", "v2"],
)
def test_a_crafted_background_is_refused_with_the_field_and_the_reason(trained, tmp_path, capsys, edit, message):
    folder, work = _explain_copy(trained, tmp_path, "output_info.json", trained["documents"]["output_info.json"])
    arrays = dict(np.load(folder / "background.npz", allow_pickle=False))
    edit(arrays)
    (folder / "background.npz").unlink()
    np.savez(folder / "background.npz", **arrays)
    before = _tree(tmp_path)
    assert explain.main(["--run", str(folder), "--rows", "0", "--out", str(work / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "background.npz" in error and message in error, error
    assert _tree(tmp_path) == before


# ----------------------------------------------------------------------------------------------------------
# A property over any value at any depth


def _all_fields(value: Any, field: str = "") -> Iterator[str]:
    """Every field at any depth, every list entry included."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{field}.{key}" if field else key
            yield name
            yield from _all_fields(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield f"{field}[{index}]"
            yield from _all_fields(item, f"{field}[{index}]")


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["/", "..", "../../escaped", "/tmp/escaped", "a/b", ".hidden", "", "inn", "31", "0"]),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)  # fmt: skip


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_value_anywhere_is_refused_or_explained_and_never_writes_outside(trained, tmp_path_factory, data):
    file = data.draw(st.sampled_from(FILES), label="file")
    document = trained["documents"][file]
    field = data.draw(st.sampled_from(sorted(set(_all_fields(document)))), label="field")
    value = data.draw(_VALUES, label="value")
    root = tmp_path_factory.mktemp("any")
    folder, work = _explain_copy(trained, root, file, _set(document, field, value))
    before = _tree(root)
    stderr, cwd = io.StringIO(), os.getcwd()
    os.chdir(work)
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = explain.main(["--run", str(folder), "--rows", "0", "--figures", "0"])
    finally:
        os.chdir(cwd)
    after = _tree(root)
    error = stderr.getvalue()
    if code == 2:
        assert error.count("\n") == 1 and error.startswith("error: ") and after == before, error
    else:
        assert code == 0, error
        written = set(after) - set(before)
        assert all(path.startswith("work/a/b/c/explanations") for path in written), written
        assert all(before[path] == after[path] for path in before)
    shutil.rmtree(root)


def _untouched_run_is_unchanged(trained, tmp_path: Path) -> None:
    out = tmp_path / "untouched_again"
    assert explain.main(["--run", str(trained["folder"]), "--rows", "0", "1", "--out", str(out), "--figures", "0"]) == 0
    assert (out / "predictions.csv").read_bytes() == trained["predictions"]


def test_the_untouched_run_still_explains_as_before(trained, tmp_path):
    _untouched_run_is_unchanged(trained, tmp_path)
