"""`unroll-repeat{max-count=N}`: every `nn.repeat` becomes N distinct copies of its body.

Each copy gets its own names (`transformer_encoder.3`, `block.1.conv2d`, see `ir/naming.py`) and
therefore its own weights, and its types are re-inferred, since a repeated layer may change the
shape on its first iteration (`Dense(64) * 3` after a 32-wide input).

Option `max-count`: repeats of more iterations stay rolled (the emitters handle `nn.repeat`); a
count that is an open hyperparameter is never unrolled.

    %enc = nn.repeat(%x) {count = 2} -> f32[N,8,32] { ^(%enc.in: ...): %enc.layer = ... }
    // becomes
    %enc.0 = nn.transformer_encoder(%x) {...} -> f32[N,8,32]
    %enc.1 = nn.transformer_encoder(%enc.0) {...} -> f32[N,8,32]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from neuralc.ir.core import Block, Module, Network, Operation, Value
from neuralc.ir.naming import unrolled_name
from neuralc.ir.shapes import REPEAT, YIELD, infer_op
from neuralc.passes.base import Pass, PassContext, option, register_pass


@register_pass
@dataclass(frozen=True)
class UnrollRepeat(Pass):
    """Unroll `nn.repeat` ops into distinct copies of their bodies."""

    name = "unroll-repeat"
    description = "every nn.repeat becomes N distinct copies of its body"
    min_level = 2
    max_count: int | None = option(None, minimum=1)

    def run(self, module: Module, ctx: PassContext) -> bool:
        changed = False
        for net in module.networks:
            changed |= unroll_network(net, self.max_count)
        return changed


def unroll_network(network: Network, max_count: int | None = None) -> bool:
    """Unroll every repeat in place (only those of at most `max_count` iterations, when given).
    Returns whether anything changed.

    Copies of a repeated body may themselves be repeats (a repeat inside a repeated macro), so
    unroll until nothing changes."""
    unrollable = _unrollable(max_count)
    changed = False
    while _unroll_block(network.body, unrollable):
        changed = True
    return changed


def _unrollable(max_count: int | None) -> Callable[[Operation], bool]:
    def check(op: Operation) -> bool:
        count = op.attrs.get("count")
        return (isinstance(count, int) and not isinstance(count, bool)
                and (max_count is None or count <= max_count))

    return check


def expand_repeat(op: Operation) -> tuple[list[Operation], list[Value]]:
    """The copies that replace one `nn.repeat` (nested repeats stay rolled) and the values that
    replace its results; the caller splices them in."""
    current = list(op.operands)
    copies: list[Operation] = []
    for index in range(int(op.attrs["count"])):  # type: ignore[call-overload]
        ops, current = _copy_body(op, index, current)
        copies.extend(ops)
    return copies, current


def _unroll_block(block: Block, unrollable: Callable[[Operation], bool]) -> bool:
    changed = False
    new_ops: list[Operation] = []
    copied: list[Operation] = []
    replacements: dict[int, Value] = {}
    for op in block.ops:
        op.operands = [replacements.get(id(v), v) for v in op.operands]
        for region in op.regions:
            _substitute(region, replacements)
        if op.op != REPEAT or not unrollable(op):
            for region in op.regions:
                changed |= _unroll_block(region, unrollable)
            new_ops.append(op)
            continue
        changed = True
        copies, current = expand_repeat(op)
        new_ops.extend(copies)
        copied.extend(copies)
        for old, new in zip(op.results, current, strict=True):
            replacements[id(old)] = new
    for new_op in new_ops:
        new_op.parent = block
    # Only the copies' regions are new: the kept ops' regions were unrolled above, and
    # visiting them again doubled the work per nesting level (2**depth: 20 nested residual
    # blocks took 20 s to build, 60 never finished).
    for new_op in copied:
        for region in new_op.regions:
            _unroll_block(region, unrollable)
    block.ops = new_ops
    return changed


def _copy_body(repeat: Operation, index: int, inputs: list[Value]) -> tuple[list[Operation],
                                                                            list[Value]]:
    body = repeat.regions[0]
    mapping: dict[int, Value] = {id(a): v for a, v in zip(body.args, inputs, strict=True)}
    copies: list[Operation] = []
    outputs: list[Value] = []
    for op in body.ops:
        if op.op == YIELD:
            outputs = [mapping.get(id(v), v) for v in op.operands]
            break
        copy = _clone(op, mapping, lambda n: unrolled_name(n, repeat.name, index),
                      repeat.device)
        copies.append(copy)
    return copies, outputs


def _clone(op: Operation, mapping: dict[int, Value], rename, device: str | None) -> Operation:  # noqa: ANN001
    operands = [mapping.get(id(v), v) for v in op.operands]
    # Region arguments mirror the op's operands (repeat bodies, residual bodies and shortcuts).
    operand_types = [v.type for v in operands]
    regions = [_clone_block(r, mapping, rename, operand_types[: len(r.args)])
               for r in op.regions]
    copy = Operation(op.op, rename(op.name), operands, [r.type for r in op.results],
                     dict(op.attrs), op.loc, op.device or device, regions)
    new_types = infer_op(copy, [v.type for v in operands])
    for result, new_type in zip(copy.results, new_types, strict=True):
        result.type = new_type
    for old, new in zip(op.results, copy.results, strict=True):
        mapping[id(old)] = new
    return copy


def _clone_block(block: Block, mapping: dict[int, Value], rename,  # noqa: ANN001
                 arg_types: list) -> Block:
    args = [Value(rename(a.name), t) for a, t in zip(block.args, arg_types, strict=True)]
    for old, new in zip(block.args, args, strict=True):
        mapping[id(old)] = new
    clone = Block(args)
    for op in block.ops:
        if op.op == YIELD or not op.results:
            clone.append(Operation(op.op, rename(op.name),
                                   [mapping.get(id(v), v) for v in op.operands], [],
                                   dict(op.attrs), op.loc, op.device))
        else:
            clone.append(_clone(op, mapping, rename, None))
    return clone


def _substitute(block: Block, replacements: dict[int, Value]) -> None:
    for op in block.ops:
        op.operands = [replacements.get(id(v), v) for v in op.operands]
        for region in op.regions:
            _substitute(region, replacements)
