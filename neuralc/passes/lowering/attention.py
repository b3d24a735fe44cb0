"""Lowering of MultiHeadAttention, TransformerEncoder and TransformerDecoder into tensor ops.

Attention is decomposed as torch.nn.MultiheadAttention computes it, so that `fuse-attention`
has something to match and every emitter can run it without a fused kernel:

    qkv = linear(x, in_proj_weight, in_proj_bias)            (self; cross: q from x, k|v from
    q, k, v = slices of qkv on the last axis                   memory, by row blocks of w_in)
    q_t = transpose(reshape(q, (0, 0, H, dk)), (0, 2, 1, 3))  [N, H, L, dk]
    k_t = transpose(reshape(k, (0, 0, H, dk)), (0, 2, 3, 1))  [N, H, dk, S]
    v_t = transpose(reshape(v, (0, 0, H, dv)), (0, 2, 1, 3))  [N, H, S, dv]
    probs = softmax(matmul(q_t, k_t) * scale) {causal}        (then dropout when training)
    merged = reshape(transpose(matmul(probs, v_t), (0, 2, 1, 3)), (0, 0, H * dv))
    out = linear(merged, out_proj.weight, out_proj.bias)

Keras' MultiHeadAttention (kernels [d, H, k] and [H, v, out]) lowers to the same graph: its
kernels are reshaped and transposed to torch's [out, in] layout and q/k/v packed with a concat,
so one pattern (and one kernel) serves both. The Transformer blocks are torch's
TransformerEncoderLayer / DecoderLayer (post-norm, or pre-norm with `norm_first`), with causal
self-attention for TransformerDecoder; their sublayer outputs are named like torch's submodules
(`<layer>.self_attn`, `.multihead_attn`, `.linear1`, `.norm1`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from neuralc.ir.core import Value
from neuralc.ir.types import Attr
from neuralc.passes.lowering.emit import Layer, lowering


def attention(layer: Layer, prefix: str, x: Value, memory: Value | None,
              weights: tuple[Value, Value, Value, Value], heads: int, dk: int, dv: int,
              *, causal: bool, scale: float, dropout: Attr) -> Value:
    """Multi-head attention of `x` (over `memory` when given) named under `prefix`; the
    output projection's value is named `prefix` itself."""
    w_in, b_in, w_out, b_out = weights
    at = f"{prefix}."

    def emit(kind: str, operands: list[Value], attrs: dict[str, Attr], suffix: str) -> Value:
        return layer.emit(kind, operands, attrs, name=at + suffix)

    def cut(v: Value, axis: int, start: int, end: int, suffix: str) -> Value:
        return emit("tensor.slice", [v], {"axis": axis, "start": start, "end": end}, suffix)

    qk, total = heads * dk, heads * (2 * dk + dv)
    if memory is None:
        qkv = emit("tensor.linear", [x, w_in, b_in], {}, "qkv")
        q, k, v = (cut(qkv, -1, lo, hi, s) for lo, hi, s in
                   ((0, qk, "q"), (qk, 2 * qk, "k"), (2 * qk, total, "v")))
    else:
        q = emit("tensor.linear", [x, cut(w_in, 0, 0, qk, "q_weight"),
                                   cut(b_in, 0, 0, qk, "q_bias")], {}, "q")
        kv = emit("tensor.linear", [memory, cut(w_in, 0, qk, total, "kv_weight"),
                                    cut(b_in, 0, qk, total, "kv_bias")], {}, "kv")
        k, v = cut(kv, -1, 0, qk, "k"), cut(kv, -1, qk, qk + heads * dv, "v")

    def heads_of(t: Value, width: int, perm: tuple[int, ...], name: str) -> Value:
        split = emit("tensor.reshape", [t], {"shape": (0, 0, heads, width)}, f"{name}_heads")
        return emit("tensor.transpose", [split], {"perm": perm}, f"{name}_t")

    q_t = heads_of(q, dk, (0, 2, 1, 3), "q")
    k_t = heads_of(k, dk, (0, 2, 3, 1), "k")
    v_t = heads_of(v, dv, (0, 2, 1, 3), "v")
    scores = emit("tensor.matmul", [q_t, k_t], {}, "scores")
    factor = layer.constant(scale, (), name=at + "scale")
    scaled = emit("tensor.mul", [scores, factor], {}, "scaled")
    probs = emit("tensor.softmax", [scaled], {"axis": -1, **({"causal": True} if causal
                                                            else {})}, "probs")
    probs = layer.dropout(probs, dropout, name=at + "dropout")
    context = emit("tensor.matmul", [probs, v_t], {}, "context")
    merged_t = emit("tensor.transpose", [context], {"perm": (0, 2, 1, 3)}, "context_t")
    merged = emit("tensor.reshape", [merged_t], {"shape": (0, 0, heads * dv)}, "merged")
    return layer.emit("tensor.linear", [merged, w_out, b_out], name=prefix)


@lowering("nn.multi_head_attention")
def multi_head_attention(layer: Layer) -> Value:
    a = layer.attrs
    x = layer.inputs[0]
    d = x.type.shape[-1]
    heads, kd = a["num_heads"], a["key_dim"]
    vd = a["value_dim"] if a["value_dim"] is not None else kd
    out = tuple(a["output_shape"]) if a["output_shape"] is not None else (d,)
    width = math.prod(out)  # type: ignore[arg-type]

    def torch_layout(name: str, rows: int, cols: int) -> Value:
        flat = layer.emit("tensor.reshape", [layer.weight(f"{name}.kernel")],
                          {"shape": (rows, cols)}, f"{name}.flat")
        return layer.emit("tensor.transpose", [flat], {"perm": (1, 0)}, f"{name}.weight")

    def bias(name: str, size: int) -> Value:
        if not layer.has_weight(f"{name}.bias"):
            return layer.constant(0.0, (size,), f"{name}.zeros")
        return layer.emit("tensor.reshape", [layer.weight(f"{name}.bias")],
                          {"shape": (size,)}, f"{name}.flat_bias")

    projections = (("query", kd), ("key", kd), ("value", vd))
    w_in = layer.emit("tensor.concat", [torch_layout(p, d, heads * w) for p, w in projections],
                      {"axis": 0}, "in_proj_weight")
    b_in = layer.emit("tensor.concat", [bias(p, heads * w) for p, w in projections],
                      {"axis": 0}, "in_proj_bias")
    w_out = torch_layout("attention_output", heads * vd, width)
    b_out = bias("attention_output", width)
    y = attention(layer, layer.name if len(out) == 1 else layer.sub("attention"), x, None,
                  (w_in, b_in, w_out, b_out), heads, kd, vd, causal=False,
                  scale=1.0 / math.sqrt(kd), dropout=a["dropout"])
    if len(out) != 1:
        y = layer.emit("tensor.reshape", [y], {"shape": (0, 0, *out)}, "reshape")
    return y


@lowering("nn.transformer_encoder", "nn.transformer_decoder")
def transformer(layer: Layer) -> Value:
    a = layer.attrs
    x = layer.inputs[0]
    d = x.type.shape[-1]
    heads = a["num_heads"]
    dh = d // heads  # type: ignore[operator]
    cross = bool(layer.concrete("cross_attention"))
    causal = layer.op.op == "nn.transformer_decoder"
    rate, eps = a["dropout_rate"], a["layer_norm_eps"]

    def mha(module: str, memory: Value | None) -> Callable[[Value], Value]:
        def run(h: Value) -> Value:
            weights = tuple(layer.weight(f"{module}.{w}") for w in (
                "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"))
            return attention(layer, layer.sub(module), h, memory, weights,  # type: ignore[arg-type]
                             heads, dh, dh, causal=causal and memory is None,
                             scale=1.0 / math.sqrt(dh), dropout=rate)

        return run

    def feed_forward(h: Value) -> Value:
        h = layer.emit("tensor.linear", [h, layer.weight("linear1.weight"),
                                         layer.weight("linear1.bias")], suffix="linear1")
        h = layer.activate(h)
        h = layer.dropout(h, rate, "dropout")
        return layer.emit("tensor.linear", [h, layer.weight("linear2.weight"),
                                            layer.weight("linear2.bias")], suffix="linear2")

    blocks = [mha("self_attn", None)]
    if cross:
        blocks.append(mha("multihead_attn", layer.inputs[1]))
    blocks.append(feed_forward)
    norm_first = layer.concrete("norm_first")
    for i, block in enumerate(blocks, 1):
        if norm_first:
            y = block(layer.layer_norm(x, f"norm{i}.", eps))
            x = layer.emit("tensor.add", [x, layer.dropout(y, rate, f"dropout{i}")],
                           suffix=f"add{i}")
        else:
            y = layer.dropout(block(x), rate, f"dropout{i}")
            x = layer.layer_norm(layer.emit("tensor.add", [x, y], suffix=f"add{i}"),
                                 f"norm{i}.", eps)
    return x
