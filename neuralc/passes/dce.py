"""`dce`: dead-code elimination.

An op goes when none of its results is used (by any op, nested regions and the network's
`return` included) and neither it nor an op in its regions has side effects. Network outputs are
uses, so they are never removed. One backward sweep per block removes whole dead chains: an op's
operands lose a use when it goes.

Ops that own weights (layers with parameters, `tensor.weight`) are kept unless `keep-weights`
is false: the weight file names every parameter, and an emitted module must still load it.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuralc.ir.core import Block, Module, Network, Operation, Value
from neuralc.passes.base import Pass, PassContext, register_pass
from neuralc.passes.rewrite import use_counts
from neuralc.passes.traits import has_side_effects, owns_weights


def dce_network(net: Network, ctx: PassContext, keep_weights: bool = True) -> bool:
    counts = use_counts(net)
    return _sweep(net.body, counts, ctx, keep_weights)


def _removable(op: Operation, counts: dict[Value, int], keep_weights: bool) -> bool:
    if not op.results or any(counts.get(v, 0) for v in op.results):
        return False
    if has_side_effects(op):
        return False
    return not (keep_weights and owns_weights(op))


def _sweep(block: Block, counts: dict[Value, int], ctx: PassContext, keep: bool) -> bool:
    changed = False
    kept: list[Operation] = []
    for op in reversed(block.ops):
        if _removable(op, counts, keep):
            for inner in op.walk():
                for value in inner.operands:
                    counts[value] = counts.get(value, 0) - 1
            op.parent = None
            ctx.hit("dce.erase")
            changed = True
            continue
        for region in reversed(op.regions):
            changed |= _sweep(region, counts, ctx, keep)
        kept.append(op)
    if changed:
        block.ops = kept[::-1]
    return changed


@register_pass
@dataclass(frozen=True)
class DCE(Pass):
    """Remove unused side-effect-free ops."""

    name = "dce"
    description = "remove ops whose results are unused and that have no side effects"
    min_level = 1
    keep_weights: bool = True

    def run(self, module: Module, ctx: PassContext) -> bool:
        changed = False
        for net in module.networks:
            changed |= dce_network(net, ctx, self.keep_weights)
        return changed
