"""Shape inference over IR: re-derive result types from operand types.

The IR stores one type per value; a repeated body is typed for its first iteration, so unrolling,
weight enumeration and the verifier re-infer later iterations with these functions. Layer ops
ask the registry; structural ops (`nn.repeat`, `nn.residual_connection`) recurse.
"""

from __future__ import annotations

from neuralc.ir.core import Block, Operation, VerifyError
from neuralc.ir.types import HPOAttr, TensorType

REPEAT = "nn.repeat"
YIELD = "nn.yield"


def concrete_attrs(op: Operation) -> dict:
    """Attributes with every open hyperparameter at its first candidate (shape rules need values)."""
    return {k: (v.candidates()[0] if isinstance(v, HPOAttr) else v) for k, v in op.attrs.items()}


def infer_block(block: Block, arg_types: list[TensorType]) -> list[TensorType]:
    """Types yielded by `block` when its arguments have `arg_types` (values defined outside the
    block keep their types)."""
    env = {id(arg): t for arg, t in zip(block.args, arg_types, strict=True)}
    for op in block.ops:
        operand_types = [env.get(id(v), v.type) for v in op.operands]
        if op.op in (YIELD, "return"):
            return operand_types
        for result, t in zip(op.results, infer_op(op, operand_types), strict=True):
            env[id(result)] = t
    raise VerifyError("block has no terminator", block.parent if isinstance(
        block.parent, Operation) else None)


def infer_op(op: Operation, operand_types: list[TensorType]) -> list[TensorType]:
    if op.op == REPEAT:
        current = operand_types
        for _ in range(int(op.attrs["count"])):  # type: ignore[call-overload]
            current = infer_block(op.regions[0], current)
        return current
    spec = _spec_for(op)
    if spec is None:
        return [r.type for r in op.results]
    inputs = list(operand_types)
    if spec.takes_body:
        body_out = infer_block(op.regions[0], operand_types[:1])
        shortcut = (infer_block(op.regions[1], operand_types[:1]) if len(op.regions) > 1
                    else operand_types[:1])
        inputs = [shortcut[0], body_out[0]]
    return [spec.infer(concrete_attrs(op), inputs)]


def _spec_for(op: Operation):  # noqa: ANN202 - LayerSpec | None
    from neuralc.layers import all_layers

    global _BY_OP
    if not _BY_OP:
        _BY_OP = {spec.op_name: spec for spec in all_layers()}
    return _BY_OP.get(op.op)


_BY_OP: dict = {}
