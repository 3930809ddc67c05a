"""Method flags of the neural families that declare several (SENN/DiSENN, INN-Shapley): each sets one estimator
parameter of its method (:class:`methods.spec.Flag`); the registry (:mod:`methods`) attaches them to its entries."""

from __future__ import annotations

import argtypes
from methods.spec import Flag


def hidden_widths(text: str) -> tuple[int, ...]:
    """``10,10,5`` -> ``(10, 10, 5)``: hidden widths, each a positive integer."""
    return tuple(argtypes.positive_int(part) for part in text.split(","))


#: SENN's and DiSENN's flags (flag name = estimator parameter); a flag both declare is added once.
SENN_FLAGS = {
    flag.name: flag
    for flag in (
        Flag("num_concepts", "num_concepts", argtypes.positive_int, "SENN/DiSENN: number of learned concepts"),
        Flag("robust_reg", "robust_reg", argtypes.non_negative_float, "SENN/DiSENN: λ, weight of the robustness loss"),
        Flag(
            "robust_estimator",
            "robust_estimator",
            str,
            "SENN/DiSENN: robustness loss of a multiclass task, exact or Hutchinson's one-pass estimate",
            ("exact", "hutchinson"),
        ),
        Flag(
            "robust_form",
            "robust_form",
            str,
            "SENN/DiSENN: robustness loss on the logits (mean of squared norms), or the SENN code's (senn: sigmoid/"
            "log-softmax output, intercept penalised, unsquared batch norm) and the forms between",
            ("logits", "batch", "senn_logits", "senn_no_intercept", "senn"),
        ),
        Flag("concept_reg", "concept_reg", argtypes.non_negative_float, "SENN/DiSENN: weight of the concept loss"),
        Flag(
            "sparsity_reg", "sparsity_reg", argtypes.non_negative_float, "SENN: L1 weight on the autoencoder's concepts"
        ),
        Flag("beta", "beta", argtypes.non_negative_float, "DiSENN: β of the β-VAE's KL term"),
        Flag("pre_beta", "pre_beta", argtypes.non_negative_float, "DiSENN: β while pre-training the β-VAE"),
        Flag(
            "capacity",
            "capacity",
            argtypes.non_negative_float,
            "DiSENN: KL capacity C in nats, the KL term becomes β·|KL − C| (Burgess et al.; 0: β·KL)",
        ),
        Flag(
            "kl_warmup_epochs",
            "kl_warmup_epochs",
            argtypes.non_negative_int,
            "DiSENN: epochs (from the first pre-training epoch) over which β, or C with a capacity, ramps up from 0",
        ),
        Flag(
            "reconstruction",
            "reconstruction",
            str,
            "DiSENN: reconstruction error of the β-VAE, mean over input columns (the codebases') or sum (a VAE's scale)",
            ("mean", "sum"),
        ),
        Flag(
            "pretrain_epochs", "pretrain_epochs", argtypes.non_negative_int, "SENN/DiSENN: concept pre-training epochs"
        ),
        Flag(
            "conceptizer",
            "conceptizer",
            str,
            "SENN: concepts: the inputs, or an autoencoder's",
            ("identity", "autoencoder"),
        ),
        Flag(
            "parameterizer",
            "parameterizer",
            str,
            "SENN/DiSENN: relevance network: INN's residual backbone, or the SENN paper's tanh MLP",
            ("resnet", "mlp"),
        ),
        Flag(
            "parameterizer_sizes",
            "parameterizer_sizes",
            hidden_widths,
            "SENN/DiSENN: hidden widths of the mlp parameterizer, e.g. 10,10,5 (the SENN code's COMPAS network)",
        ),
    )
}


#: INN-Shapley's flags (flag name = estimator parameter).
INN_SHAPLEY_FLAGS = (
    Flag(
        "readout",
        "readout",
        str,
        "INN-Shapley: contributions W_j(x)·x_j + a_j(x) (affine), W_j(x)·x_j (product) or a_j(x) (head)",
        ("affine", "product", "head"),
    ),
    Flag(
        "shapley_strength",
        "shapley_strength",
        argtypes.non_negative_float,
        "INN-Shapley: λ, weight of the Shapley-consistency term (0: the centred read-out alone)",
    ),
    Flag(
        "shapley_coalitions",
        "shapley_coalitions",
        argtypes.positive_float,
        "INN-Shapley: coalitions per row and step (below 1: that share of the rows)",
    ),
    Flag(
        "shapley_background",
        "shapley_background",
        argtypes.positive_int,
        "INN-Shapley: background rows averaged per coalition",
    ),
    Flag(
        "shapley_detach",
        "shapley_detach",
        argtypes.boolean,
        "INN-Shapley: the hybrid rows' read-outs are a fixed target (true) or trained too (false)",
    ),
    Flag(
        "shapley_split_only",
        "shapley_split_only",
        argtypes.boolean,
        "INN-Shapley: the term may only move how each training row's output is split among its features (true)",
    ),
    Flag(
        "shapley_pass",
        "shapley_pass",
        str,
        "INN-Shapley: hybrid rows joint with the batch in one forward pass (cheaper), or in a separate pass",
        ("joint", "separate"),
    ),
    Flag(
        "readout_norm",
        "readout_norm",
        argtypes.non_negative_float,
        "INN-Shapley: L1 weight on what the head generates",
    ),
)


def senn_flags(*names: str) -> tuple[Flag, ...]:
    """The SENN/DiSENN flags named, in that order."""
    return tuple(SENN_FLAGS[name] for name in names)
