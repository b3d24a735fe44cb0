"""`tensor` ops on values: weights and constants, elementwise math, activations, softmax,
matmul/linear, normalizations, reshaping, slicing, gathering, dropout, padding, resizing and
device transfers."""

from __future__ import annotations

import base64
from math import prod

from neuralc.ir.tensor.signature import (
    ACT,
    ANY,
    BOOL,
    FLOAT,
    FLOAT_HPO,
    INT,
    INTS,
    REQUIRED,
    STR,
    broadcast,
    define,
    expect_shape,
    fail,
    is_int,
    is_num,
    norm_axis,
    rank_at_least,
    same_dtype,
    static,
)
from neuralc.ir.types import Attr, Dim, TensorType
from neuralc.layers.families import dims


def _weight(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    if declared is None:
        raise fail("a weight's type is its declared result type")
    if not declared.is_float or any(not isinstance(d, int) for d in declared.shape):
        raise fail(f"a weight has a float type with a static shape, got {declared}")
    return declared


define("tensor.weight", """
An array of the weight file, by key (`<layer name>.<weight name>`, PyTorch layout); buffers
(BatchNorm running statistics) carry `trainable = false`.

Operands: none. Attributes: `key` (string), `trainable` (bool, default true).

    %dense.weight = tensor.weight() {key = "dense.weight"} -> f32[128,784]
""", 0, {"key": (STR, REQUIRED), "trainable": (BOOL, True)}, _weight,
    traits={"weights"})


_INT_RANGES = {"i64": (-(2**63), 2**63 - 1), "i32": (-(2**31), 2**31 - 1), "i8": (-128, 127)}


def _constant(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    if declared is None or any(not isinstance(d, int) for d in declared.shape):
        raise fail("a constant has a declared type with a static shape")

    def ok(v: Attr) -> bool:
        if declared.dtype == "bool":
            return isinstance(v, bool)
        if declared.is_float:
            return is_num(v)
        # An int outside the dtype's range would wrap or raise OverflowError when a pass or an
        # emitter turns the value into an array.
        lo, hi = _INT_RANGES[declared.dtype]
        return is_int(v) and lo <= v <= hi  # type: ignore[operator]

    def check(value: Attr, shape: tuple[Dim, ...]) -> None:
        if not shape:
            if not ok(value):
                raise fail(f"constant element {value!r} does not fit {declared.dtype}")
            return
        if not isinstance(value, tuple) or len(value) != shape[0]:
            raise fail(f"constant value does not match the shape {declared}")
        for item in value:
            check(item, shape[1:])

    value = a["value"]
    if isinstance(value, str):
        width = {"f64": 8, "i64": 8, "f32": 4, "i32": 4, "f16": 2, "bf16": 2}.get(
            declared.dtype, 1)
        try:
            size = len(base64.b64decode(value, validate=True))
        except ValueError:
            raise fail("a string constant value must be base64") from None
        if size != width * prod(declared.shape):  # type: ignore[arg-type]
            raise fail(f"base64 constant holds {size} bytes, {declared} needs "
                       f"{width * prod(declared.shape)}")  # type: ignore[arg-type]
        return declared
    check(value, () if not isinstance(value, tuple) else declared.shape)
    return declared


define("tensor.constant", """
A literal: `value` is a scalar (every element, a splat), nested tuples matching the shape
(row-major), or a string: the base64 of the raw little-endian row-major bytes.

Operands: none. Attributes: `value`.

    %scale = tensor.constant() {value = 0.125} -> f32[]
""", 0, {"value": (ANY, REQUIRED)}, _constant)


def _binary(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    same_dtype(ts)
    return ts[0].with_shape(broadcast(ts[0].shape, ts[1].shape))


for _op, _sym in (("add", "+"), ("sub", "-"), ("mul", "*"), ("div", "/")):
    define(f"tensor.{_op}", f"""
Elementwise `a {_sym} b` with numpy broadcasting; both operands have one dtype.

Operands: `a`, `b`. Attributes: none.

    %y = tensor.{_op}(%a, %b) -> f32[N,64]
""", 2, {}, _binary)


def _same(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    return ts[0]


def _activation(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    if not ts[0].is_float:
        raise fail(f"an activation takes a float tensor, got {ts[0]}")
    return ts[0]


define("tensor.activation", """
Elementwise activation `kind` (Keras 3 / PyTorch semantics): gelu is exact (erf), elu has
alpha 1, leaky_relu has slope `alpha`, hard_sigmoid is relu6(x + 3) / 6, linear is identity.

Operands: `x`. Attributes: `kind` (HPO ok), `alpha` (number, default 0.2, leaky_relu only).

    %dense = tensor.activation(%dense.linear) {kind = "relu"} -> f32[N,128]
""", 1, {"kind": (ACT, REQUIRED), "alpha": (FLOAT, 0.2)}, _activation)


def _softmax(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x = ts[0]
    axis = norm_axis(a["axis"], x.rank)
    if a.get("causal"):
        rank_at_least(x, 2, "a causal softmax's input")
        if axis != x.rank - 1:
            raise fail("a causal softmax normalizes the last axis")
    return _activation(a, ts, declared)


define("tensor.softmax", """
Softmax along `axis`. With `causal`, entries above the diagonal of the last two axes (query i,
key j > i; top-left aligned) are -inf before normalizing: the attention mask, without a mask
tensor.

Operands: `x`. Attributes: `axis` (int, default -1), `causal` (bool, default false).

    %attn.probs = tensor.softmax(%attn.scaled) {axis = -1, causal = true} -> f32[N,8,64,64]
""", 1, {"axis": (INT, -1), "causal": (BOOL, False)}, _softmax)

define("tensor.log_softmax", """
Log-softmax along `axis`.

Operands: `x`. Attributes: `axis` (int, default -1).

    %y = tensor.log_softmax(%logits) {axis = -1} -> f32[N,10]
""", 1, {"axis": (INT, -1)}, _softmax)


def _matmul(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, w = ts
    rank_at_least(x, 2, "matmul's a")
    rank_at_least(w, 2, "matmul's b")
    same_dtype(ts)
    if x.shape[-1] != w.shape[-2]:
        raise fail(f"matmul contracts {x} with {w}: {x.shape[-1]} != {w.shape[-2]}")
    batch = broadcast(x.shape[:-2], w.shape[:-2])
    return x.with_shape((*batch, x.shape[-2], w.shape[-1]))


define("tensor.matmul", """
Matrix product over the last two axes, leading axes broadcast (numpy `a @ b`).

Operands: `a` [..., M, K], `b` [..., K, P]. Attributes: none.

    %attn.scores = tensor.matmul(%attn.q_t, %attn.k_t) -> f32[N,8,64,64]
""", 2, {}, _matmul)


def _linear(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, w = ts[0], ts[1]
    rank_at_least(x, 1, "linear's input")
    if w.rank != 2 or w.shape[1] != x.shape[-1]:
        raise fail(f"linear's weight must be [out, {x.shape[-1]}], got {w}")
    if len(ts) == 3:
        expect_shape(ts[2], (w.shape[0],), "linear's bias")
    same_dtype(ts)
    return x.with_shape((*x.shape[:-1], w.shape[0]))


define("tensor.linear", """
`x @ w^T + b` on the last axis (torch `F.linear`, ONNX Gemm/MatMul+Add); `b` is optional.

Operands: `x` [..., in], `w` [out, in], `b` [out]. Attributes: none.

    %dense.linear = tensor.linear(%input, %dense.weight, %dense.bias) -> f32[N,128]
""", (2, 3), {}, _linear)


def _layer_norm(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x = ts[0]
    axis = norm_axis(a["axis"], x.rank)
    for t, what in zip(ts[1:], ("scale", "bias"), strict=True):
        expect_shape(t, x.shape[axis:], f"layer_norm's {what}")
    return _activation(a, ts, declared)


define("tensor.layer_norm", """
`(x - mean) / sqrt(var + eps) * scale + bias` over the axes from `axis` to the last (biased
variance). A layer without gamma or beta gets a splat constant 1.0 or 0.0.

Operands: `x`, `scale`, `bias`. Attributes: `eps` (HPO ok), `axis` (int, default -1).

    %ln = tensor.layer_norm(%x, %ln.weight, %ln.bias) {eps = 0.001} -> f32[N,100,128]
""", 3, {"eps": (FLOAT_HPO, REQUIRED), "axis": (INT, -1)}, _layer_norm)


def _batch_norm(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x = ts[0]
    axis = norm_axis(a["axis"], x.rank)
    for t, what in zip(ts[1:], ("scale", "bias", "mean", "var"), strict=True):
        expect_shape(t, (x.shape[axis],), f"batch_norm's {what}")
    return _activation(a, ts, declared)


define("tensor.batch_norm", """
Per-channel (`axis`, default the last: channels-last) normalization: at inference
`(x - mean) / sqrt(var + eps) * scale + bias` with the running statistics; in training, batch
statistics, and the running ones move by `momentum` (torch's sense: weight of the new value).

Operands: `x`, `scale`, `bias`, `mean`, `var`. Attributes: `eps`, `momentum` (HPO ok),
`axis` (int, default -1).

    %bn = tensor.batch_norm(%x, %bn.weight, %bn.bias, %bn.running_mean, %bn.running_var) {eps = 0.001, momentum = 0.01} -> f32[N,26,26,32]
""", 5, {"eps": (FLOAT_HPO, REQUIRED), "momentum": (FLOAT_HPO, 0.1), "axis": (INT, -1)},
    _batch_norm)


def _reshape(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, shape = ts[0], a["shape"]
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        raise fail(f"reshape's shape {shape} may hold one -1 and no other negative entry")
    out: list[Dim | None] = []
    copied: set[int] = set()
    for i, s in enumerate(shape):
        if s == 0:
            if i >= x.rank:
                raise fail(f"reshape copies axis {i} (0), but the input {x} has rank {x.rank}")
            copied.add(i)
        out.append(x.shape[i] if s == 0 else None if s == -1 else s)
    rest = [d for i, d in enumerate(x.shape) if i not in copied]
    known = prod(s for s in shape if s > 0)
    coef, syms = dims.split(rest)
    if -1 in shape:
        if not syms and (known == 0 or coef % known):
            raise fail(f"cannot reshape {x} to {shape}: {coef} is not divisible by {known}")
        out[shape.index(-1)] = dims.product(rest, known)
    elif syms or coef != known:
        raise fail(f"cannot reshape {x} to {shape}: the element counts differ")
    return x.with_shape(tuple(out))  # type: ignore[arg-type]


define("tensor.reshape", """
Reshape (ONNX Reshape): `shape` entries are sizes, 0 (copy the input's size at that index:
the batch stays `N`) or one -1 (inferred; a symbolic size yields a derived symbol).

Operands: `x`. Attributes: `shape` (ints).

    %flatten = tensor.reshape(%x) {shape = (0, -1)} -> f32[N,5408]
""", 1, {"shape": (INTS, REQUIRED)}, _reshape)


def _transpose(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, perm = ts[0], a["perm"]
    if sorted(perm) != list(range(x.rank)):
        raise fail(f"perm {perm} is not a permutation of the {x.rank} axes of {x}")
    return x.with_shape(tuple(x.shape[p] for p in perm))


define("tensor.transpose", """
Permute axes: result axis i is input axis `perm[i]`.

Operands: `x`. Attributes: `perm` (ints).

    %conv2d.nchw = tensor.transpose(%input) {perm = (0, 3, 1, 2)} -> f32[N,1,28,28]
""", 1, {"perm": (INTS, REQUIRED)}, _transpose)


def _concat(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    first = ts[0]
    axis = norm_axis(a["axis"], first.rank)
    same_dtype(ts)
    for t in ts[1:]:
        if t.rank != first.rank or any(t.shape[i] != first.shape[i]
                                       for i in range(t.rank) if i != axis):
            raise fail(f"concat along axis {a['axis']} needs equal other sizes: {first}, {t}")
    joined = dims.total([t.shape[axis] for t in ts])
    return first.with_shape((*first.shape[:axis], joined, *first.shape[axis + 1:]))


define("tensor.concat", """
Join along `axis`; every other size must match.

Operands: one or more. Attributes: `axis` (int).

    %concatenate = tensor.concat(%dense, %dense_1) {axis = -1} -> f32[N,96]
""", (1, None), {"axis": (INT, REQUIRED)}, _concat)


def _slice(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x = ts[0]
    axis = norm_axis(a["axis"], x.rank)
    size = static(x.shape[axis], "the sliced axis")
    if not 0 <= a["start"] < a["end"] <= size:
        raise fail(f"slice [{a['start']}:{a['end']}] is out of range for size {size}")
    return x.with_shape((*x.shape[:axis], a["end"] - a["start"], *x.shape[axis + 1:]))


define("tensor.slice", """
`x[..., start:end, ...]` along `axis` (ONNX Slice, step 1).

Operands: `x`. Attributes: `axis`, `start`, `end` (ints).

    %attn.q = tensor.slice(%attn.qkv) {axis = -1, start = 0, end = 512} -> f32[N,100,512]
""", 1, {"axis": (INT, REQUIRED), "start": (INT, REQUIRED), "end": (INT, REQUIRED)}, _slice)


def _gather(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    data, ids = ts
    axis = norm_axis(a["axis"], data.rank)
    if ids.is_float or ids.dtype == "bool":
        raise fail(f"gather's indices must be integers, got {ids}")
    return data.with_shape((*data.shape[:axis], *ids.shape, *data.shape[axis + 1:]))


define("tensor.gather", """
Take slices of `data` along `axis` at integer `indices` (ONNX Gather; Embedding lookup).

Operands: `data`, `indices`. Attributes: `axis` (int, default 0).

    %embedding = tensor.gather(%embedding.weight, %input) {axis = 0} -> f32[N,100,512]
""", 2, {"axis": (INT, 0)}, _gather)

define("tensor.dropout", """
Training: zero each element with probability `rate` and scale the rest by 1 / (1 - rate).
Inference: the identity (`remove-dropout` deletes it).

Operands: `x`. Attributes: `rate` (HPO ok).

    %dropout = tensor.dropout(%dense) {rate = 0.5} -> f32[N,128]
""", 1, {"rate": (FLOAT_HPO, REQUIRED)}, _same, traits={"random"})


def _pad(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, pads = ts[0], a["pads"]
    if len(pads) != 2 * x.rank or any(p < 0 for p in pads):
        raise fail(f"'pads' needs {2 * x.rank} non-negative entries, got {pads}")
    return x.with_shape(tuple(dims.padded(d, pads[i] + pads[i + x.rank])
                              for i, d in enumerate(x.shape)))


define("tensor.pad", """
Constant padding (ONNX Pad): `pads` are (begin per axis, then end per axis).

Operands: `x`. Attributes: `pads` (ints), `value` (number, default 0.0).

    %zp = tensor.pad(%x) {pads = (0, 1, 1, 0, 0, 1, 1, 0)} -> f32[N,30,30,3]
""", 1, {"pads": (INTS, REQUIRED), "value": (FLOAT, 0.0)}, _pad)


def _resize(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, scales = ts[0], a["scales"]
    if len(scales) != x.rank or any(s < 1 for s in scales) or a["mode"] not in (
            "nearest", "linear"):
        raise fail(f"resize takes one integer scale >= 1 per axis and mode nearest|linear, "
                   f"got {scales}, {a['mode']!r}")
    return x.with_shape(tuple(dims.scaled(d, s) for d, s in zip(x.shape, scales, strict=True)))


define("tensor.resize", """
Upsample by integer `scales` per axis: "nearest" repeats each element (ONNX Resize asymmetric
/ floor), "linear" interpolates with half-pixel centers (align_corners=False).

Operands: `x`. Attributes: `scales` (ints), `mode` (string, default "nearest").

    %up = tensor.resize(%x) {scales = (1, 2, 2, 1), mode = "nearest"} -> f32[N,28,28,64]
""", 1, {"scales": (INTS, REQUIRED), "mode": (STR, "nearest")}, _resize)
