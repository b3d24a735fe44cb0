"""Legality of a stage: after lowering to a stage, no op of an earlier stage may remain (MLIR's
partial-lowering check).

    nn      nn ops (the frontend's output)
    tensor  tensor ops only (after `lower-nn-to-tensor`, which checks it itself)
    kernel  tensor and kernel ops (after fusion)

The builtin `return` is legal everywhere. `check_legal` raises a `CompileError` naming the first
illegal op (program order) at its source location; the `legalize{stage=...}` pass runs it as a
pipeline step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neuralc.diagnostics import error
from neuralc.ir.core import Module, Operation, primary_loc
from neuralc.passes.base import Pass, PassContext, register_pass

STAGES: dict[str, tuple[str, ...]] = {
    "nn": ("nn",),
    "tensor": ("tensor",),
    "kernel": ("tensor", "kernel"),
}


def illegal_ops(module: Module, stage: str) -> list[Operation]:
    """Every op (nested ones included, program order) whose dialect `stage` does not allow."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    allowed = (*STAGES[stage], "builtin")
    return [op for net in module.networks for op in net.walk() if op.dialect not in allowed]


def check_legal(module: Module, stage: str) -> None:
    """Raise a CompileError at the first op that is illegal at `stage`."""
    bad = illegal_ops(module, stage)
    if not bad:
        return
    op = bad[0]
    what = f"%{op.name}" if op.results else op.op
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    if op.dialect == "nn":
        note = ("lower-nn-to-tensor has no lowering for it" if stage != "nn" else "")
    else:
        note = f"the {stage} stage holds {' and '.join(STAGES[stage])} ops only"
    raise error(f"illegal op '{op.op}' ({what}) at the {stage} stage{more}",
                primary_loc(op.loc), note)


@register_pass
@dataclass(frozen=True)
class Legalize(Pass):
    """Check that the module is legal at `stage` (changes nothing)."""

    name: ClassVar[str] = "legalize"
    description: ClassVar[str] = "check that no op of an earlier stage remains"
    min_level: ClassVar[int] = 2
    stage: str = "kernel"

    def run(self, module: Module, ctx: PassContext) -> bool:
        check_legal(module, self.stage)
        return False
