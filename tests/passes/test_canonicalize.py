"""`canonicalize` beyond the golden files: hit counts, options, rules that must not fire."""

from __future__ import annotations

import pytest
from passes_testlib import compile_nn, ir, roundtrip

from neuralc.diagnostics import CompileError
from neuralc.ir.verifier import verify_module
from neuralc.passes import PassContext
from neuralc.passes.canonicalize import NN_RULES, RULES, TENSOR_RULES, Canonicalize

HEAD = 'module {\n  network @T(%x: f32[2,3,4]) loc("t.neural":1:1) {\n'
TAIL = "  }\n}\n"


def _run(text: str, **options: object) -> tuple[str, PassContext]:
    module = ir(text)
    ctx = PassContext()
    Canonicalize(**options).run(module, ctx)  # type: ignore[arg-type]
    verify_module(module)
    return roundtrip(module), ctx


def test_rule_tables_concatenate_and_name_every_rule() -> None:
    assert RULES == NN_RULES + TENSOR_RULES
    assert all(rule.name and rule.ops for rule in RULES)


def test_hits_count_each_rule() -> None:
    module = compile_nn()
    ctx = PassContext()
    assert Canonicalize().run(module, ctx)
    assert ctx.hits == {"canonicalize.drop-linear-activation": 1}
    assert not Canonicalize().run(module, ctx)


def test_disable_leaves_a_rule_out() -> None:
    text = HEAD + ('    %t = tensor.transpose(%x) {perm = (0, 1, 2)} -> f32[2,3,4] loc("t.neural":2:5)\n'
                   "    return(%t)\n") + TAIL
    out, ctx = _run(text, disable="identity-transpose")
    assert "%t = tensor.transpose" in out and not ctx.hits
    out, ctx = _run(text)
    assert "return(%x)" in out and ctx.hits == {"canonicalize.identity-transpose": 1}
    with pytest.raises(CompileError, match="canonicalize has no rule 'nope'") as info:
        Canonicalize(disable="nope")
    # reshape-chain is in both rule tables; the note lists it once.
    note = info.value.diagnostics[0].notes[0]
    assert note.count("reshape-chain") == 1 and note.startswith("rules: empty-repeat, ")


def test_double_transpose_keeps_an_inner_transpose_with_other_users() -> None:
    text = HEAD + (
        '    %a = tensor.transpose(%x) {perm = (1, 0, 2)} -> f32[3,2,4] loc("t.neural":2:5)\n'
        '    %b = tensor.transpose(%a) {perm = (0, 2, 1)} -> f32[3,4,2] loc("t.neural":3:5)\n'
        "    return(%a, %b)\n") + TAIL
    out, _ = _run(text)
    assert "%a = tensor.transpose(%x) {perm = (1, 0, 2)}" in out
    assert "%b = tensor.transpose(%x) {perm = (1, 2, 0)} -> f32[3,4,2]" in out


def test_nonlinear_activations_and_open_repeats_stay() -> None:
    src = """network Net {
  input: (8,)
  layers:
    Activation("relu")
    Dropout(0.2)
    Dense(8) * 3
}
"""
    module = compile_nn(src)
    before = roundtrip(module)
    assert not Canonicalize().run(module, PassContext())
    assert roundtrip(module) == before


def test_repeat_with_open_count_stays_rolled() -> None:
    text = ('module {\n  network @R(%x: f32[N,8]) loc("t.neural":1:1) {\n'
            '    %r = nn.repeat(%x) {count = hpo.choice(1, 2)} -> f32[N,8] loc("t.neural":2:5) {\n'
            '    ^(%r.in: f32[N,8]):\n'
            '      %r.layer = nn.activation(%r.in) {activation = "relu"} -> f32[N,8] '
            'loc("t.neural":2:5)\n'
            '      nn.yield(%r.layer) loc("t.neural":2:5)\n    }\n    return(%r)\n  }\n}\n')
    out, ctx = _run(text)
    assert "nn.repeat" in out and not ctx.hits
