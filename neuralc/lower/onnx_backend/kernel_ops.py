"""`kernel` ops → ONNX (see stages.py for values, forms, names).

`kernel.attention`: q, k, v are three Gemms on the token matrix with the row blocks of `w_in`
/ `b_in` (Split on the initializers, folded: no Split of activations; the contrib op below
takes `b_in` itself), then per opset:
- opset ≥ 23: the standard `Attention` op on [N, L, H*d] (`q_num_heads`, `scale`,
  `is_causal`), no head transposes;
- below 23, `kernels = "auto"` (the default): ONNX Runtime's fused contrib op
  `com.microsoft.MultiHeadAttention` (`num_heads`, `scale`, `unidirectional` for causal; the
  model then imports the `com.microsoft` domain and needs ONNX Runtime, neuralc's runtime);
- below 23, `kernels = "torch"` (`--kernels torch`: composites only): the portable
  decomposition, heads split by Reshape + Transpose, `softmax(q·kᵀ·scale [+ causal mask])·v`.
Then the output projection, one Gemm. Dropout is the identity at inference.

`kernel.ffn`: Gemm → activation → Gemm (ONNX Runtime fuses bias and ReLU into `FusedGemm`).
`kernel.add_layernorm`: `Add` + `LayerNormalization` (ONNX Runtime's `SkipLayerNormalization`
measured slower on its CPU provider: bench/RESULTS.md). `kernel.bias_act`: `Add` + activation,
or the bias folded into the Gemm of the bias-less linear that feeds it.
"""

from __future__ import annotations

from typing import Any

from neuralc.ir.core import Operation
from neuralc.ir.types import TensorType
from neuralc.lower.onnx_backend.graph import Scope
from neuralc.lower.onnx_backend.stages import Lowerer, StageLowering, Val
from neuralc.lower.onnx_backend.tensor_ops import activation, causal_mask, linear_to

CONTRIB_DOMAIN = "com.microsoft"
# kernel.add_layernorm as ONNX Runtime's SkipLayerNormalization (3-D, `kernels = "auto"`): off,
# it measured slower than Add + LayerNormalization (bench/RESULTS.md); kept to re-measure.
USE_SKIP_LAYER_NORM = False


def attention_core(e: Lowerer, kernels: str) -> str:
    """Which attention core this op gets: "onnx" (Attention, opset ≥ 23), "contrib"
    (com.microsoft.MultiHeadAttention) or "decomposed"."""
    if e.opset >= 23:
        return "onnx"
    return "decomposed" if kernels == "torch" else "contrib"


def _heads(e: Lowerer, s: Scope, v: Val, heads: int, width: int, keys: bool) -> str:
    """[N, L, H*w] (either form) → [N, H, L, w], or [N, H, w, L] for keys."""
    length = v.type.shape[1]
    if v.rows is not None and isinstance(length, int):
        split = s.reshape(v.rows, [-1, length, heads, width])
    else:
        split = s.reshape(e.nat(v), [0, 0, heads, width])
    return e.transpose(split, [0, 2, 3, 1] if keys else [0, 2, 1, 3])


def _decomposed(e: Lowerer, q: Val, k: Val, v: Val, a: dict[str, Any], merged: TensorType) -> Val:
    s = e.s
    heads, dk, dv = int(a["num_heads"]), int(a["key_dim"]), int(a["value_dim"])
    scores = s.op(
        "MatMul",
        _heads(e, s.child("q"), q, heads, dk, False),
        _heads(e, s.child("k"), k, heads, dk, True),
    )
    scores = s.op("Mul", scores, s.scalar(float(a["scale"]), "scale"))
    if a.get("causal"):
        t = merged.with_shape((merged.shape[0], heads, q.type.shape[1], k.type.shape[1]))
        scores = s.op("Add", scores, causal_mask(e, scores, t))
    probs = s.op("Softmax", scores, axis=-1)
    context = e.transpose(
        s.op("MatMul", probs, _heads(e, s.child("v"), v, heads, dv, False)), [0, 2, 1, 3]
    )
    length = merged.shape[1]
    if isinstance(length, int):
        return e.out(merged, rows=s.child("merge").reshape(context, [-1, heads * dv]))
    return e.out(merged, nat=s.child("merge").reshape(context, [0, 0, heads * dv]))


def attention(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    cross = a["kind"] == "cross"
    x = ins[0]
    memory = ins[1] if cross else x
    w_in, b_in, w_out, b_out = (e.nat(v) for v in ins[1 + cross :])
    heads, dk, dv = int(a["num_heads"]), int(a["key_dim"]), int(a["value_dim"])
    s = e.s
    blocks = [heads * dk, heads * dk, heads * dv]
    core = attention_core(e, e.options.kernels)
    p = s.child("in_proj")
    weights = p.split(w_in, blocks, axis=0)
    # MultiHeadAttention takes the packed bias [q | k | v] itself (added while it moves the
    # heads apart): the three Gemms then have none, and b_in needs no Split.
    biases = [None] * 3 if core == "contrib" else p.split(b_in, blocks, axis=0)
    q, k, v = (
        linear_to(e, s.child(part), src, w, b, src.type.with_shape((*src.type.shape[:2], n)))
        for part, src, w, b, n in zip(
            "qkv", (x, memory, memory), weights, biases, blocks, strict=True
        )
    )
    merged = x.type.with_shape((*x.type.shape[:2], heads * dv))
    scale, causal = float(a["scale"]), int(bool(a.get("causal")))
    if core == "onnx":
        out = s.op(
            "Attention",
            e.nat(q),
            e.nat(k),
            e.nat(v),
            q_num_heads=heads,
            kv_num_heads=heads,
            scale=scale,
            is_causal=causal,
        )
        context = e.out(merged, nat=out)
    elif core == "contrib":
        out = s.op(
            "MultiHeadAttention",
            e.nat(q),
            e.nat(k),
            e.nat(v),
            b_in,
            domain=CONTRIB_DOMAIN,
            num_heads=heads,
            scale=scale,
            unidirectional=causal,
        )
        context = e.out(merged, nat=out)
    else:
        context = _decomposed(e, q, k, v, a, merged)
    return linear_to(e, s.child("out_proj"), context, w_out, b_out, e.type)


def ffn(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    x, w1, b1, w2, b2 = ins
    s = e.s
    hidden_t = x.type.with_shape((*x.type.shape[:-1], w1.type.shape[0]))
    h = linear_to(e, s.child("hidden"), x, e.nat(w1), e.nat(b1), hidden_t)
    form = "rows" if h.rows is not None else "nat"
    act = activation(s.child("hidden"), e.get(h, form), a["activation"], a.get("alpha", 0.2))
    return linear_to(e, s, e.out(hidden_t, **{form: act}), e.nat(w2), e.nat(b2), e.type)


def add_layernorm(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    x, residual, gamma, beta = ins
    s = e.s
    eps = float(a["eps"])
    if USE_SKIP_LAYER_NORM and e.options.kernels != "torch" and x.type.rank == 3:
        y = s.op(
            "SkipLayerNormalization",
            e.nat(x),
            e.nat(residual),
            e.nat(gamma),
            e.nat(beta),
            domain=CONTRIB_DOMAIN,
            epsilon=eps,
        )
        return e.out(nat=y)
    form = e.form(x, residual)
    total = s.child("residual").op("Add", e.get(x, form), e.get(residual, form))
    y = s.op("LayerNormalization", total, e.nat(gamma), e.nat(beta), axis=-1, epsilon=eps)
    return e.out(**{form: y})


def bias_act(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    s = e.s
    if a.get("absorbed_linear"):  # linear(x, w) + b in one Gemm / MatMul + Add
        x, w, b = ins
        y = linear_to(e, s, x, e.nat(w), e.nat(b), e.type)
        form = "rows" if y.rows is not None else "nat"
        total = e.get(y, form)
    else:
        x, b = ins
        form = e.form(x)
        total = s.op("Add", e.get(x, form), e.nat(b))
    return e.out(**{form: activation(s, total, a["activation"], a.get("alpha", 0.2))})


LOWERINGS: dict[str, StageLowering] = {
    "kernel.attention": attention,
    "kernel.ffn": ffn,
    "kernel.add_layernorm": add_layernorm,
    "kernel.bias_act": bias_act,
}
