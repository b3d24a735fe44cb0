"""Spatial layers: Conv1D/2D, Conv2DTranspose, Max/AveragePooling1D/2D, global pooling,
UpSampling2D, ZeroPadding2D.

Convolutions and pooling run channels-first (ONNX's layout); their results stay channels-first
until a layer needs channels-last (see graph.py), so a run of them transposes once on entry and
once on exit. "same" padding is Keras' (TensorFlow's): total `max((ceil(d/s) - 1) * s + k - d,
0)`, the odd element at the end; explicit pads when the sizes are known, `SAME_UPPER` (the same
rule) when a spatial size is dynamic. Average pooling ignores the padding (count_include_pad=0),
as Keras does.
"""

from __future__ import annotations

import math
from typing import Any

from neuralc.ir.core import Operation
from neuralc.ir.types import Dim
from neuralc.lower.onnx_backend.core import activation
from neuralc.lower.onnx_backend.graph import CF, CL, Lowering, Scope, Slot


def same_pads(size: int, k_eff: int, stride: int) -> tuple[int, int]:
    total = max((math.ceil(size / stride) - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def refuse_negative_same_pads(s: Scope, kernel: list[int], strides: list[int]) -> None:
    """Keras' "same" pooling with a window shorter than its stride needs no padding, or even
    "negative" padding, for some sizes; ONNX Runtime's SAME_UPPER pooling rejects that at run
    time ("padding values must be non-negative"), so a dynamic size would crash for some
    inputs. Known sizes get explicit pads and never come here."""
    if any(k < st for k, st in zip(kernel, strides, strict=True)):
        raise s.error(
            'the ONNX backend cannot express padding="same" pooling with a pool_size smaller '
            "than its strides on an input of dynamic size",
            "give the image or sequence size in `input:`, or use a pool_size of at least the "
            "strides",
        )


def _window_attrs(
    spatial: tuple[Dim, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
    padding: str,
) -> dict[str, Any]:
    if padding != "same":
        return {"pads": [0] * (2 * len(kernel))}
    if any(isinstance(d, str) for d in spatial):
        return {"auto_pad": "SAME_UPPER"}
    begins, ends = [], []
    for d, k, st, dl in zip(spatial, kernel, strides, dilation, strict=True):
        assert isinstance(d, int)
        b, e = same_pads(d, dl * (k - 1) + 1, st)
        begins.append(b)
        ends.append(e)
    return {"pads": begins + ends}


def lower_conv(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    spatial = op.operands[0].type.shape[1:-1]
    rank = len(spatial)
    kernel = tuple(attrs["kernel_size"])
    strides = tuple(attrs["strides"])
    dilation = tuple(attrs.get("dilation_rate") or (1,) * rank)
    window = _window_attrs(spatial, kernel, strides, dilation, attrs["padding"])
    inputs = [s.get(x, CF), s.weight("weight")]
    if attrs["use_bias"]:
        inputs.append(s.weight("bias"))
    y = s.op(
        "Conv",
        *inputs,
        kernel_shape=list(kernel),
        strides=list(strides),
        dilations=list(dilation),
        **window,
    )
    return Slot(x.rank, {CF: activation(s, y, attrs["activation"], axis=1)})


def lower_conv_transpose(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    kernel = tuple(attrs["kernel_size"])
    strides = tuple(attrs["strides"])
    pads_begin, pads_end, out_pad = [], [], []
    for k, st in zip(kernel, strides, strict=True):
        # Keras' output is (d-1)*s + max(k, s) (valid) or d*s (same); ConvTranspose gives
        # (d-1)*s + k, so a kernel shorter than the stride needs s-k trailing positions
        # (only the bias reaches them) in both paddings.
        out_pad.append(max(st - k, 0))
        # "same": TensorFlow's gradient of a "same" convolution producing d*s from d crops
        # max(k - s, 0) positions of the full result, the odd one at the end; that does not
        # depend on d, so a dynamic size needs no auto_pad.
        crop = max(k - st, 0) if attrs["padding"] == "same" else 0
        pads_begin.append(crop // 2)
        pads_end.append(crop - crop // 2)
    inputs = [s.get(x, CF), s.weight("weight")]
    if attrs["use_bias"]:
        inputs.append(s.weight("bias"))
    extra = {"output_padding": out_pad} if any(out_pad) else {}
    y = s.op(
        "ConvTranspose",
        *inputs,
        kernel_shape=list(kernel),
        strides=list(strides),
        pads=pads_begin + pads_end,
        **extra,
    )
    return Slot(x.rank, {CF: activation(s, y, attrs["activation"], axis=1)})


def lower_pool(kind: str) -> Lowering:
    def lower(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
        (x,) = ins
        spatial = op.operands[0].type.shape[1:-1]
        pool = tuple(attrs["pool_size"])
        strides = tuple(attrs["strides"] or pool)
        window = _window_attrs(spatial, pool, strides, (1,) * len(pool), attrs["padding"])
        if "auto_pad" in window:
            refuse_negative_same_pads(s, list(pool), list(strides))
        extra = {"count_include_pad": 0} if kind == "AveragePool" else {}
        y = s.op(
            kind, s.get(x, CF), kernel_shape=list(pool), strides=list(strides), **window, **extra
        )
        return Slot(x.rank, {CF: y})

    return lower


def lower_global_pool(kind: str) -> Lowering:
    def lower(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
        (x,) = ins
        layout = s.preferred(x)
        axes = list(range(2, x.rank)) if layout == CF else list(range(1, x.rank - 1))
        keep = bool(attrs["keepdims"])
        y = s.reduce(kind, s.get(x, layout), axes, keep)
        if not keep:
            return Slot(2, {CL: y})
        return Slot(x.rank, {layout: y})

    return lower


def lower_upsampling(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    layout = s.preferred(x)
    sh, sw = attrs["size"]
    scales = [1.0, 1.0, sh, sw] if layout == CF else [1.0, sh, sw, 1.0]
    if attrs["interpolation"] == "bilinear":
        mode = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        mode = {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        }
    y = s.op("Resize", s.get(x, layout), "", s.const(scales, "scales"), **mode)
    return Slot(x.rank, {layout: y})


def lower_zero_padding(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x,) = ins
    layout = s.preferred(x)
    ph, pw = attrs["padding"]
    side = [0, 0, ph, pw] if layout == CF else [0, ph, pw, 0]
    y = s.op("Pad", s.get(x, layout), s.ints(side + side, "pads"), mode="constant")
    return Slot(x.rank, {layout: y})


LOWERINGS = {
    "Conv1D": lower_conv,
    "Conv2D": lower_conv,
    "Conv2DTranspose": lower_conv_transpose,
    "MaxPooling1D": lower_pool("MaxPool"),
    "MaxPooling2D": lower_pool("MaxPool"),
    "AveragePooling1D": lower_pool("AveragePool"),
    "AveragePooling2D": lower_pool("AveragePool"),
    "GlobalAveragePooling1D": lower_global_pool("ReduceMean"),
    "GlobalAveragePooling2D": lower_global_pool("ReduceMean"),
    "GlobalMaxPooling1D": lower_global_pool("ReduceMax"),
    "GlobalMaxPooling2D": lower_global_pool("ReduceMax"),
    "UpSampling2D": lower_upsampling,
    "ZeroPadding2D": lower_zero_padding,
}
