"""Import-safe model library: networks, training, estimators, baselines, the explanation type (``Attribution``), the
contextual-decomposition rules, metrics and Shapley combinatorics. It imports nothing from the packages above it."""
