"""COMPAS (ProPublica's two-year recidivism data) with its two standard tasks.

The file is ProPublica's ``compas-scores-two-years.csv`` (``propublica/compas-analysis``), either as published
(the loader then applies ProPublica's own filters, which the SENN and CDEP papers use too:
``-30 <= days_b_screening_arrest <= 30``, ``is_recid != -1``, ``c_charge_degree != "O"``,
``score_text != "N/A"``) or already filtered and de-identified with the 13 columns below (as in the shared
``compas-two-years.csv``). Nothing is shipped with the project.

Tasks:

* ``recidivism`` (ProPublica, CDEP): target ``two_year_recid``; features ``sex, age, age_cat, race,
  juv_fel_count, juv_misd_count, juv_other_count, priors_count, c_charge_degree, c_charge_desc``. The COMPAS
  tool's own outputs (``decile_score``, ``score_text``) are dropped: they are a prediction, not facts.
* ``score`` (SENN, via the fairml preprocessing): target ``score_factor`` = ``score_text`` is not ``Low``; the
  11 numeric 0/1 and count features of fairml's ``propublica_data_for_fairml.csv``: ``Two_yr_Recidivism``,
  ``Number_of_Priors``, ``Age_Above_FourtyFive``, ``Age_Below_TwentyFive``, ``African_American``, ``Asian``,
  ``Hispanic``, ``Native_American``, ``Other`` (Caucasian is the reference race), ``Female``, ``Misdemeanor``.
  The SENN code also prunes rows with conflicting duplicates (and, by a quirk, drops every row whose feature
  vector is unique) and square-roots the prior count; neither is done here (the project standardises counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from data.loading import DataError, RawDataset

CompasTask = Literal["recidivism", "score"]
COMPAS_TASKS: tuple[CompasTask, ...] = ("recidivism", "score")

#: The columns of the filtered, de-identified file (and the subset the loader keeps of the published one).
COLUMNS = (
    "sex",
    "age",
    "age_cat",
    "race",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "c_charge_degree",
    "c_charge_desc",
    "decile_score",
    "score_text",
    "two_year_recid",
)
RECIDIVISM_FEATURES = COLUMNS[:10]
#: fairml's race dummies (Caucasian is the reference category).
_RACES = {
    "African_American": "African-American",
    "Asian": "Asian",
    "Hispanic": "Hispanic",
    "Native_American": "Native American",
    "Other": "Other",
}


def propublica_filter(frame: pd.DataFrame) -> pd.DataFrame:
    """ProPublica's filters of the published ``compas-scores-two-years.csv`` (a no-op on filtered columns)."""
    keep = pd.Series(True, index=frame.index)
    if "days_b_screening_arrest" in frame:
        days = pd.to_numeric(frame["days_b_screening_arrest"], errors="coerce")
        keep &= days.between(-30, 30)
    if "is_recid" in frame:
        keep &= frame["is_recid"] != -1
    keep &= frame["c_charge_degree"] != "O"
    keep &= frame["score_text"].notna() & (frame["score_text"] != "N/A")
    return frame.loc[keep].reset_index(drop=True)


def read_compas(path: str | Path) -> pd.DataFrame:
    """Read and filter a COMPAS file into the 13 columns of :data:`COLUMNS`.

    Raises:
        DataError: the file cannot be read or lacks COMPAS columns.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read the COMPAS file {path}: {error}") from None
    missing = [column for column in COLUMNS if column not in frame]
    if missing:
        raise DataError(
            f"{path} is not ProPublica's compas-scores-two-years.csv (or its filtered version): missing {missing}"
        )
    return propublica_filter(frame).loc[:, list(COLUMNS)]


def compas_task(frame: pd.DataFrame, task: CompasTask, *, source: str = "") -> RawDataset:
    """One of the two COMPAS tasks from a frame of :data:`COLUMNS` (see the module)."""
    if task == "recidivism":
        X = frame.loc[:, list(RECIDIVISM_FEATURES)].reset_index(drop=True)
        categorical = [not pd.api.types.is_numeric_dtype(X[column]) for column in X.columns]
        y = frame["two_year_recid"].reset_index(drop=True).rename("two_year_recid")
        return RawDataset("compas-recidivism", "compas_recidivism", X, y, categorical, "two_year_recid", source)
    if task == "score":
        race = frame["race"].astype(str)
        X = pd.DataFrame(
            {
                "Two_yr_Recidivism": frame["two_year_recid"].astype(float),
                "Number_of_Priors": frame["priors_count"].astype(float),
                "Age_Above_FourtyFive": (frame["age_cat"] == "Greater than 45").astype(float),
                "Age_Below_TwentyFive": (frame["age_cat"] == "Less than 25").astype(float),
                **{name: (race == value).astype(float) for name, value in _RACES.items()},
                "Female": (frame["sex"] == "Female").astype(float),
                "Misdemeanor": (frame["c_charge_degree"] == "M").astype(float),
            }
        ).reset_index(drop=True)
        y = (frame["score_text"] != "Low").astype(int).reset_index(drop=True).rename("score_factor")
        return RawDataset("compas-score", "compas_score", X, y, [False] * X.shape[1], "score_factor", source)
    raise ValueError(f"task must be one of {COMPAS_TASKS}, got {task!r}")


def load_compas(path: str | Path, task: CompasTask = "recidivism") -> RawDataset:
    """The COMPAS ``task`` from the file at ``path`` (published or filtered ``compas-scores-two-years.csv``)."""
    return compas_task(read_compas(path), task, source=str(path))
