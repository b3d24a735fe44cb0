"""Lowering of BatchNormalization and LayerNormalization (both over the last, channel axis).

A norm without gamma (`scale=false`) or beta (`center=false`) gets a splat constant 1.0 / 0.0,
so the tensor ops always take their full operand list. Keras' BatchNormalization momentum (the
weight of the old statistic) becomes torch's (the weight of the new one): `1 - momentum`.
"""

from __future__ import annotations

from neuralc.ir.core import Value
from neuralc.ir.types import Attr, HPOAttr
from neuralc.passes.lowering.emit import Layer, lowering


def torch_momentum(keras: Attr) -> Attr:
    """`1 - momentum`, for a number or each candidate/bound of an HPO value."""
    if isinstance(keras, HPOAttr):
        if keras.kind == "choice":
            return HPOAttr("choice", tuple(torch_momentum(c) for c in keras.args))
        lo, hi = keras.args
        return HPOAttr(keras.kind, (torch_momentum(hi), torch_momentum(lo)), keras.kwargs)
    return round(1.0 - float(keras), 12)  # type: ignore[arg-type]


@lowering("nn.batch_normalization")
def batch_norm(layer: Layer) -> Value:
    x = layer.inputs[0]
    c = x.type.shape[-1]
    scale = layer.weight("weight") if layer.has_weight("weight") else \
        layer.constant(1.0, (c,), "ones")  # type: ignore[arg-type]
    bias = layer.weight("bias") if layer.has_weight("bias") else \
        layer.constant(0.0, (c,), "zeros")  # type: ignore[arg-type]
    stats = [layer.weight("running_mean"), layer.weight("running_var")]
    attrs: dict[str, Attr] = {"eps": layer.attrs["epsilon"],
                              "momentum": torch_momentum(layer.attrs["momentum"])}
    return layer.emit("tensor.batch_norm", [x, scale, bias, *stats], attrs, "norm")


@lowering("nn.layer_normalization")
def layer_norm(layer: Layer) -> Value:
    return layer.layer_norm(layer.inputs[0], "", layer.attrs["epsilon"])
