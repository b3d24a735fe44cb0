"""Attention: MultiHeadAttention, TransformerEncoder, TransformerDecoder. Inputs are `(N, L, d)`.

Weights:
  MultiHeadAttention (Keras' layout; self-attention, so key and value inputs have width d):
    `query.kernel` [d, H, key_dim], `query.bias` [H, key_dim], `key.kernel`/`key.bias` likewise,
    `value.kernel` [d, H, value_dim], `value.bias` [H, value_dim],
    `attention_output.kernel` [H, value_dim, out], `attention_output.bias` [out]
    (kernels glorot_uniform with Keras' fans, biases zeros; out = output_shape or d)
  TransformerEncoder (torch.nn.TransformerEncoderLayer's state_dict):
    `self_attn.in_proj_weight` [3d, d], `self_attn.in_proj_bias` [3d],
    `self_attn.out_proj.weight` [d, d], `self_attn.out_proj.bias` [d],
    `linear1.weight` [dff, d], `linear1.bias` [dff], `linear2.weight` [d, dff], `linear2.bias` [d],
    `norm1.weight`/`norm1.bias` [d], `norm2.weight`/`norm2.bias` [d]
  TransformerDecoder, decoder-only (a GPT block: causal self-attention + feed-forward): exactly the
    encoder's names (it is a TransformerEncoderLayer run with a causal mask).
  TransformerDecoder with `cross_attention=true` (torch.nn.TransformerDecoderLayer's state_dict):
    the above plus `multihead_attn.*` (same layout as `self_attn.*`) and `norm3.*`; then `norm2`
    follows the cross-attention and `norm3` the feed-forward, as in torch.
"""

from __future__ import annotations

from math import prod

from neuralc.ir.types import TensorType
from neuralc.layers.families import dims
from neuralc.layers.families.common import Example, f32, linear, norm, torch_mha
from neuralc.layers.registry import register_layer
from neuralc.layers.spec import Attrs, LayerSpec, Param, ShapeError, ShapeRule, WeightSpec

_SEQ = "a sequence of shape (length, d_model)"


def _seq_width(name: str, x: TensorType) -> int:
    dims.require_sequence(name, x, "d_model")
    dims.require_float(name, x)
    return dims.static_dim(name, x, -1, "model width (last dimension)")


# MultiHeadAttention ---------------------------------------------------------------------------


def _mha_out(attrs: Attrs, d: int) -> tuple[int, ...]:
    return tuple(attrs["output_shape"]) if attrs["output_shape"] is not None else (d,)


def _mha_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    (x,) = inputs
    d = _seq_width("MultiHeadAttention", x)
    out = _mha_out(attrs, d)
    if -1 in out:
        raise ShapeError("MultiHeadAttention output_shape cannot contain -1",
                         param="output_shape")
    return x.with_shape((x.shape[0], x.shape[1], *out))


def _keras_kernel(shape: tuple[int, ...]) -> WeightSpec:
    # Keras' compute_fans: the leading axes form the receptive field.
    receptive = prod(shape[:-2])
    return WeightSpec(shape, "glorot_uniform", fan_in=shape[-2] * receptive,
                      fan_out=shape[-1] * receptive)


def _mha_weights(attrs: Attrs, inputs: list[TensorType]) -> dict[str, WeightSpec]:
    d = inputs[0].shape[-1]
    assert isinstance(d, int)
    h, k = attrs["num_heads"], attrs["key_dim"]
    v = attrs["value_dim"] if attrs["value_dim"] is not None else k
    out = _mha_out(attrs, d)
    weights: dict[str, WeightSpec] = {}
    for proj, width in (("query", k), ("key", k), ("value", v)):
        weights[f"{proj}.kernel"] = _keras_kernel((d, h, width))
        if attrs["use_bias"]:
            weights[f"{proj}.bias"] = WeightSpec((h, width), "zeros")
    weights["attention_output.kernel"] = _keras_kernel((h, v, *out))
    if attrs["use_bias"]:
        weights["attention_output.bias"] = WeightSpec(out, "zeros")
    return weights


register_layer(LayerSpec(
    name="MultiHeadAttention",
    params=(
        Param("num_heads", "int", doc="attention heads", minimum=1),
        Param("key_dim", "int", doc="width of each head's queries and keys", minimum=1),
        Param("value_dim", "int", None, "width of each head's values (default: key_dim)",
              minimum=1),
        Param("dropout", "float", 0.0, "dropout on the attention weights", minimum=0.0,
              maximum=1.0, maximum_exclusive=True, affects_shape=False),
        Param("use_bias", "bool", True, "biases in the projections"),
        Param("output_shape", "shape", None, "width of the output (default: the input's d)"),
    ),
    infer=_mha_infer, weights=_mha_weights,
    doc="Self-attention with Keras' semantics and parameter layout: `f32[N,L,d]` → "
    "`f32[N,L,d]` (or `output_shape`). Heads need not divide d: each has its own `key_dim`.",
    category="attention", reference="keras.layers.MultiHeadAttention",
))


# Transformer blocks ---------------------------------------------------------------------------


def _block_params(decoder: bool) -> tuple[Param, ...]:
    params = [
        Param("num_heads", "int", doc="attention heads; must divide d_model", minimum=1),
        Param("d_model", "int", None, "model width; must equal the input's last dimension "
              "(default: that dimension)", minimum=1),
        Param("dff", "int", doc="hidden width of the feed-forward network", minimum=1,
              aliases=("ff_dim",)),
        Param("dropout_rate", "float", 0.1, "dropout after attention and in the feed-forward",
              minimum=0.0, maximum=1.0, maximum_exclusive=True, aliases=("dropout", "rate"),
              affects_shape=False),
        Param("activation", "activation", "relu", "feed-forward activation",
              choices=("relu", "gelu"), affects_shape=False),
        Param("layer_norm_eps", "float", 1e-5, "LayerNorm epsilon", minimum=0.0,
              minimum_exclusive=True, affects_shape=False),
        Param("norm_first", "bool", False, "pre-norm instead of post-norm", affects_shape=False),
    ]
    if decoder:
        params.append(Param(
            "cross_attention", "bool", False, "also attend to an encoder's output (default: "
            "true when a TransformerEncoder stack precedes this layer; true needs one, false "
            "keeps a self-attention-only block after one)"))
    return tuple(params)


def _divisor_note(d: int, heads: int) -> str:
    divisors = [k for k in range(1, d + 1) if d % k == 0]
    below = [k for k in divisors if k < heads][-1:]
    above = [k for k in divisors if k > heads][:1]
    near = " or ".join(str(k) for k in below + above)
    return f"num_heads must divide d_model={d}; nearby divisors: {near}"


def _block_infer(name: str) -> ShapeRule:
    def infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        d = _seq_width(name, x)
        if attrs["d_model"] is not None and attrs["d_model"] != d:
            raise ShapeError(
                f"{name} d_model={attrs['d_model']} does not match its input {x} "
                f"(last dimension {d})", param="d_model",
                note=f"omit d_model (it defaults to {d}) or project the input first, e.g. "
                f"Dense({attrs['d_model']})",
            )
        if d % attrs["num_heads"]:
            raise ShapeError(
                f"{name} num_heads={attrs['num_heads']} does not divide d_model={d} "
                f"(input {x})", param="num_heads", note=_divisor_note(d, attrs["num_heads"]),
            )
        if len(inputs) > 1:
            if not attrs.get("cross_attention", False):
                raise ShapeError(f"{name} takes one input unless it cross-attends")
            memory = inputs[1]
            dims.require_rank(name, memory, (3,), f"an encoder output of shape {_SEQ}")
            if memory.shape[-1] != d:
                raise ShapeError(
                    f"{name} cross-attends to an encoder output {memory} whose width "
                    f"{memory.shape[-1]} differs from its own input {x} (d_model {d})",
                    note="the encoder and decoder stacks need the same d_model",
                )
        return x

    return infer


def _block_weights(attrs: Attrs, inputs: list[TensorType]) -> dict[str, WeightSpec]:
    d = inputs[0].shape[-1]
    assert isinstance(d, int)
    cross = bool(attrs.get("cross_attention", False))
    weights = torch_mha("self_attn.", d)
    if cross:
        weights.update(torch_mha("multihead_attn.", d))
    weights.update(linear("linear1.", attrs["dff"], d))
    weights.update(linear("linear2.", d, attrs["dff"]))
    for i in range(1, 4 if cross else 3):
        weights.update(norm(f"norm{i}.", d))
    return weights


register_layer(LayerSpec(
    name="TransformerEncoder", params=_block_params(decoder=False),
    infer=_block_infer("TransformerEncoder"), weights=_block_weights,
    doc="A post-norm Transformer encoder layer (self-attention + feed-forward, each followed by "
    "residual add and LayerNorm), exactly `torch.nn.TransformerEncoderLayer(d_model, num_heads, "
    "dff, dropout_rate, activation, batch_first=True)`. Keeps the shape `f32[N,L,d]`.",
    category="attention", reference="torch.nn.TransformerEncoderLayer",
))

register_layer(LayerSpec(
    name="TransformerDecoder", params=_block_params(decoder=True),
    infer=_block_infer("TransformerDecoder"), weights=_block_weights,
    doc="A Transformer decoder layer. Without an encoder before it: a GPT block (causal "
    "self-attention + feed-forward; same weights as a TransformerEncoder). With "
    "`cross_attention=true` (the default after a TransformerEncoder stack) it is "
    "`torch.nn.TransformerDecoderLayer` and its inputs are `[x, memory]` (the encoder output, "
    "same d_model). Keeps the shape of `x`.",
    category="attention",
    reference="torch.nn.TransformerEncoderLayer (causal) / torch.nn.TransformerDecoderLayer",
))

EXAMPLES: dict[str, Example] = {
    "MultiHeadAttention": ([("num_heads", 8), ("key_dim", 64)], [f32(100, 128)]),
    "TransformerEncoder": ([("num_heads", 8), ("d_model", 768), ("dff", 2048)],
                           [f32(512, 768)]),
    "TransformerDecoder": ([("num_heads", 12), ("d_model", 768), ("dff", 3072)],
                           [f32(1024, 768)]),
}
