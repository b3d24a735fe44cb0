"""Fusion is tested by counting kernels (tinygrad): an N-layer Transformer stack through the
-O2-like pipeline gives N attention and N ffn kernels and one add_layernorm per sublayer; GPT
stacks attend causally; seq2seq decoders get self and cross attention. Also through the -O2
preset (with cse/canonicalize/constant-fold in between) and on the conformance BERT."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensor_testlib import compile_nn, op_counts, run

from neuralc.passes.base import PassContext
from neuralc.passes.legality import illegal_ops
from neuralc.passes.manager import PassManager
from neuralc.passes.presets import pipeline_for_level

PIPELINE = "unroll-repeat,lower-nn-to-tensor,fuse-attention,fuse-ffn,fuse-add-layernorm"


def _attention(module, **attrs: object) -> list:  # noqa: ANN001
    return [op for net in module.networks for op in net.walk() if op.op == "kernel.attention"
            and all(op.attrs.get(k) == v for k, v in attrs.items())]


@pytest.mark.parametrize("n", [1, 4])
def test_encoder_stack(n: int) -> None:
    module = compile_nn(f"""network E {{ input: (10, 16) layers:
        TransformerEncoder(num_heads=4, d_model=16, dff=32) * {n}
        GlobalAveragePooling1D() Output(2, activation="softmax") }}""")
    run(module, PIPELINE)
    kernels = op_counts(module, "kernel.")
    assert kernels == {"kernel.attention": n, "kernel.ffn": n, "kernel.add_layernorm": 2 * n}
    assert len(_attention(module, kind="self", causal=False)) == n
    assert illegal_ops(module, "kernel") == []
    # what stays unfused: the head and the pooling
    rest = {k: v for k, v in op_counts(module, "tensor.").items() if k != "tensor.weight"}
    assert rest == {"tensor.linear": 1, "tensor.softmax": 1, "tensor.reduce_mean": 1}


def test_gpt_stack_is_causal() -> None:
    module = compile_nn("""network G { input: (12, 16) layers:
        TransformerDecoder(num_heads=2, d_model=16, dff=32) * 3 Dense(50) }""")
    run(module, PIPELINE)
    assert len(_attention(module, kind="self", causal=True)) == 3
    assert op_counts(module, "kernel.") == {"kernel.attention": 3, "kernel.ffn": 3,
                                            "kernel.add_layernorm": 6}


def test_seq2seq_decoders_get_self_and_cross_attention() -> None:
    module = compile_nn("""network S { input: (12,) layers:
        Embedding(input_dim=100, output_dim=16)
        TransformerEncoder(num_heads=2, d_model=16, dff=32) * 2
        TransformerDecoder(num_heads=2, d_model=16, dff=32) * 3
        Dense(100, activation="softmax") }""")
    run(module, PIPELINE)
    assert len(_attention(module, kind="self", causal=False)) == 2
    assert len(_attention(module, kind="self", causal=True)) == 3
    cross = _attention(module, kind="cross", causal=False)
    assert len(cross) == 3
    assert {op.operands[1].name for op in cross} == {"transformer_encoder.1"}  # the memory
    assert op_counts(module, "kernel.") == {"kernel.attention": 8, "kernel.ffn": 5,
                                            "kernel.add_layernorm": 2 * 2 + 3 * 3}


def test_o2_preset_on_the_conformance_bert(conformance_dir: Path) -> None:
    path = conformance_dir / "seed" / "bert_encoder.neural"
    module = compile_nn(path.read_text(), str(path))
    ctx = PassContext(opt_level=2)
    PassManager(pipeline_for_level(2), ctx).run(module)
    assert op_counts(module, "kernel.") == {"kernel.attention": 12, "kernel.ffn": 12,
                                            "kernel.add_layernorm": 24}
    assert illegal_ops(module, "kernel") == []


def test_inference_dropout_removal_before_fusion_leaves_plain_kernels() -> None:
    module = compile_nn("""network E { input: (10, 16) layers:
        TransformerEncoder(num_heads=4, d_model=16, dff=32) * 2 }""")
    run(module, "unroll-repeat,lower-nn-to-tensor,remove-dropout,fuse-attention,fuse-ffn,"
                "fuse-add-layernorm")
    kernels = [op for op in module.networks[0].walk() if op.dialect == "kernel"]
    assert len(kernels) == 8 and all("dropout" not in op.attrs for op in kernels)
