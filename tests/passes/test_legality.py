"""Legality of a stage: `check_legal` names the first illegal op at its source line; the
`legalize{stage=...}` pass checks inside pipelines; lowering checks the tensor stage itself."""

from __future__ import annotations

import pytest
from tensor_testlib import FUSE, compile_nn, lowered, run

from neuralc.diagnostics import CompileError
from neuralc.passes.legality import STAGES, check_legal, illegal_ops

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
    assert diagnostic.notes == ("lower-nn-to-tensor has no lowering for it",)
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
