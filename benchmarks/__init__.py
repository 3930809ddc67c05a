"""Speed, memory and accuracy benchmarks, run as modules from the repository root
(``python -m benchmarks.train_speed``); see ``benchmarks/README.md``."""
