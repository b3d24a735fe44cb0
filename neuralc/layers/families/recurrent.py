"""Recurrent layers: LSTM, GRU, SimpleRNN over `(N, L, features)`, one layer, one direction.

Weights (torch.nn.LSTM/GRU/RNN, batch_first; g = 4 for LSTM, 3 for GRU, 1 for SimpleRNN):
  `weight_ih_l0` [g*units, features], `weight_hh_l0` [g*units, units],
  `bias_ih_l0` [g*units], `bias_hh_l0` [g*units] (two bias vectors, as torch; Keras' GRU with
  `reset_after=True` has the same two), all rnn_uniform U(±1/sqrt(units)).
Gate order is torch's (LSTM i, f, g, o; GRU r, z, n); a Keras emitter reorders.

The activations are fixed to what both frameworks' fused kernels compute (tanh and sigmoid; tanh
or relu for SimpleRNN); naming them is allowed so Keras-style calls bind.
"""

from __future__ import annotations

from neuralc.ir.types import TensorType
from neuralc.layers.families import dims
from neuralc.layers.families.common import Example, f32
from neuralc.layers.registry import register_layer
from neuralc.layers.spec import Attrs, LayerSpec, Param, ShapeRule, WeightRule, WeightSpec


def _params(activations: tuple[str, ...], recurrent: bool) -> tuple[Param, ...]:
    params = [
        Param("units", "int", doc="hidden state width", minimum=1),
        Param("activation", "activation", "tanh", "state activation", choices=activations,
              affects_shape=False),
    ]
    if recurrent:
        params.append(Param("recurrent_activation", "activation", "sigmoid", "gate activation",
                            choices=("sigmoid",), affects_shape=False))
    params += [
        Param("use_bias", "bool", True, "input and recurrent biases"),
        Param("return_sequences", "bool", False, "return every step's output, not only the last"),
        Param("dropout", "float", 0.0, "dropout on the inputs", minimum=0.0, maximum=1.0,
              maximum_exclusive=True, affects_shape=False),
    ]
    return tuple(params)


def _infer(name: str) -> ShapeRule:
    def infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        dims.require_sequence(name, x, "features")
        dims.require_float(name, x)
        dims.static_dim(name, x, -1, "number of input features (last dimension)")
        if attrs["return_sequences"]:
            return x.with_shape((x.shape[0], x.shape[1], attrs["units"]))
        return x.with_shape((x.shape[0], attrs["units"]))

    return infer


def _weights(gates: int) -> WeightRule:
    def weights(attrs: Attrs, inputs: list[TensorType]) -> dict[str, WeightSpec]:
        features = inputs[0].shape[-1]
        assert isinstance(features, int)
        h = attrs["units"]
        g = gates * h
        out = {
            "weight_ih_l0": WeightSpec((g, features), "rnn_uniform", fan_in=h),
            "weight_hh_l0": WeightSpec((g, h), "rnn_uniform", fan_in=h),
        }
        if attrs["use_bias"]:
            out["bias_ih_l0"] = WeightSpec((g,), "rnn_uniform", fan_in=h)
            out["bias_hh_l0"] = WeightSpec((g,), "rnn_uniform", fan_in=h)
        return out

    return weights


_DOC = ("{what}: `f32[N,L,F]` → `f32[N,units]` (the last step), or `f32[N,L,units]` with "
        "`return_sequences=true`.")

for _name, _gates, _acts, _recurrent, _ref, _what in (
    ("LSTM", 4, ("tanh",), True, "torch.nn.LSTM", "Long short-term memory"),
    ("GRU", 3, ("tanh",), True, "torch.nn.GRU", "Gated recurrent unit (reset after, as torch)"),
    ("SimpleRNN", 1, ("tanh", "relu"), False, "torch.nn.RNN", "Elman RNN"),
):
    register_layer(LayerSpec(
        name=_name, params=_params(_acts, _recurrent), infer=_infer(_name),
        weights=_weights(_gates), doc=_DOC.format(what=_what), category="recurrent",
        reference=_ref,
    ))

EXAMPLES: dict[str, Example] = {
    "LSTM": ([("units", 128), ("return_sequences", True)], [f32(100, 300)]),
    "GRU": ([(None, 64)], [f32(100, 128)]),
    "SimpleRNN": ([(None, 32), ("activation", "relu")], [f32(50, 16)]),
}
