"""Normalization: BatchNormalization, LayerNormalization (both over the last, channel axis).

Weights (PyTorch state_dict names):
  BatchNormalization  `weight` [C] ones (gamma, if scale), `bias` [C] zeros (beta, if center),
                      buffers `running_mean` [C] zeros, `running_var` [C] ones and
                      `num_batches_tracked` [] zeros (torch's step counter; stored as a float,
                      torch casts it to int64 on load; other backends ignore it)
  LayerNormalization  `weight` [C] ones (if scale), `bias` [C] zeros (if center)

The surface is Keras': `momentum=0.99` is the weight of the old running statistic (torch's
momentum is `1 - momentum`), `epsilon` defaults to Keras' 1e-3.
"""

from __future__ import annotations

from neuralc.ir.types import TensorType
from neuralc.layers.families import dims
from neuralc.layers.families.common import Example, f32, norm
from neuralc.layers.registry import register_layer
from neuralc.layers.spec import Attrs, LayerSpec, Param, ShapeRule, WeightSpec


def _affine_params(epsilon_doc: str) -> tuple[Param, ...]:
    return (
        Param("epsilon", "float", 1e-3, epsilon_doc, minimum=0.0, minimum_exclusive=True,
              affects_shape=False),
        Param("center", "bool", True, "learn an offset (beta)"),
        Param("scale", "bool", True, "learn a scale (gamma)"),
    )


def _infer(name: str) -> ShapeRule:
    def infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        dims.require_rank(name, x, range(2, 9), "a batched tensor of features")
        dims.require_float(name, x)
        dims.static_dim(name, x, -1, "number of channels (last dimension)")
        return x

    return infer


def _bn_weights(attrs: Attrs, inputs: list[TensorType]) -> dict[str, WeightSpec]:
    c = inputs[0].shape[-1]
    assert isinstance(c, int)
    return {
        **norm("", c, scale=attrs["scale"], center=attrs["center"]),
        "running_mean": WeightSpec((c,), "zeros", trainable=False),
        "running_var": WeightSpec((c,), "ones", trainable=False),
        "num_batches_tracked": WeightSpec((), "zeros", trainable=False),
    }


register_layer(LayerSpec(
    name="BatchNormalization",
    params=(
        Param("momentum", "float", 0.99, "weight of the old running statistics (Keras' sense)",
              minimum=0.0, maximum=1.0, affects_shape=False),
        *_affine_params("added to the variance"),
    ),
    infer=_infer("BatchNormalization"), weights=_bn_weights,
    doc="Normalizes each channel (last axis) with batch statistics while training and running "
    "statistics at inference. Keeps the shape. `center=false, scale=false` matches torch's "
    "`affine=False`.",
    category="normalization", reference="torch.nn.BatchNorm1d / BatchNorm2d",
    tags=frozenset({"transparent"}),
))


def _ln_weights(attrs: Attrs, inputs: list[TensorType]) -> dict[str, WeightSpec]:
    c = inputs[0].shape[-1]
    assert isinstance(c, int)
    return norm("", c, scale=attrs["scale"], center=attrs["center"])


register_layer(LayerSpec(
    name="LayerNormalization",
    params=_affine_params("added to the variance"),
    infer=_infer("LayerNormalization"), weights=_ln_weights,
    doc="Normalizes each position over its last axis. Keeps the shape.",
    category="normalization", reference="torch.nn.LayerNorm(last dim)",
    tags=frozenset({"transparent"}),
))

EXAMPLES: dict[str, Example] = {
    "BatchNormalization": ([], [f32(26, 26, 32)]),
    "LayerNormalization": ([], [f32(100, 128)]),
}
