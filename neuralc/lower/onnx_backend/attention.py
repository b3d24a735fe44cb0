"""Attention layers: TransformerEncoder, TransformerDecoder (torch semantics), MultiHeadAttention
(Keras semantics and weight layout).

The torch layers decompose as `torch.nn.MultiheadAttention` computes them: one packed input
projection (`in_proj_weight`, a MatMul on its transpose, folded by ONNX Runtime), a Split into
q, k, v, heads split with Reshape [0, 0, H, hd] (0 keeps the batch and the possibly dynamic
length) and Transpose, `softmax(q·kᵀ · 1/sqrt(hd) + mask)·v`, heads merged, `out_proj`; then the
residual Add and LayerNormalization (post-norm, or pre-norm with `norm_first`) and the
feed-forward network. The causal mask of a decoder is an additive constant (0 on and below the
diagonal, -inf above) when the length is known, else built from the length with Trilu.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuralc.ir.core import Operation
from neuralc.ir.types import Dim
from neuralc.lower.onnx_backend.core import activation
from neuralc.lower.onnx_backend.graph import CL, Scope, Slot


def split_heads(s: Scope, x: str, heads: int, width: int, keys: bool = False) -> str:
    """[N, L, H*w] → [N, H, L, w] (queries, values) or [N, H, w, L] (keys, for q·kᵀ)."""
    x = s.op("Reshape", x, s.ints([0, 0, heads, width], "heads_shape"))
    return s.transpose(x, [0, 2, 3, 1] if keys else [0, 2, 1, 3])


def merge_heads(s: Scope, x: str, width: int) -> str:
    """[N, H, L, w] → [N, L, H*w]."""
    return s.op("Reshape", s.transpose(x, [0, 2, 1, 3]), s.ints([0, 0, width], "merged_shape"))


def attend(s: Scope, q: str, k_t: str, v: str, scale: float, mask: str | None) -> str:
    scores = s.op("Mul", s.op("MatMul", q, k_t), s.scalar(scale, "scale"))
    if mask is not None:
        scores = s.op("Add", scores, mask)
    return s.op("MatMul", s.op("Softmax", scores, axis=-1), v)


def causal_mask(s: Scope, x: str, length: Dim) -> str:
    """Additive [L, L] mask: 0 where key j ≤ query i, -inf above the diagonal."""
    m = s.child("causal_mask")
    if isinstance(length, int):
        mask = np.triu(np.full((length, length), -np.inf, dtype=np.float32), k=1)
        return m.const(mask, f"causal_mask_{length}")
    size = m.op("Slice", m.op("Shape", x), m.ints([1], "start"), m.ints([2], "end"))
    square = m.op("Concat", size, size, axis=0)
    filled = m.op(
        "ConstantOfShape", square, value=_tensor_attr(np.array([-np.inf], dtype=np.float32))
    )
    return m.op("Trilu", filled, m.const(np.int64(1), "diagonal", np.int64), upper=1)


def _tensor_attr(array: np.ndarray) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(array)


class Tokens:
    """A sequence [N, L, d] handled as a matrix of tokens [N*L, d] (every projection is then one
    Gemm with torch's [out, in] weight as is, bias and activation fused by ONNX Runtime), with
    the shapes to split heads from it and to restore [N, L, d]."""

    def __init__(self, s: Scope, x: str, length: Dim, d: int, heads: int) -> None:
        self.d, self.heads = d, heads
        t = s.child("tokens")
        self.flat = t.op("Reshape", x, t.ints([-1, d], "tokens_shape"))
        if isinstance(length, int):
            self.heads_shape = t.ints([-1, length, heads, d // heads], "heads_shape")
            self.shape = t.ints([-1, length, d], "sequence_shape")
        else:
            self.shape = t.op("Shape", x)
            batch_length = t.op("Slice", self.shape, t.ints([0], "start"), t.ints([2], "end"))
            self.heads_shape = t.op(
                "Concat", batch_length, t.ints([heads, d // heads], "head_dims"), axis=0
            )

    def split_heads(self, s: Scope, x: str, keys: bool = False) -> str:
        """[N*L, H*hd] → [N, H, L, hd] (queries, values) or [N, H, hd, L] (keys)."""
        x = s.op("Reshape", x, self.heads_shape)
        return s.transpose(x, [0, 2, 3, 1] if keys else [0, 2, 1, 3])

    def unflatten(self, s: Scope, x: str) -> str:
        return s.op("Reshape", x, self.shape)


def gemm(s: Scope, x: str, weight: str, bias: str | None) -> str:
    """x @ weightᵀ (+ bias) on a matrix: torch's Linear with its [out, in] weight."""
    return s.op("Gemm", x, weight, *([bias] if bias else []), transB=1)


def torch_attention(
    s: Scope,
    x: Tokens,
    heads: int,
    d: int,
    causal: bool,
    mask: str | None = None,
    memory: Tokens | None = None,
    query: str | None = None,
) -> str:
    """`torch.nn.MultiheadAttention` (batch_first) on the tokens `query` (default: x's),
    keys/values from `memory` or `x`; weights under the scope's part (`self_attn.` /
    `multihead_attn.`). `causal`: query i sees keys ≤ i (`mask` is then the additive mask the
    decomposition below opset 23 uses). Returns tokens [N*L, d]."""
    prefix = f"{s.part}."
    hd = d // heads
    w = s.child("in_proj")
    weight, bias = s.weight(f"{prefix}in_proj_weight"), s.weight(f"{prefix}in_proj_bias")
    query = query or x.flat
    if memory is None:
        q, k, v = s.split(gemm(w, query, weight, bias), [d, d, d], axis=-1)
        source = x
    else:
        wq, wkv = w.split(weight, [d, 2 * d], axis=0)
        bq, bkv = w.split(bias, [d, 2 * d], axis=0)
        q = gemm(w, query, wq, bq)
        k, v = s.split(gemm(w, memory.flat, wkv, bkv), [d, d], axis=-1)
        source = memory
    if s.opset >= 23:
        # ONNX's Attention op takes [N, L, H*hd] directly: no head transposes at all.
        out = s.op(
            "Attention",
            x.unflatten(s, q),
            source.unflatten(s, k),
            source.unflatten(s, v),
            q_num_heads=heads,
            kv_num_heads=heads,
            scale=1.0 / math.sqrt(hd),
            is_causal=int(causal),
        )
        merged = s.op("Reshape", out, s.ints([-1, d], "tokens_shape"))
    else:
        out = attend(
            s,
            x.split_heads(s, q),
            source.split_heads(s, k, keys=True),
            source.split_heads(s, v),
            1.0 / math.sqrt(hd),
            mask,
        )
        merged = s.op("Reshape", s.transpose(out, [0, 2, 1, 3]), s.ints([-1, d], "tokens_shape"))
    o = s.child("out_proj")
    return gemm(o, merged, s.weight(f"{prefix}out_proj.weight"), s.weight(f"{prefix}out_proj.bias"))


def _layer_norm(s: Scope, x: str, index: int, eps: float) -> str:
    n = s.child(f"norm{index}")
    return n.op(
        "LayerNormalization",
        x,
        s.weight(f"norm{index}.weight"),
        s.weight(f"norm{index}.bias"),
        axis=-1,
        epsilon=eps,
    )


def _feed_forward(s: Scope, x: str, act: str) -> str:
    first, second = s.child("linear1"), s.child("linear2")
    h = gemm(first, x, s.weight("linear1.weight"), s.weight("linear1.bias"))
    return gemm(
        second, activation(first, h, act), s.weight("linear2.weight"), s.weight("linear2.bias")
    )


def lower_transformer(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    x_slot = ins[0]
    x3 = s.get(x_slot, CL)
    x_type = op.operands[0].type
    d = x_type.shape[-1]
    assert isinstance(d, int)
    heads = int(attrs["num_heads"])
    eps = float(attrs["layer_norm_eps"])
    pre = bool(attrs["norm_first"])
    decoder = op.op == "nn.transformer_decoder"
    tokens = Tokens(s, x3, x_type.shape[1], d, heads)
    # A decoder's self-attention is causal: ONNX's Attention op (opset 23) masks by itself,
    # the decomposition adds a mask.
    mask = causal_mask(s, x3, x_type.shape[1]) if decoder and s.opset < 23 else None
    memory = None
    if decoder and attrs.get("cross_attention"):
        m_type = op.operands[1].type
        memory = Tokens(s.child("memory"), s.get(ins[1], CL), m_type.shape[1], d, heads)
    sublayers: list[tuple[str, Any]] = [
        ("self_attn", lambda s2, h: torch_attention(s2, tokens, heads, d, decoder, mask, query=h))
    ]
    if memory is not None:
        sublayers.append(
            (
                "multihead_attn",
                lambda s2, h: torch_attention(s2, tokens, heads, d, False, None, memory, query=h),
            )
        )
    sublayers.append(("", lambda s2, h: _feed_forward(s2, h, attrs["activation"])))
    x = tokens.flat
    for index, (part, block) in enumerate(sublayers, start=1):
        sub = s.child(part) if part else s
        if pre:
            x = s.child(f"residual{index}").op("Add", x, block(sub, _layer_norm(s, x, index, eps)))
        else:
            x = _layer_norm(s, s.child(f"residual{index}").op("Add", x, block(sub, x)), index, eps)
    return Slot(x_slot.rank, {CL: tokens.unflatten(s, x)})


def _keras_proj(s: Scope, name: str, d: int, width: int, bias: bool) -> tuple[str, str | None]:
    """Keras' EinsumDense kernel [d, H, w] as a matrix [d, H*w] (and its bias [H*w])."""
    p = s.child(name)
    kernel = p.op("Reshape", s.weight(f"{name}.kernel"), p.ints([d, -1], "kernel_shape"))
    b = p.op("Reshape", s.weight(f"{name}.bias"), p.ints([-1], "flat")) if bias else None
    return kernel, b


def lower_mha(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x_slot,) = ins
    x = s.get(x_slot, CL)
    d = op.operands[0].type.shape[-1]
    assert isinstance(d, int)
    heads, kd = int(attrs["num_heads"]), int(attrs["key_dim"])
    vd = int(attrs["value_dim"] or kd)
    bias = bool(attrs["use_bias"])
    out_shape = tuple(attrs["output_shape"] or (d,))
    projs = [
        _keras_proj(s, name, d, w, bias) for name, w in (("query", kd), ("key", kd), ("value", vd))
    ]
    packed = s.child("qkv")
    kernel = packed.op("Concat", *(k for k, _ in projs), axis=1)
    qkv = packed.op("MatMul", x, kernel)
    if bias:
        qkv = packed.op("Add", qkv, packed.op("Concat", *(b for _, b in projs if b), axis=0))
    q, k, v = s.split(qkv, [heads * kd, heads * kd, heads * vd], axis=-1)
    scale = 1.0 / math.sqrt(kd)
    if s.opset >= 23:
        merged = s.op("Attention", q, k, v, q_num_heads=heads, kv_num_heads=heads, scale=scale)
    else:
        out = attend(
            s,
            split_heads(s, q, heads, kd),
            split_heads(s, k, heads, kd, keys=True),
            split_heads(s, v, heads, vd),
            scale,
            None,
        )
        merged = merge_heads(s, out, heads * vd)
    o = s.child("attention_output")
    width = int(np.prod(out_shape))
    kernel_o = o.op(
        "Reshape", s.weight("attention_output.kernel"), o.ints([heads * vd, width], "kernel_shape")
    )
    y = o.op("MatMul", merged, kernel_o)
    if bias:
        y = o.op(
            "Add", y, o.op("Reshape", s.weight("attention_output.bias"), o.ints([width], "flat"))
        )
    if len(out_shape) > 1:
        y = o.op("Reshape", y, o.ints([0, 0, *out_shape], "output_shape"))
    return Slot(2 + len(out_shape), {CL: y})


LOWERINGS = {
    "TransformerEncoder": lower_transformer,
    "TransformerDecoder": lower_transformer,
    "MultiHeadAttention": lower_mha,
}
