"""Where the time of an INN (or TabResNet) training step goes: kernels by kind, and everything else.

It runs the real training loop (``train_snapshot_ensemble``) on credit-g under ``torch.profiler`` for a few
epochs and sums the self CPU time of the ATen kernels per kind (matrix products, GELU, batch norm, Adam,
loss and INN head, memory and view bookkeeping); the rest of the profiled time is Python, autograd and
dispatcher overhead. The profiler itself adds overhead per op, so the table shows shares; the un-profiled
CPU time per step of the same loop is printed first.

Usage (from the repository root):
    python -m benchmarks.profile_step                 # INN, credit-g, 10 epochs
    python -m benchmarks.profile_step --method tabresnet --nr_epochs 20
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

KINDS = (
    ("matrix products", ("aten::mm", "aten::addmm", "aten::bmm")),
    ("GELU forward + backward", ("aten::gelu", "aten::gelu_backward")),
    ("batch norm forward + backward", ("aten::native_batch_norm", "aten::native_batch_norm_backward")),
    ("Adam (one fused kernel)", ("aten::_fused_adam_",)),
    (
        "loss, L1 and elementwise",
        (
            "aten::binary_cross_entropy_with_logits",
            "aten::log_sigmoid_forward",
            "aten::log_sigmoid_backward",
            "aten::sigmoid",
            "aten::linalg_vector_norm",
            "aten::sgn",
            "aten::mul",
            "aten::mul_",
            "aten::add",
            "aten::add_",
            "aten::sub",
            "aten::sub_",
            "aten::div",
            "aten::div_",
            "aten::sum",
            "aten::mean",
            "aten::neg",
            "aten::exp",
            "aten::constant_pad_nd",
            "aten::fill_",
            "aten::zero_",
            "aten::copy_",
            "aten::index",
            "aten::randperm",
        ),
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=("inn", "tabresnet"), default="inn")
    parser.add_argument("--dataset_id", type=int, default=31)
    parser.add_argument("--openml_cache_dir", default=None)
    parser.add_argument("--nr_epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch
    from torch.profiler import ProfilerActivity, profile

    from data import load_dataset, prepare_split
    from models._runtime import limit_threads
    from models.networks import INNNetwork, TabResNetNetwork
    from models.training import TaskLoss, TrainingConfig, add_l1, batch_bounds, train_snapshot_ensemble

    raw = load_dataset(args.dataset_id, openml_cache_dir=args.openml_cache_dir)
    split = prepare_split(raw, mode="classification", seed=0)
    x = torch.as_tensor(split.X_train)
    y = torch.as_tensor(split.y_train, dtype=torch.float32)
    network_type = INNNetwork if args.method == "inn" else TabResNetNetwork
    config = TrainingConfig(nr_epochs=args.nr_epochs)
    weight_norm = 0.1 if args.method == "inn" else 0.0
    steps = args.nr_epochs * len(batch_bounds(x.shape[0], config.batch_size))
    task_loss = TaskLoss("binary")

    def loss(net, xb, yb, output, mixing):  # INN's hook: the task loss plus its L1 term
        value = task_loss(output.logits, yb, mixing)
        return add_l1(value, output.weights, weight_norm) if weight_norm > 0 else value

    def train() -> None:
        torch.manual_seed(0)
        network = network_type(n_inputs=x.shape[1], n_outputs=1)
        train_snapshot_ensemble(network, x, y, loss=loss, config=config, seed=0)

    with limit_threads(args.threads):
        train()  # warm-up
        cpu = []
        for _ in range(3):
            start = time.process_time()
            train()
            cpu.append(time.process_time() - start)
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            train()
    print(f"{args.method} on {args.dataset_id}: {steps} steps, un-profiled CPU {1e3 * min(cpu) / steps:.3f} ms/step")
    totals: dict[str, float] = defaultdict(float)
    profiled = 0.0
    for event in profiler.key_averages():
        profiled += event.self_cpu_time_total
        for kind, names in KINDS:
            if event.key in names:
                totals[kind] += event.self_cpu_time_total
                break
    rest = profiled - sum(totals.values())
    print("\n| part | share of profiled step | profiled us/step |")
    print("|---|---|---|")
    for kind, _ in KINDS:
        print(f"| {kind} | {100 * totals[kind] / profiled:.0f} % | {totals[kind] / steps:.0f} |")
    print(
        f"| Python, autograd engine, dispatcher, views and allocation | {100 * rest / profiled:.0f} % | {rest / steps:.0f} |"
    )
    print(f"| total (profiled) | 100 % | {profiled / steps:.0f} |")
    print("\ntop kernels by self CPU time:")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
