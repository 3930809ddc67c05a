"""Learning-rate schedule: linear warm-up, then cosine annealing with warm restarts, and snapshot positions.

The whole schedule is precomputed as one array (one value per optimiser step), so the training loop only
assigns a float per step and the snapshot iterations follow from the same cycle lengths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Schedule:
    """Per-step learning rates and the steps after which a snapshot is taken.

    Attributes:
        learning_rates: ``(T,)`` learning rate of every optimiser step.
        warmup_steps: length of the linear warm-up.
        cycle_lengths: lengths of the cosine cycles; they add up to ``T - warmup_steps``.
        snapshot_steps: 0-based index of the last step of every cycle (a learning-rate minimum).
    """

    learning_rates: np.ndarray
    warmup_steps: int
    cycle_lengths: tuple[int, ...]
    snapshot_steps: tuple[int, ...]


def cycle_lengths(total: int, nr_cycles: int, t_mult: float) -> tuple[int, ...]:
    """Lengths ``T0, T0·m, T0·m², ...`` of ``nr_cycles`` cycles that fill exactly ``total`` steps.

    ``T0`` is the largest integer that fits; the last cycle takes the rounding remainder. When there are
    fewer steps than cycles, there are as many one-step cycles as steps.
    """
    if total < 1:
        raise ValueError(f"the cosine phase needs at least one step, got {total=}")
    if t_mult < 1:
        raise ValueError(f"t_mult must be >= 1, got {t_mult=}")
    nr_cycles = max(1, min(nr_cycles, total))
    factors = [t_mult**index for index in range(nr_cycles)]
    base = max(1, math.floor(total / sum(factors)))
    lengths = [max(1, math.floor(base * factor)) for factor in factors[:-1]]
    lengths.append(total - sum(lengths))
    if lengths[-1] < 1:  # only possible for tiny totals: fall back to equal cycles
        lengths = [total // nr_cycles] * nr_cycles
        lengths[-1] += total - sum(lengths)
    return tuple(lengths)


def build_schedule(
    *, total_steps: int, warmup_steps: int, base_lr: float, nr_cycles: int, t_mult: float, min_lr: float = 0.0
) -> Schedule:
    """Warm-up from ``base_lr / warmup_steps`` (never 0) to ``base_lr``, then cosine cycles down to ``min_lr``.

    Args:
        total_steps: number of optimiser steps of the whole run.
        warmup_steps: steps of linear warm-up; at most half of the run, so that short runs (a few epochs,
            as in HPO) still anneal through their cycles and take one snapshot per cycle.
        base_lr: peak learning rate.
        nr_cycles: number of cosine cycles (one snapshot each).
        t_mult: factor between consecutive cycle lengths.
        min_lr: learning rate at the end of each cycle.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps=}")
    warmup_steps = max(0, min(warmup_steps, total_steps // 2))
    warmup = base_lr * np.arange(1, warmup_steps + 1, dtype=np.float64) / max(warmup_steps, 1)
    lengths = cycle_lengths(total_steps - warmup_steps, nr_cycles, t_mult)
    cosine = [
        min_lr + (base_lr - min_lr) * 0.5 * (1.0 + np.cos(np.pi * np.arange(length, dtype=np.float64) / length))
        for length in lengths
    ]
    rates = np.concatenate([warmup, *cosine])
    ends = warmup_steps + np.cumsum(lengths) - 1
    return Schedule(
        learning_rates=rates,
        warmup_steps=warmup_steps,
        cycle_lengths=lengths,
        snapshot_steps=tuple(int(end) for end in ends),
    )
