"""Lowering of the core and structural layers: Dense, Output, Dropout, Activation, Flatten,
Reshape, Embedding, Add, Concatenate."""

from __future__ import annotations

from neuralc.ir.core import Value
from neuralc.passes.lowering.emit import Layer, lowering


@lowering("nn.dense", "nn.output")
def dense(layer: Layer) -> Value:
    """`tensor.linear(x, weight[, bias])`, then the activation."""
    operands = [layer.inputs[0], layer.weight("weight")]
    if layer.has_weight("bias"):
        operands.append(layer.weight("bias"))
    y = layer.emit("tensor.linear", operands, suffix="linear")
    return layer.activate(y)


@lowering("nn.dropout")
def dropout(layer: Layer) -> Value:
    return layer.dropout(layer.inputs[0], layer.attrs["rate"], "dropout")


@lowering("nn.activation")
def activation(layer: Layer) -> Value:
    return layer.activate(layer.inputs[0])


@lowering("nn.flatten")
def flatten(layer: Layer) -> Value:
    """`reshape{shape = (0, -1)}`: channels-last, so Keras' (H, W, C) order; rank 2 is the
    identity."""
    x = layer.inputs[0]
    return x if x.type.rank == 2 else layer.emit("tensor.reshape", [x], {"shape": (0, -1)})


@lowering("nn.reshape")
def reshape(layer: Layer) -> Value:
    target = tuple(int(d) for d in layer.attrs["target_shape"])
    return layer.emit("tensor.reshape", [layer.inputs[0]], {"shape": (0, *target)})


@lowering("nn.embedding")
def embedding(layer: Layer) -> Value:
    return layer.emit("tensor.gather", [layer.weight("weight"), layer.inputs[0]], {"axis": 0},
                      "gather")


@lowering("nn.add")
def add(layer: Layer) -> Value:
    """`((x0 + x1) + x2) + ...`, as the emitters' `x0 + x1 + x2`."""
    total = layer.inputs[0]
    for i, x in enumerate(layer.inputs[1:], 1):
        total = layer.emit("tensor.add", [total, x], suffix=f"sum{i}")
    return total


@lowering("nn.concatenate")
def concatenate(layer: Layer) -> Value:
    return layer.emit("tensor.concat", layer.inputs, {"axis": int(layer.attrs["axis"])},
                      "concat")
