"""`remove-dropout`: inference only."""

from __future__ import annotations

from passes_testlib import compile_nn, roundtrip

from neuralc.passes import PassContext
from neuralc.passes.canonicalize import Canonicalize
from neuralc.passes.remove_dropout import RemoveDropout


def test_inference_removes_and_training_keeps() -> None:
    module = compile_nn()
    assert not RemoveDropout().run(module, PassContext(training=True))
    assert "nn.dropout" in roundtrip(module)
    ctx = PassContext()
    assert RemoveDropout().run(module, ctx)
    assert "nn.dropout" not in roundtrip(module)
    assert ctx.hits == {"remove-dropout.dropout": 1}
    assert not RemoveDropout().run(module, ctx)


def test_dropout_in_a_region_is_removed() -> None:
    src = """network Net {
  input: (8,)
  layers:
    ResidualConnection { Dense(8) Dropout(0.1) }
    Dense(4, activation="relu") Dropout(0.3) * 2
}
"""
    module = compile_nn(src)
    assert RemoveDropout().run(module, PassContext())
    assert "nn.dropout" not in roundtrip(module)
    # What is left, a repeat of nothing, is canonicalize's.
    ctx = PassContext()
    assert Canonicalize().run(module, ctx)
    assert "nn.repeat" not in roundtrip(module)
    assert ctx.hits == {"canonicalize.empty-repeat": 1}
