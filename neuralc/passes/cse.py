"""`cse`: common-subexpression elimination by structural hashing.

Two ops merge when they have the same op name, attributes, operands (the same values), result
types and device, no regions, and are pure (`neuralc.passes.traits`): never ops that own weights
(two identical `Dense(64)` layers are two layers with their own parameters; `tensor.weight`
values merge only when their keys are equal: one key, one array), never random ones
(dropout) and never ones with side effects. The survivor is the earlier op; it takes the
location of both (`fuse_locs`), so a diagnostic can point at every source line it stands for.

Scoping follows visibility: an op in a region may reuse an equal op of an enclosing block, never
one of a sibling region.

    %a = tensor.relu(%x)      %a = tensor.relu(%x)
    %b = tensor.relu(%x)  →   %c = tensor.add(%a, %a)
    %c = tensor.add(%a, %b)
"""

from __future__ import annotations

from dataclasses import dataclass

from neuralc.ir.core import Block, Module, Network, Operation, Value, fuse_locs
from neuralc.ir.printer import print_attr_dict
from neuralc.passes.base import Pass, PassContext, register_pass
from neuralc.passes.rewrite import erase_all, replace_uses
from neuralc.passes.traits import WEIGHT_OPS, is_pure, owns_weights

Key = tuple[object, ...]


def cse_key(op: Operation) -> Key | None:
    """The structural hash of a mergeable op, or None when it must not merge."""
    if op.regions or not op.results or not is_pure(op):
        return None
    # A weight value names an array of the weight file by its key: one key, one array. Any
    # other op that owns weights is a layer instance of its own.
    if op.op not in WEIGHT_OPS and owns_weights(op):
        return None
    return (op.op, print_attr_dict(op.attrs), tuple(id(v) for v in op.operands),
            tuple(str(r.type) for r in op.results), op.device)


def cse_network(net: Network, ctx: PassContext) -> bool:
    mapping: dict[Value, Value] = {}
    _block(net.body, {}, mapping, ctx)
    if mapping:
        replace_uses(net, mapping)
    return bool(mapping)


def _block(block: Block, outer: dict[Key, Operation], mapping: dict[Value, Value],
           ctx: PassContext) -> None:
    seen = dict(outer)
    merged: list[Operation] = []
    for op in list(block.ops):
        # Operands may name values merged away earlier in this sweep.
        op.operands = [mapping.get(v, v) for v in op.operands]
        for region in op.regions:
            _block(region, seen, mapping, ctx)
        key = cse_key(op)
        if key is None:
            continue
        first = seen.get(key)
        if first is None:
            seen[key] = op
            continue
        for old, new in zip(op.results, first.results, strict=True):
            mapping[old] = new
        first.loc = fuse_locs([first.loc, op.loc])
        merged.append(op)
        ctx.hit("cse.merge")
    erase_all(merged)  # at once: erasing one by one rescans the block each time


@register_pass
@dataclass(frozen=True)
class CSE(Pass):
    """Merge structurally equal pure ops (never layers with weights)."""

    name = "cse"
    description = "merge equal pure ops; ops that own weights are never merged"
    min_level = 1

    def run(self, module: Module, ctx: PassContext) -> bool:
        changed = False
        for net in module.networks:
            changed |= cse_network(net, ctx)
        return changed
