"""Core layers: Dense/Output, Activation, Dropout, Flatten, Reshape, Embedding, BatchNormalization,
LayerNormalization, Add, Concatenate.

Activation constants follow Keras 3 (and agree with torch's defaults): `leaky_relu` has
negative_slope 0.2 (Keras' `keras.activations.leaky_relu`; torch's module default is 0.01, so
the PyTorch emitter passes 0.2), `elu` alpha 1, `selu` the standard constants, `hard_sigmoid`
`relu6(x + 3) / 6`, `gelu` the exact erf form.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuralc.ir.core import Operation
from neuralc.lower.onnx_backend.graph import CF, CL, Scope, Slot, cf_axis

LEAKY_RELU_SLOPE = 0.2
ELU_ALPHA = 1.0


def activation(s: Scope, x: str, name: str | None, axis: int = -1) -> str:
    """Apply a registry activation to tensor `x` (softmax-like ones along `axis`)."""
    if name in (None, "linear"):
        return x
    a = s.child(name)
    simple = {
        "relu": "Relu",
        "tanh": "Tanh",
        "sigmoid": "Sigmoid",
        "softplus": "Softplus",
        "softsign": "Softsign",
    }
    if name in simple:
        return a.op(simple[name], x)
    if name == "softmax":
        return a.op("Softmax", x, axis=axis)
    if name == "log_softmax":
        return a.op("LogSoftmax", x, axis=axis)
    if name == "elu":
        return a.op("Elu", x, alpha=ELU_ALPHA)
    if name == "selu":
        return a.op("Selu", x)
    if name == "leaky_relu":
        return a.op("LeakyRelu", x, alpha=LEAKY_RELU_SLOPE)
    if name == "hard_sigmoid":
        return a.op("HardSigmoid", x, alpha=1.0 / 6.0, beta=0.5)
    if name in ("swish", "silu"):
        return a.op("Mul", x, a.op("Sigmoid", x))
    if name == "gelu":
        return gelu(a, x)
    raise s.error(f"the ONNX backend has no lowering for activation '{name}'")


def gelu(s: Scope, x: str) -> str:
    """Exact (erf) GELU: the Gelu op from opset 20, else the formula ONNX Runtime fuses."""
    if s.opset >= 20:
        return s.op("Gelu", x, approximate="none")
    erf = s.op("Erf", s.op("Div", x, s.scalar(math.sqrt(2.0), "sqrt2")))
    return s.op(
        "Mul", s.op("Mul", x, s.op("Add", erf, s.scalar(1.0, "one"))), s.scalar(0.5, "half")
    )


def linear(s: Scope, x: str, rank: int, prefix: str = "", bias: bool = True) -> str:
    """torch's Linear on the last axis: Gemm(transB) on matrices, MatMul + Add above."""
    w = f"{prefix}weight"
    b = f"{prefix}bias"
    if rank == 2:
        inputs = [x, s.weight(w)] + ([s.weight(b)] if bias else [])
        return s.op("Gemm", *inputs, transB=1)
    y = s.op("MatMul", x, s.weight_t(w))
    return s.op("Add", y, s.weight(b)) if bias else y


def lower_dense(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    shape = op.operands[0].type.shape
    name = s.get(x, CL)
    inner = shape[1:-1]
    if x.rank > 2 and all(isinstance(d, int) for d in inner):
        # Known inner sizes: one Gemm over the rows [N*..., in] (bias and activation fused by
        # ONNX Runtime), then back to [N, ..., units].
        rows = s.op("Reshape", name, s.ints([-1, shape[-1]], "rows_shape"))
        y = activation(s, linear(s, rows, 2, bias=attrs["use_bias"]), attrs["activation"])
        out = s.op("Reshape", y, s.ints([-1, *inner, attrs["units"]], "output_shape"))
        return Slot(x.rank, {CL: out})
    y = linear(s, name, x.rank, bias=attrs["use_bias"])
    return Slot(x.rank, {CL: activation(s, y, attrs["activation"])})


def lower_activation(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    name = attrs["activation"]
    layout = CL if name in ("softmax", "log_softmax") else s.preferred(x)
    return Slot(x.rank, {layout: activation(s, s.get(x, layout), name)})


def lower_dropout(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    return ins[0]  # the identity at inference


def lower_flatten(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    if x.rank == 2:
        return x
    return Slot(2, {CL: s.op("Flatten", s.get(x, CL), axis=1)})


def lower_reshape(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    target = list(attrs["target_shape"])
    return Slot(1 + len(target), {CL: s.op("Reshape", s.get(x, CL), s.ints([0, *target]))})


def lower_embedding(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (ids,) = ins
    return Slot(ids.rank + 1, {CL: s.op("Gather", s.weight("weight"), s.get(ids, CL), axis=0)})


def _affine(s: Scope, attrs: dict[str, Any], c: int) -> tuple[str, str]:
    scale = s.weight("weight") if attrs["scale"] else s.const(np.ones(c), "ones")
    bias = s.weight("bias") if attrs["center"] else s.const(np.zeros(c), "zeros")
    return scale, bias


def lower_batch_norm(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    c = op.operands[0].type.shape[-1]
    assert isinstance(c, int)
    scale, bias = _affine(s, attrs, c)
    mean, var = s.weight("running_mean"), s.weight("running_var")
    eps = float(attrs["epsilon"])
    if x.rank == 2 or x.has(CF):
        layout = CF if x.rank > 2 else CL
        y = s.op("BatchNormalization", s.get(x, layout), scale, bias, mean, var, epsilon=eps)
        return Slot(x.rank, {layout: y})
    # Channels-last: y = x * k + (beta - mean * k), k = gamma / sqrt(var + eps); the factors
    # depend on initializers only, so ONNX Runtime folds them.
    f = s.child("fold")
    k = f.op("Div", scale, f.op("Sqrt", f.op("Add", var, f.scalar(eps, "epsilon"))))
    shift = f.op("Sub", bias, f.op("Mul", mean, k))
    return Slot(x.rank, {CL: s.op("Add", s.op("Mul", s.get(x, CL), k), shift)})


def lower_layer_norm(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    c = op.operands[0].type.shape[-1]
    assert isinstance(c, int)
    scale, bias = _affine(s, attrs, c)
    y = s.op(
        "LayerNormalization", s.get(x, CL), scale, bias, axis=-1, epsilon=float(attrs["epsilon"])
    )
    return Slot(x.rank, {CL: y})


def _common_layout(ins: list[Slot]) -> str:
    return CF if all(x.rank >= 3 and x.has(CF) for x in ins) else CL


def lower_add(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    layout = _common_layout(ins)
    names = [s.get(x, layout) for x in ins]
    y = names[0]
    for other in names[1:]:
        y = s.op("Add", y, other)
    return Slot(ins[0].rank, {layout: y})


def lower_concatenate(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    layout = _common_layout(ins)
    rank = ins[0].rank
    axis = int(attrs["axis"]) % rank
    if layout == CF:
        axis = cf_axis(axis, rank)
    y = s.op("Concat", *(s.get(x, layout) for x in ins), axis=axis)
    return Slot(rank, {layout: y})


LOWERINGS = {
    "Dense": lower_dense,
    "Output": lower_dense,
    "Activation": lower_activation,
    "Dropout": lower_dropout,
    "Flatten": lower_flatten,
    "Reshape": lower_reshape,
    "Embedding": lower_embedding,
    "BatchNormalization": lower_batch_norm,
    "LayerNormalization": lower_layer_norm,
    "Add": lower_add,
    "Concatenate": lower_concatenate,
}
