"""Which units and explanations a run has, and which units are done.

:func:`entries_of` lists the explanations of one model (:class:`Entry`: its own, then the post-hoc explainers');
:func:`plan` walks the units of a configuration and sorts them into those to compute and those finished, after
checking the output directory, so that results of two configurations never mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studies.xai_bench.config import DEFAULT_POSTHOC_MODELS, BenchmarkConfig, settings_hash
from studies.xai_bench.unit_file import Unit, unit_path


@dataclass(frozen=True)
class Entry:
    """One explanation of one model: a column of the paper's table and a line of the figures.

    Attributes:
        id: ``<model>`` for a model's own explanation, ``<explainer>`` for a post-hoc explainer of the default
            post-hoc model (TabResNet), ``<explainer>@<model>`` for one of another model.
        explainer: the explainer id (native id, or post-hoc id).
        model: the explained model.
        native: whether it is the model's own explanation.
    """

    id: str
    explainer: str
    model: str
    native: bool

    @property
    def label(self) -> str:
        """The entry's human label (method labels from the registry, explainer labels from ``explainers``)."""
        from explainers import POSTHOC_LABELS
        from methods import REGISTRY

        model_label = REGISTRY[self.model].label if self.model in REGISTRY else self.model
        if self.native:
            return model_label
        label = POSTHOC_LABELS.get(self.explainer, self.explainer)
        return label if self.model in DEFAULT_POSTHOC_MODELS else f"{label} ({model_label})"


def entries_of(config: BenchmarkConfig, model: str) -> list[Entry]:
    """The explanations of ``model`` in a run: its own (unless it is a post-hoc explainer), then the post-hoc ones."""
    from explainers import POSTHOC_EXPLAINERS
    from methods import REGISTRY

    spec = REGISTRY[model]
    entries = []
    # A model whose registry explanation is itself a post-hoc explainer (TabResNet: gradient × input) gets it as
    # a post-hoc entry when it is explained post hoc, and as its own explanation otherwise.
    covered = model in config.posthoc_models and spec.explainer in config.explainers
    if spec.explainer not in POSTHOC_EXPLAINERS or not covered:
        entries.append(Entry(model, spec.explainer, model, True))
    if model in config.posthoc_models:
        for explainer in config.explainers:
            entry_id = explainer if model in DEFAULT_POSTHOC_MODELS else f"{explainer}@{model}"
            entries.append(Entry(entry_id, explainer, model, False))
    return entries


def plan(config: BenchmarkConfig, output_dir: str | Path, *, force: bool = False) -> tuple[list[Unit], list[Unit]]:
    """The units to compute and the finished ones, after checking the output directory (before any work).

    A unit is finished when its file exists and holds rows of the same settings. A file of other settings is an
    error (``force``: recompute it), so results of two configurations never mix.

    Raises:
        UserError: the output directory is a file or not writable, or holds units of other settings.
    """
    import os

    from errors import UserError

    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output_dir {output_dir} is a file, not a directory")
    existing = output_dir
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--output_dir {output_dir}: cannot write in {existing}")
    todo, done, conflicts = [], [], []
    hashes = {model: settings_hash(config.unit_settings(model)) for model in config.models}
    for dataset in config.datasets:
        for rho in config.rhos:
            for seed in config.seeds:
                for model in config.models:
                    unit = Unit(dataset, float(rho), int(seed), model)
                    path = unit_path(output_dir, unit)
                    if not path.exists():
                        todo.append(unit)
                        continue
                    try:
                        stored = pd.read_csv(path, usecols=["settings_hash"], nrows=1)["settings_hash"]
                        same = len(stored) == 1 and str(stored.iloc[0]) == hashes[model]
                    except (ValueError, OSError, pd.errors.ParserError):
                        same = False
                    if same and not force:
                        done.append(unit)
                    elif same or force:
                        todo.append(unit)
                    else:
                        conflicts.append(path)
    if conflicts:
        raise UserError(
            f"{output_dir} holds {len(conflicts)} unit(s) computed with other settings (e.g. {conflicts[0]}); "
            "use another --output_dir, or --force to recompute them"
        )
    return todo, done
