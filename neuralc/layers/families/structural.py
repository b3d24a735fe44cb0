"""Structure: ResidualConnection (a block of layers plus its input), Add, Concatenate. No weights
of their own (a residual block's layers carry theirs).
"""

from __future__ import annotations

from neuralc.ir.types import TensorType
from neuralc.layers.families import dims
from neuralc.layers.families.common import Example, f32
from neuralc.layers.registry import register_layer
from neuralc.layers.spec import Attrs, LayerSpec, Param, ShapeError


def _shapes(inputs: list[TensorType]) -> str:
    return ", ".join(str(t) for t in inputs)


def _residual_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    # inputs = [shortcut, body_out]; shortcut is the block's input, or its projection when the
    # block names one.
    shortcut, body = inputs
    if shortcut != body:
        raise ShapeError(
            f"ResidualConnection adds its input {shortcut} to its body's output {body}, but "
            "the shapes differ",
            note="keep the shape inside the block (e.g. padding=\"same\", the same number of "
            "filters), or end the block with a shortcut projection such as "
            "Conv2D(filters, (1, 1), strides=...) that maps the input to the body's shape",
        )
    return body


register_layer(LayerSpec(
    name="ResidualConnection", params=(), infer=_residual_infer, takes_body=True,
    doc="`ResidualConnection { layers }` computes `x + body(x)`. Its shape rule receives "
    "`[shortcut, body_output]` and requires equal types. The shortcut is the block's input, "
    "or — when the block's last layer is a 1×1 convolution and the other layers change the "
    "shape (ResNet's downsampling blocks) — that convolution applied to the input.",
    category="structure", reference="(no parameters)",
))


def _require_merge(name: str, inputs: list[TensorType]) -> None:
    if len(inputs) < 2:
        raise ShapeError(f"{name} merges two or more inputs, got {len(inputs)}")
    dtypes = {t.dtype for t in inputs}
    if len(dtypes) > 1:
        raise ShapeError(f"{name} inputs have different dtypes: {_shapes(inputs)}")


def _add_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    _require_merge("Add", inputs)
    if any(t.shape != inputs[0].shape for t in inputs[1:]):
        raise ShapeError(f"Add needs inputs of the same shape, got {_shapes(inputs)}",
                         note="project the branches to a common shape first, e.g. with Dense")
    return inputs[0]


register_layer(LayerSpec(
    name="Add", params=(), infer=_add_infer, arity=None,
    doc="Elementwise sum of two or more inputs of the same shape.",
    category="structure", reference="torch.add",
))


def _concat_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    _require_merge("Concatenate", inputs)
    rank = inputs[0].rank
    if any(t.rank != rank for t in inputs[1:]):
        raise ShapeError(f"Concatenate needs inputs of the same rank, got {_shapes(inputs)}",
                         note="Flatten the branches first to join them as feature vectors")
    axis = attrs["axis"]
    if not -rank <= axis < rank:
        raise ShapeError(f"Concatenate axis {axis} is out of range for {_shapes(inputs)}",
                         param="axis")
    axis %= rank
    if axis == 0:
        raise ShapeError("Concatenate cannot join along the batch axis", param="axis",
                         note="axis counts the batch as 0; use axis=-1 for the features")
    for i in range(rank):
        if i != axis and len({t.shape[i] for t in inputs}) > 1:
            raise ShapeError(
                f"Concatenate along axis {attrs['axis']} needs every other dimension equal, "
                f"got {_shapes(inputs)}", param="axis",
            )
    joined = dims.total([t.shape[axis] for t in inputs])
    shape = list(inputs[0].shape)
    shape[axis] = joined
    return inputs[0].with_shape(tuple(shape))


register_layer(LayerSpec(
    name="Concatenate",
    params=(Param("axis", "int", -1, "axis to join along (the batch is axis 0)"),),
    infer=_concat_infer, arity=None,
    doc="Joins two or more inputs along `axis` (default: the last); every other dimension "
    "must match.",
    category="structure", reference="torch.cat",
))

EXAMPLES: dict[str, Example] = {
    "ResidualConnection": ([], [f32(56, 56, 64), f32(56, 56, 64)]),
    "Add": ([], [f32(64), f32(64)]),
    "Concatenate": ([], [f32(64), f32(32)]),
}
