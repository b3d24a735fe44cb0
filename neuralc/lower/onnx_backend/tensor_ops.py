"""`tensor` ops → ONNX ops (see stages.py for values, forms, names).

Most ops are one ONNX op of the same meaning (the dialect is ONNX-level). The others:
- `tensor.linear`: `Gemm(transB=1)` on a matrix (rank 2, or the rows form of a value whose sizes
  after the batch are known), else `MatMul` with the transposed weight (folded) and `Add`.
- `tensor.softmax{causal}`: an additive mask (0 where key j ≤ query i, -inf above) before
  `Softmax`: a constant for known sizes, else `ConstantOfShape` + `Trilu`.
- `tensor.batch_norm{axis}`: `BatchNormalization` when the channels are axis 1; otherwise the
  inference formula `x * k + (bias - mean * k)`, `k = scale / sqrt(var + eps)`, whose factors
  depend on initializers only (folded).
- `tensor.lstm/gru/rnn`: ONNX's LSTM/GRU/RNN, time-major, gates reordered on the initializers
  (recurrent.py).
- `tensor.dropout`, `tensor.transfer`: the identity.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from neuralc.ir.core import Operation
from neuralc.ir.types import TensorType
from neuralc.lower.onnx_backend.core import LEAKY_RELU_SLOPE
from neuralc.lower.onnx_backend.core import activation as named_activation
from neuralc.lower.onnx_backend.graph import Scope
from neuralc.lower.onnx_backend.recurrent import lower_tensor_recurrent
from neuralc.lower.onnx_backend.spatial import refuse_negative_same_pads
from neuralc.lower.onnx_backend.stages import Lowerer, StageLowering, Val, rows_ok

NP_DTYPES: dict[str, Any] = {
    "f32": np.float32, "f64": np.float64, "f16": np.float16, "i64": np.int64,
    "i32": np.int32, "i8": np.int8, "bool": np.bool_,
}  # fmt: skip


def _axis(axis: int, rank: int) -> int:
    return axis % rank if rank else 0


def activation(s: Scope, x: str, kind: str, alpha: float = LEAKY_RELU_SLOPE) -> str:
    """An elementwise activation (tensor.activation's kinds), leaky_relu with slope `alpha`."""
    if kind == "leaky_relu":
        return s.child(kind).op("LeakyRelu", x, alpha=float(alpha))
    return named_activation(s, x, kind)


# Values -----------------------------------------------------------------------------------


def weight(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    return e.out(nat=e.graph.weight(str(a["key"])))


def constant(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    t = e.type
    if t.dtype not in NP_DTYPES:
        raise e.s.error(f"the ONNX backend has no {t.dtype} constants")
    dtype = NP_DTYPES[t.dtype]
    value = a["value"]
    shape = tuple(int(d) for d in t.shape)
    if isinstance(value, str):
        raw = np.frombuffer(base64.b64decode(value), dtype=np.dtype(dtype).newbyteorder("<"))
        array = raw.astype(dtype).reshape(shape)
    elif isinstance(value, tuple):
        array = np.array(value, dtype=dtype).reshape(shape)
    else:
        array = np.full(shape, value, dtype=dtype)
    return e.out(nat=e.graph.const(array, op.name, dtype))


def identity(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    return ins[0]  # dropout at inference


# Elementwise ------------------------------------------------------------------------------


def _rowwise(t: TensorType, result: TensorType) -> bool:
    """An operand that works unchanged against the rows form of `result`: the same shape, or a
    scalar / vector broadcast along the last axis."""
    return t.shape == result.shape or t.rank <= 1


def binary(kind: str) -> StageLowering:
    def lower(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
        full = [v for v in ins if v.type.shape == e.type.shape]
        if (
            rows_ok(e.type)
            and e.type.rank > 2
            and all(_rowwise(v.type, e.type) for v in ins)
            and any(v.rows is not None for v in full)
        ):
            args = [e.rows(v) if v.type.shape == e.type.shape else e.nat(v) for v in ins]
            return e.out(rows=e.s.op(kind, *args))
        return e.out(nat=e.s.op(kind, *(e.nat(v) for v in ins)))

    return lower


def tensor_activation(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    (x,) = ins
    form = e.form(x)
    return e.out(**{form: activation(e.s, e.get(x, form), a["kind"], a.get("alpha", 0.2))})


def causal_mask(e: Lowerer, scores: str, t: TensorType) -> str:
    """Additive [L, S] mask for the last two axes of `t`: 0 where j ≤ i, -inf above."""
    m = e.s.child("causal_mask")
    length, size = t.shape[-2], t.shape[-1]
    if isinstance(length, int) and isinstance(size, int):
        mask = np.triu(np.full((length, size), -np.inf, dtype=np.float32), k=1)
        return m.const(mask, f"causal_mask_{length}x{size}")
    square = m.op(
        "Slice",
        m.op("Shape", scores),
        m.ints([-2], "start"),
        m.ints([np.iinfo(np.int64).max], "end"),
    )
    from onnx import numpy_helper

    filled = m.op(
        "ConstantOfShape",
        square,
        value=numpy_helper.from_array(np.array([-np.inf], dtype=np.float32)),
    )
    return m.op("Trilu", filled, m.const(np.int64(1), "diagonal", np.int64), upper=1)


def softmax(kind: str) -> StageLowering:
    def lower(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
        (x,) = ins
        axis = _axis(int(a.get("axis", -1)), x.type.rank)
        if a.get("causal"):
            scores = e.nat(x)
            masked = e.s.op("Add", scores, causal_mask(e, scores, x.type))
            return e.out(nat=e.s.op(kind, masked, axis=-1))
        if axis == x.type.rank - 1:
            form = e.form(x)
            return e.out(**{form: e.s.op(kind, e.get(x, form), axis=-1)})
        return e.out(nat=e.s.op(kind, e.nat(x), axis=axis))

    return lower


# Linear algebra and normalization ---------------------------------------------------------


def matmul(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    return e.out(nat=e.s.op("MatMul", e.nat(ins[0]), e.nat(ins[1])))


def linear_to(e: Lowerer, s: Scope, x: Val, w: str, b: str | None, t: TensorType) -> Val:
    """torch's Linear of `x` to type `t`: Gemm on matrices (rows forms), else MatMul + Add."""
    if x.type.rank == 2 or rows_ok(x.type):
        y = s.op("Gemm", e.rows(x), w, *([b] if b else []), transB=1)
        return e.out(t, rows=y)
    y = s.op("MatMul", e.nat(x), e.transposed_weight(w))
    return e.out(t, nat=s.op("Add", y, b) if b else y)


def linear(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    x, w = ins[0], e.nat(ins[1])
    b = e.nat(ins[2]) if len(ins) > 2 else None
    return linear_to(e, e.s, x, w, b, e.type)


def layer_norm(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    x, scale, bias = ins
    axis = _axis(int(a.get("axis", -1)), x.type.rank)
    form = e.form(x) if axis == x.type.rank - 1 else "nat"
    y = e.s.op(
        "LayerNormalization",
        e.get(x, form),
        e.nat(scale),
        e.nat(bias),
        axis=-1 if form == "rows" else axis,
        epsilon=float(a["eps"]),
    )
    return e.out(**{form: y})


def batch_norm(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    x, scale, bias, mean, var = ins
    rank = x.type.rank
    axis = _axis(int(a.get("axis", -1)), rank)
    eps = float(a["eps"])
    params = [e.nat(v) for v in (scale, bias, mean, var)]
    if axis == 1 and rank >= 2:
        return e.out(nat=e.s.op("BatchNormalization", e.nat(x), *params, epsilon=eps))
    f = e.s.child("fold")
    k = f.op("Div", params[0], f.op("Sqrt", f.op("Add", params[3], f.scalar(eps, "epsilon"))))
    shift = f.op("Sub", params[1], f.op("Mul", params[2], k))
    if axis == rank - 1:
        form = e.form(x)
        return e.out(**{form: e.s.op("Add", e.s.op("Mul", e.get(x, form), k), shift)})
    trailing = [-1] + [1] * (rank - 1 - axis)
    k, shift = (f.reshape(v, trailing) for v in (k, shift))
    return e.out(nat=e.s.op("Add", e.s.op("Mul", e.nat(x), k), shift))


# Shapes -----------------------------------------------------------------------------------


def reshape(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    (x,) = ins
    t = e.type
    if all(isinstance(d, int) for d in t.shape[1:]):
        # Only the batch (if anything) is unknown: -1 finds it, from either form of x.
        source = x.rows if x.rows is not None else e.nat(x)
        return e.out(nat=e.reshape(source, t.shape))
    return e.out(nat=e.s.reshape(e.nat(x), [int(d) for d in a["shape"]]))


def transpose(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    return e.out(nat=e.transpose(e.nat(ins[0]), [int(p) for p in a["perm"]]))


def concat(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    rank = e.type.rank
    axis = _axis(int(a["axis"]), rank)
    if axis == rank - 1 and rank > 2 and e.form(*ins) == "rows":
        return e.out(rows=e.s.op("Concat", *(e.rows(v) for v in ins), axis=-1))
    return e.out(nat=e.s.op("Concat", *(e.nat(v) for v in ins), axis=axis))


def slice_(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    (x,) = ins
    axis = _axis(int(a["axis"]), x.type.rank)
    form = e.form(x) if axis == x.type.rank - 1 else "nat"
    s = e.s
    y = s.op(
        "Slice",
        e.get(x, form),
        s.ints([int(a["start"])], "start"),
        s.ints([int(a["end"])], "end"),
        s.ints([-1 if form == "rows" else axis], "axes"),
    )
    return e.out(**{form: y})


def gather(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    data, ids = ins
    axis = _axis(int(a.get("axis", 0)), data.type.rank)
    return e.out(nat=e.s.op("Gather", e.nat(data), e.nat(ids), axis=axis))


def pad(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    (x,) = ins
    s = e.s
    inputs = [e.nat(x), s.ints([int(p) for p in a["pads"]], "pads")]
    value = float(a.get("value", 0.0))
    if value:
        inputs.append(
            s.const(np.array(value, NP_DTYPES[x.type.dtype]), "pad_value", NP_DTYPES[x.type.dtype])
        )
    return e.out(nat=s.op("Pad", *inputs, mode="constant"))


def resize(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    if a.get("mode", "nearest") == "linear":
        mode = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        mode = {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        }
    scales = e.s.const([float(v) for v in a["scales"]], "scales")
    return e.out(nat=e.s.op("Resize", e.nat(ins[0]), "", scales, **mode))


def reduce(kind: str) -> StageLowering:
    def lower(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
        (x,) = ins
        axes = sorted({_axis(int(i), x.type.rank) for i in a["axes"]})
        return e.out(nat=e.s.reduce(kind, e.nat(x), axes, bool(a.get("keepdims", False))))

    return lower


# Windowed ops (channels first) ------------------------------------------------------------


def _window(a: dict[str, Any], spatial: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("strides", "dilations"):
        if key in a:
            out[key] = [int(v) for v in a[key]] or [1] * spatial
    if a.get("pads") == "same_upper":
        out["auto_pad"] = "SAME_UPPER"
    else:
        out["pads"] = [int(p) for p in a["pads"]]
    return out


def conv(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    w_type = ins[1].type
    kernel = [int(k) for k in w_type.shape[2:]]
    extra = _window(a, len(kernel))
    if op.op == "tensor.conv":
        extra["group"] = int(a.get("groups", 1))
        kind = "Conv"
    else:
        kind = "ConvTranspose"
        padding = [int(p) for p in a.get("output_padding") or ()]
        if any(padding):
            extra["output_padding"] = padding
    y = e.s.op(kind, *(e.nat(v) for v in ins), kernel_shape=kernel, **extra)
    return e.out(nat=y)


def pool(kind: str) -> StageLowering:
    def lower(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
        kernel = [int(k) for k in a["kernel"]]
        extra = _window({**a, "strides": a.get("strides", ())}, len(kernel))
        if "auto_pad" in extra:
            refuse_negative_same_pads(e.s, kernel, extra["strides"])
        if kind == "AveragePool":
            extra["count_include_pad"] = int(bool(a.get("count_include_pad", False)))
        return e.out(nat=e.s.op(kind, e.nat(ins[0]), kernel_shape=kernel, **extra))

    return lower


LOWERINGS: dict[str, StageLowering] = {
    "tensor.weight": weight,
    "tensor.constant": constant,
    "tensor.add": binary("Add"),
    "tensor.sub": binary("Sub"),
    "tensor.mul": binary("Mul"),
    "tensor.div": binary("Div"),
    "tensor.activation": tensor_activation,
    "tensor.softmax": softmax("Softmax"),
    "tensor.log_softmax": softmax("LogSoftmax"),
    "tensor.matmul": matmul,
    "tensor.linear": linear,
    "tensor.layer_norm": layer_norm,
    "tensor.batch_norm": batch_norm,
    "tensor.reshape": reshape,
    "tensor.transpose": transpose,
    "tensor.concat": concat,
    "tensor.slice": slice_,
    "tensor.gather": gather,
    "tensor.dropout": identity,
    "tensor.pad": pad,
    "tensor.resize": resize,
    "tensor.conv": conv,
    "tensor.conv_transpose": conv,
    "tensor.max_pool": pool("MaxPool"),
    "tensor.avg_pool": pool("AveragePool"),
    "tensor.reduce_mean": reduce("ReduceMean"),
    "tensor.reduce_max": reduce("ReduceMax"),
    "tensor.lstm": lower_tensor_recurrent,
    "tensor.gru": lower_tensor_recurrent,
    "tensor.rnn": lower_tensor_recurrent,
}
