"""scikit-learn estimators for the project's networks: classifiers and regressors on numeric matrices.

The estimators take an already encoded matrix (see ``data.prepare_split``); hyperparameters are
constructor parameters with the command-line flag names, fitted state ends in ``_``, and ``fit`` writes
nothing to disk. ``INNClassifier.explain`` / ``INNRegressor.explain`` return the exact per-example
linear models that produced the predictions, as an :class:`~models.attribution.Attribution`.

Adding a network means subclassing ``_NeuralClassifier`` / ``_NeuralRegressor`` with two hooks:
``_build_network(n_inputs, n_outputs)`` and, for a regulariser, ``_loss(network, x, y, output, mixing)``
(skorch's ``get_loss``: it starts from ``self.task_loss_``, the class-weighted, mixed task loss). Its parameters
are :data:`NEURAL_PARAMETERS` (shared, written once) plus its own: ``__init__ = neural_init(own_parameters)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from models._runtime import limit_threads, resolve_threads
from models.attribution import Attribution, ReferenceKind, linear_attribution, reference_point
from models.augmentation import Mixing
from models.device import resolve_device
from models.inference import predict_in_batches
from models.networks import INNNetwork, NetworkOutput, SnapshotEnsemble, TabResNetNetwork, linear_logits
from models.training import TaskLoss, TrainingConfig, add_l1, train_snapshot_ensemble

ClassBalance = Literal["oversample", "weight", "none"]
CLASS_BALANCES: tuple[ClassBalance, ...] = ("oversample", "weight", "none")
WeightNormScale = Literal["none", "std"]
WEIGHT_NORM_SCALES: tuple[WeightNormScale, ...] = ("none", "std")
ProductInputs = Literal["raw", "standardised"]
PRODUCT_INPUTS: tuple[ProductInputs, ...] = ("raw", "standardised")
#: A column whose training std is within this of 1 (and, for ``product_inputs``, whose mean is within this of 0)
#: counts as standardised: ``weight_norm_scale`` and ``product_inputs`` leave it (and a fit of such columns) as is.
STD_TOLERANCE = 1e-6


#: The parameters every neural estimator takes, name -> default (documented on :class:`_NeuralEstimator`), in
#: signature order. A family declares only its own parameters (see :func:`neural_init`), which come first.
NEURAL_PARAMETERS: dict[str, Any] = {
    "nr_blocks": 2,
    "hidden_size": 128,
    "nr_epochs": 100,
    "batch_size": 64,
    "learning_rate": 0.01,
    "weight_decay": 0.01,
    "dropout": 0.0,
    "augmentation_probability": 0.0,
    "scheduler_t_mult": 2.0,
    "nr_restarts": 3,
    "class_balance": "weight",
    "categorical_inputs": None,
    "penalize_features": None,
    "penalty": None,
    "penalty_strength": 1.0,
    "device": "auto",
    "seed": 0,
    "progress": False,
    "threads": None,
    "compile": False,
}

#: INN's own parameters (documented on :class:`_INN`). TabResNet, INN's black-box twin, takes them too, so that a
#: paired run shares one command line, and ignores them (it generates no weights).
INN_PARAMETERS: dict[str, Any] = {"weight_norm": 0.1, "weight_norm_scale": "none", "product_inputs": "raw"}


def neural_init(*own: Mapping[str, Any], **more: Any) -> Callable[..., None]:
    """The scikit-learn ``__init__`` of a family of neural estimators: its own parameters, then the shared ones.

    The family's parameters (name -> default) are the mappings ``own``, merged in order, and the keywords
    ``more``; :data:`NEURAL_PARAMETERS` follow them. The ``__init__`` takes every parameter by keyword only,
    stores each as given and does nothing else (scikit-learn's contract: no logic in ``__init__``). Its
    ``__signature__`` lists the parameters with their defaults: scikit-learn's ``get_params`` and ``clone`` and
    the registry's defaults (``methods``) read it.

    Example:
        >>> class _INNShapley:  # a family with INN's parameters and one of its own
        ...     __init__ = neural_init(INN_PARAMETERS, nr_coalitions=64)

    Raises:
        ValueError: a family's parameter is also a shared one.
    """
    defaults: dict[str, Any] = {}
    for mapping in (*own, more):
        defaults.update(mapping)
    shared = sorted(set(defaults) & set(NEURAL_PARAMETERS))
    if shared:
        raise ValueError(f"{shared} are shared parameters (NEURAL_PARAMETERS): a family declares only its own")
    defaults.update(NEURAL_PARAMETERS)
    signature = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value) for name, value in defaults.items()]
    )

    def __init__(self, **params: Any) -> None:
        unknown = sorted(params.keys() - defaults.keys())
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments {unknown}")
        for name, default in defaults.items():
            setattr(self, name, params.get(name, default))

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__doc__ = f"Store the parameters as given: {', '.join(defaults)}."
    return __init__


class _NeuralEstimator(BaseEstimator):
    """Shared parameters, fitting and batched inference of the network estimators.

    The parameters below (:data:`NEURAL_PARAMETERS`) are every family's; a family's ``__init__`` adds its own
    (:func:`neural_init`).

    Args:
        nr_blocks: residual blocks of the backbone.
        hidden_size: units per hidden layer.
        nr_epochs: training epochs.
        batch_size: rows per optimiser step (at least 2: batch norm cannot train on one row).
        learning_rate: peak learning rate of Adam.
        weight_decay: Adam's (coupled) L2 weight decay.
        dropout: dropout rate inside the residual blocks.
        augmentation_probability: chance that a batch is augmented (mixup, cutmix, cutout, FGSM, noise).
        scheduler_t_mult: growth of the cosine cycles (>= 1).
        nr_restarts: cosine cycles; one snapshot at the end of each.
        class_balance: ``weight`` (balanced class weights), ``oversample`` or ``none``.
        categorical_inputs: input columns that encode categorical features (mixup leaves them alone).
        penalize_features: input columns ``S`` the model must not rely on (the runner maps original feature names
            to all their columns); used by ``penalty``.
        penalty: an explanation penalty on ``S`` added to the loss (``models.penalties.PENALTIES``: ``cdep``,
            ``cd_logit``, ``cd_strict``, ``weights``, ``counterfactual``, ``rrr``), or None.
        penalty_strength: λ, the weight of the penalty.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: seeds initialisation, batch order, augmentation and dropout.
        progress: show a progress bar over epochs.
        threads: CPU threads while fitting (``None``: one thread for small batches, see
            ``models._runtime.resolve_threads``); it changes speed only.
        compile: ``torch.compile`` the training forward (``True``: the default backend, or a backend name);
            it pays off only for long runs, since compiling takes seconds to minutes.

    Attributes:
        model_: the snapshot ensemble that predicts.
        reference_: ``(D,)`` the training mean of every input column (the default reference of explanations).
        epoch_losses_: mean training loss per epoch.
        snapshot_steps_: optimiser steps at which snapshots were taken.
        device_: the training device.
    """

    __init__ = neural_init()

    # ----------------------------------------------------------------------------------------------- fit
    def _check_params(self) -> None:
        for name in ("nr_blocks", "hidden_size", "nr_epochs", "batch_size", "nr_restarts"):
            minimum = 0 if name == "nr_blocks" else 1
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        for name in ("learning_rate",):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("weight_decay", "weight_norm"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.batch_size, int | np.integer) or self.batch_size < 2:
            raise ValueError(
                f"batch_size must be an integer >= 2 (batch norm cannot train on one row), got {self.batch_size!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.augmentation_probability <= 1.0:
            raise ValueError(f"augmentation_probability must be in [0, 1], got {self.augmentation_probability!r}")
        if not self.scheduler_t_mult >= 1:
            raise ValueError(f"scheduler_t_mult must be >= 1, got {self.scheduler_t_mult!r}")
        if self.threads is not None and (not isinstance(self.threads, int | np.integer) or self.threads < 1):
            raise ValueError(f"threads must be None or an integer >= 1, got {self.threads!r}")
        if not isinstance(self.compile, bool | str):
            raise ValueError(f"compile must be a bool or a torch.compile backend name, got {self.compile!r}")
        if self.class_balance not in CLASS_BALANCES:
            raise ValueError(f"class_balance must be one of {CLASS_BALANCES}, got {self.class_balance!r}")
        self._check_penalty_params()

    def _check_penalty_params(self) -> None:
        from models.penalties import PENALTIES  # lazy: models.penalties imports models.senn, which imports this

        if self.penalty is not None and self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be None or one of {PENALTIES}, got {self.penalty!r}")
        if not (self.penalty_strength >= 0 and np.isfinite(self.penalty_strength)):
            raise ValueError(f"penalty_strength must be a finite number >= 0, got {self.penalty_strength!r}")
        has_features = self.penalize_features is not None and len(self.penalize_features) > 0
        if self.penalty is not None and not has_features:
            raise ValueError(f"penalty {self.penalty!r} needs penalize_features (the input columns to penalise)")
        if has_features and self.penalty is None:
            raise ValueError("penalize_features is set but penalty is None: choose a penalty")

    def _training_config(self) -> TrainingConfig:
        return TrainingConfig(
            nr_epochs=self.nr_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            augmentation_probability=self.augmentation_probability,
            scheduler_t_mult=self.scheduler_t_mult,
            nr_restarts=self.nr_restarts,
        )

    def _numerical_mask(self, n_inputs: int) -> torch.Tensor:
        mask = torch.ones(n_inputs, dtype=torch.bool)
        if self.categorical_inputs is not None and len(self.categorical_inputs) > 0:
            index = np.asarray(self.categorical_inputs, dtype=np.int64)
            if index.min() < 0 or index.max() >= n_inputs:
                raise ValueError(f"categorical_inputs must index the {n_inputs} input columns")
            mask[torch.from_numpy(index)] = False
        return mask

    # ------------------------------------------------------------------------------------------- hooks
    def _build_network(self, n_inputs: int, n_outputs: int) -> nn.Module:
        """The untrained network for ``n_inputs`` input columns and ``n_outputs`` logits."""
        raise NotImplementedError

    def _loss(
        self, network: nn.Module, x: torch.Tensor, y: torch.Tensor, output: NetworkOutput, mixing: Mixing | None
    ) -> torch.Tensor:
        """The training objective of one batch (override to add terms; FGSM differentiates it too).

        The task loss, plus ``penalty_strength`` times the explanation penalty on ``penalize_features`` when one
        is set (``models.penalties``); overrides call ``super()._loss`` and add their own terms.
        """
        value = self.task_loss_(output.logits, y, mixing)
        term = getattr(self, "_penalty_term", None)
        if term is not None:
            value = value + self.penalty_strength * term(network, x, output)
        return value

    def _explanation_penalty(self, network: nn.Module, pool: torch.Tensor, objective: str):
        """The bound explanation penalty of this fit (``models.penalties.build_penalty``), or None."""
        if self.penalty is None or self.penalty_strength == 0:
            return None
        from models.penalties import build_penalty

        return build_penalty(
            self.penalty,
            network,
            columns=self.penalize_features,
            pool=pool,
            reference=self.reference_,
            objective=objective,
            seed=self.seed,
        )

    def _fit_network(
        self,
        x: np.ndarray,
        target: np.ndarray,
        *,
        objective: str,
        n_outputs: int,
        class_weights: np.ndarray | None,
        rows: np.ndarray | None = None,
    ) -> None:
        """Train on ``x[rows]`` (all rows when ``rows`` is None; oversampling repeats rows)."""
        self._check_params()
        if x.shape[0] < 2:  # batch norm cannot train on a single row
            raise ValueError(f"training needs at least 2 samples, got n_samples={x.shape[0]}")
        device = resolve_device(self.device)
        self.reference_ = x.mean(axis=0, dtype=np.float64)  # the training mean, before any oversampling
        pool = x  # the training rows before oversampling: the marginal a counterfactual penalty draws from
        if rows is not None:
            x, target = x[rows], target[rows]
        # Initialise from the seed without touching the caller's global torch RNG state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            network = self._build_network(x.shape[1], n_outputs)
        network.to(device)
        x_tensor = torch.as_tensor(x, dtype=torch.float32, device=device)
        target_dtype = torch.int64 if objective == "multiclass" else torch.float32
        y_tensor = torch.as_tensor(target, dtype=target_dtype, device=device)
        weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32, device=device)
        self.task_loss_ = TaskLoss(objective, weights)
        # Checked before any training (an impossible penalty for this network is a ValueError here).
        self._penalty_term = self._explanation_penalty(network, torch.as_tensor(pool, device=device), objective)
        threads = resolve_threads(self.threads, batch_size=self.batch_size, hidden_size=self.hidden_size, device=device)
        # Dropout masks come from torch's global generator: fork and seed it, so that the seed alone decides
        # the result (whatever the caller's RNG state) and the caller's state is left alone.
        try:
            with limit_threads(threads), torch.random.fork_rng(devices=_cuda_indices(device)):
                torch.manual_seed(self.seed)
                result = train_snapshot_ensemble(
                    network,
                    x_tensor,
                    y_tensor,
                    loss=self._loss,
                    config=self._training_config(),
                    seed=self.seed,
                    numerical=self._numerical_mask(x.shape[1]),
                    progress=self.progress,
                    compile=self.compile,
                )
        finally:
            del self._penalty_term  # bound to this fit's network and data: a fitted estimator keeps neither
        self.model_: SnapshotEnsemble = result.ensemble
        self.epoch_losses_ = result.epoch_losses
        self.snapshot_steps_ = result.schedule.snapshot_steps
        self.device_ = device
        # Inference runs with the thread count of training: two threads on small matrices are slower as soon
        # as another process shares the cores (5-50x in sweeps), and one count keeps results machine-independent.
        self.threads_ = threads

    # ----------------------------------------------------------------------------------------- inference
    def _raw_outputs(
        self, X, *, fields: Sequence[str] = ("logits",)
    ) -> tuple[dict[str, np.ndarray | None], np.ndarray]:
        """The network's outputs (``fields`` of its ``NetworkOutput``) on validated inputs, and the inputs."""
        check_is_fitted(self, "model_")
        x = validate_data(self, X, reset=False, dtype=np.float32)
        with limit_threads(getattr(self, "threads_", None)):
            gathered = predict_in_batches(self.model_, torch.from_numpy(x), fields=fields)
        return {name: None if value is None else value.numpy() for name, value in gathered.items()}, x

    def output_transform(self) -> tuple[float, float]:
        """``(scale, shift)`` from the network's logits to the explained outputs (regressors: target units)."""
        return 1.0, 0.0

    def output_name(self) -> str:
        """What the explained outputs are, in words."""
        return "logit"

    def input_names(self) -> list[str]:
        """Names of the input columns (the fitted frame's columns, or ``x0``, ``x1``, ...)."""
        check_is_fitted(self, "model_")
        if hasattr(self, "feature_names_in_"):
            return [str(name) for name in self.feature_names_in_]
        return [f"x{index}" for index in range(self.n_features_in_)]

    def logits_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The fitted ensemble as a differentiable function ``x (B, D) -> logits (B, C)`` (evaluation mode).

        For post-hoc explainers (captum's ``forward_func`` convention); inputs may live on the CPU.
        """
        check_is_fitted(self, "model_")
        model = self.model_.eval()
        device = self.device_
        return lambda x: model(x.to(device)).logits

    def _linear_explanation(
        self,
        X,
        reference: ReferenceKind | np.ndarray,
        explainer: str,
        inputs: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Attribution:
        """The exact attribution of a network that generates per-example linear models over its inputs.

        ``inputs`` maps the network's inputs (and the reference point) to those its linear models act on, when
        they differ (INN with ``product_inputs="standardised"``).
        """
        outputs, x = self._raw_outputs(X, fields=("logits", "weights"))
        weights, logits = outputs["weights"], outputs["logits"]
        scale, shift = self.output_transform()
        if scale != 1.0:  # in place: the only arrays allocated here are the outputs themselves
            weights *= scale
            logits *= scale
        if shift != 0.0:
            logits += shift
            weights[:, -1, :] += shift
        point, name = reference_point(reference, self.reference_)
        if inputs is not None:
            x, point = inputs(x), inputs(np.asarray(point, dtype=np.float64))
        return linear_attribution(
            weights[:, :-1, :],
            weights[:, -1, :],
            x,
            point,
            feature_names=self.input_names(),
            explainer=explainer,
            reference_name=name,
            output=logits,
            output_name=self.output_name(),
            extras={"weights": weights},
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _cuda_indices(device: torch.device) -> list[int]:
    """The CUDA device whose RNG state ``torch.random.fork_rng`` must save (none on the CPU)."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _class_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced weights ``n / (K · count_k)``, as scikit-learn's ``class_weight='balanced'``."""
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    return codes.size / (n_classes * np.maximum(counts, 1.0))


def oversample_indices(codes: np.ndarray, seed: int) -> np.ndarray:
    """Row indices that repeat every class's rows (with random extras) up to the majority class size."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(codes)
    target = counts.max()
    parts = []
    for label in np.flatnonzero(counts):  # a loop over classes, not over examples
        rows = np.flatnonzero(codes == label)
        extra = rng.choice(rows, size=target - rows.size, replace=True)
        parts.append(np.concatenate([rows, extra]))
    return rng.permutation(np.concatenate(parts))


class _NeuralClassifier(ClassifierMixin, _NeuralEstimator):
    def fit(self, X, y):
        """Fit on a numeric matrix ``X`` ``(N, D)`` and labels ``y`` ``(N,)`` (any hashable labels)."""
        x, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"classification needs at least 2 classes, got only one class ({self.classes_[0]!r})")
        class_weights, rows = None, None
        if self.class_balance == "weight":
            class_weights = _class_weights(codes, n_classes)
        elif self.class_balance == "oversample":
            rows = oversample_indices(codes, self.seed)
        objective = "binary" if n_classes == 2 else "multiclass"
        self._fit_network(
            x,
            codes,
            objective=objective,
            n_outputs=1 if n_classes == 2 else n_classes,
            class_weights=class_weights,
            rows=rows,
        )
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logits: ``(N,)`` for binary tasks (of the second class), ``(N, C)`` otherwise."""
        logits = self._raw_outputs(X)[0]["logits"]
        return logits[:, 0] if len(self.classes_) == 2 else logits

    def output_name(self) -> str:
        if len(self.classes_) == 2:
            return f"logit of class {self.classes_[1]!s}"
        return "logit (one per class)"

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(N, C)``."""
        logits = torch.from_numpy(self._raw_outputs(X)[0]["logits"]).double()
        if len(self.classes_) == 2:
            positive = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - positive, positive], dim=1).numpy()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable class label per row."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before ``classes_`` is read
        return self.classes_[proba.argmax(axis=1)]


class _NeuralRegressor(RegressorMixin, _NeuralEstimator):
    def fit(self, X, y):
        """Fit on ``X`` ``(N, D)`` and real targets ``y`` ``(N,)``; the target is standardised internally."""
        x, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self.target_mean_ = float(y.mean())
        self.target_scale_ = float(y.std()) or 1.0
        standardised = (y - self.target_mean_) / self.target_scale_
        self._fit_network(x, standardised, objective="regression", n_outputs=1, class_weights=None)
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions in target units ``(N,)``."""
        logits = self._raw_outputs(X)[0]["logits"]
        return logits[:, 0].astype(np.float64) * self.target_scale_ + self.target_mean_

    def output_transform(self) -> tuple[float, float]:
        check_is_fitted(self, "model_")
        return self.target_scale_, self.target_mean_

    def output_name(self) -> str:
        return "prediction"


class StandardisedProductINN(INNNetwork):
    """INN whose per-example linear models act on standardised inputs; the hypernetwork reads the raw ones.

    ``logits = [x̃, 1] · W(x)`` with ``x̃ = (x − mean) / scale`` (fixed buffers, the training statistics), so a
    column's scale decides neither how large its generated weight must be nor what its L1 term costs, while the
    backbone sees exactly what the paper's INN sees (``product_inputs="standardised"``).

    Shape:
        x ``(B, F)`` -> logits ``(B, C)``, weights ``(B, F + 1, C)`` (in the units of ``x̃``)
    """

    def __init__(
        self,
        *,
        n_inputs: int,
        n_outputs: int,
        mean: np.ndarray,
        scale: np.ndarray,
        hidden_size: int = 128,
        nr_blocks: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            n_inputs=n_inputs, n_outputs=n_outputs, hidden_size=hidden_size, nr_blocks=nr_blocks, dropout=dropout
        )
        if np.shape(mean) != (n_inputs,) or np.shape(scale) != (n_inputs,) or not np.all(np.asarray(scale) > 0):
            raise ValueError(f"mean and scale must be ({n_inputs},) with scale > 0, got {np.shape(mean)=}")
        self.register_buffer("input_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("input_scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        weights = self.head(self.backbone(x)).view(-1, self.n_inputs + 1, self.n_outputs)
        return NetworkOutput(linear_logits((x - self.input_mean) / self.input_scale, weights), weights)

    @staticmethod
    def combine(outputs: Sequence[NetworkOutput], x: torch.Tensor) -> NetworkOutput:
        """The mean generated linear model and its logits (the logits are linear in ``W`` for a fixed ``x̃``)."""
        weights = torch.stack([output.weights for output in outputs]).mean(0)
        return NetworkOutput(torch.stack([output.logits for output in outputs]).mean(0), weights)


class _INN:
    """INN's parameters, two hooks and explanation, shared by the classifier and the regressor.

    Args (:data:`INN_PARAMETERS`; the shared ones are :class:`_NeuralEstimator`'s):
        weight_norm: strength of the L1 term on generated weights (networks that generate none ignore it).
        weight_norm_scale: how the L1 term weighs the generated weight of each input column: ``none`` (the paper:
            ``mean |W(x)|``) or ``std`` (``|W_j(x)|`` times the training standard deviation of column ``j``, the
            bias row times 1: the paper's term for the weights the network would need on standardised inputs, so
            a column's scale no longer decides how much its weight costs; fitted: ``l1_column_scale_`` ``(D + 1,)``,
            None when every weight is 1). Networks that generate none ignore it.
        product_inputs: the inputs of INN's per-example linear model: ``raw`` (the paper: the network's inputs) or
            ``standardised`` (each column minus its training mean, over its training std; the hypernetwork still
            reads the raw inputs, and the explanation is ``W̃_j(x)·(x̃_j − m̃_j)`` in logit units as before, with
            ``extras["weights"]`` in standardised units). Fitted: ``product_mean_`` and ``product_scale_``
            ``(D,)``, None when every column is already standardised (then it is the paper's INN, bit for bit).
            Networks that generate no weights ignore it.
    """

    __init__ = neural_init(INN_PARAMETERS)

    def _build_network(self, n_inputs: int, n_outputs: int) -> nn.Module:
        sizes = {"hidden_size": self.hidden_size, "nr_blocks": self.nr_blocks, "dropout": self.dropout}
        if getattr(self, "product_mean_", None) is not None:
            return StandardisedProductINN(
                n_inputs=n_inputs, n_outputs=n_outputs, mean=self.product_mean_, scale=self.product_scale_, **sizes
            )
        return INNNetwork(n_inputs=n_inputs, n_outputs=n_outputs, **sizes)

    def _fit_network(self, x: np.ndarray, target: np.ndarray, **kwargs) -> None:
        """Fix the L1 term's column weights and the linear models' input scaling from the training rows (before any
        oversampling), then train."""
        if self.weight_norm_scale not in WEIGHT_NORM_SCALES:
            raise ValueError(f"weight_norm_scale must be one of {WEIGHT_NORM_SCALES}, got {self.weight_norm_scale!r}")
        if self.product_inputs not in PRODUCT_INPUTS:
            raise ValueError(f"product_inputs must be one of {PRODUCT_INPUTS}, got {self.product_inputs!r}")
        self.product_mean_ = self.product_scale_ = None
        if self.product_inputs == "standardised":
            values = np.asarray(x, dtype=np.float64)
            mean, std = values.mean(axis=0), values.std(axis=0)
            mean = np.where(np.abs(mean) > STD_TOLERANCE, mean, 0.0)
            std = np.where((std > 0) & (np.abs(std - 1.0) > STD_TOLERANCE), std, 1.0)
            if np.any(mean != 0.0) or np.any(std != 1.0):
                self.product_mean_, self.product_scale_ = mean, std
        self.l1_column_scale_ = None
        if self.weight_norm_scale == "std":
            std = np.asarray(x, dtype=np.float64).std(axis=0)
            # A constant column carries nothing; it keeps the paper's weight 1, as does the bias row. A column the
            # preprocessing standardised has std 1 up to float rounding: weight exactly 1, so that where every
            # column is standardised the term (and the fit) is the paper's, bit for bit.
            std = np.where((std > 0) & (np.abs(std - 1.0) > STD_TOLERANCE), std, 1.0)
            if np.any(std != 1.0):
                self.l1_column_scale_ = np.append(std, 1.0)
        self._l1_scale = None
        try:
            super()._fit_network(x, target, **kwargs)
        finally:
            del self._l1_scale  # a device tensor of this fit: a fitted estimator keeps the numpy copy only

    def _loss(self, network, x, y, output, mixing):
        """The task loss plus INN's sparsity term: ``weight_norm · mean|W(x)|``, with ``weight_norm_scale="std"``
        ``weight_norm · mean|W(x) · s|`` (``s``: the columns' training standard deviations, then 1 for the bias).

        Shape:
            output.weights ``(B, D + 1, C)``; ``s`` ``(D + 1,)``.
        """
        value = super()._loss(network, x, y, output, mixing)
        if self.weight_norm <= 0:
            return value
        if self.l1_column_scale_ is None:
            return add_l1(value, output.weights, self.weight_norm)
        weights = output.weights
        if self._l1_scale is None or self._l1_scale.device != weights.device:
            self._l1_scale = torch.as_tensor(self.l1_column_scale_, dtype=weights.dtype, device=weights.device)
        scaled = torch.linalg.vector_norm(weights * self._l1_scale[:, None], 1)
        return torch.add(value, scaled, alpha=self.weight_norm / weights.numel())

    def explain(self, X, *, reference: ReferenceKind | np.ndarray = "mean") -> Attribution:
        """The exact explanation: the generated linear models times the inputs, relative to ``reference``.

        ``values[:, j] = W_j(x)·(x_j − m_j)`` per input column and ``rest = b(x) + Σ_j W_j(x)·m_j``, so
        ``values.sum(1) + rest`` is the model's output (classifiers: logits ``(N, C)`` with ``C = 1`` for binary
        tasks; regressors: predictions in target units) and a row equal to ``m`` gets zero values.
        ``extras["weights"]`` holds the generated weights ``(N, D + 1, C)`` (last row: the bias).

        Args:
            reference: ``"mean"`` (the training mean, default), ``"zero"``, or a point ``(D,)``.
        """
        if getattr(self, "product_mean_", None) is None:
            return self._linear_explanation(X, reference, "inn")
        mean, scale = self.product_mean_, self.product_scale_
        return self._linear_explanation(X, reference, "inn", inputs=lambda values: (values - mean) / scale)


class _TabResNet:
    """TabResNet's parameters (the shared ones only: it generates no weights, so INN's L1 term and linear-model
    inputs do not apply) and network hook."""

    __init__ = neural_init()
    #: INN's L1 strength, read by the shared parameter checks; TabResNet has no such term.
    weight_norm = 0.0

    def _build_network(self, n_inputs: int, n_outputs: int) -> nn.Module:
        return TabResNetNetwork(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            hidden_size=self.hidden_size,
            nr_blocks=self.nr_blocks,
            dropout=self.dropout,
        )


class INNClassifier(_INN, _NeuralClassifier):
    """Interpretable neural network (INN) classifier: a hypernetwork generates a linear model per example.

    ``explain(X)`` returns those linear models; their contributions plus the rest equal ``decision_function``.
    """


class INNRegressor(_INN, _NeuralRegressor):
    """Interpretable neural network (INN) regressor; explanations are in target units."""


class TabResNetClassifier(_TabResNet, _NeuralClassifier):
    """TabResNet classifier: INN's backbone with a plain output layer (the black-box counterpart)."""


class TabResNetRegressor(_TabResNet, _NeuralRegressor):
    """TabResNet regressor: INN's backbone with a plain output layer (the black-box counterpart)."""
