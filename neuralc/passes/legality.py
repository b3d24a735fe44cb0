"""Legality of a stage: after lowering to a stage, no op of an earlier stage may remain (MLIR's
partial-lowering check).

    nn      nn ops (the frontend's output)
    tensor  tensor ops only (after `lower-nn-to-tensor`, which checks it itself)
    kernel  tensor and kernel ops (after fusion)

The builtin `return` is legal everywhere. `check_legal` raises a `CompileError` naming the first
illegal op (program order) at its source location; the `legalize{stage=...}` pass runs it as a
pipeline step. The note says what to do: for an `nn` op, whether `lower-nn-to-tensor` has a
lowering for it and, when it has, whether that pass is missing from the pipeline, disabled
(`--disable-pass`) or placed after the check (`PassContext.pipeline`, `PassContext.disabled`).

`legalize{emit=true}` is the check that `--emit tensor|kernel` appends to an explicit pipeline
(`presets.truncate`): its failure says at which stage the pipeline ends and what to add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neuralc.diagnostics import error
from neuralc.ir.core import OPS, Module, Operation, primary_loc
from neuralc.passes.base import Pass, PassContext, option, register_pass

STAGES: dict[str, tuple[str, ...]] = {
    "nn": ("nn",),
    "tensor": ("tensor",),
    "kernel": ("tensor", "kernel"),
}
LOWER_NN = "lower-nn-to-tensor"
# The passes that make kernel ops, for the note of a pipeline that stops short of them. The
# preset's kernel stage also runs fuse-softmax-cross-entropy, but that pass makes no kernel op
# (it rewrites a training graph's softmax output to logits) and leaves inference graphs, the
# only ones an explicit pipeline builds, unchanged: naming it here would send users after a
# pass that cannot make their IR legal. tests/passes/test_legality.py keeps this table equal to
# the registered passes that do make kernel ops.
FUSIONS = ("fuse-attention", "fuse-ffn", "fuse-add-layernorm", "fuse-bias-act")


def illegal_ops(module: Module, stage: str) -> list[Operation]:
    """Every op (nested ones included, program order) whose dialect `stage` does not allow."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    allowed = (*STAGES[stage], "builtin")
    return [op for net in module.networks for op in net.walk() if op.dialect not in allowed]


def module_stage(module: Module) -> str:
    """The earliest stage whose ops the module still holds: where its lowering has got to."""
    dialects = {op.dialect for net in module.networks for op in net.walk()}
    return "nn" if "nn" in dialects else "kernel" if "kernel" in dialects else "tensor"


def has_lowering(op: Operation) -> bool:
    """Whether `lower-nn-to-tensor` lowers the nn op `op` (its cases, in its order)."""
    from neuralc.passes.lower_nn_to_tensor import RESIDUALS
    from neuralc.passes.lowering import LOWERINGS

    if op.op in ("nn.repeat", "nn.yield", *RESIDUALS) or op.op in LOWERINGS:
        return True
    return "tensor." + op.op.split(".", 1)[1] in OPS


def lowering_note(op: Operation, stage: str, ctx: PassContext | None) -> str:
    """What would make `op` legal at `stage`: the pass that lowers it and why it did not."""
    if op.dialect != "nn" or stage == "nn":
        return f"the {stage} stage holds {' and '.join(STAGES[stage])} ops only"
    if not has_lowering(op):
        return f"{LOWER_NN} has no lowering for it"
    fuse = (f" (then {', '.join(FUSIONS)} to fuse kernels)" if stage == "kernel" else "")
    if ctx is not None and LOWER_NN in ctx.disabled:
        return (f"{LOWER_NN}, which lowers it, was disabled: drop --disable-pass {LOWER_NN}")
    if ctx is not None and ctx.pipeline and LOWER_NN in ctx.pipeline:
        # It lowers every nn op or fails, so an nn op left over means it has not run yet.
        return f"{LOWER_NN}, which lowers it, runs after this check: move it earlier"
    if ctx is not None and ctx.pipeline:
        return f"{LOWER_NN}, which lowers it, is not in this pipeline: add it{fuse}"
    return f"run {LOWER_NN} first: it lowers this op{fuse}"


def check_legal(module: Module, stage: str, ctx: PassContext | None = None,
                emit: bool = False) -> None:
    """Raise a CompileError at the first op that is illegal at `stage`. With `emit`, the check
    stands for `--emit STAGE`: the message says where the pipeline ended instead."""
    bad = illegal_ops(module, stage)
    if not bad:
        return
    op = bad[0]
    what = f"%{op.name}" if op.results else op.op
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    note = lowering_note(op, stage, ctx)
    if not emit:
        raise error(f"illegal op '{op.op}' ({what}) at the {stage} stage{more}",
                    primary_loc(op.loc), note)
    reached = module_stage(module)
    if op.dialect == "nn":
        message = (f"--emit {stage}: the pipeline ends at the {reached} stage; "
                   f"'{op.op}' ({what}) is not lowered{more}")
    else:
        message = (f"--emit {stage}: the IR is already past the {stage} stage; "
                   f"'{op.op}' ({what}) cannot be turned back{more}")
        note = f"{note}; emit the {stage} stage from the nn IR instead"
    raise error(message, primary_loc(op.loc), note)


@register_pass
@dataclass(frozen=True)
class Legalize(Pass):
    """Check that the module is legal at `stage` (changes nothing)."""

    name: ClassVar[str] = "legalize"
    description: ClassVar[str] = "check that no op of an earlier stage remains"
    min_level: ClassVar[int] = 2
    stage: str = option("kernel", choices=tuple(STAGES))
    emit: bool = False  # the check `--emit STAGE` adds: failures name where the pipeline ends

    def run(self, module: Module, ctx: PassContext) -> bool:
        check_legal(module, self.stage, ctx, self.emit)
        return False
