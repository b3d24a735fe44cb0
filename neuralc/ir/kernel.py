"""The `kernel` dialect: fused ops with exact semantics, produced by the fusion passes from
`tensor` ops (`neuralc/passes/fuse_*.py`). The kernel stage is tensor + kernel ops. Ops with a
`dropout` attribute carry the "random" trait (never merged by cse).

Each op computes exactly what the tensor ops it replaced computed (weights stay `tensor.weight`
values in PyTorch layouts), so an emitter may run a fused kernel (`neuralc.kernels`) or the
composite. `dropout` attributes are the training-time dropouts the fused region contained (the
identity at inference). Shape rules and attribute kinds come from `neuralc.ir.tensor.signature`.

`python -m neuralc.ir.kernel docs/dialects.md` regenerates the op reference in that page (between
its `<!-- ops -->` markers) from the op docs of both dialects.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from neuralc.ir import tensor  # noqa: F401  (the tensor dialect first: its docs come first)
from neuralc.ir.core import OPS
from neuralc.ir.tensor.signature import (
    ACT,
    BOOL,
    FLOAT,
    FLOAT_HPO,
    INT,
    REQUIRED,
    SIGNATURES,
    STR,
    define,
    expect_shape,
    fail,
    same_dtype,
)
from neuralc.ir.types import TensorType

__all__ = ["render_op_reference", "update_docs"]


def _attention(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    cross = a["kind"] == "cross"
    if a["kind"] not in ("self", "cross") or len(ts) != 5 + cross:
        raise fail(f'kind "self" takes 5 operands and "cross" 6, got {a["kind"]!r} with '
                   f"{len(ts)}")
    x = ts[0]
    if x.rank != 3:
        raise fail(f"attention's input must be [N, L, d], got {x}")
    d = x.shape[2]
    if cross and (ts[1].rank != 3 or ts[1].shape[0] != x.shape[0] or ts[1].shape[2] != d):
        raise fail(f"attention's memory must be [{x.shape[0]}, S, {d}], got {ts[1]}")
    h, dk, dv = a["num_heads"], a["key_dim"], a["value_dim"]
    if min(h, dk, dv) < 1:
        raise fail("num_heads, key_dim and value_dim must be >= 1")
    w_in, b_in, w_out, b_out = ts[1 + cross:]
    packed = h * (2 * dk + dv)
    expect_shape(w_in, (packed, d), "w_in (q, k, v projections packed)")
    expect_shape(b_in, (packed,), "b_in")
    if w_out.rank != 2 or w_out.shape[1] != h * dv:
        raise fail(f"w_out must be [out, {h * dv}], got {w_out}")
    expect_shape(b_out, (w_out.shape[0],), "b_out")
    same_dtype(ts)
    if a["causal"] and cross:
        raise fail("cross attention is not causal")
    return x.with_shape((*x.shape[:2], w_out.shape[0]))


define("kernel.attention", """
Multi-head attention with its projections, exactly torch.nn.MultiheadAttention(batch_first)
as TransformerEncoderLayer/DecoderLayer use it: q, k, v = projections of x (kind "self") or
of x, memory, memory (kind "cross") by the row blocks of `w_in`/`b_in` (q: H*key_dim rows,
k: H*key_dim, v: H*value_dim); per head softmax(q k^T * scale [causal: keys j <= query i])
(dropout) v; heads concatenated; then `@ w_out^T + b_out`. Keras MultiHeadAttention lowers to the same op (its
kernels reshaped and packed).

Operands: `x` [N, L, d], `memory` [N, S, d] (cross only), `w_in` [H*(2*key_dim+value_dim), d],
`b_in`, `w_out` [out, H*value_dim], `b_out` [out]. Attributes: `num_heads`, `key_dim`,
`value_dim`, `scale` (number), `kind` ("self" or "cross"), `causal` (bool, default false),
`dropout` (HPO ok, default 0.0).

    %enc.self_attn = kernel.attention(%x, %enc.self_attn.in_proj_weight, %enc.self_attn.in_proj_bias, %enc.self_attn.out_proj.weight, %enc.self_attn.out_proj.bias) {num_heads = 8, key_dim = 64, value_dim = 64, scale = 0.125, kind = "self", causal = false, dropout = 0.1} -> f32[N,512,512]
""", (5, 6), {"num_heads": (INT, REQUIRED), "key_dim": (INT, REQUIRED),
              "value_dim": (INT, REQUIRED), "scale": (FLOAT, REQUIRED), "kind": (STR, REQUIRED),
              "causal": (BOOL, False), "dropout": (FLOAT_HPO, 0.0)}, _attention,
    traits={"random"})


def _ffn(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, w1, b1, w2, b2 = ts
    if w1.rank != 2 or w1.shape[1] != x.shape[-1]:
        raise fail(f"w1 must be [hidden, {x.shape[-1]}], got {w1}")
    expect_shape(b1, (w1.shape[0],), "b1")
    if w2.rank != 2 or w2.shape[1] != w1.shape[0]:
        raise fail(f"w2 must be [out, {w1.shape[0]}], got {w2}")
    expect_shape(b2, (w2.shape[0],), "b2")
    same_dtype(ts)
    return x.with_shape((*x.shape[:-1], w2.shape[0]))


define("kernel.ffn", """
Feed-forward block: `linear(dropout(act(linear(x, w1, b1))), w2, b2)` with torch layouts
(`w1` [hidden, in], `w2` [out, hidden]); `act` as tensor.activation.

Operands: `x` [..., in], `w1`, `b1`, `w2`, `b2`. Attributes: `activation` (kind, HPO ok),
`alpha` (default 0.2, leaky_relu only), `dropout` (HPO ok, default 0.0).

    %enc.linear2 = kernel.ffn(%enc.norm1, %enc.linear1.weight, %enc.linear1.bias, %enc.linear2.weight, %enc.linear2.bias) {activation = "relu", dropout = 0.1} -> f32[N,512,512]
""", 5, {"activation": (ACT, REQUIRED), "alpha": (FLOAT, 0.2), "dropout": (FLOAT_HPO, 0.0)},
    _ffn, traits={"random"})


def _add_layernorm(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, residual, gamma, beta = ts
    if residual != x:
        raise fail(f"x and residual must have one type, got {x} and {residual}")
    expect_shape(gamma, x.shape[-1:], "gamma")
    expect_shape(beta, x.shape[-1:], "beta")
    return x


define("kernel.add_layernorm", """
Residual add and LayerNorm over the last axis: `layer_norm(dropout(x) + residual) * gamma + beta`
(x is the sublayer's output, residual the skip connection).

Operands: `x`, `residual`, `gamma` [d], `beta` [d]. Attributes: `eps` (HPO ok), `dropout` (HPO
ok, default 0.0).

    %enc.norm1 = kernel.add_layernorm(%enc.self_attn, %x, %enc.norm1.weight, %enc.norm1.bias) {eps = 1e-05, dropout = 0.1} -> f32[N,512,512]
""", 4, {"eps": (FLOAT_HPO, REQUIRED), "dropout": (FLOAT_HPO, 0.0)}, _add_layernorm,
    traits={"random"})


def _bias_act(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, b = ts
    expect_shape(b, x.shape[-1:], "the bias")
    same_dtype(ts)
    return x


define("kernel.bias_act", """
Bias add on the last axis and an elementwise activation: `act(x + b)` (act as
tensor.activation).

Operands: `x` [..., d], `b` [d]. Attributes: `activation` (kind, HPO ok), `alpha` (default
0.2, leaky_relu only).

    %dense = kernel.bias_act(%dense.linear, %dense.bias) {activation = "relu"} -> f32[N,128]
""", 2, {"activation": (ACT, REQUIRED), "alpha": (FLOAT, 0.2)}, _bias_act)


# -- docs/dialects.md -------------------------------------------------------------------------

BEGIN, END = "<!-- ops -->", "<!-- /ops -->"


def render_op_reference() -> str:
    """Markdown for every tensor and kernel op (shape-inferred ops in registration order, then
    the others, `tensor.transfer`) from its OpDef doc: a heading, the prose, and the indented
    paragraphs (the IR example) as code blocks."""
    out: list[str] = []
    for dialect in ("tensor", "kernel"):
        out.append(f"### The `{dialect}` dialect\n")
        names = [n for n in OPS if n.startswith(dialect + ".")]
        names.sort(key=lambda n: n not in SIGNATURES)  # stable: registration order otherwise
        for name in names:
            out.append(f"#### `{name}`\n")
            for para in inspect.cleandoc(OPS[name].doc).split("\n\n"):
                lines = para.strip("\n").splitlines()
                if all(line.startswith(("    ", "%")) for line in lines):  # an IR example
                    code = "\n".join(line.removeprefix("    ") for line in lines)
                    out.append(f"```\n{code}\n```\n")
                else:
                    out.append(para.strip() + "\n")
    return "\n".join(out)


def update_docs(text: str) -> str:
    """`text` (docs/dialects.md) with the reference between the markers regenerated."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"the page needs {BEGIN} and {END} markers")
    return f"{head}{BEGIN}\n{render_op_reference()}{END}{tail}"


if __name__ == "__main__":  # pragma: no cover - a developer command
    page = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dialects.md")
    page.write_text(update_docs(page.read_text()))
