"""`fuse-add-layernorm`: `layer_norm(a + [dropout] b)` over the last axis becomes one
`kernel.add_layernorm(x, residual, gamma, beta)`.

Candidates are the `tensor.layer_norm` ops. The sublayer output `x` is the side that went
through a dropout (the kernel's `dropout`), else the add's second operand (the lowering writes
`skip + sublayer`); the sum must have no other use (a pre-norm Transformer's residual stream
does, so only its final norms fuse) and the add must not broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neuralc.ir.core import Module, Operation, Value
from neuralc.ir.tensor import attr
from neuralc.ir.types import Attr
from neuralc.passes.base import Pass, PassContext, register_pass
from neuralc.passes.fusion import (
    Rewrite,
    Uses,
    dropout_rate,
    expect,
    fused_op,
    producer,
    run_pattern,
    with_dropout,
)

PATTERN = "fuse-add-layernorm"


def _dropout_of(value: Value, uses: Uses) -> Operation | None:
    op = value.owner
    if isinstance(op, Operation) and op.op == "tensor.dropout" and len(uses.of(value)) == 1:
        return op
    return None


def match(norm: Operation, uses: Uses) -> Rewrite:
    x = norm.operands[0]
    expect(attr(norm, "axis") in (-1, x.type.rank - 1), "layer_norm is not over the last axis")
    add = producer(x, "tensor.add", "layer_norm input is not a residual add")
    uses.only_user(x)
    a, b = add.operands
    expect(a.type == b.type == x.type,
           f"the add broadcasts (%{a.name}: {a.type}, %{b.name}: {b.type})")
    matched = [add, norm]
    drop = _dropout_of(b, uses) or _dropout_of(a, uses)
    if drop is not None:
        matched.append(drop)
        sub, residual = drop.operands[0], (a if drop.result is b else b)
    else:
        sub, residual = b, a
    attrs: dict[str, Attr] = {"eps": attr(norm, "eps")}
    operands = [sub, residual, *norm.operands[1:]]
    new = fused_op("kernel.add_layernorm", norm, operands,
                   with_dropout(attrs, dropout_rate(drop)))
    return Rewrite(norm, [new], matched, PATTERN)


@register_pass
@dataclass(frozen=True)
class FuseAddLayerNorm(Pass):
    """Fuse a residual add and the LayerNorm after it into kernel.add_layernorm."""

    name: ClassVar[str] = PATTERN
    description: ClassVar[str] = "residual add + layer_norm → kernel.add_layernorm"
    min_level: ClassVar[int] = 2

    def run(self, module: Module, ctx: PassContext) -> bool:
        return run_pattern(module, ctx, PATTERN, lambda op: op.op == "tensor.layer_norm",
                           match)
