"""What generic passes (cse, dce, canonicalize) may assume about an op.

An op is side-effect free and deterministic unless its `OpDef.traits` (or the tables here, for
ops whose dialect predates traits) say otherwise:

- `side_effects`: never removed, never merged. Terminators and unknown ops count as such.
- `random`: may be removed when unused, never merged (two dropouts of one value differ).
- `weights`: owns parameters (a layer with a weight file entry, `tensor.weight`): never merged
  (two identical Dense layers are two layers), and kept by `dce` unless told otherwise, since
  the weight file names every parameter.

nn layer ops own weights when their registry spec gives them any for the op's attributes and
operand types.
"""

from __future__ import annotations

from typing import Any

from neuralc.ir.core import Operation
from neuralc.ir.shapes import concrete_attrs

SIDE_EFFECTS = "side_effects"
RANDOM = "random"
WEIGHTS = "weights"

RANDOM_OPS = frozenset({"nn.dropout", "tensor.dropout"})
WEIGHT_OPS = frozenset({"tensor.weight"})

_SPECS: dict[str, Any] = {}


def layer_spec(op: Operation) -> Any:
    """The registry spec of an nn layer op, or None."""
    if op.dialect != "nn":
        return None
    if not _SPECS:
        from neuralc.layers.registry import all_layers

        _SPECS.update({spec.op_name: spec for spec in all_layers()})
    return _SPECS.get(op.op)


def op_traits(op: Operation) -> frozenset[str]:
    opdef = op.opdef
    declared = getattr(opdef, "traits", frozenset()) if opdef is not None else frozenset()
    extra: set[str] = set()
    if opdef is None or opdef.terminator:
        extra.add(SIDE_EFFECTS)
    if op.op in RANDOM_OPS:
        extra.add(RANDOM)
    if op.op in WEIGHT_OPS:
        extra.add(WEIGHTS)
    return frozenset(declared) | extra


def has_side_effects(op: Operation) -> bool:
    """Whether removing `op` (and what its regions hold) could change behaviour beyond its
    results."""
    return any(SIDE_EFFECTS in op_traits(inner) for inner in op.walk()
               if inner is op or not _is_region_terminator(inner))


def _is_region_terminator(op: Operation) -> bool:
    return op.opdef is not None and op.opdef.terminator and op.op != "return"


def is_random(op: Operation) -> bool:
    return any(RANDOM in op_traits(inner) for inner in op.walk())


def owns_weights(op: Operation) -> bool:
    """Whether `op` or an op in its regions owns parameters (or buffers)."""
    return any(_owns(inner) for inner in op.walk())


def _owns(op: Operation) -> bool:
    if WEIGHTS in op_traits(op):
        return True
    spec = layer_spec(op)
    if spec is None or op.regions:
        return False
    try:
        return bool(spec.weights(concrete_attrs(op), [v.type for v in op.operands]))
    except Exception:  # noqa: BLE001 - a rule that cannot tell: assume it has weights
        return True


def is_pure(op: Operation) -> bool:
    """Side-effect free and deterministic: a candidate for merging when it owns no weights."""
    return not has_side_effects(op) and not is_random(op)
