"""`fuse-bias-act`: a bias add followed by an elementwise activation becomes one
`kernel.bias_act(x, b)`, the epilogue of a matmul.

Candidates are the `tensor.activation` ops. Two rules:
- `fuse-bias-act.add`: `act(x + b)` with `b` a vector over the last axis of `x`;
- `fuse-bias-act.linear`: `act(linear(x, w, b))` becomes `bias_act(linear(x, w), b)` (the
  linear keeps its name; the bias moves into the epilogue).
Run after `fuse-ffn`, which claims the activations between two linears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neuralc.ir.core import Module, Operation
from neuralc.ir.tensor import attr
from neuralc.ir.types import Attr
from neuralc.passes.base import Pass, PassContext, register_pass
from neuralc.passes.fusion import (
    Rewrite,
    Uses,
    concrete_kind,
    expect,
    fused_op,
    producer,
    run_pattern,
)

PATTERN = "fuse-bias-act"


def match(act: Operation, uses: Uses) -> Rewrite:
    kind = concrete_kind(act, "kind", "the activation")
    reason = "the activation's input is neither a bias add nor a biased linear"
    src = producer(act.operands[0], ("tensor.add", "tensor.linear"), reason)
    attrs: dict[str, Attr] = {"activation": kind}
    if kind == "leaky_relu":
        attrs["alpha"] = attr(act, "alpha")
    uses.only_user(src.result)
    if src.op == "tensor.add":
        for x, b in (src.operands, tuple(reversed(src.operands))):
            if b.type.rank == 1 and b.type.shape == x.type.shape[-1:] and x.type == act.result.type:
                new = fused_op("kernel.bias_act", act, [x, b], attrs)
                return Rewrite(act, [new], [src, act], f"{PATTERN}.add")
        expect(False, "the add is not a bias over the last axis")
    expect(len(src.operands) == 3, "the linear has no bias")
    unbiased = Operation("tensor.linear", src.name, src.operands[:2], [src.result.type])
    new = fused_op("kernel.bias_act", act, [unbiased.result, src.operands[2]], attrs)
    return Rewrite(act, [unbiased, new], [src, act], f"{PATTERN}.linear")


@register_pass
@dataclass(frozen=True)
class FuseBiasAct(Pass):
    """Fuse a bias add and an activation into kernel.bias_act."""

    name: ClassVar[str] = PATTERN
    description: ClassVar[str] = "bias add + activation → kernel.bias_act"
    min_level: ClassVar[int] = 2

    def run(self, module: Module, ctx: PassContext) -> bool:
        return run_pattern(module, ctx, PATTERN, lambda op: op.op == "tensor.activation", match)
