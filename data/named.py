"""Datasets known by name (``--dataset NAME``): scikit-learn's bundled digits and the two COMPAS tasks.

``digits`` is scikit-learn's 8×8 handwritten digits (1,797 images, 10 classes), bundled with scikit-learn and
therefore offline: the image dataset of the tests and examples of learned concepts (SENN, DiSENN). Its columns
are ``pixel_<row>_<column>``, which :func:`plots.senn.image_layout` turns back into images. OpenML's MNIST
(``--dataset_id 554``, ``mnist_784``, columns ``pixel1..pixel784``) is the full-size version for users with the
network. ``compas_recidivism`` and ``compas_score`` are ``data.compas``'s tasks; they read the file given as
``--dataset_path`` (nothing is shipped).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from data.loading import DataError, RawDataset

#: Name -> one line for the command line's help.
NAMED_DATASETS: dict[str, str] = {
    "digits": "scikit-learn's bundled 8x8 digits (offline; images for concept learning)",
    "compas_recidivism": "COMPAS, target two_year_recid (needs --dataset_path to compas-scores-two-years.csv)",
    "compas_score": "COMPAS, the SENN paper's task: score_text is not Low (needs --dataset_path, as above)",
}


def load_digits_dataset() -> RawDataset:
    """scikit-learn's 8×8 digits as a ``RawDataset`` (64 numeric pixel columns ``pixel_<row>_<column>``, 0..16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    columns = [f"pixel_{row}_{column}" for row in range(8) for column in range(8)]
    X = pd.DataFrame(bunch.data, columns=columns)
    y = pd.Series(bunch.target, name="digit")
    return RawDataset("digits", "digits", X, y, [False] * X.shape[1], "digit", "sklearn.datasets.load_digits")


def load_named_dataset(name: str, *, path: str | Path | None = None) -> RawDataset:
    """The dataset called ``name`` (:data:`NAMED_DATASETS`); ``path`` is the file of the COMPAS tasks.

    Raises:
        DataError: an unknown name, a COMPAS task without its file, or a file given to ``digits``.
    """
    loaders: dict[str, Callable[[], RawDataset]] = {"digits": load_digits_dataset}
    if name in loaders:
        if path is not None:
            raise DataError(f"--dataset {name} is bundled with scikit-learn; it takes no --dataset_path")
        return loaders[name]()
    if name.startswith("compas_") and name in NAMED_DATASETS:
        if path is None:
            raise DataError(
                f"--dataset {name} needs --dataset_path pointing to ProPublica's compas-scores-two-years.csv "
                "(published or filtered)"
            )
        from data.compas import load_compas

        return load_compas(path, name.removeprefix("compas_"))
    raise DataError(f"unknown dataset name {name!r}; known: {sorted(NAMED_DATASETS)}")
