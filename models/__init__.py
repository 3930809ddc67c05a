"""Import-safe model library: INN and TabResNet networks, training, estimators, explainers and baselines."""
