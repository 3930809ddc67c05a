"""Model files per format (``methods.MethodSpec.model_format``): how a fitted model is saved in a run folder and
rebuilt from it without executing anything in the folder.

* ``network``: the snapshot ensemble as ``model.pt`` (state dicts, the estimator's parameters and fitted attributes:
  tensors, strings and numbers only), read with ``torch.load(weights_only=True)`` and rebuilt through the registry's
  estimator class and its ``_build_network`` hook;
* ``catboost``: CatBoost's own binary format ``model.cbm``, read by CatBoost's parser;
* ``sklearn_arrays``: a scikit-learn linear model (with its scaler) or trees as plain arrays in ``model.npz``
  (``allow_pickle=False``), the trees' node tables checked before scikit-learn walks them;
* ``none``: no file (EBM, TabNet: ``MethodSpec.model_not_saved`` says why).

:data:`MODEL_FILES` maps each format to its file name, writer and reader.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from errors import UserError
from experiments.results import MODEL_FILENAME, npz_bytes
from experiments.saved_run.safe import read_npz
from methods import MethodSpec

CATBOOST_FILENAME = "model.cbm"
ARRAYS_FILENAME = "model.npz"
#: ``model.pt``'s ``format_version``: 1 (no key) held the state dicts only; 2 adds the estimator's parameters and
#: fitted attributes, enough to rebuild it.
NETWORK_FORMAT_VERSION = 2
#: ``model.npz``'s ``format_version``.
ARRAYS_FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------------------------
# Writing

#: Estimator parameters that describe where and how a run trained, not the model: restored as these values.
#: Parameters a method's estimator once took and ignored, dropped when its saved models are read: TabResNet took
#: INN's L1 and linear-model parameters until the runner refused flags that set nothing (they never changed it).
RETIRED_PARAMETERS: dict[str, tuple[str, ...]] = {"tabresnet": ("weight_norm", "weight_norm_scale", "product_inputs")}
_RUN_ONLY_PARAMETERS = {"device": "cpu", "progress": False, "compile": False}


def network_file(model: Any, split: Any, method: str, config: Mapping[str, Any]) -> bytes:
    """``model.pt``: the snapshot ensemble's state dicts and what rebuilds the estimator (tensors and plain values).

    Keys: ``format_version`` (2), ``method``, ``mode``, ``estimator`` (class name), ``network``, ``n_inputs``,
    ``n_outputs``, ``hyperparameters`` (architecture), ``params`` (every estimator parameter), ``snapshots``
    (state dicts), ``fitted`` (``classes_``, ``reference_``, ``n_features_in_``, ``threads_``, and for regressors
    ``target_mean_``/``target_scale_``), ``input_names``, ``classes`` (the class labels), and for regressors
    ``target_mean``/``target_scale``.
    """
    import torch

    members = model.model_.members
    regression = split.task == "regression"
    fitted: dict[str, Any] = {
        "reference_": torch.as_tensor(np.asarray(model.reference_, dtype=np.float64)),
        "n_features_in_": int(model.n_features_in_),
        "threads_": None if getattr(model, "threads_", None) is None else int(model.threads_),
        "classes_": None if regression else torch.as_tensor(np.asarray(model.classes_)),
    }
    for name in ("product_mean_", "product_scale_"):  # INN with product_inputs="standardised"
        if getattr(model, name, None) is not None:
            fitted[name] = torch.as_tensor(np.asarray(getattr(model, name), dtype=np.float64))
    payload = {
        "format_version": NETWORK_FORMAT_VERSION,
        "method": method,
        "mode": "regression" if regression else "classification",
        "estimator": type(model).__name__,
        "network": type(members[0]).__name__,
        "n_inputs": members[0].n_inputs,
        "n_outputs": members[0].n_outputs,
        "hyperparameters": {name: config[name] for name in ("nr_blocks", "hidden_size", "dropout") if name in config},
        "params": {name: _json_value(value) for name, value in model.get_params().items()},
        "snapshots": [{key: value.cpu() for key, value in member.state_dict().items()} for member in members],
        "fitted": fitted,
        "input_names": list(split.input_names),
        "classes": split.classes,
    }
    if regression:
        payload["target_mean"], payload["target_scale"] = model.target_mean_, model.target_scale_
        fitted["target_mean_"], fitted["target_scale_"] = float(model.target_mean_), float(model.target_scale_)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    """An estimator parameter as a plain value (numpy scalars and arrays become Python numbers and lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot save the estimator parameter value {value!r} as plain data")


def catboost_bytes(model: Any) -> bytes:
    """The fitted CatBoost model in CatBoost's own binary format (``cbm``; no pickle)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CATBOOST_FILENAME
        model.save_model(str(path), format="cbm")
        return path.read_bytes()


def sklearn_arrays(method: str, model: Any) -> dict[str, np.ndarray]:
    """``model.npz`` of a scikit-learn baseline: its fitted state as plain arrays (no object arrays).

    Logistic regression / ridge: the scaler's ``mean``/``scale``/``var`` and the linear model's ``coef``,
    ``intercept``; trees: every tree's ``nodes`` (scikit-learn's structured node array), ``values``,
    ``max_depth`` and ``node_count``. Always: ``format_version``, ``method``, ``estimator`` (class name),
    ``params`` (its parameters as JSON text), ``classes`` (empty for regression), ``n_features``.
    """
    import sklearn

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    arrays: dict[str, np.ndarray] = {
        "format_version": np.asarray(ARRAYS_FORMAT_VERSION),
        "method": np.asarray(method),
        "sklearn_version": np.asarray(sklearn.__version__),
        "estimator": np.asarray(type(final).__name__),
        "params": np.asarray(json.dumps({k: _json_value(v) for k, v in final.get_params(deep=False).items()})),
        "classes": np.asarray(getattr(final, "classes_", np.empty(0, dtype=np.int64))),
        "n_features": np.asarray(int(final.n_features_in_)),
    }
    if hasattr(final, "coef_"):  # a linear model behind its scaler
        scaler = model.steps[0][1]
        arrays.update(
            scaler_mean=np.asarray(scaler.mean_, dtype=np.float64),
            scaler_scale=np.asarray(scaler.scale_, dtype=np.float64),
            scaler_var=np.asarray(scaler.var_, dtype=np.float64),
            scaler_n_samples=np.asarray(scaler.n_samples_seen_),
            coef=np.asarray(final.coef_, dtype=np.float64),
            intercept=np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64)),
        )
        return arrays
    trees = getattr(final, "estimators_", [final])
    arrays["n_trees"] = np.asarray(len(trees))
    arrays["n_outputs"] = np.asarray(int(final.n_outputs_))
    for index, tree in enumerate(trees):
        state = tree.tree_.__getstate__()  # plain arrays and ints: the node table and the leaf values
        arrays[f"tree{index}_nodes"] = state["nodes"]
        arrays[f"tree{index}_values"] = state["values"]
        arrays[f"tree{index}_max_depth"] = np.asarray(state["max_depth"])
        arrays[f"tree{index}_node_count"] = np.asarray(state["node_count"])
        arrays[f"tree{index}_n_classes"] = np.asarray(tree.tree_.n_classes, dtype=np.int64)
        arrays[f"tree{index}_max_features"] = np.asarray(int(tree.max_features_))
    return arrays


# ----------------------------------------------------------------------------------------------------------
# Reading


def load_network(file: Path, spec: MethodSpec, state: Mapping[str, Any], *, n_inputs: int) -> Any:
    """Rebuild a network estimator from ``model.pt`` (``torch.load(weights_only=True)``), on the CPU, in eval mode.

    Args:
        file: the ``model.pt``.
        spec: the run's method.
        state: the run's ``preprocessing.json``.
        n_inputs: the model inputs the run's encoder makes (the networks are built for exactly these).

    Raises:
        UserError: the file would need unpickling (refused), is corrupt, of format version 1, or does not match
            the method or the encoder.
    """
    import torch

    from methods import neural_estimator_class
    from models.networks import SnapshotEnsemble

    try:
        payload = torch.load(io.BytesIO(file.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as error:  # pickle.UnpicklingError for anything but tensors and plain values; corrupt zips
        reason = " ".join(str(error).split())[:160]
        raise UserError(
            f"{file}: refused: not a plain weights file, and a results folder is never unpickled ({reason})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format_version") != NETWORK_FORMAT_VERSION:
        version = payload.get("format_version", 1) if isinstance(payload, dict) else None
        raise UserError(
            f"{file}: model file format {version!r}; this code reads {NETWORK_FORMAT_VERSION} (runs written before "
            "models saved their estimator state need a rerun with --force)"
        )
    mode = state["mode"]
    estimator_class = neural_estimator_class(spec.id, mode)
    if payload.get("method") != spec.id or payload.get("estimator") != estimator_class.__name__:
        raise UserError(f"{file}: a {payload.get('estimator')!r} model, not the run's {estimator_class.__name__}")
    if payload.get("n_inputs") != n_inputs:
        raise UserError(f"{file}: a network of {payload.get('n_inputs')!r} inputs; the run's encoder makes {n_inputs}")
    try:
        retired = RETIRED_PARAMETERS.get(spec.id, ())
        params = {name: value for name, value in payload["params"].items() if name not in retired}
        estimator = estimator_class(**{**params, **_RUN_ONLY_PARAMETERS})
        fitted = payload["fitted"]
        for name in ("product_mean_", "product_scale_"):  # the network's input scaling is built from them
            if fitted.get(name) is not None:
                setattr(estimator, name, fitted[name].numpy().astype(np.float64))
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave the caller's RNG alone
            members = []
            for snapshot in payload["snapshots"]:
                network = estimator._build_network(n_inputs, int(payload["n_outputs"]))
                network.load_state_dict(snapshot, strict=True)
                members.append(network.eval())
        estimator.model_ = SnapshotEnsemble(members).eval()
        estimator.reference_ = fitted["reference_"].numpy().astype(np.float64)
        estimator.n_features_in_ = int(fitted["n_features_in_"])
        estimator.threads_ = fitted["threads_"]
        estimator.device_ = torch.device("cpu")
        if mode == "regression":
            estimator.target_mean_ = float(fitted["target_mean_"])
            estimator.target_scale_ = float(fitted["target_scale_"])
        else:
            estimator.classes_ = fitted["classes_"].numpy()
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise UserError(
            f"{file}: does not rebuild the {estimator_class.__name__} ({type(error).__name__}: {reason})"
        ) from None
    return estimator


def load_catboost(file: Path, spec: MethodSpec, state: Mapping[str, Any], *, n_inputs: int) -> Any:
    """Rebuild a CatBoost model from its ``cbm`` file (CatBoost's own parser; no pickle).

    Raises:
        UserError: catboost is missing or the file is not a CatBoost model.
    """
    from errors import MissingDependencyError

    try:
        import catboost
    except ImportError as exc:
        raise MissingDependencyError("catboost", "reloading a CatBoost run") from exc
    model = catboost.CatBoostRegressor() if state["mode"] == "regression" else catboost.CatBoostClassifier()
    try:
        model.load_model(blob=file.read_bytes(), format="cbm")
    except catboost.CatBoostError as error:
        raise UserError(f"{file}: not a CatBoost model ({' '.join(str(error).split())[:160]})") from None
    return model


def load_sklearn(file: Path, spec: MethodSpec, state: Mapping[str, Any], *, n_inputs: int) -> Any:
    """Rebuild a scikit-learn baseline from ``model.npz`` (plain arrays, ``allow_pickle=False``).

    Raises:
        UserError: the file would need unpickling (refused), is incomplete, or was written by a scikit-learn
            whose tree layout differs from this one's.
    """
    arrays = read_npz(file)
    try:
        if int(arrays["format_version"]) != ARRAYS_FORMAT_VERSION or str(arrays["method"]) != spec.id:
            raise UserError(f"{file}: not a {spec.id} model file of format version {ARRAYS_FORMAT_VERSION}")
        params = json.loads(str(arrays["params"]))
        classes = np.asarray(arrays["classes"])
        estimator = str(arrays["estimator"])
        if estimator not in _SKLEARN_ESTIMATORS[state["mode"]]:
            raise UserError(f"{file}: a {estimator!r} model; this code rebuilds {_SKLEARN_ESTIMATORS[state['mode']]}")
        if estimator in ("LogisticRegression", "Ridge"):
            return _linear_model(arrays, params, classes, state["mode"])
        return _tree_model(arrays, params, classes, estimator.startswith("RandomForest"), state["mode"])
    except UserError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        version = str(arrays.get("sklearn_version", "?"))
        raise UserError(
            f"{file}: does not rebuild the model ({type(error).__name__}: {error}; saved with scikit-learn {version})"
        ) from None


#: The scikit-learn estimators ``model.npz`` rebuilds, per mode (the class names it stores).
_SKLEARN_ESTIMATORS = {
    "classification": ("LogisticRegression", "DecisionTreeClassifier", "RandomForestClassifier"),
    "regression": ("Ridge", "DecisionTreeRegressor", "RandomForestRegressor"),
}


def _linear_model(arrays: Mapping[str, np.ndarray], params: dict, classes: np.ndarray, mode: str) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    scaler.mean_ = np.asarray(arrays["scaler_mean"], dtype=np.float64)
    scaler.scale_ = np.asarray(arrays["scaler_scale"], dtype=np.float64)
    scaler.var_ = np.asarray(arrays["scaler_var"], dtype=np.float64)
    scaler.n_samples_seen_ = np.asarray(arrays["scaler_n_samples"])
    scaler.n_features_in_ = int(arrays["n_features"])
    linear = Ridge(**params) if mode == "regression" else LogisticRegression(**params)
    coef = np.asarray(arrays["coef"], dtype=np.float64)
    linear.coef_ = coef
    linear.intercept_ = np.asarray(arrays["intercept"], dtype=np.float64)
    if mode == "regression":
        linear.intercept_ = float(linear.intercept_[0]) if coef.ndim == 1 else linear.intercept_
    else:
        linear.classes_ = classes
    linear.n_features_in_ = int(arrays["n_features"])
    return make_pipeline(scaler, linear)


def check_tree_arrays(
    nodes: np.ndarray, values: np.ndarray, *, n_features: int, n_outputs: int, n_classes: np.ndarray
) -> None:
    """Check a tree's node table before scikit-learn's compiled code walks it (it trusts the indices).

    Every internal node's children must come after it (as scikit-learn builds trees: no cycle, no index out of
    range) and its feature must be an input column; leaves have no children; the values must be
    ``(nodes, outputs, classes)``.

    Raises:
        ValueError: the table breaks one of these (a corrupt or crafted file).
    """
    if nodes.dtype.names is None or not {"left_child", "right_child", "feature"} <= set(nodes.dtype.names):
        raise ValueError("the node table has no child and feature fields")
    count = len(nodes)
    left, right = nodes["left_child"].astype(np.int64), nodes["right_child"].astype(np.int64)
    feature = nodes["feature"].astype(np.int64)
    leaf = left == -1
    index = np.arange(count)
    internal_ok = (left > index) & (right > index) & (left < count) & (right < count)
    internal_ok &= (feature >= 0) & (feature < n_features)
    if count == 0 or not np.all(np.where(leaf, right == -1, internal_ok)):
        raise ValueError("the node table's children or features are out of range")
    if values.shape != (count, n_outputs, int(np.max(n_classes, initial=1))):
        raise ValueError(f"tree values of shape {values.shape} for {count} nodes")


def _tree_model(arrays: Mapping[str, np.ndarray], params: dict, classes: np.ndarray, forest: bool, mode: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    from sklearn.tree._tree import Tree

    regression = mode == "regression"
    n_features, n_outputs = int(arrays["n_features"]), int(arrays["n_outputs"])
    tree_class = DecisionTreeRegressor if regression else DecisionTreeClassifier
    tree_params = {} if forest else params
    trees = []
    for index in range(int(arrays["n_trees"])):
        n_classes = np.asarray(arrays[f"tree{index}_n_classes"], dtype=np.intp)
        nodes, values = arrays[f"tree{index}_nodes"], arrays[f"tree{index}_values"]
        check_tree_arrays(nodes, values, n_features=n_features, n_outputs=n_outputs, n_classes=n_classes)
        structure = Tree(n_features, n_classes, n_outputs)
        structure.__setstate__(  # the node table as arrays: scikit-learn checks its dtype against its own layout
            {
                "max_depth": int(arrays[f"tree{index}_max_depth"]),
                "node_count": len(nodes),
                "nodes": nodes,
                "values": values,
            }
        )
        tree = tree_class(**tree_params)
        tree.tree_ = structure
        tree.n_features_in_ = n_features
        tree.n_outputs_ = n_outputs
        tree.max_features_ = int(arrays[f"tree{index}_max_features"])
        if not regression:
            tree.classes_ = classes
            tree.n_classes_ = int(n_classes[0])
        trees.append(tree)
    if not forest:
        return trees[0]
    forest = (RandomForestRegressor if regression else RandomForestClassifier)(**params)
    forest.estimators_ = trees
    forest.estimator_ = tree_class()
    forest.n_features_in_ = n_features
    forest.n_outputs_ = n_outputs
    if not regression:
        forest.classes_ = classes
        forest.n_classes_ = int(len(classes))
    return forest


# ----------------------------------------------------------------------------------------------------------
# The formats


@dataclass(frozen=True)
class ModelFile:
    """One model format: its file, how a fitted model is written into it and how it is rebuilt from it.

    Attributes:
        filename: the file in the run folder.
        save: ``save(spec, model, split, config) -> bytes``.
        load: ``load(file, spec, state, *, n_inputs) -> fitted estimator`` (``state``: the run's
            ``preprocessing.json``; ``n_inputs``: the model inputs its encoder makes).
        describe: ``describe(model) -> str``: the file's content in words (``preprocessing.json``'s
            ``model_format``).
    """

    filename: str
    save: Callable[[MethodSpec, Any, Any, Mapping[str, Any]], bytes]
    load: Callable[..., Any]
    describe: Callable[[Any], str]


def _describe_arrays(model: Any) -> str:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(final, "coef_"):
        return "numpy arrays: scaler statistics, coefficients, intercepts"
    if hasattr(final, "estimators_"):
        return "numpy arrays: every tree's nodes and values"
    return "numpy arrays: the tree's nodes and values"


#: Every model format but ``none``, by ``methods.MethodSpec.model_format``.
MODEL_FILES: dict[str, ModelFile] = {
    "network": ModelFile(
        MODEL_FILENAME,
        lambda spec, model, split, config: network_file(model, split, spec.id, config),
        load_network,
        lambda model: "torch state dicts (weights_only)",
    ),
    "catboost": ModelFile(
        CATBOOST_FILENAME,
        lambda spec, model, split, config: catboost_bytes(model),
        load_catboost,
        lambda model: "CatBoost binary model (cbm)",
    ),
    "sklearn_arrays": ModelFile(
        ARRAYS_FILENAME,
        lambda spec, model, split, config: npz_bytes(sklearn_arrays(spec.id, model)),
        load_sklearn,
        _describe_arrays,
    ),
}


def model_file(spec: MethodSpec) -> ModelFile | None:
    """The model format of ``spec`` (None for ``none``: the method saves no model)."""
    if spec.model_format == "none":
        return None
    return MODEL_FILES[spec.model_format]
