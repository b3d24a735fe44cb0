"""`cse`: what merges and what never does."""

from __future__ import annotations

from passes_testlib import compile_nn, ir, roundtrip

from neuralc.ir.verifier import verify_module
from neuralc.passes import PassContext
from neuralc.passes.cse import CSE, cse_key


def _line(body: str) -> str:
    return ('module {\n  network @C(%x: f32[N,8]) loc("t.neural":1:1) {\n' + body
            + "  }\n}\n")


def test_ops_on_different_devices_do_not_merge() -> None:
    text = _line(
        '    %a = nn.activation(%x) {activation = "relu"} -> f32[N,8] @"cuda:0" loc("t.neural":2:5)\n'
        '    %b = nn.activation(%x) {activation = "relu"} -> f32[N,8] @"cuda:1" loc("t.neural":3:5)\n'
        '    %c = nn.activation(%x) {activation = "relu"} -> f32[N,8] @"cuda:0" loc("t.neural":4:5)\n'
        "    %s = nn.add(%a, %b, %c) -> f32[N,8] loc(\"t.neural\":5:5)\n    return(%s)\n")
    module = ir(text)
    ctx = PassContext()
    assert CSE().run(module, ctx)
    verify_module(module)
    out = roundtrip(module)
    assert "%s = nn.add(%a, %b, %a)" in out and ctx.hits == {"cse.merge": 1}


def test_attributes_distinguish_ops() -> None:
    text = _line(
        '    %a = nn.activation(%x) {activation = "relu"} -> f32[N,8] loc("t.neural":2:5)\n'
        '    %b = nn.activation(%x) {activation = "tanh"} -> f32[N,8] loc("t.neural":3:5)\n'
        "    %s = nn.add(%a, %b) -> f32[N,8] loc(\"t.neural\":5:5)\n    return(%s)\n")
    assert not CSE().run(ir(text), PassContext())


def test_layers_with_weights_and_random_ops_have_no_key() -> None:
    src = """network Net {
  input: (8,)
  layers:
    Dense(8)
    Dropout(0.5)
    Activation("relu")
    LayerNormalization()
}
"""
    ops = {op.op: op for op in compile_nn(src).networks[0].walk()}
    assert cse_key(ops["nn.dense"]) is None
    assert cse_key(ops["nn.layer_normalization"]) is None
    assert cse_key(ops["nn.dropout"]) is None
    assert cse_key(ops["nn.activation"]) is not None
    assert cse_key(ops["return"]) is None


def test_chains_merge_in_one_run() -> None:
    text = _line(
        '    %a = nn.activation(%x) {activation = "relu"} -> f32[N,8] loc("t.neural":2:5)\n'
        '    %b = nn.activation(%x) {activation = "relu"} -> f32[N,8] loc("t.neural":3:5)\n'
        '    %a2 = nn.activation(%a) {activation = "tanh"} -> f32[N,8] loc("t.neural":4:5)\n'
        '    %b2 = nn.activation(%b) {activation = "tanh"} -> f32[N,8] loc("t.neural":5:5)\n'
        "    %s = nn.add(%a2, %b2) -> f32[N,8] loc(\"t.neural\":6:5)\n    return(%s)\n")
    module = ir(text)
    assert CSE().run(module, PassContext())
    assert "%s = nn.add(%a2, %a2)" in roundtrip(module)
    assert not CSE().run(module, PassContext())
