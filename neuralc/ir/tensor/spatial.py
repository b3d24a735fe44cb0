"""`tensor` ops with windows and state: convolutions, pools, reductions, recurrent layers.
Windowed ops are channels first (NCHW / NCL) like ONNX."""

from __future__ import annotations

from neuralc.ir.tensor.signature import (
    BOOL,
    INT,
    INTS,
    PADS,
    REQUIRED,
    STR,
    Infer,
    define,
    expect_shape,
    fail,
    norm_axis,
    ones,
    rank_at_least,
    same_dtype,
    spatial_out,
    static,
    window_attrs,
)
from neuralc.ir.types import Dim, TensorType
from neuralc.layers.families import dims


def _conv(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, w = ts[0], ts[1]
    rank_at_least(x, 3, "conv's input")
    r, g = x.rank - 2, a["groups"]
    kernel = w.shape[2:]
    if w.rank != x.rank or not all(isinstance(k, int) for k in kernel):
        raise fail(f"conv's weight must be [out, in/groups, *kernel], got {w} for {x}")
    window_attrs(a, r, kernel)  # type: ignore[arg-type]
    c_in = static(x.shape[1], "conv's input channels")
    out_c = static(w.shape[0], "conv's output channels")
    if g < 1 or c_in % g or out_c % g or w.shape[1] != c_in // g:
        raise fail(f"conv weight {w} does not fit {c_in} input channels in {g} group(s)")
    if len(ts) == 3:
        expect_shape(ts[2], (out_c,), "conv's bias")
    same_dtype(ts)
    s, d = ones(a["strides"], r), ones(a["dilations"], r)
    spatial = [spatial_out(x.shape[2 + i], d[i] * (kernel[i] - 1) + 1, s[i], a["pads"], i, r)
               for i in range(r)]  # type: ignore[operator]
    return x.with_shape((x.shape[0], out_c, *spatial))


_WINDOW = {"strides": (INTS, ()), "pads": (PADS, REQUIRED), "dilations": (INTS, ())}

define("tensor.conv", """
N-d convolution, channels first as ONNX Conv: `x` [N, C, *spatial], `w` [O, C/groups,
*kernel] (torch layout), optional bias [O]. `pads` are (begin per axis, then end per axis);
Keras' "same" is explicit asymmetric pads, or "same_upper" (ONNX auto_pad SAME_UPPER) when a
spatial size is symbolic. Empty strides/dilations mean 1.

Operands: `x`, `w`, `b`. Attributes: `pads`, `strides`, `dilations`, `groups` (default 1).

    %conv2d.conv = tensor.conv(%conv2d.nchw, %conv2d.weight, %conv2d.bias) {strides = (1, 1), pads = (0, 0, 0, 0), dilations = (1, 1), groups = 1} -> f32[N,32,26,26]
""", (2, 3), {**_WINDOW, "groups": (INT, 1)}, _conv)


def _conv_transpose(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x, w = ts[0], ts[1]
    rank_at_least(x, 3, "conv_transpose's input")
    r = x.rank - 2
    kernel = w.shape[2:]
    if w.rank != x.rank or w.shape[0] != x.shape[1] or not all(
            isinstance(k, int) for k in w.shape[1:]):
        raise fail(f"conv_transpose's weight must be [{x.shape[1]}, out, *kernel], got {w}")
    window_attrs(a, r, kernel)  # type: ignore[arg-type]
    if len(a["output_padding"]) not in (0, r):
        raise fail(f"'output_padding' needs {r} entries, got {a['output_padding']}")
    out_c = w.shape[1]
    if len(ts) == 3:
        expect_shape(ts[2], (out_c,), "conv_transpose's bias")
    s, op = ones(a["strides"], r), a["output_padding"] or (0,) * r
    spatial: list[Dim] = []
    for i in range(r):
        d, k = x.shape[2 + i], kernel[i]
        if a["pads"] == "same_upper":
            spatial.append(dims.transposed(d, k, s[i], "same"))  # type: ignore[arg-type]
            continue
        pb, pe = a["pads"][i], a["pads"][i + r]
        if isinstance(d, int):
            spatial.append(s[i] * (d - 1) + op[i] + k - pb - pe)  # type: ignore[operator]
        elif pb == pe == 0 and op[i] == max(s[i] - k, 0):  # type: ignore[operator]
            spatial.append(dims.transposed(d, k, s[i], "valid"))  # type: ignore[arg-type]
        else:
            spatial.append(f"{d}_ct{k}s{s[i]}p{pb}_{pe}o{op[i]}")
    return x.with_shape((x.shape[0], out_c, *spatial))


define("tensor.conv_transpose", """
Transposed convolution, channels first as ONNX ConvTranspose: `w` [C, O, *kernel] (torch
layout); output size `s*(d-1) + output_padding + k - pad_begin - pad_end`: the full result
cropped by `pads` and extended with `output_padding` positions at the end (no input
contributes there; they hold the bias). `pads = "same_upper"` means Keras' "same" for a
symbolic size: output `d*s`, with `output_padding` as given (ONNX auto_pad SAME_UPPER).

Operands: `x`, `w`, `b`. Attributes: `pads`, `strides`, `output_padding` (default none).

    %up.conv = tensor.conv_transpose(%up.nchw, %up.weight, %up.bias) {strides = (2, 2), pads = (0, 0, 1, 1), output_padding = (0, 0)} -> f32[N,16,28,28]
""", (2, 3), {"strides": (INTS, ()), "pads": (PADS, REQUIRED), "output_padding": (INTS, ())},
    _conv_transpose)


def _pool(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x = ts[0]
    rank_at_least(x, 3, "a pool's input")
    r = x.rank - 2
    kernel = a["kernel"]
    if len(kernel) != r:
        raise fail(f"'kernel' needs {r} entries, got {kernel}")
    window_attrs(a, r, kernel)
    s = ones(a["strides"], r)
    spatial = [spatial_out(x.shape[2 + i], kernel[i], s[i], a["pads"], i, r) for i in range(r)]
    return x.with_shape((*x.shape[:2], *spatial))


_POOL = {"kernel": (INTS, REQUIRED), "strides": (INTS, ()), "pads": (PADS, REQUIRED)}
define("tensor.max_pool", """
Max over windows, channels first (ONNX MaxPool): padded positions never win.

Operands: `x` [N, C, *spatial]. Attributes: `kernel`, `strides`, `pads` (as tensor.conv).

    %pool.pool = tensor.max_pool(%pool.nchw) {kernel = (2, 2), strides = (2, 2), pads = (0, 0, 0, 0)} -> f32[N,32,13,13]
""", 1, _POOL, _pool)
define("tensor.avg_pool", """
Mean over windows, channels first (ONNX AveragePool); padded positions count only with
`count_include_pad` (Keras' "same" excludes them).

Operands: `x` [N, C, *spatial]. Attributes: `kernel`, `strides`, `pads`,
`count_include_pad` (bool, default false).

    %pool.pool = tensor.avg_pool(%pool.nchw) {kernel = (3,), strides = (2,), pads = (0, 1), count_include_pad = false} -> f32[N,64,50]
""", 1, {**_POOL, "count_include_pad": (BOOL, False)}, _pool)


def _reduce(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
    x = ts[0]
    axes = sorted({norm_axis(i, x.rank) for i in a["axes"]})
    if not axes:
        raise fail("'axes' must name at least one axis")
    shape = [1 if i in axes else d for i, d in enumerate(x.shape)] if a["keepdims"] else \
        [d for i, d in enumerate(x.shape) if i not in axes]
    return x.with_shape(tuple(shape))


for _op, _what in (("mean", "Mean"), ("max", "Maximum")):
    define(f"tensor.reduce_{_op}", f"""
{_what} over `axes`, keeping them as size 1 with `keepdims`.

Operands: `x`. Attributes: `axes` (ints), `keepdims` (bool, default false).

    %gap = tensor.reduce_{_op}(%x) {{axes = (1,), keepdims = false}} -> f32[N,768]
""", 1, {"axes": (INTS, REQUIRED), "keepdims": (BOOL, False)}, _reduce)


def _recurrent(gates: int) -> Infer:
    def infer(a: dict, ts: list[TensorType], declared: TensorType | None) -> TensorType:
        x, h = ts[0], a["hidden_size"]
        if x.rank != 3 or len(ts) not in (3, 5):
            raise fail("takes x [N, L, F], w_ih, w_hh and optionally b_ih, b_hh")
        expect_shape(ts[1], (gates * h, x.shape[2]), "w_ih")
        expect_shape(ts[2], (gates * h, h), "w_hh")
        for t in ts[3:]:
            expect_shape(t, (gates * h,), "a bias")
        if a.get("activation", "tanh") not in ("tanh", "relu"):
            raise fail(f"activation must be tanh or relu, got {a['activation']!r}")
        shape = (x.shape[0], x.shape[1], h) if a["return_sequences"] else (x.shape[0], h)
        return x.with_shape(shape)

    return infer


_RNN = {"hidden_size": (INT, REQUIRED), "return_sequences": (BOOL, False)}
for _op, _g, _what in (("lstm", 4, "LSTM (gates i, f, g, o)"), ("gru", 3, "GRU (gates r, z, "
                       "n; reset after)"), ("rnn", 1, "Elman RNN")):
    define(f"tensor.{_op}", f"""
One-layer, one-direction {_what}, batch-first, zero initial state, exactly torch.nn's
formulas and weight layouts (`weight_ih_l0` [{_g}*H, F], `weight_hh_l0` [{_g}*H, H], two
biases [{_g}*H] or none). The result is every step's output, or the last step's.

Operands: `x`, `w_ih`, `w_hh`, `b_ih`, `b_hh`. Attributes: `hidden_size`,
`return_sequences` (bool, default false){", `activation` (tanh|relu, default tanh)" if _g == 1
                                        else ""}.

    %{_op} = tensor.{_op}(%x, %{_op}.weight_ih_l0, %{_op}.weight_hh_l0, %{_op}.bias_ih_l0, %{_op}.bias_hh_l0) {{hidden_size = 64}} -> f32[N,64]
""", (3, 5), {**_RNN, **({"activation": (STR, "tanh")} if _g == 1 else {})}, _recurrent(_g))

