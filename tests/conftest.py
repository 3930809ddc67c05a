"""Shared fixtures: fixed seeds for every test, one CPU thread, small synthetic datasets and an offline network.

Every test runs offline on the CPU. Seeding is autouse (as in skorch's ``seeds_fixed``) so that a test never
depends on the order in which tests run; the library itself never reads the global RNGs (estimators seed
their own generators), and a test in ``test_models.py`` checks exactly that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch

# The models under test are tiny: one thread is faster than two, and the test machine is shared.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def seeds_fixed():
    """Fix Python's, NumPy's and torch's global seeds before every test."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - fixing the legacy global RNG is the point here
    torch.manual_seed(0)
    yield


@dataclass(frozen=True)
class Problem:
    """A small synthetic supervised problem with a train/test split."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _split(X: np.ndarray, y: np.ndarray, n_train: int) -> Problem:
    return Problem(X[:n_train], y[:n_train], X[n_train:], y[n_train:])


def make_binary(n: int = 240, n_features: int = 5, seed: int = 0) -> Problem:
    """Linearly separable up to label noise: ``y = x0 + x1 - x2 > 0`` with string labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    score = X[:, 0] + X[:, 1] - X[:, 2] + 0.3 * rng.normal(size=n)
    y = np.where(score > 0, "yes", "no")
    return _split(X, y, n * 3 // 4)


def make_multiclass(n: int = 240, n_features: int = 4, n_classes: int = 3, seed: int = 0) -> Problem:
    """Gaussian blobs with integer labels ``0..n_classes-1``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    centres = 2.0 * rng.normal(size=(n_classes, n_features))
    X = (centres[y] + rng.normal(size=(n, n_features))).astype(np.float32)
    return _split(X, y, n * 3 // 4)


def make_regression(n: int = 240, n_features: int = 4, seed: int = 0) -> Problem:
    """A linear target in large units (mean 100, scale about 30), so target scaling matters."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    y = 100.0 + 20.0 * X[:, 0] - 10.0 * X[:, 1] + rng.normal(size=n)
    return _split(X, y, n * 3 // 4)


@pytest.fixture(scope="session")
def binary_problem() -> Problem:
    return make_binary()


@pytest.fixture(scope="session")
def multiclass_problem() -> Problem:
    return make_multiclass()


@pytest.fixture(scope="session")
def regression_problem() -> Problem:
    return make_regression()


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """Every HTTP request fails like an unreachable host; openml's user cache is an empty ``tmp_path`` folder."""
    import openml
    import requests

    def unreachable(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to establish a new connection: network is unreachable")

    monkeypatch.setattr(requests.sessions.Session, "request", unreachable)
    previous = openml.config._root_cache_directory
    openml.config.set_root_cache_directory(tmp_path / "user_openml_cache")
    yield openml
    openml.config.set_root_cache_directory(previous)
