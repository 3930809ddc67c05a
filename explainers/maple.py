"""MAPLE (Plumb, Molitor & Talwalkar 2018): local linear models weighted by a random forest's leaves.

A random forest is fitted to the model's outputs on the background rows (80 %; 20 % validate). A training row's
weight for an explained row ``x`` is ``Σ_trees 1[same leaf as x] / (rows in that leaf)``; a ridge regression
(``α = 0.001``, intercept) weighted so is ``x``'s local model. MAPLE keeps the ``k`` input columns the forest
split on first (root impurity summed over trees) with ``k`` chosen by the validation error of the local models.
As in XAI-Bench, the attribution is ``coef ⊙ (x − mean)`` (``mean``: of the background rows); with a feature
grouping the columns of a feature are summed. Settings are XAI-Bench's (200 trees, ``min_samples_leaf`` 10,
``max_features`` 0.5).

Everything is batched: the leaf weights of all rows are one sparse product, and all rows' weighted ridge
problems are solved together from their weighted Gram matrices (the closed form scikit-learn's ``Ridge``
computes with ``sample_weight``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from explainers.posthoc import PostHocExplainer, PostHocOptions, Predict, predict_outputs
from models.attribution import Attribution

if TYPE_CHECKING:
    from typing import Unpack

#: Explained rows per batched solve (the weights are ``rows × training rows``).
_ROWS_PER_SOLVE = 2048


class Maple(PostHocExplainer):
    """MAPLE's local linear models as attributions.

    Args:
        predict: the model, ``(M, D) -> (M,)`` or ``(M, C)``.
        background: the rows the forest and the local models are fitted on ``(B, D)``.
        n_estimators: trees of the forest.
        min_samples_leaf: the forest's smallest leaf.
        max_features: features tried per split (fraction).
        regularization: the ridge penalty ``α``.
        validation_fraction: background rows held out to choose how many columns to keep.
        seed: seed of the split and the forest.
        input_to_feature, feature_names, output_name, chunk_size: see :class:`~explainers.posthoc.PostHocExplainer`.
    """

    id = "maple"
    exact = False

    def __init__(
        self,
        predict: Predict,
        background: np.ndarray,
        *,
        n_estimators: int = 200,
        min_samples_leaf: int = 10,
        max_features: float = 0.5,
        regularization: float = 0.001,
        validation_fraction: float = 0.2,
        seed: int = 0,
        **options: Unpack[PostHocOptions],
    ) -> None:
        super().__init__(predict, background, **options)
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction=}")
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.regularization = regularization
        self.validation_fraction = validation_fraction
        self.seed = seed
        self._fitted = False

    # ------------------------------------------------------------------------------------------------ fit
    def fit(self) -> Maple:
        """Fit the forest and choose the kept columns (done by the first :meth:`explain`)."""
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.model_selection import train_test_split

        responses = predict_outputs(self.predict, self.background, self.chunk_size)
        X_train, X_valid, y_train, y_valid = train_test_split(
            self.background, responses, test_size=self.validation_fraction, random_state=self.seed
        )
        forest = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            random_state=self.seed,
        )
        forest.fit(X_train, y_train[:, 0] if y_train.shape[1] == 1 else y_train)
        self.forest_, self.X_train_, self.y_train_ = forest, X_train, y_train
        self.mean_ = self.background.mean(axis=0)
        # Leaf membership of the training rows as one sparse (rows × all leaves) matrix, each leaf's column
        # divided by its size: the weights of any rows are then one sparse product.
        self.leaf_offsets_ = np.cumsum([0] + [tree.tree_.node_count for tree in forest.estimators_])
        train_leaves = forest.apply(X_train) + self.leaf_offsets_[:-1][None, :]
        sizes = np.bincount(train_leaves.ravel(), minlength=self.leaf_offsets_[-1]).astype(np.float64)
        self.leaf_share_ = np.divide(1.0, sizes, out=np.zeros_like(sizes), where=sizes > 0)
        self.train_leaves_ = self._membership(train_leaves, np.ones(train_leaves.size))
        # Column scores: impurity at the root of every tree, credited to the root's split column.
        scores = np.zeros(X_train.shape[1])
        for tree in forest.estimators_:
            if tree.tree_.feature[0] >= 0:
                scores[tree.tree_.feature[0]] += tree.tree_.impurity[0]
        ranking = np.argsort(-scores, kind="stable")
        errors = []
        for keep in range(1, X_train.shape[1] + 1):
            columns = np.sort(ranking[:keep])
            _, _, fitted = self._local_models(X_valid, columns)
            errors.append(np.sqrt(np.mean((fitted - y_valid) ** 2)))
        self.columns_ = np.sort(ranking[: int(np.argmin(errors)) + 1])
        self._fitted = True
        return self

    def _membership(self, leaves: np.ndarray, data: np.ndarray):
        from scipy import sparse

        rows = np.repeat(np.arange(leaves.shape[0]), leaves.shape[1])
        return sparse.csr_matrix((data, (rows, leaves.ravel())), shape=(leaves.shape[0], self.leaf_offsets_[-1]))

    def weights(self, X: np.ndarray) -> np.ndarray:
        """MAPLE's weight of every training row for every row of ``X``.

        Shape:
            X ``(N, D)`` -> ``(N, n_train)``
        """
        leaves = self.forest_.apply(X) + self.leaf_offsets_[:-1][None, :]
        shares = self._membership(leaves, self.leaf_share_[leaves.ravel()])
        return np.asarray((shares @ self.train_leaves_.T).todense())

    def _local_models(self, X: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coefficients ``(N, k, C)``, intercepts ``(N, C)`` and fits at ``X`` ``(N, C)`` of the local ridges."""
        Z = self.X_train_[:, columns]
        Y = self.y_train_
        coef = np.empty((X.shape[0], columns.size, Y.shape[1]))
        intercept = np.empty((X.shape[0], Y.shape[1]))
        for start in range(0, X.shape[0], _ROWS_PER_SOLVE):
            stop = min(start + _ROWS_PER_SOLVE, X.shape[0])
            w = self.weights(X[start:stop])  # (n, M)
            total = w.sum(axis=1)[:, None]
            mean_z = (w @ Z) / total  # weighted means, as Ridge centres with sample weights
            mean_y = (w @ Y) / total
            # Σ_m w_m z_m z_mᵀ for every row as one matrix product with the (M, k·k) outer products.
            k, c = columns.size, Y.shape[1]
            gram = (w @ (Z[:, :, None] * Z[:, None, :]).reshape(-1, k * k)).reshape(-1, k, k)
            gram -= total[:, :, None] * mean_z[:, :, None] * mean_z[:, None, :]
            cross = (w @ (Z[:, :, None] * Y[:, None, :]).reshape(-1, k * c)).reshape(-1, k, c)
            cross -= total[:, :, None] * mean_z[:, :, None] * mean_y[:, None, :]
            gram += self.regularization * np.eye(columns.size)[None]
            coef[start:stop] = np.linalg.solve(gram, cross)
            intercept[start:stop] = mean_y - np.einsum("ni,nic->nc", mean_z, coef[start:stop])
        fitted = np.einsum("ni,nic->nc", X[:, columns], coef) + intercept
        return coef, intercept, fitted

    # -------------------------------------------------------------------------------------------- explain
    def explain(self, X: Any) -> Attribution:
        """``coef ⊙ (x − mean)`` per feature ``(N, F, C)``; ``extras``: the local models' ``coef`` ``(N, D, C)``."""
        X = self.check_rows(X)
        if not self._fitted:
            self.fit()
        output = self.outputs(X)
        local, intercept, fitted = self._local_models(X, self.columns_)
        coef = np.zeros((X.shape[0], X.shape[1], output.shape[1]))
        coef[:, self.columns_, :] = local
        values = self.grouping.aggregate(coef * (X - self.mean_)[:, :, None])
        return self.attribution(
            values,
            output,
            reference=self.mean_,
            reference_name="background mean",
            extras={"coef": coef, "intercept": intercept, "local_prediction": fitted},
        )
