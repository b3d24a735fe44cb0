"""Legality of a stage: `check_legal` names the first illegal op at its source line; the
`legalize{stage=...}` pass checks inside pipelines; lowering checks the tensor stage itself."""

from __future__ import annotations

import pytest
from tensor_testlib import FUSE, compile_nn, lowered, run

from neuralc.diagnostics import CompileError
from neuralc.ir.core import Operation
from neuralc.ir.printer import print_module
from neuralc.ir.types import TensorType
from neuralc.passes.base import PASSES, PassContext
from neuralc.passes.legality import (
    FUSIONS,
    STAGES,
    check_legal,
    illegal_ops,
    lowering_note,
    module_stage,
)

MLP = 'network M { input: (4,) layers: Dense(8, activation="relu") Dense(8) Output(2) }'


def test_nn_ir_is_legal_only_at_the_nn_stage() -> None:
    module = compile_nn(MLP)
    check_legal(module, "nn")
    with pytest.raises(CompileError) as info:
        check_legal(module, "tensor")
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.message == ("illegal op 'nn.dense' (%dense) at the tensor stage "
                                  "(and 2 more)")
    assert diagnostic.loc is not None and diagnostic.loc.line == 1
    # nn.dense has a lowering: the note says to run it, not that it is missing.
    assert diagnostic.notes == ("run lower-nn-to-tensor first: it lowers this op",)
    assert [op.name for op in illegal_ops(module, "kernel")] == ["dense", "dense_1", "output"]


def test_tensor_and_kernel_stages() -> None:
    module = lowered(MLP)
    check_legal(module, "tensor")
    check_legal(module, "kernel")
    with pytest.raises(CompileError, match="illegal op 'tensor.weight'"):
        check_legal(module, "nn")
    run(module, FUSE)
    assert any(op.dialect == "kernel" for op in module.networks[0].walk())
    check_legal(module, "kernel")
    with pytest.raises(CompileError, match=r"illegal op 'kernel\.ffn' .* at the tensor stage") \
            as info:
        check_legal(module, "tensor")
    assert info.value.diagnostics[0].notes == ("the tensor stage holds tensor ops only",)


def test_legalize_pass_and_unknown_stages() -> None:
    module = compile_nn(MLP)
    run(module, "legalize{stage=nn}")
    with pytest.raises(CompileError, match="at the kernel stage"):
        run(module, "legalize")
    run(module, "lower-nn-to-tensor,legalize{stage=tensor}")
    with pytest.raises(ValueError, match="unknown stage 'llvm'"):
        illegal_ops(module, "llvm")
    assert set(STAGES) == {"nn", "tensor", "kernel"}


def _note(module_src: str, stage: str, ctx: PassContext | None) -> str:
    with pytest.raises(CompileError) as info:
        check_legal(compile_nn(module_src), stage, ctx)
    return info.value.diagnostics[0].notes[0]


def test_the_note_says_why_the_lowering_did_not_run() -> None:
    fuse = "fuse-attention, fuse-ffn, fuse-add-layernorm, fuse-bias-act"
    assert _note(MLP, "kernel", PassContext(pipeline=("cse", "legalize"))) == (
        f"lower-nn-to-tensor, which lowers it, is not in this pipeline: add it (then {fuse} to "
        "fuse kernels)")
    assert _note(MLP, "tensor", PassContext(pipeline=("legalize",),
                                            disabled=("lower-nn-to-tensor",))) == (
        "lower-nn-to-tensor, which lowers it, was disabled: drop --disable-pass "
        "lower-nn-to-tensor")
    assert _note(MLP, "tensor", PassContext(pipeline=("legalize", "lower-nn-to-tensor"))) == (
        "lower-nn-to-tensor, which lowers it, runs after this check: move it earlier")
    # Only an op the lowering really lacks says so.
    t = TensorType((2,), "f32")
    unknown = Operation("nn.no_such_layer", "x", [], [t], {})
    assert lowering_note(unknown, "tensor", PassContext()) == (
        "lower-nn-to-tensor has no lowering for it")


def test_emit_check_names_the_stage_the_pipeline_ends_at() -> None:
    module = compile_nn(MLP)
    assert module_stage(module) == "nn"
    with pytest.raises(CompileError) as info:
        run(module, "unroll-repeat,legalize{stage=kernel,emit=true}")
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.message == ("--emit kernel: the pipeline ends at the nn stage; "
                                  "'nn.dense' (%dense) is not lowered (and 2 more)")
    assert diagnostic.notes[0].startswith("lower-nn-to-tensor, which lowers it, is not in this "
                                          "pipeline: add it (then fuse-attention")
    run(module, "lower-nn-to-tensor,legalize{stage=kernel,emit=true}")  # tensor ops are legal
    assert module_stage(module) == "tensor"
    run(module, FUSE)
    assert module_stage(module) == "kernel"
    with pytest.raises(CompileError, match=r"--emit tensor: the IR is already past the tensor "
                       r"stage; 'kernel\.ffn' .* cannot be turned back"):
        run(module, "legalize{stage=tensor,emit=true}")


def test_lowering_keeps_kernel_ops() -> None:
    """lower-nn-to-tensor on fused IR (`opt K.nir -O2`) is a no-op, not a legality error."""
    module = lowered(MLP, "lower-nn-to-tensor," + FUSE)
    before = print_module(module)
    run(module, "lower-nn-to-tensor")
    assert print_module(module) == before and module_stage(module) == "kernel"


FUSABLE = """network T {
  input: (6, 16)
  layers:
    TransformerEncoder(num_heads=2, d_model=16, dff=32)
    GlobalAveragePooling1D()
    Dense(8, activation="relu")
    Output(3, activation="softmax")
  loss: "sparse_categorical_crossentropy"
}"""


def test_fusions_are_exactly_the_registered_passes_that_make_kernel_ops() -> None:
    """The note's list of fusion passes misses none: every registered pass is run alone on a
    lowered network holding every fusable pattern (as a training graph, so that
    fuse-softmax-cross-entropy applies too), and those that leave kernel ops behind are the
    table. fuse-softmax-cross-entropy rewrites the graph but makes no kernel op: not listed."""
    makes_kernels: set[str] = set()
    for name in PASSES:
        module = lowered(FUSABLE)
        run(module, name, training=True)
        if module_stage(module) == "kernel":
            makes_kernels.add(name)
        if name == "fuse-softmax-cross-entropy":
            assert module.networks[0].attrs.get("output") == "logits"  # it did apply
    assert makes_kernels == set(FUSIONS)
    assert "fuse-softmax-cross-entropy" in PASSES and "fuse-softmax-cross-entropy" not in FUSIONS
