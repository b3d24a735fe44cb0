"""`remove-dropout`: at inference, dropout is the identity.

`nn.dropout` and `tensor.dropout` become their input (their uses read the input), unless the
graph is for training (`PassContext.training`). Spatial variants and other layers tagged as
random at inference are not touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuralc.ir.core import Module, Operation, Value
from neuralc.passes.base import Pass, PassContext, register_pass
from neuralc.passes.rewrite import erase_all, is_attached, replace_uses

DROPOUT_OPS = ("nn.dropout", "tensor.dropout")


@register_pass
@dataclass(frozen=True)
class RemoveDropout(Pass):
    """Inference-time dropout removal."""

    name = "remove-dropout"
    description = "replace dropout by its input at inference (not when training)"
    min_level = 1

    def run(self, module: Module, ctx: PassContext) -> bool:
        if ctx.training:
            return False
        changed = False
        for net in module.networks:
            # One substitution for the whole network: replacing op by op rewalked the network
            # each time (quadratic in depth).
            mapping: dict[Value, Value] = {}
            removed: list[Operation] = []
            for op in net.walk():
                if op.op not in DROPOUT_OPS or not is_attached(op):
                    continue
                if len(op.operands) < 1 or len(op.results) != 1 or \
                        op.operands[0].type != op.results[0].type:
                    continue
                mapping[op.results[0]] = op.operands[0]
                removed.append(op)
                ctx.hit("remove-dropout.dropout")
            if removed:
                replace_uses(net, mapping)
                erase_all(removed)
                changed = True
        return changed
