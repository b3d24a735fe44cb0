"""The fusion passes: the rejected candidates of the golden files (`// REJECTED: pattern %op:
reason` lines, read here; the golden runner checks the IR), rule hits, dead-op cleanup around
shared values, hyperparameters, dropout attributes and fused locations."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from filecheck import parse_golden, run_argv
from tensor_testlib import FUSE, compile_nn, lowered, op_counts, run

from neuralc.commands.pipeline_args import add_pipeline_arguments, run_pipeline
from neuralc.ir.core import FusedLoc
from neuralc.ir.parser import parse_module
from neuralc.ir.verifier import find_problems

GOLDEN = Path(__file__).resolve().parent / "golden"
REJECTED = "// REJECTED:"


def _rejected_lines(path: Path) -> list[str]:
    return [line.split(REJECTED, 1)[1].strip() for line in path.read_text().splitlines()
            if line.startswith(REJECTED)]


@pytest.mark.parametrize("path", sorted(p for p in GOLDEN.glob("fuse_*.nir")
                                        if _rejected_lines(p)), ids=lambda p: p.name)
def test_golden_rejections(path: Path) -> None:
    golden = parse_golden(path)
    parser = argparse.ArgumentParser()
    add_pipeline_arguments(parser)
    _, ctx = run_pipeline(parse_module(golden.text, str(path)),
                          parser.parse_args(run_argv(golden.run)))
    got = [f"{r.pattern} %{r.op_name}: {r.reason}" for r in ctx.fusion_rejections]
    assert got == _rejected_lines(path)


ENCODER = """network E {
  input: (6, 8)
  layers:
    TransformerEncoder(num_heads=2, d_model=8, dff=16) * 3
    GlobalAveragePooling1D()
    Output(3, activation="softmax")
}"""


def test_hits_count_patterns_and_variants() -> None:
    module = lowered(ENCODER, "lower-nn-to-tensor")
    ctx = run(module, FUSE)
    assert ctx.hits == {"fuse-attention": 3, "fuse-attention.self": 3, "fuse-ffn": 3,
                        "fuse-add-layernorm": 6}
    assert [(r.pattern, r.op_name) for r in ctx.fusion_rejections] == [
        ("fuse-attention", "output")]
    assert find_problems(module) == []  # nothing dead or dangling left behind


def test_a_shared_scale_constant_is_kept_until_its_last_user_is_fused() -> None:
    module = lowered(ENCODER, "lower-nn-to-tensor,cse")
    assert op_counts(module)["tensor.constant"] == 1  # cse merged the three scales
    run(module, "fuse-attention")
    assert op_counts(module)["kernel.attention"] == 3
    assert op_counts(module)["tensor.constant"] == 0
    assert find_problems(module) == []


def test_fused_ops_keep_dropout_and_locations() -> None:
    module = compile_nn("""network F {
  input: (5, 8)
  layers:
    Dense(16, activation="relu")
    Dropout(0.25)
    Dense(8)
}""")
    run(module, "lower-nn-to-tensor,fuse-ffn")
    (ffn,) = [op for op in module.networks[0].walk() if op.op == "kernel.ffn"]
    assert ffn.name == "dense_1" and ffn.attrs == {"activation": "relu", "dropout": 0.25}
    assert isinstance(ffn.loc, FusedLoc) and [loc.line for loc in ffn.loc.locs] == [4, 5, 6]


def test_open_activation_and_unbiased_linears_are_rejected() -> None:
    module = parse_module("""module {
  network @R(%x: f32[N,4]) loc("r.neural":1:1) {
    %w = tensor.weight() {key = "w"} -> f32[4,4] loc("r.neural":2:5)
    %b = tensor.weight() {key = "b"} -> f32[4] loc("r.neural":2:5)
    %l1 = tensor.linear(%x, %w) -> f32[N,4] loc("r.neural":2:5)
    %a1 = tensor.activation(%l1) {kind = "relu"} -> f32[N,4] loc("r.neural":2:5)
    %l2 = tensor.linear(%a1, %w, %b) -> f32[N,4] loc("r.neural":3:5)
    %a2 = tensor.activation(%l2) {kind = hpo.choice("relu", "gelu")} -> f32[N,4] loc("r.neural":3:5)
    %l3 = tensor.linear(%a2, %w) -> f32[N,4] loc("r.neural":4:5)
    return(%l3)
  }
}""")
    ctx = run(module, "fuse-ffn,fuse-bias-act")
    assert [(r.pattern, r.op_name, r.reason) for r in ctx.fusion_rejections] == [
        ("fuse-ffn", "a1", "the first linear has no bias"),
        ("fuse-ffn", "a2", "the activation is an open hyperparameter"),
        ("fuse-bias-act", "a1", "the linear has no bias"),
        ("fuse-bias-act", "a2", "the activation is an open hyperparameter"),
    ]
    assert not op_counts(module, "kernel.")


def test_pre_norm_blocks_fuse_attention_and_ffn_only() -> None:
    module = lowered("""network P {
  input: (6, 8)
  layers:
    TransformerEncoder(num_heads=2, d_model=8, dff=16, norm_first=true) * 2
}""")
    ctx = run(module, FUSE)
    counts = op_counts(module, "kernel.")
    assert counts == {"kernel.attention": 2, "kernel.ffn": 2}
    reasons = {r.reason for r in ctx.fusion_rejections if r.pattern == "fuse-add-layernorm"}
    assert reasons == {"layer_norm input is not a residual add",
                       "intermediate value %transformer_encoder.0.add1 has 2 uses",
                       "intermediate value %transformer_encoder.0 has 2 uses",
                       "intermediate value %transformer_encoder.1.add1 has 2 uses"}


def test_fusion_ignores_ops_of_other_stages() -> None:
    module = compile_nn(ENCODER)
    ctx = run(module, FUSE)
    assert not op_counts(module, "kernel.") and not ctx.fusion_rejections and not ctx.hits
