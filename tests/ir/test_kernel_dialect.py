"""The kernel dialect: verify hooks and shape rules of the fused ops, their traits, and the
generated op reference in docs/dialects.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralc.ir.core import OPS
from neuralc.ir.kernel import BEGIN, END, render_op_reference, update_docs
from neuralc.ir.parser import parse_module
from neuralc.ir.verifier import find_problems

DOCS = Path(__file__).resolve().parents[2] / "docs" / "dialects.md"
INPUTS = ("%x: f32[N,6,8], %mem: f32[N,9,8], %w_in: f32[24,8], %b_in: f32[24], "
          "%w_out: f32[8,8], %b_out: f32[8], %w1: f32[16,8], %b1: f32[16], %w2: f32[8,16], "
          "%b2: f32[8], %g: f32[8], %kw: f32[20,8], %kb: f32[20], %ko: f32[5,8], %kob: f32[5]")


def problems(line: str) -> list[str]:
    name = line.split(" =", 1)[0]
    text = f"module {{\n  network @K({INPUTS}) {{\n    {line}\n    return({name})\n  }}\n}}\n"
    return [str(p) for p in find_problems(parse_module(text)) if p.severity == "error"]


ATTN = "{num_heads = 2, key_dim = 4, value_dim = 4, scale = 0.5"
VALID = [
    f'%r = kernel.attention(%x, %w_in, %b_in, %w_out, %b_out) {ATTN}, kind = "self", '
    "causal = true, dropout = 0.1} -> f32[N,6,8]",
    f'%r = kernel.attention(%x, %mem, %w_in, %b_in, %w_out, %b_out) {ATTN}, kind = "cross"}} '
    "-> f32[N,6,8]",
    # Keras' MultiHeadAttention: heads need not divide d, value and output widths may differ
    '%r = kernel.attention(%x, %kw, %kb, %ko, %kob) {num_heads = 2, key_dim = 3, '
    'value_dim = 4, scale = 0.5773502691896258, kind = "self"} -> f32[N,6,5]',
    '%r = kernel.ffn(%x, %w1, %b1, %w2, %b2) {activation = "gelu", dropout = '
    "hpo.range(0.1, 0.3)} -> f32[N,6,8]",
    "%r = kernel.add_layernorm(%x, %x, %g, %g) {eps = 1e-05} -> f32[N,6,8]",
    '%r = kernel.bias_act(%x, %g) {activation = "leaky_relu", alpha = 0.1} -> f32[N,6,8]',
]


@pytest.mark.parametrize("line", VALID)
def test_valid_kernel_ops(line: str) -> None:
    assert problems(line) == []


INVALID = [
    (f'%r = kernel.attention(%x, %w_in, %b_in, %w_out, %b_out) {ATTN}, kind = "cross"}} '
     "-> f32[N,6,8]", 'kind "self" takes 5 operands'),
    (f'%r = kernel.attention(%x, %w1, %b1, %w_out, %b_out) {ATTN}, kind = "self"}} '
     "-> f32[N,6,8]", "w_in (q, k, v projections packed) must have shape [24,8]"),
    (f'%r = kernel.attention(%x, %mem, %w_in, %b_in, %w_out, %b_out) {ATTN}, kind = "cross", '
     "causal = true} -> f32[N,6,8]", "cross attention is not causal"),
    (f'%r = kernel.attention(%x, %g, %w_in, %b_in, %w_out, %b_out) {ATTN}, kind = "cross"}} '
     "-> f32[N,6,8]", "memory must be"),
    (f'%r = kernel.attention(%x, %w_in, %b_in, %w_out, %b_out) {ATTN}}} -> f32[N,6,8]',
     "missing attribute 'kind'"),
    ('%r = kernel.ffn(%x, %w2, %b1, %w2, %b2) {activation = "relu"} -> f32[N,6,8]',
     "w1 must be [hidden, 8]"),
    ('%r = kernel.ffn(%x, %w1, %b1, %w1, %b2) {activation = "relu"} -> f32[N,6,8]',
     "w2 must be [out, 16]"),
    ('%r = kernel.ffn(%x, %w1, %b1, %w2, %b2) {activation = "softmax"} -> f32[N,6,8]',
     "attribute 'activation' must be"),
    ("%r = kernel.add_layernorm(%x, %mem, %g, %g) {eps = 1e-05} -> f32[N,6,8]",
     "x and residual must have one type"),
    ("%r = kernel.add_layernorm(%x, %x, %b1, %g) {eps = 1e-05} -> f32[N,6,8]", "gamma"),
    ('%r = kernel.bias_act(%x, %b1) {activation = "relu"} -> f32[N,6,8]', "the bias"),
    ('%r = kernel.bias_act(%x, %g) {activation = "relu"} -> f32[N,6,9]', "does not match"),
]


@pytest.mark.parametrize(("line", "error"), INVALID, ids=[c[1] for c in INVALID])
def test_invalid_kernel_ops(line: str, error: str) -> None:
    found = problems(line)
    assert found and error in found[0], found


def test_every_kernel_op_is_covered_and_random_ones_are_marked() -> None:
    kernels = {name for name in OPS if name.startswith("kernel.")}
    assert kernels == {"kernel.attention", "kernel.ffn", "kernel.add_layernorm",
                       "kernel.bias_act"}
    assert {line.split("= ", 1)[1].split("(", 1)[0] for line in VALID} == kernels
    for name in ("kernel.attention", "kernel.ffn", "kernel.add_layernorm", "tensor.dropout"):
        assert "random" in OPS[name].traits
    assert "weights" in OPS["tensor.weight"].traits


def test_docs_op_reference_is_current() -> None:
    text = DOCS.read_text()
    assert update_docs(text) == text, (
        "docs/dialects.md is stale: run `python -m neuralc.ir.kernel docs/dialects.md`")
    reference = render_op_reference()
    for name in OPS:
        if name.startswith(("tensor.", "kernel.")):
            assert f"#### `{name}`" in reference
    with pytest.raises(ValueError, match="markers"):
        update_docs(text.replace(BEGIN, "").replace(END, ""))
