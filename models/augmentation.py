"""The paper's five batch augmentations, vectorised over the batch (no per-example Python loops).

With probability ``augmentation_probability`` a batch gets one augmentation picked uniformly from mixup
(numerical columns), cutmix, cutout, FGSM and Gaussian noise. Mixing augmentations return a partner
permutation and per-example label weights ``lam`` so that the loss is
``lam · L(y) + (1 - lam) · L(y[perm])``; the others keep the labels. At probability 0 nothing at all is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

AugmentationName = Literal["mixup", "cutmix", "cutout", "fgsm", "noise"]
AUGMENTATIONS: tuple[AugmentationName, ...] = ("mixup", "cutmix", "cutout", "fgsm", "noise")

MIXUP_ALPHA = 0.4  # Beta(alpha, alpha) mixing weights, concentrated near 0 and 1 as usual for mixup
CUTOUT_RATE = 0.2  # share of an example's features set to 0 (the training mean after scaling)
FGSM_EPSILON = 0.007  # the paper's value
NOISE_STD = 0.1**0.5  # the paper's value: variance 0.1


@dataclass(frozen=True)
class Mixing:
    """Label mixing of a batch: the loss is ``lam · L(y) + (1 - lam) · L(y[perm])`` per example.

    Attributes:
        perm: ``(B,)`` partner of every example.
        lam: ``(B,)`` weight of the example's own label.
    """

    perm: torch.Tensor
    lam: torch.Tensor


def mixup(x: torch.Tensor, numerical: torch.Tensor, lam: float, perm: torch.Tensor) -> tuple[torch.Tensor, Mixing]:
    """Convex combination of each example's numerical columns with its partner's.

    Shape:
        x ``(B, D)``, numerical ``(D,)`` float mask -> ``(B, D)``
    """
    mixed = x + (1.0 - lam) * (x[perm] - x) * numerical
    return mixed, Mixing(perm=perm, lam=torch.full((x.shape[0],), lam, device=x.device, dtype=x.dtype))


def cutmix(x: torch.Tensor, lam: float, perm: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, Mixing]:
    """Replace a random share ``1 - lam`` of each example's features by its partner's.

    The label weight of each example is the share of its own features that it kept.

    Shape:
        x ``(B, D)`` -> ``(B, D)``
    """
    take = torch.rand(x.shape, generator=generator, device=x.device) < (1.0 - lam)
    mixed = torch.where(take, x[perm], x)
    return mixed, Mixing(perm=perm, lam=1.0 - take.to(x.dtype).mean(dim=1))


def cutout(x: torch.Tensor, generator: torch.Generator, rate: float = CUTOUT_RATE) -> torch.Tensor:
    """Set a random share ``rate`` of each example's features to 0; labels are unchanged.

    Shape:
        x ``(B, D)`` -> ``(B, D)``
    """
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= rate
    return x * keep


def gaussian_noise(x: torch.Tensor, generator: torch.Generator, std: float = NOISE_STD) -> torch.Tensor:
    """Add ``N(0, std²)`` noise to every feature.

    Shape:
        x ``(B, D)`` -> ``(B, D)``
    """
    return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def fgsm(
    x: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor], epsilon: float = FGSM_EPSILON
) -> torch.Tensor:
    """Fast gradient sign step ``x + epsilon · sign(∇x loss)``; the result carries no graph.

    Args:
        x: the batch ``(B, D)``.
        loss_of: maps a batch to the scalar training loss (one extra forward and backward).
        epsilon: step size.
    """
    x_leaf = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_of(x_leaf), x_leaf)
    return (x + epsilon * grad.sign()).detach()


class BatchAugmenter:
    """Decides per batch whether and how to augment, from seeded generators only.

    The host-side choices (augment or not, which one, mixing weight) come from a NumPy generator, so
    they cost no device synchronisation; random tensors come from a torch generator on the data's device.
    """

    def __init__(
        self,
        *,
        probability: float,
        numerical: torch.Tensor,
        seed: int,
        device: torch.device,
        choices: tuple[AugmentationName, ...] = AUGMENTATIONS,
    ) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability=}")
        self.probability = probability
        self.numerical = numerical.to(device=device, dtype=torch.float32)
        self.choices = choices
        self._rng = np.random.default_rng(seed)
        self._generator = torch.Generator(device=device)
        self._generator.manual_seed(seed)

    @property
    def active(self) -> bool:
        """False when augmentation can never happen (the training loop then skips it entirely)."""
        return self.probability > 0.0

    def __call__(
        self, x: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, Mixing | None]:
        """Return the (possibly) augmented batch and its label mixing, if any."""
        if self._rng.random() >= self.probability:
            return x, None
        name = self.choices[int(self._rng.integers(len(self.choices)))]
        return self.apply(name, x, loss_of)

    def apply(
        self, name: AugmentationName, x: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, Mixing | None]:
        """Apply augmentation ``name`` to the batch ``x``."""
        if name in ("mixup", "cutmix"):
            perm = torch.randperm(x.shape[0], generator=self._generator, device=x.device)
            if name == "mixup":
                return mixup(x, self.numerical, float(self._rng.beta(MIXUP_ALPHA, MIXUP_ALPHA)), perm)
            return cutmix(x, float(self._rng.random()), perm, self._generator)
        if name == "cutout":
            return cutout(x, self._generator), None
        if name == "noise":
            return gaussian_noise(x, self._generator), None
        if name == "fgsm":
            return fgsm(x, loss_of), None
        raise ValueError(f"unknown augmentation {name!r}; expected one of {AUGMENTATIONS}")
