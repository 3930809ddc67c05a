"""Saved runs: what a finished run writes so that its model can be used later, and the safe reader of a run folder.

A run folder (``<output_dir>/<run_id>/<dataset_id>/<seed>/``) holds, beside ``output_info.json`` and
``explanations.npz``, everything needed to turn raw rows (the dataset's original columns) into the model's inputs
and to rebuild the fitted model (:func:`run_files` writes them, :func:`load_run` reads them):

* ``preprocessing.json`` and ``background.npz`` (:mod:`.state`): the fitted encoder's state, the test rows and the
  reference rows of post-hoc explainers;
* the model file of the method's ``model_format`` (:mod:`.model_files`, one entry per format of
  ``methods.MethodSpec.model_format``): ``model.pt`` (networks), ``model.cbm`` (CatBoost), ``model.npz``
  (scikit-learn linear models and trees as plain arrays), or none (EBM, TabNet: the spec says why).

:mod:`.reader` reads a folder back without executing anything in it (:func:`load_run`); :mod:`.rows` turns the rows
to explain (test rows or a file's) into model inputs as in training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from errors import UserError
from experiments.results import json_bytes, npz_bytes
from experiments.saved_run.model_files import (
    ARRAYS_FILENAME,
    CATBOOST_FILENAME,
    MODEL_FILES,
    ModelFile,
    check_tree_arrays,
    model_file,
    network_file,
)
from experiments.saved_run.reader import SavedRun, SavedSplit, load_run
from experiments.saved_run.rows import Rows, file_rows, prepare_rows, test_set_rows
from experiments.saved_run.safe import read_npz
from experiments.saved_run.state import (
    BACKGROUND_FILENAME,
    BACKGROUND_SIZE,
    PREPROCESSING_FILENAME,
    background_arrays,
    preprocessing_state,
)
from methods import MethodSpec

if TYPE_CHECKING:
    from data import PreparedSplit

__all__ = [
    "ARRAYS_FILENAME",
    "BACKGROUND_FILENAME",
    "BACKGROUND_SIZE",
    "CATBOOST_FILENAME",
    "MODEL_FILES",
    "PREPROCESSING_FILENAME",
    "ModelFile",
    "Rows",
    "SavedRun",
    "SavedSplit",
    "UserError",
    "check_tree_arrays",
    "file_rows",
    "load_run",
    "model_file",
    "network_file",
    "prepare_rows",
    "read_npz",
    "run_files",
    "test_set_rows",
]


def run_files(
    spec: MethodSpec, model: Any, split: PreparedSplit, *, target: str, config: Mapping[str, Any]
) -> dict[str, bytes]:
    """The files that make a finished run reusable: ``preprocessing.json``, ``background.npz`` and the model file
    of the method's ``model_format`` (none for ``none``; ``preprocessing.json`` then says why).

    Args:
        spec: the run's method.
        model: the fitted estimator.
        split: the run's split (its fitted encoder, classes, test rows).
        target: the dataset's target column.
        config: the run's configuration (``seed``; the networks' architecture flags).

    Returns:
        ``{file name: content}`` for :func:`experiments.results.write_run_atomically`.
    """
    file = model_file(spec)
    files: dict[str, bytes] = {}
    if file is not None:
        files[file.filename] = file.save(spec, model, split, config)
    state = preprocessing_state(
        spec,
        split,
        target=target,
        model_file=None if file is None else file.filename,
        model_format=None if file is None else file.describe(model),
    )
    files[PREPROCESSING_FILENAME] = json_bytes(state)
    files[BACKGROUND_FILENAME] = npz_bytes(background_arrays(split, seed=int(config.get("seed", 0))))
    return files
