"""The printer: attribute values, types, locations, names, op and region layout."""

from __future__ import annotations

import math

import pytest
from ir_testlib import loc

from neuralc.diagnostics import SourceLocation
from neuralc.ir.builder import new_network
from neuralc.ir.core import Block, FusedLoc, Module, Operation, Value
from neuralc.ir.printer import (
    describe_op,
    print_attr,
    print_loc,
    print_module,
    print_op,
    print_type,
    print_value,
)
from neuralc.ir.types import CallAttr, HPOAttr, TensorType


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12, "12"),
        (-3, "-3"),
        (1.0, "1.0"),
        (0.0001, "0.0001"),
        (1e-05, "1e-05"),
        (1e16, "1e+16"),
        (-0.0, "-0.0"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
        ("relu", '"relu"'),
        ('a"b\\c\n', '"a\\"b\\\\c\\n"'),
        ("é", '"\\u00e9"'),
        (None, "none"),
        (True, "true"),
        (False, "false"),
        ((3, 3), "(3, 3)"),
        ((3,), "(3,)"),
        ((), "()"),
        (((1,), ()), "((1,), ())"),
        ({"epochs": 20, "batch_size": 32}, "{epochs = 20, batch_size = 32}"),
        ({}, "{}"),
        ({"odd key": 1}, '{"odd key" = 1}'),
        (HPOAttr("choice", (8, 12)), "hpo.choice(8, 12)"),
        (HPOAttr("range", (0.1, 0.3), (("step", 0.05),)), "hpo.range(0.1, 0.3, step = 0.05)"),
        (HPOAttr("log_range", (1e-05, 0.001)), "hpo.log_range(1e-05, 0.001)"),
        (CallAttr("Adam", (), (("learning_rate", 0.0001),)), "Adam(learning_rate = 0.0001)"),
        (CallAttr("Decay", (0.1, 1000)), "Decay(0.1, 1000)"),
        (CallAttr("tf.keras.Adam"), "tf.keras.Adam()"),
        # Names that would not read back as a bare call are quoted.
        (CallAttr("hpo.choice", (1,)), '"hpo.choice"(1)'),
        (CallAttr("my opt"), '"my opt"()'),
    ],
)
def test_print_attr(value: object, text: str) -> None:
    assert print_attr(value) == text  # type: ignore[arg-type]


def test_floats_always_look_like_floats() -> None:
    for value in (1.0, 2.0**70, 1e300, 5e-324, 123456.0):
        text = print_attr(value)
        assert "." in text or "e" in text, text


def test_print_attr_rejects_non_attributes() -> None:
    with pytest.raises(TypeError, match="list"):
        print_attr([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        print_attr({1: 2})  # type: ignore[dict-item]


def test_types_and_locations() -> None:
    assert print_type(TensorType(("N", 512, 768))) == "f32[N,512,768]"
    assert print_type(TensorType((), "bf16")) == "bf16[]"
    assert print_loc(SourceLocation("m.neural", 4, 5)) == 'loc("m.neural":4:5)'
    fused = FusedLoc((SourceLocation("f", 1, 2), SourceLocation("f", 3, 4)))
    assert print_loc(fused) == 'loc(fused["f":1:2, "f":3:4])'
    assert print_loc(None) == ""


@pytest.mark.parametrize(
    ("name", "text"),
    [("dense_1", "%dense_1"), ("enc.in", "%enc.in"), ("x#1", "%x#1"), ("0", "%0"),
     ("a b", '%"a b"'), ("", '%""'), ('q"', '%"q\\""'), ("é", '%"\\u00e9"')],
)
def test_value_names(name: str, text: str) -> None:
    assert print_value(Value(name, TensorType(()))) == text


def test_op_layout() -> None:
    x = Value("x", TensorType(("N", 4)))
    op = Operation("nn.dense", "dense", [x], [TensorType(("N", 8))],
                   {"units": 8, "activation": "relu"}, loc(3), "cuda:0")
    assert print_op(op) == ('%dense = nn.dense(%x) {units = 8, activation = "relu"} '
                            '-> f32[N,8] @"cuda:0" loc("m.neural":3:5)')
    multi = Operation("test.multi", "m", [x, x], [TensorType(()), TensorType((2,), "i64")])
    assert print_op(multi, indent=1) == "  %m, %m#1 = test.multi(%x, %x) -> (f32[], i64[2])"
    assert print_op(Operation("return", "return", [x])) == "return(%x)"
    assert describe_op(op) == "%dense (nn.dense)"
    assert describe_op(Operation("nn.yield", "y")) == "nn.yield"


def test_regions_indent_two_spaces_per_level() -> None:
    t = TensorType(("N", 4))
    net, b = new_network("Net", {"x": t})
    outer = b.region([t], "r.in")
    rep = b.op("nn.repeat", net.inputs, [t], name="r", attrs={"count": 2}, regions=[outer])
    with b.at(outer):
        inner = b.region([t], "r.s.in")
        b.op("nn.repeat", outer.args, [t], name="r.s", attrs={"count": 3}, regions=[inner])
        with b.at(inner):
            b.yield_(inner.args[0])
        b.yield_(outer.ops[0].result)
    b.ret(rep.result)
    assert print_module(Module([net])) == """\
module {
  network @Net(%x: f32[N,4]) {
    %r = nn.repeat(%x) {count = 2} -> f32[N,4] {
    ^(%r.in: f32[N,4]):
      %r.s = nn.repeat(%r.in) {count = 3} -> f32[N,4] {
      ^(%r.s.in: f32[N,4]):
        nn.yield(%r.s.in)
      }
      nn.yield(%r.s)
    }
    return(%r)
  }
}
"""


def test_two_regions_and_module_attributes() -> None:
    t = TensorType((4,))
    x = Value("x", t)
    body, shortcut = Block([Value("b", t)]), Block([Value("s", t)])
    body.append(Operation("nn.yield", "y", [body.args[0]]))
    shortcut.append(Operation("nn.yield", "y", [shortcut.args[0]]))
    op = Operation("nn.residual", "res", [x], [t], regions=[body, shortcut])
    assert print_op(op) == ("%res = nn.residual(%x) -> f32[4] {\n^(%b: f32[4]):\n"
                            "  nn.yield(%b)\n} {\n^(%s: f32[4]):\n  nn.yield(%s)\n}")
    assert print_module(Module([], {"v": 1})) == "module attributes {v = 1} {\n}\n"
