"""One lowering per layer: an `nn` op → the Keras layer that computes it.

Each lowering is registered into its `LayerSpec.lowerings["tensorflow"]` and returns a
`KerasLayer`: the class, its constructor arguments (defaults left out, so the emitted call reads
like hand-written Keras), how the layer is called, and the weight converter and helper snippets
it needs. Keras built-ins are used wherever their inference semantics equal the PyTorch
backend's; the Transformer blocks are the `TransformerLayer` helper (torch's math, written with
Keras ops). Structural ops (`nn.repeat`, `nn.residual_connection`) are the emitter's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neuralc.diagnostics import error
from neuralc.ir.core import Operation, primary_loc
from neuralc.layers import all_layers

TARGET_NAME = "tensorflow"


@dataclass(frozen=True)
class KerasLayer:
    """How one op is written in the emitted module: `var = cls(*args, name=...)(inputs)`."""

    cls: str  # "layers.Dense", "TransformerLayer"
    args: tuple[str, ...] = ()  # rendered constructor arguments: "16", 'activation="relu"'
    # How the operands are passed: "one" layer(x); "list" layer([a, b]); "self" layer(x, x)
    # (self-attention: query = value = x); "each" layer(x, memory).
    call: str = "one"
    converter: str | None = None  # the function loading its weights, e.g. "load_dense"
    helpers: tuple[str, ...] = ()  # snippet names (neuralc.lower.keras.snippets)


Lowering = Callable[[Operation, dict[str, Any]], KerasLayer]


def py(value: Any) -> str:
    """A Python literal for an attribute value (strings double-quoted, as ruff writes them)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        items = ", ".join(py(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)


def assign_str(name: str, text: str, width: int = 100) -> str:
    """`name = "text"`, split into implicitly concatenated pieces inside parentheses when the
    line would pass `width` (source paths are as long as the user's directories)."""
    line = f"{name} = {py(text)}"
    if len(line) <= width:
        return line
    room = width - 6  # four spaces of indent and the two quotes
    pieces: list[str] = []
    for char in text:  # by escaped length: json.dumps writes non-ASCII as \uXXXX
        if pieces and len(py(pieces[-1] + char)) - 2 <= room:
            pieces[-1] += char
        else:
            pieces.append(char)
    return "\n".join([f"{name} = (", *(f"    {py(piece)}" for piece in pieces), ")"])


def kw(name: str, value: Any) -> str:
    return f"{name}={py(value)}"


def _options(attrs: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """Keyword arguments for the attributes that differ from Keras' defaults, in `defaults`
    order (which is the Keras signature's)."""
    return [kw(k, attrs[k]) for k, default in defaults.items()
            if k in attrs and attrs[k] != default]


# Core -------------------------------------------------------------------------------------------


def _dense(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    args = [py(attrs["units"]), *_options(attrs, {"activation": "linear", "use_bias": True})]
    return KerasLayer("layers.Dense", tuple(args), converter="load_dense",
                      helpers=("load_dense",))


def _dropout(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    return KerasLayer("layers.Dropout", (py(attrs["rate"]),))


def _activation(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    return KerasLayer("layers.Activation", (py(attrs["activation"]),))


def _flatten(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    return KerasLayer("layers.Flatten")


def _reshape(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    return KerasLayer("layers.Reshape", (py(tuple(attrs["target_shape"])),))


def _embedding(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    return KerasLayer("layers.Embedding", (py(attrs["input_dim"]), py(attrs["output_dim"])),
                      converter="load_embedding", helpers=("load_embedding",))


# Convolutions and pooling -------------------------------------------------------------------------


def _conv(cls: str, rank: int) -> Lowering:
    def lower(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
        ones = (1,) * rank
        args = [py(attrs["filters"]), py(attrs["kernel_size"]), *_options(attrs, {
            "strides": ones, "padding": "valid", "dilation_rate": ones,
            "activation": "linear", "use_bias": True})]
        return KerasLayer(f"layers.{cls}", tuple(args), converter="load_conv",
                          helpers=("load_conv",))

    return lower


def _conv_transpose(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    args = [py(attrs["filters"]), py(attrs["kernel_size"]), *_options(attrs, {
        "strides": (1, 1), "padding": "valid"})]
    # Keras' own output_padding=None sizes a valid output (d-1)*s + max(k, s), the registry's
    # arithmetic (`dims.transposed`); an explicit output_padding=0 would give (d-1)*s + k.
    args += _options(attrs, {"activation": "linear", "use_bias": True})
    return KerasLayer("layers.Conv2DTranspose", tuple(args), converter="load_conv",
                      helpers=("load_conv",))


def _pool(cls: str) -> Lowering:
    def lower(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
        args = [py(attrs["pool_size"]),
                *_options(attrs, {"strides": None, "padding": "valid"})]
        return KerasLayer(f"layers.{cls}", tuple(args))

    return lower


def _global_pool(cls: str) -> Lowering:
    def lower(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
        return KerasLayer(f"layers.{cls}", tuple(_options(attrs, {"keepdims": False})))

    return lower


def _upsampling(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    args = [py(attrs["size"]), *_options(attrs, {"interpolation": "nearest"})]
    return KerasLayer("layers.UpSampling2D", tuple(args))


def _zero_padding(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    return KerasLayer("layers.ZeroPadding2D", (py(attrs["padding"]),))


# Normalization -----------------------------------------------------------------------------------


def _batch_norm(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    args = _options(attrs, {"momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True})
    return KerasLayer("layers.BatchNormalization", tuple(args), converter="load_batch_norm",
                      helpers=("load_batch_norm",))


def _layer_norm(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    args = _options(attrs, {"epsilon": 1e-3, "center": True, "scale": True})
    return KerasLayer("layers.LayerNormalization", tuple(args), converter="load_layer_norm",
                      helpers=("load_layer_norm",))


# Attention --------------------------------------------------------------------------------------


def _mha(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    args = [kw("num_heads", attrs["num_heads"]), kw("key_dim", attrs["key_dim"]),
            *_options(attrs, {"value_dim": None, "dropout": 0.0, "use_bias": True})]
    if attrs.get("output_shape") is not None:
        args.append(kw("output_shape", tuple(attrs["output_shape"])))
    return KerasLayer("layers.MultiHeadAttention", tuple(args), call="self",
                      converter="load_multi_head_attention",
                      helpers=("load_multi_head_attention",))


def _transformer(decoder: bool) -> Lowering:
    def lower(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
        d_model = attrs.get("d_model") or op.operands[0].type.shape[-1]
        args = [kw("num_heads", attrs["num_heads"]), kw("d_model", d_model),
                kw("dff", attrs["dff"]),
                *_options(attrs, {"activation": "relu", "layer_norm_eps": 1e-5,
                                  "norm_first": False})]
        cross = decoder and bool(attrs.get("cross_attention", False))
        if decoder:
            args.append("causal=True")
        if cross:
            if len(op.operands) != 2:
                raise error(f"TransformerDecoder '{op.name}' cross-attends but has no encoder "
                            "output operand", primary_loc(op.loc))
            args.append("cross_attention=True")
        return KerasLayer("TransformerLayer", tuple(args), call="each" if cross else "one",
                          converter="TransformerLayer.load_torch", helpers=("TransformerLayer",))

    return lower


# Recurrent ---------------------------------------------------------------------------------------


def _recurrent(cls: str) -> Lowering:
    def lower(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
        args = [py(attrs["units"]), *_options(attrs, {
            "activation": "tanh", "use_bias": True, "dropout": 0.0,
            "return_sequences": False})]
        if cls == "GRU":
            args.append("reset_after=True")  # torch's GRU applies the reset gate after h @ W_hn
        converter = "load_gru" if cls == "GRU" else "load_rnn"
        return KerasLayer(f"layers.{cls}", tuple(args), converter=converter,
                          helpers=(converter,))

    return lower


# Merges ------------------------------------------------------------------------------------------


def _add(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    return KerasLayer("layers.Add", call="list")


def _concatenate(op: Operation, attrs: dict[str, Any]) -> KerasLayer:
    return KerasLayer("layers.Concatenate", tuple(_options(attrs, {"axis": -1})), call="list")


LOWERINGS: dict[str, Lowering] = {
    "Dense": _dense,
    "Output": _dense,
    "Dropout": _dropout,
    "Activation": _activation,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Embedding": _embedding,
    "Conv1D": _conv("Conv1D", 1),
    "Conv2D": _conv("Conv2D", 2),
    "Conv2DTranspose": _conv_transpose,
    "MaxPooling1D": _pool("MaxPooling1D"),
    "MaxPooling2D": _pool("MaxPooling2D"),
    "AveragePooling1D": _pool("AveragePooling1D"),
    "AveragePooling2D": _pool("AveragePooling2D"),
    "GlobalAveragePooling1D": _global_pool("GlobalAveragePooling1D"),
    "GlobalAveragePooling2D": _global_pool("GlobalAveragePooling2D"),
    "GlobalMaxPooling1D": _global_pool("GlobalMaxPooling1D"),
    "GlobalMaxPooling2D": _global_pool("GlobalMaxPooling2D"),
    "UpSampling2D": _upsampling,
    "ZeroPadding2D": _zero_padding,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "MultiHeadAttention": _mha,
    "TransformerEncoder": _transformer(decoder=False),
    "TransformerDecoder": _transformer(decoder=True),
    "LSTM": _recurrent("LSTM"),
    "GRU": _recurrent("GRU"),
    "SimpleRNN": _recurrent("SimpleRNN"),
    "Add": _add,
    "Concatenate": _concatenate,
}
# Layers the emitter writes itself (they hold regions of other layers).
STRUCTURAL = frozenset({"ResidualConnection"})


def register() -> None:
    """Attach every lowering to its registry entry (idempotent)."""
    for spec in all_layers():
        if spec.name in LOWERINGS:
            spec.lowerings[TARGET_NAME] = LOWERINGS[spec.name]


register()
