"""Tests of ``data/``: loading (embedded and fake OpenML caches, user files), task checks, column drops, the
seeded split and the encodings with their input-to-feature map. Offline and fast: the network is replaced by a
failing stub and every dataset except the embedded credit-g is a tiny synthetic file written to ``tmp_path``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from data import (
    EMBEDDED_CACHE_DIR,
    MISSING_CATEGORY,
    DataError,
    PreparedSplit,
    RawDataset,
    check_task,
    load_dataset,
    prepare_split,
)
from errors import UserError

TINY_ARFF = """% a tiny dataset in OpenML's ARFF flavour
@RELATION tiny
@ATTRIBUTE size NUMERIC
@ATTRIBUTE colour {red,green,blue}
@ATTRIBUTE label {no,yes}
@DATA
1.0,red,no
2.5,green,yes
?,blue,no
4.0,?,yes
5.0,red,no
6.0,green,yes
7.0,blue,no
8.5,red,yes
9.0,green,no
10.0,blue,yes
"""


def _description(dataset_id: int, name: str = "tiny", target: str = "label") -> str:
    return (
        '<oml:data_set_description xmlns:oml="http://openml.org/openml">\n'
        f"  <oml:id>{dataset_id}</oml:id>\n  <oml:name>{name}</oml:name>\n  <oml:version>1</oml:version>\n"
        f"  <oml:format>ARFF</oml:format>\n  <oml:url>offline://{dataset_id}/dataset.arff</oml:url>\n"
        f"  <oml:default_target_attribute>{target}</oml:default_target_attribute>\n"
        "  <oml:status>active</oml:status>\n</oml:data_set_description>\n"
    )


def _fake_cache(root: Path, dataset_id: int, name: str = "tiny") -> Path:
    """An OpenML cache root holding one read-only dataset, like the shared cache."""
    folder = root / "org" / "openml" / "www" / "datasets" / str(dataset_id)
    folder.mkdir(parents=True)
    (folder / "description.xml").write_text(_description(dataset_id, name))
    (folder / "dataset.arff").write_text(TINY_ARFF)
    for path in (folder / "description.xml", folder / "dataset.arff", folder):
        path.chmod(0o555 if path.is_dir() else 0o444)
    return root


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def _raw(X: pd.DataFrame, y: pd.Series, categorical: list[bool] | None = None) -> RawDataset:
    if categorical is None:
        categorical = [not pd.api.types.is_numeric_dtype(X[c]) for c in X.columns]
    return RawDataset("synthetic", "synthetic", X, y.rename("target"), categorical, "target")


def _mixed_raw(n: int = 120, n_classes: int = 2, seed: int = 0) -> RawDataset:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["x", "y"], n),
        }
    )
    y = pd.Series(rng.choice([f"c{i}" for i in range(n_classes)], n))
    return _raw(X, y)


@pytest.fixture
def offline_openml(no_network, tmp_path):
    """openml offline (conftest's ``no_network``) and the path of its user cache."""
    return no_network, tmp_path / "user_openml_cache"


@pytest.fixture(scope="module")
def credit_g() -> RawDataset:
    return load_dataset(31)


# ---------------------------------------------------------------------------------------------------------------
# Loading


def test_embedded_credit_g_loads_without_touching_the_cache(credit_g):
    before = _tree_state(EMBEDDED_CACHE_DIR)
    raw = load_dataset(np.int64(31))
    assert _tree_state(EMBEDDED_CACHE_DIR) == before
    assert (raw.name, raw.dataset_id, raw.target) == ("credit-g", 31, "class")
    assert raw.X.shape == (1000, 20) and len(raw.y) == 1000
    assert sum(raw.categorical) == 13 and len(raw.categorical) == 20
    assert set(raw.y.astype(str)) == {"good", "bad"}


def test_user_cache_is_read_first_and_never_modified(tmp_path, offline_openml):
    openml, user_cache = offline_openml
    policy = (openml.config.retry_policy, openml.config.connection_n_retries)
    root = _fake_cache(tmp_path / "cache", 31, name="not-credit-g")
    before = _tree_state(root)
    raw = load_dataset(31, openml_cache_dir=root)
    assert _tree_state(root) == before
    assert raw.name == "not-credit-g" and raw.X.shape == (10, 2)
    assert raw.categorical == [False, True]
    assert raw.X["size"].isna().sum() == 1 and raw.X["colour"].isna().sum() == 1
    # The openml configuration is restored afterwards.
    assert Path(openml.config._root_cache_directory) == user_cache
    assert (openml.config.retry_policy, openml.config.connection_n_retries) == policy


def test_openml_target_override_and_unknown_target(tmp_path, offline_openml):
    root = _fake_cache(tmp_path / "cache", 424242)
    raw = load_dataset(424242, openml_cache_dir=root, target="colour")
    assert raw.target == "colour" and list(raw.X.columns) == ["size", "label"]
    with pytest.raises(DataError, match=r"'nope' is not in OpenML dataset 424242.*size, colour, label"):
        load_dataset(424242, openml_cache_dir=root, target="nope")


def test_id_in_no_cache_with_openml_unreachable_fails_fast(tmp_path, offline_openml):
    openml, user_cache = offline_openml
    empty = tmp_path / "empty_cache"
    empty.mkdir()
    policy = (openml.config.retry_policy, openml.config.connection_n_retries)
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        load_dataset(987654, openml_cache_dir=empty)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "dataset 987654 is not in the OpenML cache" in message and "could not be reached" in message
    assert str(empty) in message and str(EMBEDDED_CACHE_DIR) in message and "\n" not in message
    assert isinstance(info.value, UserError)
    assert (openml.config.retry_policy, openml.config.connection_n_retries) == policy
    assert Path(openml.config._root_cache_directory) == user_cache


def test_id_unknown_to_openml(monkeypatch, offline_openml):
    openml, _ = offline_openml

    def unknown(*args, **kwargs):
        raise openml.exceptions.OpenMLServerException("Unknown dataset", code=111)

    monkeypatch.setattr(openml._api_calls, "_perform_api_call", unknown)
    with pytest.raises(DataError, match="OpenML has no dataset with id 987654"):
        load_dataset(987654)


def test_corrupt_cached_dataset_is_reported(tmp_path, offline_openml):
    root = _fake_cache(tmp_path / "cache", 424243)
    arff = root / "org" / "openml" / "www" / "datasets" / "424243" / "dataset.arff"
    arff.chmod(0o644)
    arff.write_text(TINY_ARFF.replace("2.5,green", "two,green"))
    with pytest.raises(DataError, match=r"dataset 424243 in the OpenML cache .* could not be read"):
        load_dataset(424243, openml_cache_dir=root)


@pytest.mark.parametrize("content", ["<oml:data_set_description garbage", "<other>not a description</other>", ""])
def test_corrupt_cached_description_is_reported_as_corrupt_not_as_a_network_error(tmp_path, offline_openml, content):
    root = _fake_cache(tmp_path / "cache", 424244)
    description = root / "org" / "openml" / "www" / "datasets" / "424244" / "description.xml"
    description.chmod(0o644)
    description.write_text(content)
    with pytest.raises(DataError, match=r"cached description of dataset 424244 .* is corrupt") as error:
        load_dataset(424244, openml_cache_dir=root)
    assert "reached" not in str(error.value) and "Connection" not in str(error.value)


def test_duplicated_csv_column_names_are_an_error(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("a,b,a,label\n1,2,3,x\n4,5,6,y\n")  # pandas would silently rename the second a to a.1
    with pytest.raises(DataError, match="duplicated column names: a"):
        load_dataset(dataset_path=path)


def test_a_file_never_shares_a_results_folder_with_an_openml_id_or_another_file(tmp_path):
    from data import file_dataset_key

    first, second = tmp_path / "one" / "31.csv", tmp_path / "two" / "31.csv"
    for path, rows in ((first, _tiny_frame()), (second, _tiny_frame().iloc[::-1])):
        path.parent.mkdir()
        rows.to_csv(path, index=False)
    keys = {file_dataset_key(first), file_dataset_key(second)}
    assert len(keys) == 2 and "31" not in keys and all(key.startswith("31-") for key in keys)
    assert load_dataset(dataset_path=first).dataset_id == file_dataset_key(first)
    copy = tmp_path / "31.csv"
    copy.write_bytes(first.read_bytes())
    assert file_dataset_key(copy) == file_dataset_key(first)  # the same data is the same dataset


@pytest.mark.parametrize(
    "kwargs", [{}, {"dataset_id": 31, "dataset_path": "x.csv"}, {"dataset_id": -3}, {"dataset_id": "31"}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(DataError):
        load_dataset(**kwargs)


def test_missing_cache_dir_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(31, openml_cache_dir=tmp_path / "nowhere")


def _tiny_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "size": [1.0, 2.5, np.nan, 4.0, 5.0, 6.0],
            "colour": ["red", "green", "blue", None, "red", "green"],
            "flag": [True, False, True, False, True, False],
            "label": ["no", "yes", "no", "yes", "no", "yes"],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".arff", ".csv.gz"])
def test_user_files_load_with_last_column_as_default_target(tmp_path, suffix):
    path = tmp_path / f"mydata{suffix}"
    if suffix == ".arff":
        path.write_text(TINY_ARFF)
    elif suffix == ".parquet":
        _tiny_frame().to_parquet(path)
    else:
        _tiny_frame().to_csv(path, index=False)
    raw = load_dataset(dataset_path=path)
    assert raw.name == "mydata" and re.fullmatch(r"mydata-[0-9a-f]{8}", raw.dataset_id)
    assert raw.target == "label"
    assert raw.X.columns[0] == "size" and raw.categorical[0] is False
    assert all(raw.categorical[1:])  # strings, nominal and booleans are categorical
    assert raw.X["colour"].isna().sum() == 1


def test_user_file_target_option(tmp_path):
    path = tmp_path / "d.csv"
    _tiny_frame().to_csv(path, index=False)
    raw = load_dataset(dataset_path=path, target="colour")
    assert raw.target == "colour" and "label" in raw.X.columns
    with pytest.raises(DataError, match=r"'nope' is not in .*d\.csv.*size, colour, flag, label"):
        load_dataset(dataset_path=path, target="nope")


def test_file_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(dataset_path=tmp_path / "missing.csv")
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown file type"):
        load_dataset(dataset_path=tmp_path / "d.xlsx")
    (tmp_path / "bad.parquet").write_text("not parquet at all")
    with pytest.raises(DataError, match=r"cannot read .*bad\.parquet"):
        load_dataset(dataset_path=tmp_path / "bad.parquet")
    (tmp_path / "bad.arff").write_text("@RELATION x\n@ATTRIBUTE a NUMERIC\n@DATA\nnot-a-number\n")
    with pytest.raises(DataError, match=r"cannot read .*bad\.arff"):
        load_dataset(dataset_path=tmp_path / "bad.arff")


# ---------------------------------------------------------------------------------------------------------------
# Task checks


def test_continuous_target_in_classification_mode():
    raw = _raw(pd.DataFrame({"a": np.arange(20.0)}), pd.Series(np.linspace(0, 1, 20)))
    with pytest.raises(DataError, match="--mode regression"):
        check_task(raw, "classification")
    assert check_task(raw, "regression").task == "regression"


def test_non_numeric_target_in_regression_mode():
    raw = _raw(pd.DataFrame({"a": np.arange(20.0)}), pd.Series(["u", "v"] * 10))
    with pytest.raises(DataError, match="--mode classification"):
        prepare_split(raw, mode="regression")


def test_single_class_and_rare_class():
    X = pd.DataFrame({"a": np.arange(20.0)})
    with pytest.raises(DataError, match="single class"):
        check_task(_raw(X, pd.Series(["u"] * 20)))
    with pytest.raises(DataError, match=r"fewer than 2 examples \(w \(1\)\)"):
        check_task(_raw(X, pd.Series(["u"] * 10 + ["v"] * 9 + ["w"])))


def test_integer_valued_float_target_is_a_class_label_and_missing_targets_are_dropped():
    y = pd.Series([0.0, 1.0] * 10 + [np.nan, np.nan])
    raw = _raw(pd.DataFrame({"a": np.arange(22.0)}), y)
    info = check_task(raw)
    assert (info.task, info.n_classes, info.n_missing_target) == ("binary", 2, 2)
    split = prepare_split(raw)
    assert split.classes == ["0", "1"] and split.n_missing_target == 2
    assert any("missing target" in note for note in split.notes)
    used = np.concatenate([split.train_index, split.test_index])
    assert sorted(used) == list(range(20))


# ---------------------------------------------------------------------------------------------------------------
# Split


def test_split_is_deterministic_by_seed_and_stratified(credit_g):
    first = prepare_split(credit_g, seed=3)
    again = prepare_split(credit_g, seed=3)
    other = prepare_split(credit_g, seed=4)
    np.testing.assert_array_equal(first.test_index, again.test_index)
    np.testing.assert_array_equal(first.X_train, again.X_train)
    assert not np.array_equal(np.sort(first.test_index), np.sort(other.test_index))
    assert isinstance(first, PreparedSplit)
    assert (first.n_train, first.n_test, first.n_features, first.task, first.n_classes) == (800, 200, 20, "binary", 2)
    # Stratified: credit-g is 70 % good, 30 % bad, and so is the test part exactly.
    good = first.classes.index("good")
    assert (first.y_test == good).sum() == 140 and (first.y_train == good).sum() == 560
    assert first.X_train.dtype == np.float32 and first.y_train.dtype == np.int64
    # The row positions point at the rows that were encoded.
    np.testing.assert_array_equal(first.transform(credit_g.X.iloc[first.test_index]), first.X_test)
    np.testing.assert_array_equal(first.frame_test.index.to_numpy(), first.test_index)
    assert list(first.decode_labels(first.y_test[:5])) == list(credit_g.y.iloc[first.test_index[:5]].astype(str))


def test_validation_part_keeps_the_test_rows(credit_g):
    plain = prepare_split(credit_g, seed=1)
    hpo = prepare_split(credit_g, seed=1, validation_size=0.2)
    np.testing.assert_array_equal(plain.test_index, hpo.test_index)
    assert (hpo.n_train, hpo.n_valid, hpo.n_test) == (600, 200, 200)
    parts = np.concatenate([hpo.train_index, hpo.valid_index, hpo.test_index])
    assert sorted(parts) == list(range(1000))
    assert hpo.X_valid.shape == (200, hpo.n_inputs) and np.isfinite(hpo.X_valid).all()
    good = hpo.classes.index("good")
    assert (hpo.y_valid == good).sum() == 140


def test_regression_split_is_not_stratified():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=50), "c": rng.choice(["p", "q"], 50)})
    y = pd.Series(rng.normal(100, 30, 50))
    split = prepare_split(_raw(X, y), mode="regression", seed=7)
    _, expected_test = train_test_split(np.arange(50), test_size=0.2, random_state=7)
    np.testing.assert_array_equal(split.test_index, expected_test)
    assert split.task == "regression" and split.n_classes is None and split.classes is None
    assert split.y_train.dtype == np.float64
    np.testing.assert_allclose(split.y_test, y.to_numpy()[split.test_index])
    assert split.encoding_type == "target" and split.input_names == ["a", "c"]


# ---------------------------------------------------------------------------------------------------------------
# Encodings and the feature map


def test_one_hot_feature_map():
    raw = _mixed_raw(n_classes=2)
    split = prepare_split(raw, encoding_type="onehot")
    assert split.feature_names == ["age", "colour", "income", "city"]
    assert split.input_names == ["age", "colour=blue", "colour=green", "colour=red", "income", "city=x", "city=y"]
    np.testing.assert_array_equal(split.input_to_feature, [0, 1, 1, 1, 2, 3, 3])
    red = split.input_names.index("colour=red")
    expected = (raw.X["colour"].iloc[split.test_index] == "red").to_numpy()
    np.testing.assert_array_equal(split.X_test[:, red], expected.astype(np.float32))
    # Numerical inputs are standardised on the training rows.
    np.testing.assert_allclose(split.X_train[:, 0].mean(), 0, atol=1e-5)


def test_paper_encoding_is_target_for_binary_and_one_hot_for_multiclass():
    binary = prepare_split(_mixed_raw(n_classes=2))
    assert binary.encoding_type == "target" and binary.input_names == binary.feature_names
    np.testing.assert_array_equal(binary.input_to_feature, np.arange(4))
    multi = prepare_split(_mixed_raw(n_classes=3))
    assert multi.encoding_type == "onehot" and multi.n_classes == 3 and multi.task == "multiclass"
    forced = prepare_split(_mixed_raw(n_classes=3), encoding_type="target")
    per_class = [f"{feature}[{label}]" for feature in ("colour", "city") for label in ("c0", "c1", "c2")]
    assert forced.input_names == ["age", *per_class[:3], "income", *per_class[3:]]
    np.testing.assert_array_equal(forced.input_to_feature, [0, 1, 1, 1, 2, 3, 3, 3])


def test_target_encodings_are_class_frequencies_for_classification_and_scaled_for_regression():
    binary = prepare_split(_mixed_raw(n_classes=2))
    encoded = np.concatenate([binary.X_train[:, [1, 3]], binary.X_test[:, [1, 3]]])
    assert encoded.min() >= 0 and encoded.max() <= 1  # P(class | category), not standardised
    assert not np.allclose(binary.X_train[:, [1, 3]].mean(axis=0), 0, atol=0.05)
    raw = _mixed_raw()
    rng = np.random.default_rng(1)
    regression = _raw(raw.X, pd.Series(rng.normal(5000, 800, len(raw.X))))
    split = prepare_split(regression, mode="regression")
    np.testing.assert_allclose(split.X_train[:, [1, 3]].mean(axis=0), 0, atol=1e-6)  # thousands -> standardised


def test_ordinal_codes_for_tabnet():
    raw = _mixed_raw()
    split = prepare_split(raw, encoding_type="ordinal")
    assert split.categorical_input_indices == [1, 3]
    assert split.categorical_cardinalities == [4, 3]  # k categories + 1 code for missing / unseen
    codes = split.X_test[:, [1, 3]]
    assert np.array_equal(codes, np.round(codes)) and codes.min() >= 0
    new = raw.X.iloc[:2].copy()
    new["colour"] = ["purple", None]
    np.testing.assert_array_equal(split.transform(new)[:, 1], [3, 3])
    assert prepare_split(raw).categorical_input_indices is None


def test_column_drops():
    rng = np.random.default_rng(0)
    n = 100
    X = pd.DataFrame(
        {
            "good": rng.normal(size=n),
            "mostly_missing": np.where(np.arange(n) < 95, np.nan, 1.0),
            "constant": np.ones(n),
            "row_id": [f"id{i}" for i in range(n)],
            "category": rng.choice(["a", "b"], n),
        }
    )
    split = prepare_split(_raw(X, pd.Series(rng.choice(["u", "v"], n))))
    assert split.feature_names == ["good", "category"]
    assert set(split.dropped_columns) == {"mostly_missing", "constant", "row_id"}
    assert "missing" in split.dropped_columns["mostly_missing"]
    assert split.dropped_columns["constant"] == "a single unique value"
    assert "unique values" in split.dropped_columns["row_id"]
    assert list(split.frame_train.columns) == ["good", "category"]


def test_all_columns_dropped_is_an_error():
    X = pd.DataFrame({"constant": np.ones(20)})
    with pytest.raises(DataError, match="no feature column"):
        prepare_split(_raw(X, pd.Series(["u", "v"] * 10)))


@pytest.mark.parametrize("encoding_type", ["paper", "onehot", "target", "ordinal"])
def test_missing_and_infinite_values_never_reach_the_matrices(encoding_type):
    rng = np.random.default_rng(1)
    n = 60
    X = pd.DataFrame({"num": rng.normal(size=n), "cat": rng.choice(["a", "b", "c"], n).astype(object)})
    X.loc[::7, "num"] = np.nan
    X.loc[3, "num"] = np.inf
    X.loc[::5, "cat"] = None
    split = prepare_split(_raw(X, pd.Series(rng.choice(["u", "v", "w"], n))), encoding_type=encoding_type)
    for matrix in (split.X_train, split.X_test):
        assert matrix.dtype == np.float32 and np.isfinite(matrix).all()
    assert (split.frame_train["cat"] == MISSING_CATEGORY).any()
    if split.encoding_type == "onehot":
        assert f"cat={MISSING_CATEGORY}" in split.input_names
    # A missing numerical value is 0 after scaling.
    missing_rows = np.isnan(split.frame_train["num"].to_numpy())
    assert missing_rows.any() and (split.X_train[missing_rows, 0] == 0).all()


def test_bad_options():
    raw = _mixed_raw()
    with pytest.raises(ValueError, match="mode"):
        prepare_split(raw, mode="ranking")
    with pytest.raises(ValueError, match="encoding_type"):
        prepare_split(raw, encoding_type="hash")
    with pytest.raises(ValueError, match="validation_size"):
        prepare_split(raw, validation_size=0.9)
