"""The vocabulary of the registry: parameters (and their value kinds), weights, shape errors,
layer specs.

Every layer's shape rule also enforces the size limits no layer may exceed (`SizedRule`): each
dimension of its inputs and output fits in an int64, and no weight tensor has more than
`MAX_WEIGHT_ELEMENTS` elements. The frontend, the verifier and shape inference all call
`spec.infer`, so all of them reject such sizes with a ShapeError at the layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import prod
from typing import Any

from neuralc.ir.types import INT64_MAX, TensorType


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# Param.kind values and what a value of that kind is after normalization:
#   "int"        int                       "float"   float (ints accepted)
#   "bool"       bool                      "str"     str (see `choices`)
#   "ints"       tuple of `rank` ints; a single int n is normalized to (n,) * rank
#   "shape"      tuple of ints (e.g. Reshape's target_shape)
#   "activation" str naming an activation (ACTIVATIONS), or None
#   "any"        any attribute value
PARAM_KINDS = ("int", "float", "bool", "str", "ints", "shape", "activation", "any")


def is_int(value: Any) -> bool:
    """An int for the "int" kinds: a bool is not one, though Python says it is."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A number for the "float" kind (ints accepted, bools not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


ACTIVATIONS = (
    "linear", "relu", "gelu", "tanh", "sigmoid", "softmax", "elu", "selu", "leaky_relu",
    "swish", "silu", "softplus", "softsign", "hard_sigmoid", "log_softmax",
)  # fmt: skip


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    aliases: tuple[str, ...] = ()
    # Inclusive bounds unless the *_exclusive flag is set; checked after normalization.
    minimum: float | None = None
    maximum: float | None = None
    minimum_exclusive: bool = False
    maximum_exclusive: bool = False
    choices: tuple[Any, ...] | None = None
    rank: int | None = None  # for kind "ints"
    # Whether changing the value may change an output shape or validity (HPO checks enumerate
    # these). Floats such as dropout rates do not.
    affects_shape: bool = True

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"unknown param kind {self.kind!r} for {self.name}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def in_bounds(self, value: float) -> bool:
        """Whether `value` lies within `minimum`/`maximum` (each exclusive if flagged so)."""
        lo, hi = self.minimum, self.maximum
        too_low = lo is not None and (value <= lo if self.minimum_exclusive else value < lo)
        too_high = hi is not None and (value >= hi if self.maximum_exclusive else value > hi)
        return not (too_low or too_high)


@dataclass(frozen=True)
class WeightSpec:
    """One tensor of a layer's state in the framework-neutral weight file.

    `init` names an initializer understood by `neuralc.lower.weight_init` (e.g. "kaiming_uniform",
    "linear_bias", "glorot_uniform", "zeros", "ones", "normal"); `fan_in`/`fan_out` feed it.
    Buffers (BatchNorm running statistics) have `trainable=False` and do not count as params.
    """

    shape: tuple[int, ...]
    init: str
    trainable: bool = True
    fan_in: int | None = None
    fan_out: int | None = None

    @property
    def size(self) -> int:
        return prod(self.shape)


class ShapeError(Exception):
    """A shape rule's complaint. `param` names the offending parameter (the diagnostic then points
    at that argument), `note` suggests a fix."""

    def __init__(self, message: str, *, param: str | None = None, note: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.note = note


Attrs = Mapping[str, Any]
ShapeRule = Callable[[Attrs, list[TensorType]], TensorType]
WeightRule = Callable[[Attrs, list[TensorType]], dict[str, WeightSpec]]

# The most elements one weight tensor may have: 2**40 (4 TiB as float32). Real models stay far
# below (the largest matrices of today's language models hold about 2**30); a larger weight is
# a typo in a size that no device could allocate, so it is reported at the layer instead of as
# an allocation failure when the model is built.
MAX_WEIGHT_ELEMENTS = 2**40


class SizedRule:
    """A layer's shape rule plus the size limits of every layer (see the module docstring).

    LayerSpec wraps its `infer` in one; it compares (and hashes) as the rule it wraps."""

    __slots__ = ("rule", "spec")

    def __init__(self, rule: ShapeRule, spec: LayerSpec) -> None:
        self.rule = rule
        self.spec = spec

    def __call__(self, attrs: Attrs, inputs: list[TensorType]) -> TensorType:
        name = self.spec.name
        for t in inputs:
            _check_dims(name, "an input", t)
        out = self.rule(attrs, inputs)
        _check_dims(name, "the output", out)
        if not self.spec.takes_body:  # a body's layers are checked on their own
            for key, weight in self.spec.weights(attrs, inputs).items():
                if weight.size > MAX_WEIGHT_ELEMENTS:
                    shape = " x ".join(f"{d:,}" for d in weight.shape)
                    raise ShapeError(
                        f"{name} weight '{key}' would have {weight.size:,} elements ({shape}), "
                        f"more than the limit of 2**40 = {MAX_WEIGHT_ELEMENTS:,} per tensor",
                        note="no device can allocate a tensor this large (4 TiB as float32 at "
                        "the limit); check this layer's size arguments and its input shape")
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SizedRule) and other.rule == self.rule

    def __hash__(self) -> int:
        return hash(self.rule)

    def __repr__(self) -> str:
        return f"SizedRule({self.rule!r})"


def _check_dims(layer: str, which: str, t: TensorType) -> None:
    for d in t.shape:
        if isinstance(d, int) and not isinstance(d, bool) and d > INT64_MAX:
            shown = str(d) if d.bit_length() <= 128 else f"a {d.bit_length()}-bit integer"
            raise ShapeError(
                f"{layer}: {which} has the dimension {shown}, which does not fit in a 64-bit "
                "integer", note=f"sizes are at most 2**63 - 1 = {INT64_MAX:,}")


def no_weights(attrs: Attrs, inputs: list[TensorType]) -> dict[str, WeightSpec]:
    return {}


@dataclass(frozen=True)
class LayerSpec:
    name: str
    params: tuple[Param, ...]
    infer: ShapeRule
    doc: str
    category: str
    weights: WeightRule = no_weights
    # The framework module whose parameter count this layer matches (tests check it).
    reference: str = ""
    aliases: tuple[str, ...] = ()
    # Number of inputs: 1 for ordinary layers, None for variadic merges (Add, Concatenate).
    arity: int | None = 1
    # Whether the layer takes a nested `{ ... }` block (ResidualConnection).
    takes_body: bool = False
    # Free-form facts that cross-layer checks read (see neuralc.layers.families.compose):
    # "features" (Dense-like, acts on the last axis), "image_input" (expects an image map),
    # "transparent" (keeps shape and meaning of its input: Dropout, Activation, norms).
    tags: frozenset[str] = frozenset()
    # Attached by neuralc.lower.*: target name -> lowering callable. Not part of identity.
    lowerings: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # `infer` as given is the layer's own rule; every caller gets it with the size limits.
        # (dataclasses.replace passes the wrapped rule back in: unwrap it first.)
        rule = self.infer.rule if isinstance(self.infer, SizedRule) else self.infer
        object.__setattr__(self, "infer", SizedRule(rule, self))

    @property
    def op_name(self) -> str:
        """The `nn` dialect op for this layer: `nn.dense`, `nn.max_pooling2d`, ..."""
        return "nn." + snake_case(self.name)

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name or name in p.aliases:
                return p
        return None

    def count_params(self, attrs: Attrs, inputs: list[TensorType]) -> int:
        return sum(w.size for w in self.weights(attrs, inputs).values() if w.trainable)


def snake_case(name: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i > 0 and (name[i - 1].islower() or
                                       (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
