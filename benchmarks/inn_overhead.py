"""What INN's step costs beyond TabResNet's, piece by piece: the wide head, the per-example product, the L1 term.

INN and TabResNet share the backbone and the training loop; INN differs only in its head. This script trains
four networks with the real training loop (``train_snapshot_ensemble``, one thread, the same seed and data)
and adds INN's pieces one at a time:

- ``tabresnet``: the black box, a ``hidden -> C`` output layer;
- ``wide head``: TabResNet with INN's ``hidden -> (F + 1) · C`` output layer, of which it uses the first ``C``
  outputs (the cost of generating the weights, without using them);
- ``inn, weight_norm 0``: INN without the L1 term (adds the per-example product ``[x, 1] · W(x)``);
- ``inn``: INN as trained by default (adds the L1 term ``weight_norm · mean|W(x)|``).

The fits take turns (round-robin over ``--repeats`` rounds), so that a slow spell of the machine hits all of
them alike; the table shows CPU milliseconds per step (minimum over the rounds) and the median over the rounds
of each network's CPU time divided by TabResNet's in the same round.

Usage (from the repository root):
    python -m benchmarks.inn_overhead                       # credit-g (embedded), 20 epochs, 15 rounds
    python -m benchmarks.inn_overhead --dataset_id 1489 --openml_cache_dir /work/shared/openml_cache
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset_id", type=int, default=31)
    parser.add_argument("--openml_cache_dir", default=None, help="read-only OpenML cache (31 is embedded)")
    parser.add_argument("--nr_epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15, help="rounds; every network is fitted once per round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import numpy as np
    import torch

    from data import load_dataset, prepare_split
    from models._runtime import limit_threads
    from models.networks import INNNetwork, NetworkOutput, TabResNetNetwork
    from models.training import TaskLoss, TrainingConfig, add_l1, batch_bounds, train_snapshot_ensemble

    class WideHeadNetwork(INNNetwork):
        """INN's head width with TabResNet's use of it: the first ``C`` outputs are the logits."""

        def forward(self, x: torch.Tensor) -> NetworkOutput:
            return NetworkOutput(self.head(self.backbone(x))[:, : self.n_outputs])

    raw = load_dataset(args.dataset_id, openml_cache_dir=args.openml_cache_dir)
    split = prepare_split(raw, mode="classification", seed=args.seed)
    n_classes = int(np.unique(split.y_train).size)
    objective = "binary" if n_classes == 2 else "multiclass"
    n_outputs = 1 if n_classes == 2 else n_classes
    _, codes = np.unique(split.y_train, return_inverse=True)
    x = torch.as_tensor(split.X_train, dtype=torch.float32)
    y = torch.as_tensor(codes, dtype=torch.float32 if objective == "binary" else torch.int64)
    steps = args.nr_epochs * len(batch_bounds(x.shape[0], TrainingConfig.batch_size))
    cases = (
        ("tabresnet", TabResNetNetwork, 0.0),
        ("wide head", WideHeadNetwork, 0.0),
        ("inn, weight_norm 0", INNNetwork, 0.0),
        ("inn", INNNetwork, 0.1),
    )
    task_loss = TaskLoss(objective)

    def fit(network_type, weight_norm: float) -> float:
        torch.manual_seed(args.seed)
        network = network_type(n_inputs=x.shape[1], n_outputs=n_outputs)
        config = TrainingConfig(nr_epochs=args.nr_epochs)

        def loss(net, xb, yb, output, mixing):  # INN's hook: the task loss plus its L1 term
            value = task_loss(output.logits, yb, mixing)
            return add_l1(value, output.weights, weight_norm) if weight_norm > 0 else value

        start = time.process_time()
        train_snapshot_ensemble(network, x, y, loss=loss, config=config, seed=args.seed)
        return time.process_time() - start

    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    with limit_threads(1):
        for _ in range(args.repeats):
            for name, network_type, weight_norm in cases:
                times[name].append(fit(network_type, weight_norm))
    print(
        f"dataset {args.dataset_id}: {x.shape[1]} inputs, {n_outputs} output(s), {steps} steps per fit, "
        f"{args.repeats} rounds, torch {torch.__version__}\n"
    )
    print("| network | CPU ms/step (min) | / TabResNet (median of rounds) | added by this piece |")
    print("|---|---|---|---|")
    previous = 1.0
    for name, _, _ in cases:
        ratio = statistics.median(t / b for t, b in zip(times[name], times["tabresnet"], strict=True))
        added = "" if name == "tabresnet" else f"{ratio - previous:+.3f}"
        print(f"| {name} | {1e3 * min(times[name]) / steps:.3f} | {ratio:.3f} | {added} |")
        previous = ratio
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
