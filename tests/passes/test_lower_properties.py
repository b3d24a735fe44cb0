"""Hypothesis: random valid sequence programs, lowered and then put through random orders of the
fusion and cleanup passes, keep the IR verified (the pass manager checks after every pass),
print/parse round trips, stay legal at the kernel stage, and compute the same values."""

from __future__ import annotations

import numpy as np
import numpy_interp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensor_testlib import compile_nn, random_inputs, random_weights, run

from neuralc.ir.parser import parse_module
from neuralc.ir.printer import print_module
from neuralc.passes.legality import check_legal

WIDTHS = (4, 8)
PASSES = ("fuse-attention", "fuse-ffn", "fuse-add-layernorm", "fuse-bias-act", "cse",
          "canonicalize", "dce")


@st.composite
def layer(draw: st.DrawFn, d: int) -> tuple[str, int]:
    """One layer for a [L, d] sequence and the width it leaves."""
    kind = draw(st.sampled_from(("dense", "dropout", "norm", "encoder", "decoder", "mha",
                                 "conv", "activation")))
    act = draw(st.sampled_from(("relu", "gelu", "tanh", "linear", "softmax")))
    if kind == "dense":
        units = draw(st.sampled_from(WIDTHS))
        return f'Dense({units}, activation="{act}")', units
    if kind == "dropout":
        return f"Dropout({draw(st.sampled_from((0.0, 0.25)))})", d
    if kind == "norm":
        return draw(st.sampled_from(("LayerNormalization()", "BatchNormalization()"))), d
    if kind in ("encoder", "decoder"):
        heads = draw(st.sampled_from((1, 2)))
        first = "true" if draw(st.booleans()) else "false"
        ff_act = draw(st.sampled_from(("relu", "gelu")))
        name = "TransformerEncoder" if kind == "encoder" else "TransformerDecoder"
        return (f'{name}(num_heads={heads}, d_model={d}, dff={2 * d}, norm_first={first}, '
                f'activation="{ff_act}")', d)
    if kind == "mha":
        return f"MultiHeadAttention(num_heads=2, key_dim={draw(st.sampled_from((2, 3)))})", d
    if kind == "conv":
        filters = draw(st.sampled_from(WIDTHS))
        return f'Conv1D({filters}, 3, "{act}", padding="same")', filters
    return f'Activation("{act}")', d


@st.composite
def program(draw: st.DrawFn) -> str:
    d0 = d = draw(st.sampled_from(WIDTHS))
    layers: list[str] = []
    memory_width: int | None = None  # a decoder cross-attends to the latest encoder output
    for _ in range(draw(st.integers(1, 5))):
        text, d = draw(layer(d))
        if text.startswith("TransformerDecoder") and memory_width not in (None, d):
            text = text.replace("TransformerDecoder", "TransformerEncoder", 1)
        if text.startswith("TransformerEncoder"):
            memory_width = d
        layers.append(text)
    return f"network P {{ input: (5, {d0}) layers: {' '.join(layers)} }}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=program(), order=st.permutations(PASSES), keep=st.integers(1, len(PASSES)))
def test_random_programs_through_random_pipelines(src: str, order: list[str],
                                                  keep: int) -> None:
    module = compile_nn(src)
    net = module.networks[0]
    weights, inputs = random_weights(net), random_inputs(net)
    run(module, "lower-nn-to-tensor")
    (expected,) = numpy_interp.run(net, inputs, weights)
    run(module, ",".join(order[:keep]))
    check_legal(module, "kernel")
    text = print_module(module)
    assert print_module(parse_module(text)) == text
    (got,) = numpy_interp.run(net, inputs, weights)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)

