"""Core layers: Dense, Output, Dropout, Flatten, Reshape, Activation, Embedding.

Weights (PyTorch state_dict names and layouts):
  Dense, Output   `weight` [units, in_features] kaiming_uniform, `bias` [units] linear_bias
  Embedding       `weight` [input_dim, output_dim] normal
"""

from __future__ import annotations

from math import prod

from neuralc.ir.types import TensorType
from neuralc.layers.families import dims
from neuralc.layers.families.common import Example, f32, i64, linear
from neuralc.layers.registry import register_layer
from neuralc.layers.spec import Attrs, LayerSpec, Param, ShapeError, ShapeRule, WeightSpec

_DENSE_DOC = """\
A fully connected layer on the last axis (Keras semantics): `f32[N,...,in]` → `f32[N,...,units]`.
On an image (`f32[N,H,W,C]`) it projects every pixel's channels; it does not flatten. A
convolution directly after such a Dense is rejected (see "Composition rules")."""


_DENSE_PARAMS = (
    Param("units", "int", doc="output features", minimum=1),
    Param("activation", "activation", "linear", "applied after the projection",
          affects_shape=False),
    Param("use_bias", "bool", True, "add a learned bias"),
)


def _dense_infer(name: str) -> ShapeRule:
    def infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        dims.require_rank(name, x, range(2, 9), "features of shape (..., in_features)")
        dims.require_float(name, x)
        dims.static_dim(name, x, -1, "number of input features (last dimension)")
        return x.with_shape((*x.shape[:-1], attrs["units"]))

    return infer


def _dense_weights(attrs: Attrs, inputs: list[TensorType]) -> dict[str, WeightSpec]:
    in_f = inputs[0].shape[-1]
    assert isinstance(in_f, int)
    return linear("", attrs["units"], in_f, attrs["use_bias"])


register_layer(LayerSpec(
    name="Dense", params=_DENSE_PARAMS, infer=_dense_infer("Dense"),
    weights=_dense_weights,
    doc=_DENSE_DOC, category="core", reference="torch.nn.Linear", tags=frozenset({"features"}),
))


register_layer(LayerSpec(
    name="Output", params=_DENSE_PARAMS, infer=_dense_infer("Output"),
    weights=_dense_weights,
    doc=_DENSE_DOC.replace("A fully connected layer", "The network's final Dense layer") + """
The default activation is `"linear"` (as Keras' Dense and the upstream DSL's Output): a bare
`Output(10)` returns logits. Write `Output(10, activation="softmax")` for probabilities; with a
cross-entropy loss the softmax is then fused into the loss for training.""",
    category="core", reference="torch.nn.Linear", tags=frozenset({"features"}),
))


def _identity(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    (x,) = inputs
    return x


register_layer(LayerSpec(
    name="Dropout",
    params=(Param("rate", "float", doc="fraction of inputs zeroed during training",
                  minimum=0.0, maximum=1.0, maximum_exclusive=True, affects_shape=False),),
    infer=_identity, doc="Zeroes a fraction `rate` of its inputs while training; the identity "
    "at inference. Keeps the shape.", category="core", reference="torch.nn.Dropout",
    tags=frozenset({"transparent"}),
))

register_layer(LayerSpec(
    name="Activation",
    params=(Param("activation", "activation", doc="the function to apply",
                  affects_shape=False),),
    infer=_identity, doc="Applies an activation elementwise (`softmax`/`log_softmax` over the "
    "last axis). Keeps the shape.", category="core", reference="(no parameters)",
    tags=frozenset({"transparent"}),
))


def _flatten_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    (x,) = inputs
    dims.require_rank("Flatten", x, range(2, 9), "a batched tensor")
    return x.with_shape((x.shape[0], dims.product(x.shape[1:])))


register_layer(LayerSpec(
    name="Flatten", params=(), infer=_flatten_infer,
    doc="Collapses every non-batch dimension: `f32[N,d1,...,dk]` → `f32[N,d1*...*dk]`. On a "
    "rank-2 input it is the identity. A dynamic dimension yields a derived symbol "
    "(`f32[N,s0,512]` → `f32[N,s0_x512]`).",
    category="core", reference="torch.nn.Flatten",
))


def _reshape_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    (x,) = inputs
    target: tuple[int, ...] = attrs["target_shape"]
    feature = x.shape[1:]
    known = prod(d for d in target if d != -1)
    coef, syms = dims.split(feature)
    shown = dims.fmt_shape(target)
    if -1 not in target:
        if syms:
            raise ShapeError(
                f"cannot reshape {x} with a dynamic dimension to the fixed shape {shown}",
                param="target_shape",
                note="write -1 for the dimension that absorbs the dynamic size",
            )
        if coef != known:
            raise ShapeError(
                f"cannot reshape {x} ({coef} elements per example) to {shown} "
                f"({known} elements)", param="target_shape",
                note=_reshape_hint(feature, target, coef),
            )
        return x.with_shape((x.shape[0], *target))
    if not syms and coef % known:
        raise ShapeError(
            f"cannot reshape {x} ({coef} elements per example) to {shown}: {coef} is not "
            f"divisible by {known}", param="target_shape",
            note=_reshape_hint(feature, target, coef),
        )
    fill = dims.product(feature, known)
    return x.with_shape((x.shape[0], *(fill if d == -1 else d for d in target)))


def _reshape_hint(feature: tuple, target: tuple[int, ...], coef: int) -> str:
    return (f"the input's shape without the batch is {dims.fmt_shape(feature)}; the target's "
            f"product must be {coef}, or use -1 for one dimension")


register_layer(LayerSpec(
    name="Reshape",
    params=(Param("target_shape", "shape", doc="the new shape without the batch; one entry may "
                  "be -1", aliases=("shape",)),),
    infer=_reshape_infer,
    doc="Reshapes each example (the batch is kept): the element counts must match; one `-1` "
    "entry is inferred. With a dynamic input dimension the target needs a -1, which becomes a "
    "derived symbol.",
    category="core", reference="torch.reshape",
))


def _embedding_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    (x,) = inputs
    if x.is_float:
        feature = x.feature_shape
        if len(feature) >= 2:
            note = (f"write `input: {dims.fmt_shape(feature[:-1])}`: a network that starts with "
                    "an Embedding takes int64 token ids")
        else:
            note = ("Embedding takes the token ids, so it must come first (the network's input "
                    f"is then int64, e.g. `input: {dims.fmt_shape(feature or ('seq_len',))}`)")
        raise ShapeError(
            "Embedding expects integer token ids of shape (seq_len,), but its input is float "
            f"features {x}", note=note,
        )
    if x.dtype == "bool":
        raise ShapeError(f"Embedding expects integer token ids, but its input is {x}")
    return TensorType((*x.shape, attrs["output_dim"]), "f32")


def _embedding_weights(attrs: Attrs, inputs: list[TensorType]) -> dict[str, WeightSpec]:
    return {"weight": WeightSpec((attrs["input_dim"], attrs["output_dim"]), "normal")}


register_layer(LayerSpec(
    name="Embedding",
    params=(
        Param("input_dim", "int", doc="vocabulary size (ids are in [0, input_dim))", minimum=1),
        Param("output_dim", "int", doc="embedding width", minimum=1),
    ),
    infer=_embedding_infer, weights=_embedding_weights,
    doc="Looks up a learned vector per integer token id: `i64[N,L]` → `f32[N,L,output_dim]`. "
    "Float input is a diagnostic (the program's `input:` has a feature dimension it should not "
    "have).",
    category="core", reference="torch.nn.Embedding",
))

EXAMPLES: dict[str, Example] = {
    "Dense": ([(None, 128), ("activation", "relu")], [f32(784)]),
    "Output": ([(None, 10), ("activation", "softmax")], [f32(128)]),
    "Dropout": ([(None, 0.5)], [f32(128)]),
    "Activation": ([(None, "relu")], [f32(28, 28, 32)]),
    "Flatten": ([], [f32(13, 13, 32)]),
    "Reshape": ([("target_shape", (196, 768))], [f32(14, 14, 768)]),
    "Embedding": ([("input_dim", 10000), ("output_dim", 512)], [i64(100)]),
}
