"""Convolutions: Conv1D, Conv2D, Conv2DTranspose (channels-last inputs, Keras arithmetic).

Weights (PyTorch state_dict names and layouts, so a PyTorch emitter loads them as they are):
  Conv1D            `weight` [filters, in_channels, k]          (OIW), `bias` [filters]
  Conv2D            `weight` [filters, in_channels, kh, kw]     (OIHW), `bias` [filters]
  Conv2DTranspose   `weight` [in_channels, filters, kh, kw]     (IOHW, as nn.ConvTranspose2d)
Initializers: kaiming_uniform / linear_bias with torch's fan_in (for the transposed convolution
torch takes the fan from dimension 1, i.e. filters*kh*kw).

Positional order: `filters, kernel_size, activation, strides, padding, ...` — the corpus writes
`Conv2D(32, (3,3), "relu")`, so the activation comes third (Keras puts strides there).
"""

from __future__ import annotations

from math import prod

from neuralc.ir.types import TensorType
from neuralc.layers.families import dims
from neuralc.layers.families.common import Example, f32
from neuralc.layers.registry import register_layer
from neuralc.layers.spec import (
    Attrs,
    LayerSpec,
    Param,
    ShapeError,
    ShapeRule,
    WeightRule,
    WeightSpec,
)

_PADDING = ("valid", "same")
_LAYOUT = {1: "a sequence of shape (length, channels)", 2: "an image of shape (H, W, C)"}


def _params(rank: int, dilation: bool) -> tuple[Param, ...]:
    params = [
        Param("filters", "int", doc="output channels", minimum=1),
        Param("kernel_size", "ints", doc="window size (an int means the same along every axis)",
              minimum=1, rank=rank),
        Param("activation", "activation", "linear", "applied after the convolution",
              affects_shape=False),
        Param("strides", "ints", (1,) * rank, "step of the window",
              minimum=1, rank=rank),
        Param("padding", "str", "valid", '"valid" (no padding) or "same" (output size = '
              "ceil(input / stride))", choices=_PADDING),
    ]
    if dilation:
        params.append(Param("dilation_rate", "ints", (1,) * rank,
                            "spacing between window taps", minimum=1, rank=rank))
    params.append(Param("use_bias", "bool", True, "add a learned bias per filter"))
    return tuple(params)


def _check_input(name: str, rank: int, x: TensorType) -> int:
    dims.require_rank(name, x, (rank + 2,), _LAYOUT[rank])
    dims.require_float(name, x)
    return dims.static_dim(name, x, -1, "number of input channels (last dimension)")


def _conv_infer(name: str, rank: int) -> ShapeRule:
    def infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        _check_input(name, rank, x)
        kernel, strides = attrs["kernel_size"], attrs["strides"]
        dilation = attrs.get("dilation_rate", (1,) * rank)
        if any(s > 1 for s in strides) and any(d > 1 for d in dilation):  # as Keras
            raise ShapeError(f"{name} cannot combine strides > 1 with dilation_rate > 1",
                             param="dilation_rate")
        spatial = []
        for axis in range(rank):
            d = x.shape[1 + axis]
            k = dilation[axis] * (kernel[axis] - 1) + 1
            out = dims.window(d, k, strides[axis], attrs["padding"])
            if out == 0:
                raise ShapeError(
                    f"{name} window {dims.fmt_shape(kernel)} does not fit its input {x}: "
                    f"spatial size {dims.fmt_shape(x.shape[1:-1])} is smaller than the "
                    f"window", param="kernel_size",
                    note='use padding="same" or a smaller kernel_size',
                )
            spatial.append(out)
        return x.with_shape((x.shape[0], *spatial, attrs["filters"]))

    return infer


def _conv_weights(rank: int, transposed: bool = False) -> WeightRule:
    def weights(attrs: Attrs, inputs: list[TensorType]) -> dict[str, WeightSpec]:
        in_c = inputs[0].shape[-1]
        assert isinstance(in_c, int)
        kernel = attrs["kernel_size"]
        out_c = attrs["filters"]
        shape = (in_c, out_c, *kernel) if transposed else (out_c, in_c, *kernel)
        fan_in = shape[1] * prod(kernel)  # torch: dimension 1 times the receptive field
        out = {"weight": WeightSpec(shape, "kaiming_uniform", fan_in=fan_in,
                                    fan_out=shape[0] * prod(kernel))}
        if attrs["use_bias"]:
            out["bias"] = WeightSpec((out_c,), "linear_bias", fan_in=fan_in)
        return out

    return weights


_CONV_DOC = """\
{n}-D convolution over {layout}: `f32[N,{dims_in},C]` → `f32[N,{dims_out},filters]`.
Output size per axis: valid `(d - k_eff) // s + 1`, same `ceil(d / s)`, with
`k_eff = dilation * (k - 1) + 1` (Keras)."""

for _rank, _name, _ref in ((1, "Conv1D", "torch.nn.Conv1d"), (2, "Conv2D", "torch.nn.Conv2d")):
    register_layer(LayerSpec(
        name=_name, params=_params(_rank, dilation=True), infer=_conv_infer(_name, _rank),
        weights=_conv_weights(_rank),
        doc=_CONV_DOC.format(n=_rank, layout=_LAYOUT[_rank],
                             dims_in="L" if _rank == 1 else "H,W",
                             dims_out="L'" if _rank == 1 else "H',W'"),
        category="convolution", reference=_ref,
        tags=frozenset({"image_input"}) if _rank == 2 else frozenset(),
    ))


def _transpose_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    (x,) = inputs
    _check_input("Conv2DTranspose", 2, x)
    spatial = [
        dims.transposed(x.shape[1 + a], attrs["kernel_size"][a], attrs["strides"][a],
                        attrs["padding"])
        for a in range(2)
    ]
    return x.with_shape((x.shape[0], *spatial, attrs["filters"]))


register_layer(LayerSpec(
    name="Conv2DTranspose", params=_params(2, dilation=False), infer=_transpose_infer,
    weights=_conv_weights(2, transposed=True),
    doc="Transposed 2-D convolution (upsampling): `f32[N,H,W,C]` → `f32[N,H',W',filters]` "
    "with valid `d * s + max(k - s, 0)`, same `d * s` (Keras; a PyTorch emitter adjusts "
    "padding/output_padding to match).",
    category="convolution", reference="torch.nn.ConvTranspose2d",
    tags=frozenset({"image_input"}),
))

EXAMPLES: dict[str, Example] = {
    "Conv1D": ([(None, 64), (None, 5), ("padding", "same")], [f32(100, 300)]),
    "Conv2D": ([(None, 32), (None, (3, 3)), (None, "relu")], [f32(28, 28, 1)]),
    "Conv2DTranspose": ([(None, 16), (None, 3), ("strides", 2), ("padding", "same")],
                        [f32(14, 14, 32)]),
}
