"""Lowering of convolutions, pooling and spatial resampling.

Windowed ops are channels first at the tensor level (ONNX's Conv/ConvTranspose/MaxPool/
AveragePool), so each such layer is `transpose → op → (activation) → transpose` around the
channels-last data; a canonicalizer can cancel the transposes between consecutive layers.
Keras' "same" padding becomes explicit asymmetric pads (the odd one at the end), or
"same_upper" when a spatial size is symbolic. Elementwise activations run channels first, before
the transpose back; softmax (over channels) after it.
"""

from __future__ import annotations

from neuralc.ir.core import Value
from neuralc.ir.types import Attr
from neuralc.passes.lowering.emit import (
    NON_ELEMENTWISE,
    Layer,
    channels_first,
    channels_last,
    lowering,
    same_pads,
)


def _windowed(layer: Layer, kind: str, operands: list[Value], attrs: dict[str, Attr],
              rank: int) -> Value:
    x = layer.emit("tensor.transpose", [layer.inputs[0]], {"perm": channels_first(rank)},
                   "channels_first")
    y = layer.emit(kind, [x, *operands], attrs, kind.split(".")[1])
    act = layer.attrs.get("activation")
    late = act in NON_ELEMENTWISE
    if not late:
        y = layer.activate(y)
    y = layer.emit("tensor.transpose", [y], {"perm": channels_last(rank)}, "channels_last")
    return layer.activate(y) if late else y


def _weights(layer: Layer) -> list[Value]:
    return [layer.weight("weight")] + ([layer.weight("bias")] if layer.has_weight("bias")
                                       else [])


@lowering("nn.conv1d", "nn.conv2d")
def conv(layer: Layer) -> Value:
    a = layer.attrs
    kernel, strides = tuple(a["kernel_size"]), tuple(a["strides"])
    rank = len(kernel)
    dilation = tuple(a.get("dilation_rate") or (1,) * rank)
    sizes = layer.inputs[0].type.shape[1:-1]
    pads = (0,) * 2 * rank if layer.concrete("padding") == "valid" else \
        same_pads(sizes, kernel, strides, dilation)
    attrs: dict[str, Attr] = {"strides": strides, "pads": pads, "dilations": dilation}
    return _windowed(layer, "tensor.conv", _weights(layer), attrs, rank)


@lowering("nn.conv2d_transpose")
def conv_transpose(layer: Layer) -> Value:
    """Keras' output sizes: valid `(d-1)*s + max(k, s)`, same `d*s`: pads crop the full
    transposed convolution (same, k > s: (k-s)//2 at the start), output_padding extends it when
    the kernel is shorter than the stride."""
    a = layer.attrs
    kernel, strides = tuple(a["kernel_size"]), tuple(a["strides"])
    sizes = layer.inputs[0].type.shape[1:-1]
    extra = tuple(max(s - k, 0) for k, s in zip(kernel, strides, strict=True))
    pads: tuple[int, ...] | str
    if layer.concrete("padding") == "valid":
        pads = (0,) * 4
    elif any(not isinstance(d, int) for d in sizes):
        pads = "same_upper"
    else:
        crop = [max(k - s, 0) for k, s in zip(kernel, strides, strict=True)]
        pads = (*(c // 2 for c in crop), *(c - c // 2 for c in crop))
    attrs: dict[str, Attr] = {"strides": strides, "pads": pads, "output_padding": extra}
    return _windowed(layer, "tensor.conv_transpose", _weights(layer), attrs, 2)


@lowering("nn.max_pooling1d", "nn.max_pooling2d", "nn.average_pooling1d",
          "nn.average_pooling2d")
def pool(layer: Layer) -> Value:
    a = layer.attrs
    kernel = tuple(a["pool_size"])
    strides = tuple(a["strides"]) if a["strides"] is not None else kernel
    rank = len(kernel)
    sizes = layer.inputs[0].type.shape[1:-1]
    pads = (0,) * 2 * rank if layer.concrete("padding") == "valid" else \
        same_pads(sizes, kernel, strides)
    attrs: dict[str, Attr] = {"kernel": kernel, "strides": strides, "pads": pads}
    if layer.op.op.startswith("nn.max"):
        return _windowed(layer, "tensor.max_pool", [], attrs, rank)
    attrs["count_include_pad"] = False
    return _windowed(layer, "tensor.avg_pool", [], attrs, rank)


@lowering("nn.global_average_pooling1d", "nn.global_average_pooling2d",
          "nn.global_max_pooling1d", "nn.global_max_pooling2d")
def global_pool(layer: Layer) -> Value:
    axes = (1,) if layer.op.op.endswith("1d") else (1, 2)
    kind = "tensor.reduce_mean" if "average" in layer.op.op else "tensor.reduce_max"
    return layer.emit(kind, [layer.inputs[0]],
                      {"axes": axes, "keepdims": bool(layer.concrete("keepdims"))}, "reduce")


@lowering("nn.up_sampling2d")
def upsampling(layer: Layer) -> Value:
    sh, sw = layer.attrs["size"]
    mode = "linear" if layer.concrete("interpolation") == "bilinear" else "nearest"
    return layer.emit("tensor.resize", [layer.inputs[0]],
                      {"scales": (1, sh, sw, 1), "mode": mode}, "resize")


@lowering("nn.zero_padding2d")
def zero_padding(layer: Layer) -> Value:
    ph, pw = layer.attrs["padding"]
    return layer.emit("tensor.pad", [layer.inputs[0]],
                      {"pads": (0, ph, pw, 0, 0, ph, pw, 0)}, "pad")
