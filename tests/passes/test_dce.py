"""`dce`: traits decide what may go."""

from __future__ import annotations

from dataclasses import replace

import pytest
from passes_testlib import ir, roundtrip

from neuralc.ir.core import OPS, OpDef
from neuralc.passes import PassContext
from neuralc.passes.dce import DCE
from neuralc.passes.traits import SIDE_EFFECTS, has_side_effects, op_traits

TEXT = ('module {\n  network @D(%x: f32[N,8]) loc("t.neural":1:1) {\n'
        '    %a = nn.activation(%x) {activation = "relu"} -> f32[N,8] loc("t.neural":2:5)\n'
        '    %b = nn.activation(%x) {activation = "tanh"} -> f32[N,8] loc("t.neural":3:5)\n'
        "    return(%b)\n  }\n}\n")


def test_unused_pure_op_goes() -> None:
    module = ir(TEXT)
    ctx = PassContext()
    assert DCE().run(module, ctx)
    assert "%a =" not in roundtrip(module) and ctx.hits == {"dce.erase": 1}
    assert not DCE().run(module, ctx)


def test_side_effect_trait_keeps_an_op(monkeypatch: pytest.MonkeyPatch) -> None:
    module = ir(TEXT)  # parse first: parsing re-registers the nn ops
    opdef = OPS["nn.activation"]
    monkeypatch.setitem(OPS, "nn.activation", replace(opdef, traits=frozenset({SIDE_EFFECTS})))
    op = module.networks[0].body.ops[0]
    assert SIDE_EFFECTS in op_traits(op) and has_side_effects(op)
    assert not DCE().run(module, PassContext())


def test_terminators_have_side_effects() -> None:
    module = ir(TEXT)
    ret = module.networks[0].body.ops[-1]
    assert has_side_effects(ret)
    assert isinstance(OPS["return"], OpDef)
