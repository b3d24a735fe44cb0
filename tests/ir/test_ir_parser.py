"""The parser: what it builds, and its errors at the IR file's line:col."""

from __future__ import annotations

import math

import pytest
from ir_testlib import module_text, parse_error

from neuralc.diagnostics import CompileError, SourceLocation
from neuralc.ir.core import FusedLoc
from neuralc.ir.parser import parse_module
from neuralc.ir.printer import print_attr, print_module
from neuralc.ir.types import CallAttr, HPOAttr, TensorType


def attr_of(text: str) -> object:
    module = parse_module(f"module attributes {{v = {text}}} {{\n}}\n")
    return module.attrs["v"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12), ("-3", -3), ("1.0", 1.0), ("1e-05", 1e-05), ("1e+16", 1e16), ("1.", 1.0),
        ("-inf", -math.inf), ("inf", math.inf), ('"a\\"b"', 'a"b'), ('"\\u00e9"', "é"),
        ("none", None), ("true", True), ("false", False), ("(3, 3)", (3, 3)), ("(3,)", (3,)),
        ("()", ()), ("{a = 1, \"b c\" = (2,)}", {"a": 1, "b c": (2,)}), ("{}", {}),
        ("hpo.choice(8, 12)", HPOAttr("choice", (8, 12))),
        ("hpo.range(0.1, 0.3, step = 0.05)", HPOAttr("range", (0.1, 0.3), (("step", 0.05),))),
        ("Adam(learning_rate = 0.0001)", CallAttr("Adam", (), (("learning_rate", 0.0001),))),
        ('"hpo.choice"(1)', CallAttr("hpo.choice", (1,))),
        ("f(1, x = g())", CallAttr("f", (1,), (("x", CallAttr("g")),))),
    ],
)
def test_attribute_values(text: str, value: object) -> None:
    parsed = attr_of(text)
    assert parsed == value and type(parsed) is type(value)


def test_nan_and_ints_stay_distinct() -> None:
    assert math.isnan(attr_of("nan"))  # type: ignore[arg-type]
    assert isinstance(attr_of("1"), int) and isinstance(attr_of("1.0"), float)
    assert attr_of("123456789012345678901234567890") == 123456789012345678901234567890


def test_structure_names_types_locations() -> None:
    text = module_text(
        '%a, %a#1 = test.multi(%x) -> (f32[N,4], i64[]) @"cuda:1" loc(fused["f":1:2, "g":3:4])',
        '%"b c" = test.op(%a#1, %x) {k = 1} -> bf16[2,M] loc("f":5:6)',
        'return(%"b c")',
    )
    module = parse_module(text)
    net = module.network("Net")
    a, b, ret = net.body.ops
    assert a.name == "a" and [r.name for r in a.results] == ["a", "a#1"]
    assert a.results[1].type == TensorType((), "i64") and a.device == "cuda:1"
    assert a.loc == FusedLoc((SourceLocation("f", 1, 2), SourceLocation("g", 3, 4)))
    assert b.name == "b c" and b.operands == [a.results[1], net.inputs[0]]
    assert b.results[0].type == TensorType((2, "M"), "bf16") and b.attrs == {"k": 1}
    assert ret.op == "return" and net.outputs == [b.results[0]]
    assert print_module(module) == text


def test_comments_and_free_layout_print_canonically() -> None:
    text = """// an IR file
    module{network @Net(%x:f32[N,4]){   // inputs
      %y=test.op( %x ){k=(1,2)}->f32[N,4]
      return(%y)}}"""
    assert print_module(parse_module(text)) == module_text(
        "%y = test.op(%x) {k = (1, 2)} -> f32[N,4]", "return(%y)")


def test_regions_scope_their_values() -> None:
    text = module_text(
        "%r = nn.repeat(%x) {count = 2} -> f32[N,4] {",
        "^(%r.in: f32[N,4]):",
        "  %r.layer = test.op(%r.in, %x) -> f32[N,4]",
        "  nn.yield(%r.layer)",
        "}",
        "return(%r)",
    )
    module = parse_module(text)
    rep = module.networks[0].body.ops[0]
    inner = rep.regions[0].ops[0]
    assert inner.operands == [rep.regions[0].args[0], module.networks[0].inputs[0]]
    assert rep.regions[0].parent is rep and inner.parent is rep.regions[0]


@pytest.mark.parametrize(
    ("body", "line", "column", "message"),
    [
        (["%y = test.op(%x {k = 1} -> f32[N,4]"], 3, 21, "expected ')' after operands"),
        (["%y = nn.dens(%x) -> f32[N,4]"], 3, 10, "unknown op 'nn.dens'"),
        (["%y = test.op(%z) -> f32[N,4]"], 3, 18, "use of undefined value %z"),
        (["%x = test.op() -> f32[N,4]"], 3, 5, "redefinition of %x"),
        (["%y = test.op(%y) -> f32[N,4]"], 3, 18, "use of undefined value %y"),
        (["%y = test.op(%x) -> f33[N,4]"], 3, 25, "unknown dtype 'f33'"),
        (["%y = test.op(%x) -> f32[N,-4]"], 3, 31, "expected a dimension"),
        (["%y = test.op(%x) -> f32[N,4"], 4, 3, "expected ']' after the dimensions"),
        (["%y = test.op(%x)"], 4, 3, "expected '->' and the result type of %y"),
        (["test.op(%x) -> f32[4]"], 3, 5, "'test.op' names 0 result(s) but has 1"),
        (["%y = test.op(%x) {k = 1, k = 2} -> f32[4]"], 3, 30, "duplicate attribute 'k'"),
        (["%y = test.op(%x) {k = relu} -> f32[4]"], 3, 27, "expected an attribute value"),
        (["%y = test.op(%x) {k = (3)} -> f32[4]"], 3, 29, "expected ',' in a one-element"),
        (["%y = test.op(%x) {k = f(a = 1, 2)} -> f32[4]"], 3, 36, "positional arguments come"),
        (['%y = test.op(%x) {k = "a\\qb"} -> f32[4]'], 3, 29, "invalid string literal"),
        (['%y = test.op(%x) {k = "abc} -> f32[4]'], 3, 27, "unterminated string"),
        (["%y = test.op(%x) -> f32[4] loc(fused[])"], 3, 42, "at least one location"),
        (['%y = test.op(%x) -> f32[4] loc("f":1)'], 3, 41, "expected ':' after the location"),
        (["%y = test.op(%x) -> f32[4] $"], 3, 32, "unexpected character '$'"),
        (["%y = test.op(%x) -> f32[4] {", "}"], 4, 5, "expected '^'"),
        # End of input is placed just after the last token, so the caret has a line to mark.
        (["return(%x)"], 3, 15, "expected '}' to close the block"),
    ],
)
def test_parse_errors(body: list[str], line: int, column: int, message: str) -> None:
    text = module_text(*body)
    if body == ["return(%x)"]:
        text = text[: text.rindex("  }")]  # the network body never closes
    got = parse_error(text)
    assert message in got[2], got
    assert got[:2] == (line, column), got


def test_value_defined_in_a_region_is_not_visible_after_it() -> None:
    text = module_text(
        "%r = nn.repeat(%x) {count = 2} -> f32[N,4] {",
        "^(%r.in: f32[N,4]):",
        "  nn.yield(%r.in)",
        "}",
        "return(%r.in)",
    )
    with pytest.raises(CompileError) as info:
        parse_module(text, "t.nir")
    diag = info.value.diagnostics[0]
    assert diag.message == "use of undefined value %r.in"
    assert (diag.loc.line, diag.loc.column) == (7, 12)  # type: ignore[union-attr]
    assert "defined inside a region" in diag.related[0][1]


def test_unknown_op_suggests_a_registered_one() -> None:
    with pytest.raises(CompileError) as info:
        parse_module(module_text("%y = nn.denze(%x) -> f32[N,4]", "return(%y)"))
    assert info.value.diagnostics[0].notes == ("did you mean 'nn.dense'?",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected 'module'"),
        ("module {", "expected 'network' or '}'"),
        ("module {\n}\nextra", "expected end of input"),
        ("module { network Net() {} }", "expected a network name"),
    ],
)
def test_module_level_errors(text: str, message: str) -> None:
    assert message in parse_error(text)[2]


def test_print_attr_and_parse_agree_on_odd_strings() -> None:
    for s in ["", "\t", "\x00", "\u2028", "😀", "\\", '"', "\ud800"]:
        assert attr_of(print_attr(s)) == s


def test_unknown_hpo_kind_is_a_diagnostic() -> None:
    """Found by the corruption property: `hpo..log_range(...)` must not parse into an HPOAttr
    that cannot be printed."""
    import pytest as _pytest

    from neuralc.diagnostics import CompileError
    from neuralc.ir.parser import parse_module

    text = ('module {\n  network @N(%x: f32[N,4]) attributes {lr = hpo..log_range(1, 2)} {\n'
            '    return(%x)\n  }\n}\n')
    with _pytest.raises(CompileError, match="unknown HPO search space"):
        parse_module(text, "h.nir")
