"""Inverse converters: Keras variables -> the framework-neutral weight file.

Each `save_*` exactly inverts the `load_*` snippet of the same name in
`neuralc.lower.keras.snippets`, returning one layer's arrays by weight name (PyTorch names and
layouts), so that a model trained by Keras is written with the keys and shapes of `neuralc init`.
They run in neuralc (not in the emitted module) on the layers of a model the emitted module
built. `neutral_weights(model, module.CONVERTERS)` finds each layer's inverse by the name of its
forward converter (`INVERSES`).

Decision (LSTM / SimpleRNN biases): the forward converter sums torch's two biases into Keras'
single bias, so only the sum b_ih + b_hh is identifiable from a Keras model: the inverse writes
b_ih = the Keras bias and b_hh = 0 (the computed function is the same). GRU keeps both rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _numpy() -> Any:
    import numpy as np

    return np


def save_dense(layer: Any) -> dict[str, Any]:
    """Inverse of load_dense: weight = kernel.T."""
    arrays = layer.get_weights()
    out = {"weight": arrays[0].T}
    if layer.use_bias:
        out["bias"] = arrays[1]
    return out


def save_conv(layer: Any) -> dict[str, Any]:
    """Inverse of load_conv: kernel [*k, in, out] -> weight [out, in, *k] (transposed
    convolutions: [kh, kw, out, in] -> [in, out, kh, kw])."""
    np = _numpy()
    arrays = layer.get_weights()
    out = {"weight": np.moveaxis(arrays[0], (-1, -2), (0, 1))}
    if layer.use_bias:
        out["bias"] = arrays[1]
    return out


def save_batch_norm(layer: Any) -> dict[str, Any]:
    """Inverse of load_batch_norm; `num_batches_tracked` (which Keras does not keep) is 0."""
    np = _numpy()
    arrays = list(layer.get_weights())
    out = {}
    if layer.scale:
        out["weight"] = arrays.pop(0)
    if layer.center:
        out["bias"] = arrays.pop(0)
    out["running_mean"], out["running_var"] = arrays
    out["num_batches_tracked"] = np.zeros((), dtype=np.float32)
    return out


def save_layer_norm(layer: Any) -> dict[str, Any]:
    """Inverse of load_layer_norm."""
    arrays = list(layer.get_weights())
    out = {}
    if layer.scale:
        out["weight"] = arrays.pop(0)
    if layer.center:
        out["bias"] = arrays.pop(0)
    return out


def save_embedding(layer: Any) -> dict[str, Any]:
    return {"weight": layer.get_weights()[0]}


def save_multi_head_attention(layer: Any) -> dict[str, Any]:
    """Keras' own layout is the neutral one: names in load_multi_head_attention's order."""
    parts = ("kernel", "bias") if layer.get_config()["use_bias"] else ("kernel",)
    names = [f"{n}.{p}" for n in ("query", "key", "value", "attention_output") for p in parts]
    return dict(zip(names, layer.get_weights(), strict=True))


def save_rnn(layer: Any) -> dict[str, Any]:
    """Inverse of load_rnn: weight_ih = kernel.T, weight_hh = recurrent_kernel.T; the Keras bias
    is b_ih + b_hh, written as bias_ih = the bias and bias_hh = 0 (the sum is what is
    identifiable)."""
    np = _numpy()
    arrays = layer.get_weights()
    out = {"weight_ih_l0": arrays[0].T, "weight_hh_l0": arrays[1].T}
    if layer.use_bias:
        out["bias_ih_l0"] = arrays[2]
        out["bias_hh_l0"] = np.zeros_like(arrays[2])
    return out


def save_gru(layer: Any) -> dict[str, Any]:
    """Inverse of load_gru: gates z, r, h -> r, z, n; the (2, 3 * units) bias -> bias_ih (row 0)
    and bias_hh (row 1)."""
    np = _numpy()

    def gates(array: Any) -> Any:
        z, r, n = np.split(array, 3, axis=0)
        return np.concatenate([r, z, n], axis=0)

    arrays = layer.get_weights()
    out = {"weight_ih_l0": gates(arrays[0].T), "weight_hh_l0": gates(arrays[1].T)}
    if layer.use_bias:
        out["bias_ih_l0"], out["bias_hh_l0"] = gates(arrays[2][0]), gates(arrays[2][1])
    return out


def _prefixed(prefix: str, arrays: dict[str, Any]) -> dict[str, Any]:
    return {prefix + name: value for name, value in arrays.items()}


def save_torch_attention(layer: Any) -> dict[str, Any]:
    """Inverse of TorchMultiheadAttention.load_torch: q, k, v packed into in_proj_*."""
    np = _numpy()
    projections = [save_dense(d) for d in (layer.query, layer.key, layer.value)]
    return {
        "in_proj_weight": np.concatenate([p["weight"] for p in projections], axis=0),
        "in_proj_bias": np.concatenate([p["bias"] for p in projections], axis=0),
        **_prefixed("out_proj.", save_dense(layer.out_proj)),
    }


def save_transformer(layer: Any) -> dict[str, Any]:
    """Inverse of TransformerLayer.load_torch."""
    out = _prefixed("self_attn.", save_torch_attention(layer.self_attn))
    if layer.multihead_attn is not None:
        out.update(_prefixed("multihead_attn.", save_torch_attention(layer.multihead_attn)))
    out.update(_prefixed("linear1.", save_dense(layer.linear1)))
    out.update(_prefixed("linear2.", save_dense(layer.linear2)))
    for norm in layer.norms:
        out.update(_prefixed(f"{norm.name}.", save_layer_norm(norm)))
    return out


# Forward converter (its `__qualname__`, as `KerasLayer.converter` names it) -> its inverse.
INVERSES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "load_dense": save_dense,
    "load_conv": save_conv,
    "load_batch_norm": save_batch_norm,
    "load_layer_norm": save_layer_norm,
    "load_embedding": save_embedding,
    "load_multi_head_attention": save_multi_head_attention,
    "load_rnn": save_rnn,
    "load_gru": save_gru,
    "TransformerLayer.load_torch": save_transformer,
}


def neutral_weights(model: Any, converters: Mapping[type, Callable[..., Any]]) -> dict[str, Any]:
    """A Keras model's weights as the framework-neutral file holds them (`<layer>.<name>`,
    PyTorch layouts, float32, C order): the inverse of the emitted module's `load_weights`.
    `converters` is that module's `CONVERTERS`."""
    np = _numpy()
    out: dict[str, Any] = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        forward = converters[type(layer)]
        inverse = INVERSES[forward.__qualname__]
        for name, value in inverse(layer).items():
            out[f"{layer.name}.{name}"] = np.array(value, dtype=np.float32, order="C")
    return out
