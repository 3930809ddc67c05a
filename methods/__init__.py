"""The method registry: one entry per method, and every list of methods in the project derived from it.

The command-line choices of both experiment scripts, the sweep's methods and scripts, the HPO search spaces,
the plots' labels, colours and order, and the results validation all read :data:`REGISTRY`. Adding a method
is adding its module (an estimator with ``fit``/``predict`` and a native explainer) and one entry below;
``tests/test_registry.py`` fails until the entry has a label, a colour, a search space for both tasks, smoke
settings and passes the registry-wide API and explanation tests.

Example:
    >>> from methods import get_method
    >>> spec = get_method("ebm")
    >>> split = prepare_split(raw, mode="classification", seed=0, encoding_type=spec.encoding)
    >>> model = spec.build(split, seed=0)
    >>> X_train, X_test = spec.inputs(split)
    >>> model.fit(X_train, split.y_train)
    >>> attribution = spec.explain(model, split, X_test)  # (N, F, C) over original features, exact
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import argtypes
from methods.flags import INN_SHAPLEY_FLAGS, senn_flags
from methods.spec import (
    MODES,
    Choice,
    Flag,
    FloatRange,
    IntRange,
    MethodSpec,
    Mode,
    Space,
    reference_inputs,
    split_inputs,
)

__all__ = [
    "MODES",
    "REGISTRY",
    "Choice",
    "Flag",
    "FloatRange",
    "IntRange",
    "MethodSpec",
    "Mode",
    "Space",
    "baseline_methods",
    "get_method",
    "method_ids",
    "neural_estimator_class",
    "neural_estimators",
    "neural_methods",
    "parse_run_id",
    "reference_inputs",
    "run_id",
    "split_inputs",
]


# ----------------------------------------------------------------------------------------------------------
# Neural methods: estimators of models.estimators, parameters = the estimator's constructor parameters

#: Estimator parameters that belong to the run, not to the method (set by the run's flags and data; the CNN's image
#: layout comes from the data's columns).
RUN_PARAMETERS = (
    "seed",
    "device",
    "categorical_inputs",
    "progress",
    "image_shape",
    "pixel_positions",
    "feature_groups",
)


def _neural_classes(module: str, stem: str):
    import importlib

    loaded = importlib.import_module(module)
    return {"classification": getattr(loaded, f"{stem}Classifier"), "regression": getattr(loaded, f"{stem}Regressor")}


def neural_estimator_class(method: str, mode: Mode) -> type:
    """The estimator class of a neural method for ``mode``."""
    module, stem = _NEURAL_CLASSES[method]
    return _neural_classes(module, stem)[mode]


def neural_estimators() -> dict[tuple[str, Mode], type]:
    """Every neural estimator class by ``(method, mode)`` (the estimator tests are parametrized over it)."""
    return {(method, mode): neural_estimator_class(method, mode) for method in neural_methods() for mode in MODES}


def _neural_defaults(method: str):
    def defaults(mode: Mode) -> dict[str, Any]:
        signature = inspect.signature(neural_estimator_class(method, mode).__init__)
        return {
            name: parameter.default
            for name, parameter in signature.parameters.items()
            if name != "self" and name not in RUN_PARAMETERS
        }

    return defaults


def _neural_factory(method: str):
    def factory(split, *, seed: int, device, n_jobs: int, params: dict[str, Any]):
        import numpy as np

        mode: Mode = "regression" if split.task == "regression" else "classification"
        flags = np.asarray(split.categorical_features, dtype=bool)
        categorical = np.flatnonzero(flags[split.input_to_feature]).tolist() if flags.size else []
        return neural_estimator_class(method, mode)(
            **params, seed=seed, device=str(device), categorical_inputs=categorical
        )

    return factory


def _grouped_neural_factory(method: str):
    """``_neural_factory`` that also tells the estimator which input columns form one original feature (its
    ``feature_groups``: one-hot columns of a feature share one)."""
    base = _neural_factory(method)

    def factory(split, *, seed: int, device, n_jobs: int, params: dict[str, Any]):
        groups = [int(feature) for feature in split.input_to_feature]
        return base(split, seed=seed, device=device, n_jobs=n_jobs, params={**params, "feature_groups": groups})

    return factory


def _image_factory(method: str):
    """The factory of a neural method for image-shaped data: the image layout comes from the split's columns (pixels
    that preprocessing dropped stay in place as zeros); any other data is refused with one line."""

    def factory(split, *, seed: int, device, n_jobs: int, params: dict[str, Any]):
        from data.images import pixel_layout
        from errors import UserError

        layout = pixel_layout(split.input_names, also=split.dropped_columns)
        if layout is None:
            shown = ", ".join(map(str, split.input_names[:3])) + (", ..." if len(split.input_names) > 3 else "")
            raise UserError(
                f"{method} needs image-shaped data, columns named pixel_<row>_<column> or pixel<n> (e.g. --dataset "
                f"digits); the inputs of {split.dataset_name} are {shown}"
            )
        shape, positions = layout
        mode: Mode = "regression" if split.task == "regression" else "classification"
        return neural_estimator_class(method, mode)(
            **params, seed=seed, device=str(device), image_shape=shape, pixel_positions=positions
        )

    return factory


_NEURAL_CLASSES = {
    "inn": ("models.estimators", "INN"),
    "inn_shapley": ("models.inn_shapley", "INNShapley"),
    "tabresnet": ("models.estimators", "TabResNet"),
    "senn": ("models.senn", "SENN"),
    "disenn": ("models.senn", "DiSENN"),
    "cnn": ("models.cnn", "CNN"),
}

#: The NeurIPS version's space (classification and regression alike).
_NEURAL_SPACE: Space = {
    "nr_epochs": IntRange(10, 500),
    "learning_rate": FloatRange(1e-5, 1e-1, log=True),
    "batch_size": Choice((32, 64, 128, 256, 512)),
    "weight_decay": FloatRange(1e-5, 1e-1, log=True),
    "weight_norm": FloatRange(1e-5, 1e-1, log=True),
    "dropout": FloatRange(0.0, 0.5),
}
_TABRESNET_SPACE: Space = {name: param for name, param in _NEURAL_SPACE.items() if name != "weight_norm"}
#: INN-Shapley's space: INN's without its L1 term, plus the consistency term's strength.
_INN_SHAPLEY_SPACE: Space = {**_TABRESNET_SPACE, "shapley_strength": FloatRange(0.03, 3.0, log=True)}
_NEURAL_SMOKE = {"nr_epochs": 3, "hidden_size": 16, "nr_blocks": 1, "batch_size": 32}
#: The CNN's space: TabResNet's (its dense layer has no L1 term) and the first block's filters.
_CNN_SPACE: Space = {**_TABRESNET_SPACE, "channels": Choice((8, 16, 32))}

#: SENN's space: INN's without the L1 term, plus λ, and the concepts' number and sparsity (learned concepts only;
#: with identity concepts these two change nothing).
_SENN_SPACE: Space = {
    **_TABRESNET_SPACE,
    "robust_reg": FloatRange(1e-5, 1.0, log=True),
    "sparsity_reg": FloatRange(1e-6, 1e-2, log=True),
    "num_concepts": IntRange(2, 20),
}
_DISENN_SPACE: Space = {
    **_TABRESNET_SPACE,
    "robust_reg": FloatRange(1e-5, 1.0, log=True),
    "num_concepts": IntRange(2, 20),
    "beta": FloatRange(0.5, 10.0, log=True),
}


# ----------------------------------------------------------------------------------------------------------
# Baselines: factories in models/baselines.py and models/ebm.py


def _baseline_factory(name: str, module: str = "models.baselines"):
    def factory(split, *, seed: int, device, n_jobs: int, params: dict[str, Any]):
        import importlib

        build = getattr(importlib.import_module(module), f"build_{name}")
        return build(split, seed=seed, device=device, n_jobs=n_jobs, params=params)

    return factory


def _fixed_defaults(classification: dict[str, Any], regression: dict[str, Any] | None = None):
    def defaults(mode: Mode) -> dict[str, Any]:
        return dict(classification if mode == "classification" or regression is None else regression)

    return defaults


_TREE_SPACE: Space = {
    "criterion": Choice(("gini", "entropy")),
    "max_depth": IntRange(1, 21),
    "min_samples_split": IntRange(2, 11),
    "max_leaf_nodes": IntRange(3, 26),
}
_TREE_REGRESSION = {"criterion": Choice(("squared_error", "friedman_mse"))}

_TABNET_DEFAULTS = {
    "max_epochs": 200,
    "patience": 20,
    # TabNet's 1024/128 suit large data; on ~1000 rows they give one or two steps per epoch.
    "batch_size": 128,
    "virtual_batch_size": 64,
    "validation_size": 0.2,
    "learning_rate": 0.02,
    "n_d": 8,
    "n_a": 8,
    "n_steps": 3,
    "gamma": 1.3,
    "lambda_sparse": 1e-3,
    # An embedding of size 1 squeezes every category onto a line; 3 learned better on credit-g.
    "cat_emb_dim": 3,
}
#: The paper's TabNet space; parameters our wrapper does not have are not tuned (HPO records them as such).
_TABNET_SPACE: Space = {
    "n_a": Choice((8, 16, 24, 32, 64, 128)),
    "learning_rate": Choice((0.005, 0.01, 0.02, 0.025)),
    "gamma": Choice((1.0, 1.2, 1.5, 2.0)),
    "n_steps": IntRange(3, 10),
    "lambda_sparse": Choice((0.0, 1e-6, 1e-4, 1e-3, 1e-2, 0.1)),
    "batch_size": Choice(tuple(2**k for k in range(8, 16))),  # 256 .. 32768
    "virtual_batch_size": Choice((256, 512, 1024, 2048, 4096)),
    "decay_rate": Choice((0.4, 0.8, 0.9, 0.95)),
    "decay_iterations": Choice((500, 2000, 8000, 10000, 20000)),
    "momentum": Choice((0.6, 0.7, 0.8, 0.9, 0.95, 0.98)),
    "max_epochs": IntRange(10, 500),  # the paper's "epochs"
}

#: interpret's defaults (``interpret-core`` 0.7), except ``n_jobs``/``random_state`` which the run sets.
_EBM_DEFAULTS = {"interactions": "3x", "outer_bags": 14, "max_rounds": 50000, "learning_rate": 0.015, "max_leaves": 2}
#: interpret's documented tuning ranges (interpret.ml/docs/hyperparameters.html), most important first.
_EBM_SPACE: Space = {
    "max_leaves": Choice((2, 3)),
    "smoothing_rounds": Choice((0, 25, 50, 75, 100, 150, 200, 350, 500, 750, 1000, 1500, 2000, 4000)),
    "learning_rate": Choice((0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2)),
    "interactions": Choice((0, 0.25, 0.5, 0.75, 0.95, 5, 10, 25, 50, 100, 250)),
    "max_interaction_bins": Choice((8, 16, 32, 64, 128, 256)),
    "validation_size": Choice((0.1, 0.15, 0.2)),
    "min_samples_leaf": Choice((2, 3, 4, 5, 10, 15, 20, 25, 50)),
}


# ----------------------------------------------------------------------------------------------------------
# The registry (order: the order of tables, legends and the sweep)

REGISTRY: dict[str, MethodSpec] = {
    spec.id: spec
    for spec in (
        MethodSpec(
            id="inn",
            kind="neural",
            label="INN",
            color="#D55E00",  # vermilion: the method under study gets the strongest colour
            summary="a residual hypernetwork generates a linear model per example; exact, free explanation",
            encoding="paper",
            input_kind="matrix",
            defaults=_neural_defaults("inn"),
            factory=_neural_factory("inn"),
            search_space={"classification": _NEURAL_SPACE, "regression": _NEURAL_SPACE},
            model_format="network",
            explanation_kind="exact",
            explainer="explainers.inn:INNExplainer",
            imports=("models.estimators",),
            explanation="exact: the generated weights times (input − reference), W_j(x)·(x_j − m_j)",
            smoke_params=_NEURAL_SMOKE,
            closed_parameters=True,
        ),
        MethodSpec(
            id="inn_shapley",
            kind="neural",
            label="INN-Shapley",
            color="#EE3377",  # magenta: INN's faithful variant
            summary="a faithful INN: per-feature contributions W_j(x)·x_j + a_j(x), one constant bias and a "
            "Shapley-consistency loss; free, exact explanation that estimates the model's own Shapley values",
            encoding="paper",
            input_kind="matrix",
            defaults=_neural_defaults("inn_shapley"),
            factory=_grouped_neural_factory("inn_shapley"),
            search_space={"classification": _INN_SHAPLEY_SPACE, "regression": _INN_SHAPLEY_SPACE},
            model_format="network",
            explanation_kind="exact_centred",
            explainer="explainers.inn_shapley:INNShapleyExplainer",
            imports=("models.inn_shapley",),
            explanation="exact, centred: φ_j(x) = ψ_j(x) − E_train[ψ_j(X)] of the contributions ψ_j(x) = "
            "W_j(x)·x_j + a_j(x), the rest the mean training output (one constant); trained toward the model's "
            "interventional Shapley values with the training rows as background",
            flags=INN_SHAPLEY_FLAGS,
            smoke_params=_NEURAL_SMOKE,
            closed_parameters=True,
        ),
        MethodSpec(
            id="tabresnet",
            kind="neural",
            label="TabResNet",
            color="#0072B2",  # blue
            summary="INN's residual backbone with a plain output layer: the black-box twin",
            encoding="paper",
            input_kind="matrix",
            defaults=_neural_defaults("tabresnet"),
            factory=_neural_factory("tabresnet"),
            search_space={"classification": _TABRESNET_SPACE, "regression": _TABRESNET_SPACE},
            model_format="network",
            explanation_kind="approximate",
            explainer="explainers.gradient:NetworkGradientExplainer",
            imports=("models.estimators",),
            explanation="approximate: gradient × (input − reference) of the logits",
            smoke_params=_NEURAL_SMOKE,
            closed_parameters=True,
        ),
        MethodSpec(
            id="senn",
            kind="neural",
            label="SENN",
            color="#AA3377",  # purple
            summary="self-explaining network: relevances θ(x) times concepts h(x) (the inputs, or an autoencoder's), "
            "with SENN's robustness loss on the logits",
            encoding="paper",
            input_kind="matrix",
            defaults=_neural_defaults("senn"),
            factory=_neural_factory("senn"),
            search_space={"classification": _SENN_SPACE, "regression": _SENN_SPACE},
            model_format="network",
            explanation_kind="exact",
            explainer="explainers.senn:SENNExplainer",
            imports=("models.senn",),
            explanation="exact: relevances θ(x) × (input − reference) plus the intercept θ_0(x) (identity concepts); "
            "with --conceptizer autoencoder over concepts c0..: θ_k(x)·(h_k(x) − h_k(reference))",
            flags=senn_flags(
                "conceptizer",
                "parameterizer",
                "parameterizer_sizes",
                "num_concepts",
                "robust_reg",
                "robust_estimator",
                "robust_form",
                "concept_reg",
                "sparsity_reg",
                "pretrain_epochs",
            ),
            smoke_params=_NEURAL_SMOKE,
            closed_parameters=True,
            explains="model",
        ),
        MethodSpec(
            id="disenn",
            kind="neural",
            label="DiSENN",
            color="#A6761D",  # brown
            summary="SENN with β-VAE concepts (posterior means), pre-trained, robustness loss on the logits",
            encoding="paper",
            input_kind="matrix",
            defaults=_neural_defaults("disenn"),
            factory=_neural_factory("disenn"),
            search_space={"classification": _DISENN_SPACE, "regression": _DISENN_SPACE},
            model_format="network",
            explanation_kind="exact",
            explainer="explainers.senn:SENNConceptExplainer",
            imports=("models.senn",),
            explanation="exact, over the β-VAE's concepts c0..: relevance θ_k(x) × (posterior mean μ_k(x) − "
            "μ_k(reference))",
            flags=senn_flags(
                "parameterizer",
                "parameterizer_sizes",
                "num_concepts",
                "robust_reg",
                "robust_estimator",
                "robust_form",
                "concept_reg",
                "beta",
                "pre_beta",
                "pretrain_epochs",
                "capacity",
                "kl_warmup_epochs",
                "reconstruction",
            ),  # fmt: skip
            smoke_params={**_NEURAL_SMOKE, "pretrain_epochs": 1},
            closed_parameters=True,
            explains="concepts",
        ),
        MethodSpec(
            id="cnn",
            kind="neural",
            label="CNN",
            color="#332288",  # indigo
            summary="a small convolutional network (conv, ReLU, max-pooling, linear head) for image-shaped data "
            "(pixel columns, e.g. --dataset digits); refuses other data",
            encoding="paper",
            input_kind="matrix",
            defaults=_neural_defaults("cnn"),
            factory=_image_factory("cnn"),
            search_space={"classification": _CNN_SPACE, "regression": _CNN_SPACE},
            model_format="network",
            explanation_kind="approximate",
            explainer="explainers.gradient:NetworkGradientExplainer",
            imports=("models.cnn", "data.images"),
            explanation="approximate: gradient × (input − reference) of the logits, per pixel",
            flags=(
                Flag(
                    "channels",
                    "channels",
                    argtypes.positive_int,
                    "CNN: filters of the first convolution (doubled "
                    "per block; --nr_blocks counts convolution blocks, --hidden_size is the dense layer)",
                ),
                Flag("kernel_size", "kernel_size", argtypes.positive_int, "CNN: the convolutions' odd kernel size"),
            ),  # fmt: skip
            smoke_params={**_NEURAL_SMOKE, "channels": 4},
            closed_parameters=True,
            image_inputs=True,
        ),
        MethodSpec(
            id="catboost",
            kind="baseline",
            label="CatBoost",
            color="#009E73",  # bluish green
            summary="gradient-boosted trees with native categorical features",
            encoding="ordinal",  # only its split's frame is used; any encoding gives the same rows
            input_kind="frame",
            defaults=_fixed_defaults({"iterations": 1000}),
            factory=_baseline_factory("catboost"),
            search_space={
                mode: {
                    "learning_rate": FloatRange(1e-5, 1.0, log=True),
                    "random_strength": IntRange(1, 20),
                    "l2_leaf_reg": FloatRange(1.0, 10.0, log=True),
                    "bagging_temperature": FloatRange(1e-6, 1.0, log=True),
                    "leaf_estimation_iterations": IntRange(1, 20),
                    "iterations": IntRange(100, 4000),
                }
                for mode in MODES
            },
            model_format="catboost",
            explanation_kind="exact",
            explainer="explainers.catboost_shap:CatBoostShapExplainer",
            imports=("catboost",),
            explanation="exact: CatBoost's interventional TreeSHAP against the reference row, in log-odds",
            flags=(Flag("catboost_iterations", "iterations", argtypes.positive_int, "CatBoost boosting rounds"),),
            uses_device=True,
            smoke_params={"iterations": 30},
        ),
        MethodSpec(
            id="random_forest",
            kind="baseline",
            label="Random Forest",
            color="#E69F00",  # orange
            summary="scikit-learn random forest, balanced class weights",
            encoding="paper",
            input_kind="matrix",
            defaults=_fixed_defaults({"n_estimators": 100}),
            factory=_baseline_factory("random_forest"),
            search_space={
                "classification": {**_TREE_SPACE, "n_estimators": IntRange(100, 4000)},
                "regression": {**_TREE_SPACE, "n_estimators": IntRange(100, 4000), **_TREE_REGRESSION},
            },
            model_format="sklearn_arrays",
            explanation_kind="exact",
            explainer="explainers.tree_shap:TreeShapExplainer",
            imports=("sklearn.ensemble", "shap"),
            explanation="exact: interventional TreeSHAP against the reference row, in probabilities",
            smoke_params={"n_estimators": 20},
        ),
        MethodSpec(
            id="logistic_regression",
            kind="baseline",
            label="Logistic Regression",
            color="#CC79A7",  # reddish purple
            summary="standardised inputs, L2-regularised logistic regression (ridge for regression)",
            encoding="paper",
            input_kind="matrix",
            # lbfgs's default 100 iterations often stops short of convergence on one-hot data.
            defaults=_fixed_defaults({"C": 1.0, "max_iter": 1000}, {"alpha": 1.0}),
            factory=_baseline_factory("logistic_regression"),
            search_space={
                "classification": {
                    "C": FloatRange(1e-5, 5.0),
                    # "none" is decoded to C = inf (scikit-learn >= 1.8 deprecates penalty=None for exactly that).
                    "penalty": Choice(("l2", "none")),
                    "max_iter": IntRange(50, 500),
                    "fit_intercept": Choice((True, False)),
                },
                # The linear baseline is a ridge regression: its penalty strength alpha replaces C and penalty.
                "regression": {
                    "alpha": FloatRange(1e-5, 1e2, log=True),
                    "fit_intercept": Choice((True, False)),
                },
            },
            model_format="sklearn_arrays",
            explanation_kind="exact",
            explainer="explainers.linear:LinearExplainer",
            imports=("sklearn.linear_model", "sklearn.pipeline"),
            explanation="exact: coefficient × (input − reference) on the decision function",
            smoke_params={},
        ),
        MethodSpec(
            id="decision_tree",
            kind="baseline",
            label="Decision Tree",
            color="#56B4E9",  # sky blue
            summary="scikit-learn CART tree, balanced class weights (the reference of the gain plots)",
            encoding="paper",
            input_kind="matrix",
            defaults=_fixed_defaults({"max_depth": None}),
            factory=_baseline_factory("decision_tree"),
            search_space={
                "classification": {**_TREE_SPACE, "splitter": Choice(("best", "random"))},
                "regression": {**_TREE_SPACE, "splitter": Choice(("best", "random")), **_TREE_REGRESSION},
            },
            model_format="sklearn_arrays",
            explanation_kind="exact",
            explainer="explainers.tree_shap:TreeShapExplainer",
            imports=("sklearn.tree", "shap"),
            explanation="exact: interventional TreeSHAP against the reference row, in probabilities",
            smoke_params={"max_depth": 4},
        ),
        MethodSpec(
            id="tabnet",
            kind="baseline",
            label="TabNet",
            color="#F0E442",  # yellow
            summary="attentive tabular network with categorical embeddings (pytorch-tabnet)",
            encoding="ordinal",
            input_kind="matrix",
            defaults=_fixed_defaults(_TABNET_DEFAULTS),
            factory=_baseline_factory("tabnet"),
            search_space={"classification": _TABNET_SPACE, "regression": _TABNET_SPACE},
            model_format="none",
            explanation_kind="unsigned",
            model_not_saved="pytorch-tabnet rebuilds its network only through its own save/load, which unpickles "
            "with torch.load; a results folder is never unpickled",
            explainer="explainers.tabnet_masks:TabNetMaskExplainer",
            imports=("pytorch_tabnet.tab_model",),
            explanation="not additive: TabNet's attention masks per example (unsigned)",
            flags=(
                Flag("tabnet_max_epochs", "max_epochs", argtypes.positive_int, "TabNet's most epochs"),
                Flag(
                    "tabnet_patience",
                    "patience",
                    argtypes.non_negative_int,
                    "TabNet's early-stopping patience (0: none)",
                ),
                Flag(
                    "tabnet_batch_size",
                    "batch_size",
                    argtypes.positive_int,
                    "TabNet batch size, capped at a quarter of the rows it trains on",
                ),
                Flag(
                    "tabnet_virtual_batch_size",
                    "virtual_batch_size",
                    argtypes.positive_int,
                    "TabNet ghost batch-norm size",
                ),
            ),
            uses_device=True,
            smoke_params={"max_epochs": 3, "patience": 0},
            closed_parameters=True,
        ),
        MethodSpec(
            id="ebm",
            kind="baseline",
            label="EBM",
            color="#999933",  # olive
            summary="Explainable Boosting Machine (interpret): a GAM of boosted shape functions and pairs",
            encoding="ordinal",  # only its split's frame is used: EBM handles categoricals natively
            input_kind="frame",
            defaults=_fixed_defaults(_EBM_DEFAULTS),
            factory=_baseline_factory("ebm", "models.ebm"),
            search_space={"classification": _EBM_SPACE, "regression": _EBM_SPACE},
            model_format="none",
            explanation_kind="exact",
            model_not_saved="interpret saves an EBM only by pickling it (its JSON export has no supported loader, "
            "only a private 'UNTESTED' one), and a results folder is never unpickled",
            explainer="explainers.ebm:EBMExplainer",
            imports=("models.ebm", "interpret.glassbox"),
            explanation="exact: term contributions against the reference row, pair terms split by Shapley",
            flags=(
                Flag(
                    "ebm_outer_bags", "outer_bags", argtypes.positive_int, "EBM's outer bags (more: smoother, slower)"
                ),
                Flag(
                    "ebm_interactions",
                    "interactions",
                    argtypes.interactions,
                    "EBM pair terms: a count, a fraction of the features, or 'Nx' (N times the features)",
                ),
            ),
            smoke_params={"outer_bags": 2, "max_rounds": 300, "interactions": 2},
        ),
    )
}


# ----------------------------------------------------------------------------------------------------------
# Lookups


def get_method(method: str) -> MethodSpec:
    """The spec of ``method`` (a method id, or a run id ``<method>-<variant>``).

    Raises:
        ValueError: not a registered method.
    """
    base, _ = parse_run_id(method)
    try:
        return REGISTRY[base]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {list(REGISTRY)}") from None


def method_ids(kind: str | None = None) -> tuple[str, ...]:
    """Registered method ids in registry order, optionally of one kind."""
    return tuple(spec.id for spec in REGISTRY.values() if kind is None or spec.kind == kind)


def neural_methods() -> tuple[str, ...]:
    return method_ids("neural")


def baseline_methods() -> tuple[str, ...]:
    return method_ids("baseline")


#: A variant name: letters, digits, ``_``, ``.``, ``=`` and ``-`` (it is part of a directory name).
VARIANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=-]*")


def run_id(method: str, variant: str | None = None) -> str:
    """The results-tree directory of a method's runs: ``<method>`` or ``<method>-<variant>``."""
    if variant is None or variant == "":
        return method
    if not VARIANT_PATTERN.fullmatch(variant):
        raise ValueError(f"a variant is letters, digits, '_', '.', '=' and '-' (not first), got {variant!r}")
    return f"{method}-{variant}"


def parse_run_id(name: str) -> tuple[str, str | None]:
    """Split a results-tree directory name into ``(method, variant)`` (method ids contain no ``-``)."""
    method, _, variant = name.partition("-")
    return method, variant or None
