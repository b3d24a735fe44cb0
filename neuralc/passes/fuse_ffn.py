"""`fuse-ffn`: `linear → activation → [dropout] → linear` becomes one `kernel.ffn`.

Candidates are the `tensor.activation` ops whose input is a `tensor.linear` (a Transformer's
feed-forward block, or two Dense layers in a row). Both linears need a bias, the activation is
relu or gelu (what the fused kernels implement, `neuralc.kernels.ffn`), and the intermediate
values have no other use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neuralc.ir.core import Module, Operation
from neuralc.ir.types import Attr
from neuralc.passes.base import Pass, PassContext, register_pass
from neuralc.passes.fusion import (
    Rewrite,
    Uses,
    concrete_kind,
    dropout_rate,
    expect,
    fused_op,
    run_pattern,
    with_dropout,
)

PATTERN = "fuse-ffn"
KERNEL_ACTIVATIONS = ("relu", "gelu")


def is_candidate(op: Operation) -> bool:
    src = op.operands[0].owner if op.operands else None
    return op.op == "tensor.activation" and isinstance(src, Operation) and \
        src.op == "tensor.linear"


def match(act: Operation, uses: Uses) -> Rewrite:
    kind = concrete_kind(act, "kind", "the activation")
    expect(kind in KERNEL_ACTIVATIONS, f"activation '{kind}' has no fused kernel "
           f"({', '.join(KERNEL_ACTIVATIONS)})")
    first = act.operands[0].owner
    assert isinstance(first, Operation)
    expect(len(first.operands) == 3, "the first linear has no bias")
    uses.only_user(first.result)
    matched = [first, act]
    hidden, drop = act.result, None
    user = uses.only_user(hidden)
    if user.op == "tensor.dropout":
        drop, hidden = user, user.result
        matched.append(drop)
        user = uses.only_user(hidden)
    expect(user.op == "tensor.linear" and user.operands[0] is hidden,
           "the activation does not feed a second linear")
    expect(len(user.operands) == 3, "the second linear has no bias")
    attrs: dict[str, Attr] = {"activation": kind}
    operands = [*first.operands, *user.operands[1:]]
    new = fused_op("kernel.ffn", user, operands, with_dropout(attrs, dropout_rate(drop)))
    return Rewrite(user, [new], matched + [user], PATTERN)


@register_pass
@dataclass(frozen=True)
class FuseFFN(Pass):
    """Fuse linear → activation → linear into kernel.ffn."""

    name: ClassVar[str] = PATTERN
    description: ClassVar[str] = "linear → relu/gelu → linear → kernel.ffn"
    min_level: ClassVar[int] = 2

    def run(self, module: Module, ctx: PassContext) -> bool:
        return run_pattern(module, ctx, PATTERN, is_candidate, match)
