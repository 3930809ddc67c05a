"""The dataset suites of ``experiments/suites.json``: the selection/report split is one split of the 23 cached
datasets, made once (docs/DESIGN.md, "Selection and report")."""

from __future__ import annotations

import json
from pathlib import Path

SUITES = json.loads((Path(__file__).resolve().parent.parent / "experiments" / "suites.json").read_text())
#: The 23 OpenML-CC18 datasets of the team's offline cache (../shared/openml_cache/README.md).
CACHED = {3, 6, 11, 29, 31, 32, 37, 44, 50, 54, 1049, 1050, 1063, 1068, 1462, 1464, 1480, 1487, 1489, 1510, 40983,
          40984, 40994}  # fmt: skip
MULTICLASS = {6, 11, 32, 54, 40984}


def test_selection_and_report_halves_split_the_cached_datasets_once() -> None:
    selection, report = SUITES["selection"], SUITES["report"]
    chosen, reported = set(selection["dataset_ids"]), set(report["dataset_ids"])
    assert not chosen & reported and chosen | reported == CACHED
    assert chosen & MULTICLASS and reported & MULTICLASS  # both kinds of task in both halves
    assert 31 in reported  # credit-g, the default dataset, is reported on
    assert not set(selection["synthetic_seeds"]) & set(report["synthetic_seeds"])
    assert set(CACHED) <= set(SUITES["cc18"]["dataset_ids"])


def test_the_split_follows_its_stated_rule() -> None:
    """Ids in increasing order, multiclass and binary each alternating (multiclass from selection, binary from
    report): the rule in the suite's comment, so the split cannot drift from its description."""
    multiclass, binary = sorted(MULTICLASS), sorted(CACHED - MULTICLASS)
    expected_selection = set(multiclass[0::2]) | set(binary[1::2])
    assert set(SUITES["selection"]["dataset_ids"]) == expected_selection
