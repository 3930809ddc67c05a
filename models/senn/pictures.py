"""The data behind SENN's concept pictures (``plots/senn.py`` draws them): prototypes and latent traversals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from models.senn.estimators import DiSENNClassifier, DiSENNRegressor


def concept_prototypes(activations: np.ndarray, n_prototypes: int = 8) -> np.ndarray:
    """The rows that activate each concept most (SENN's prototypes), most active first.

    Shape:
        activations ``(N, K)`` -> row indices ``(K, n_prototypes)``
    """
    activations = np.asarray(activations, dtype=np.float64)
    if activations.ndim != 2:
        raise ValueError(f"activations must be (N, K), got shape {activations.shape}")
    n = min(n_prototypes, activations.shape[0])
    # argpartition + a sort of the n best per concept: O(N·K), no full sort.
    top = np.argpartition(-activations, n - 1, axis=0)[:n].T  # (K, n)
    order = np.argsort(-np.take_along_axis(activations.T, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def latent_traversal(model: DiSENNClassifier | DiSENNRegressor, x, *, n_steps: int = 10, quantile: float = 0.45):
    """Decoded traversals of every latent dimension around one example (DiSENN's concept pictures).

    Latent ``k`` takes the standard-normal quantiles ``0.5 ± quantile`` (the prior's central range, as the
    reproduction's ``use_cdf``) in ``n_steps`` steps while the others stay at the example's posterior mean.

    Returns:
        ``(values (n_steps,), decoded (K, n_steps, D))``: the latent values and the decoded inputs.
    """
    from scipy.stats import norm

    if not 0 < quantile < 0.5:
        raise ValueError(f"quantile must be in (0, 0.5), got {quantile!r}")
    mu, _ = model.posterior(np.asarray(x, dtype=np.float32).reshape(1, -1))
    values = norm.ppf(np.linspace(0.5 - quantile, 0.5 + quantile, n_steps))
    k = mu.shape[1]
    z = np.repeat(np.repeat(mu, k, axis=0)[:, None, :], n_steps, axis=1)  # (K, n_steps, K)
    z[np.arange(k), :, np.arange(k)] = values
    decoded = model.decode(z.reshape(-1, k)).reshape(k, n_steps, -1)
    return values, decoded


def latent_statistics(model: DiSENNClassifier | DiSENNRegressor, X) -> dict[str, np.ndarray]:
    """Per latent of DiSENN's β-VAE, over the rows ``X``: is it used, or collapsed to the prior ``N(0, 1)``?

    Returns:
        ``posterior_variance``: the mean of ``σ²(x)`` (1 for a latent collapsed to the prior; an active latent's
        posterior is narrower); ``mean_variance``: the variance of ``μ(x)`` over the rows (Burda et al. 2016's
        activity, ``> 0.01`` for an active unit); ``kl``: the mean ``KL(q(z_k|x) ‖ N(0, 1))`` in nats. Each
        ``(K,)``.
    """
    mu, logvar = model.posterior(np.asarray(X, dtype=np.float32))
    mu, logvar = mu.astype(np.float64), logvar.astype(np.float64)
    return {
        "posterior_variance": np.exp(logvar).mean(axis=0),
        "mean_variance": mu.var(axis=0),
        "kl": (0.5 * (mu**2 + np.exp(logvar) - logvar - 1.0)).mean(axis=0),
    }
