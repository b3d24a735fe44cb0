"""Pooling and spatial resampling: Max/AveragePooling1D/2D, GlobalAverage/MaxPooling1D/2D,
UpSampling2D, ZeroPadding2D. None of them has weights.

Window arithmetic is Keras': valid `(d - pool) // stride + 1`, same `ceil(d / stride)`;
`strides=None` (the default) means `strides = pool_size`, as in Keras and torch's `stride=None`.
"""

from __future__ import annotations

from neuralc.ir.types import TensorType
from neuralc.layers.families import dims
from neuralc.layers.families.common import Example, f32
from neuralc.layers.registry import register_layer
from neuralc.layers.spec import Attrs, LayerSpec, Param, ShapeError, ShapeRule

_LAYOUT = {1: "a sequence of shape (length, channels)", 2: "an image of shape (H, W, C)"}


def _check(name: str, rank: int, x: TensorType) -> None:
    dims.require_rank(name, x, (rank + 2,), _LAYOUT[rank])
    dims.require_float(name, x)


def _pool_params(rank: int) -> tuple[Param, ...]:
    return (
        Param("pool_size", "ints", (2,) * rank, "window size", minimum=1, rank=rank),
        Param("strides", "ints", None, "step of the window (default: pool_size)", minimum=1,
              rank=rank),
        Param("padding", "str", "valid", '"valid" or "same"', choices=("valid", "same")),
    )


def _pool_infer(name: str, rank: int) -> ShapeRule:
    def infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        _check(name, rank, x)
        pool = attrs["pool_size"]
        strides = attrs["strides"] if attrs["strides"] is not None else pool
        spatial = []
        for axis in range(rank):
            out = dims.window(x.shape[1 + axis], pool[axis], strides[axis], attrs["padding"])
            if out == 0:
                raise ShapeError(
                    f"{name} window {dims.fmt_shape(pool)} does not fit its input {x}",
                    param="pool_size", note='use padding="same" or a smaller pool_size',
                )
            spatial.append(out)
        return x.with_shape((x.shape[0], *spatial, x.shape[-1]))

    return infer


_TORCH_POOL = {("Max", 1): "torch.nn.MaxPool1d", ("Max", 2): "torch.nn.MaxPool2d",
               ("Average", 1): "torch.nn.AvgPool1d", ("Average", 2): "torch.nn.AvgPool2d"}

for (_kind, _rank), _ref in _TORCH_POOL.items():
    _name = f"{_kind}Pooling{_rank}D"
    register_layer(LayerSpec(
        name=_name, params=_pool_params(_rank), infer=_pool_infer(_name, _rank),
        doc=f"{_kind} over sliding windows of {_LAYOUT[_rank]}; channels are kept.",
        category="pooling", reference=_ref,
        tags=frozenset({"image_input"}) if _rank == 2 else frozenset(),
    ))


def _global_infer(name: str, rank: int) -> ShapeRule:
    def infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        _check(name, rank, x)
        if attrs["keepdims"]:
            return x.with_shape((x.shape[0], *(1,) * rank, x.shape[-1]))
        return x.with_shape((x.shape[0], x.shape[-1]))

    return infer


for _kind, _short in (("Average", "Avg"), ("Max", "Max")):
    for _rank in (1, 2):
        _name = f"Global{_kind}Pooling{_rank}D"
        register_layer(LayerSpec(
            name=_name,
            params=(Param("keepdims", "bool", False, "keep the pooled axes with size 1"),),
            infer=_global_infer(_name, _rank),
            doc=f"{_kind} over every position of {_LAYOUT[_rank]}: → `f32[N,C]`.",
            category="pooling", reference=f"torch.nn.Adaptive{_short}Pool{_rank}d(1)",
        ))


def _upsampling_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    (x,) = inputs
    _check("UpSampling2D", 2, x)
    h, w = (dims.scaled(x.shape[1 + a], attrs["size"][a]) for a in range(2))
    return x.with_shape((x.shape[0], h, w, x.shape[-1]))


register_layer(LayerSpec(
    name="UpSampling2D",
    params=(
        Param("size", "ints", (2, 2), "upsampling factors (rows, columns)", minimum=1, rank=2),
        Param("interpolation", "str", "nearest", '"nearest" or "bilinear"',
              choices=("nearest", "bilinear"), affects_shape=False),
    ),
    infer=_upsampling_infer,
    doc="Repeats (or interpolates) rows and columns: `f32[N,H,W,C]` → `f32[N,H*sh,W*sw,C]`.",
    category="reshaping", reference="torch.nn.Upsample", tags=frozenset({"image_input"}),
))


def _zero_padding_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    (x,) = inputs
    _check("ZeroPadding2D", 2, x)
    h, w = (dims.padded(x.shape[1 + a], 2 * attrs["padding"][a]) for a in range(2))
    return x.with_shape((x.shape[0], h, w, x.shape[-1]))


register_layer(LayerSpec(
    name="ZeroPadding2D",
    params=(Param("padding", "ints", (1, 1), "zeros added on each side (rows, columns)",
                  minimum=0, rank=2),),
    infer=_zero_padding_infer,
    doc="Adds `padding` rows of zeros at the top and bottom and `padding` columns at the left "
    "and right: `f32[N,H,W,C]` → `f32[N,H+2ph,W+2pw,C]`. (Keras' asymmetric "
    "`((top, bottom), (left, right))` form is not supported.)",
    category="reshaping", reference="torch.nn.ZeroPad2d", tags=frozenset({"image_input"}),
))

EXAMPLES: dict[str, Example] = {
    "MaxPooling1D": ([(None, 2)], [f32(100, 64)]),
    "MaxPooling2D": ([(None, (2, 2))], [f32(26, 26, 32)]),
    "AveragePooling1D": ([(None, 3), ("strides", 2), ("padding", "same")], [f32(100, 64)]),
    "AveragePooling2D": ([("pool_size", (3, 3)), ("strides", (2, 2))], [f32(28, 28, 16)]),
    "GlobalAveragePooling1D": ([], [f32(512, 768)]),
    "GlobalAveragePooling2D": ([], [f32(7, 7, 512)]),
    "GlobalMaxPooling1D": ([], [f32(100, 128)]),
    "GlobalMaxPooling2D": ([], [f32(7, 7, 512)]),
    "UpSampling2D": ([(None, 2)], [f32(14, 14, 64)]),
    "ZeroPadding2D": ([(None, 1)], [f32(28, 28, 3)]),
}
