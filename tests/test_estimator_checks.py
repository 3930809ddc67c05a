"""scikit-learn's own estimator checks for every neural estimator of the method registry.

The estimators are run with a tiny network and few epochs so the whole suite takes seconds. Every check
that is expected to fail is listed in ``EXPECTED_FAILURES`` with its reason; nothing else is skipped.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from methods import neural_estimators

ESTIMATORS = neural_estimators()

TINY = {"nr_epochs": 2, "hidden_size": 8, "nr_blocks": 1, "device": "cpu"}

_FEW_EPOCHS = (
    "2 epochs (for speed) leave the training score below the check's floor (accuracy 0.83, R² 0.5); "
    "it passes with 30 epochs, and learning is tested by test_models.py::test_learns_above_a_floor"
)
_SUBSET_INVARIANCE = (
    "float32 network: matrix products of a 20-row batch and of single rows round differently (about 1e-7 "
    "relative), which the regressor's target scale can lift above the check's rtol=1e-7 (whether it does "
    "depends on the kernels torch picks, so it may pass)"
)

#: (method id, mode) -> {check name: reason}. Listed failures that happen to pass are reported as XPASS.
EXPECTED_FAILURES: dict[tuple[str, str], dict[str, str]] = {
    ("inn", "classification"): {"check_classifiers_train": _FEW_EPOCHS},
    ("tabresnet", "classification"): {"check_classifiers_train": _FEW_EPOCHS},
    ("inn", "regression"): {
        "check_regressors_train": _FEW_EPOCHS,
        "check_methods_subset_invariance": _SUBSET_INVARIANCE,
    },
    ("tabresnet", "regression"): {"check_regressors_train": _FEW_EPOCHS},
    ("senn", "classification"): {"check_classifiers_train": _FEW_EPOCHS},
    ("senn", "regression"): {"check_regressors_train": _FEW_EPOCHS},
    ("disenn", "classification"): {"check_classifiers_train": _FEW_EPOCHS},
    ("disenn", "regression"): {"check_regressors_train": _FEW_EPOCHS},
    ("inn_shapley", "classification"): {"check_classifiers_train": _FEW_EPOCHS},
    ("inn_shapley", "regression"): {"check_regressors_train": _FEW_EPOCHS},
    ("cnn", "classification"): {"check_classifiers_train": _FEW_EPOCHS},
    ("cnn", "regression"): {"check_regressors_train": _FEW_EPOCHS},
}
_KEY_OF = {estimator_type: key for key, estimator_type in ESTIMATORS.items()}


def expected_failed_checks(estimator) -> dict[str, str]:
    return EXPECTED_FAILURES[_KEY_OF[type(estimator)]]


def test_every_registered_estimator_is_checked():
    assert set(EXPECTED_FAILURES) == set(ESTIMATORS)


@parametrize_with_checks(
    [estimator_type(**TINY) for estimator_type in ESTIMATORS.values()], expected_failed_checks=expected_failed_checks
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
