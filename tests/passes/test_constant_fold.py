"""`constant-fold`: encodings, bounds and what is left alone."""

from __future__ import annotations

import base64
import warnings

import numpy as np
import pytest
from passes_testlib import ir, roundtrip

from neuralc.ir.core import Operation
from neuralc.ir.types import TensorType
from neuralc.passes import PassContext
from neuralc.passes.constant_fold import (
    ConstantFold,
    accepts_base64,
    decode_constant,
    encode_constant,
    fold_op,
)


def _constant(value: object, t: TensorType) -> Operation:
    return Operation("tensor.constant", "c", [], [t], {"value": value})


def test_decode_tuples_splats_and_base64() -> None:
    t = TensorType((2, 2), "f32")
    assert decode_constant(_constant(((1.0, 2.0), (3.0, 4.0)), t)).tolist() == [[1, 2], [3, 4]]
    assert decode_constant(_constant(7, t)).tolist() == [[7, 7], [7, 7]]
    raw = base64.b64encode(np.arange(4, dtype="<f4").tobytes()).decode()
    assert decode_constant(_constant(raw, t)).tolist() == [[0, 1], [2, 3]]
    assert decode_constant(_constant((1.0, 2.0, 3.0), t)) is None
    assert decode_constant(_constant(1.0, TensorType(("N", 2)))) is None
    assert decode_constant(_constant(1.0, TensorType((2,), "bf16"))) is None


def test_encode_chooses_splat_tuples_or_base64() -> None:
    assert encode_constant(np.full((3, 3), 2.5, dtype="float32")) == 2.5
    assert encode_constant(np.array(4, dtype="int32")) == 4
    assert encode_constant(np.arange(4, dtype="int64").reshape(2, 2)) == ((0, 1), (2, 3))
    big = np.arange(10, dtype="float32")
    text = encode_constant(big, inline_limit=4)
    assert isinstance(text, str)
    again = decode_constant(_constant(text, TensorType((10,), "f32")))
    assert again.tolist() == big.tolist()
    assert encode_constant(big, inline_limit=4, base64_ok=False) is None


def test_the_tensor_dialect_decides_whether_base64_is_accepted() -> None:
    assert isinstance(accepts_base64(), bool)


FOLD = ('module {\n  network @F(%x: f32[4]) loc("t.neural":1:1) {\n'
        '    %a = tensor.constant() {value = (1.0, 2.0, 3.0, 4.0)} -> f32[4] loc("t.neural":2:5)\n'
        '    %b = tensor.mul(%a, %a) -> f32[4] loc("t.neural":3:5)\n'
        '    %c = tensor.add(%b, %x) -> f32[4] loc("t.neural":4:5)\n'
        "    return(%c)\n  }\n}\n")


def test_fold_in_place_keeps_name_and_location() -> None:
    module = ir(FOLD)
    ctx = PassContext()
    assert ConstantFold().run(module, ctx)
    out = roundtrip(module)
    assert '%b = tensor.constant() {value = (1.0, 4.0, 9.0, 16.0)} -> f32[4] ' \
           'loc("t.neural":3:5)' in out
    assert ctx.hits == {"constant-fold.tensor.mul": 1}
    assert not ConstantFold().run(module, ctx)


def test_size_bounds() -> None:
    assert not ConstantFold(max_elements=3).run(ir(FOLD), PassContext())
    folded = ir(FOLD)
    limited = ConstantFold(inline_limit=2).run(folded, PassContext())
    assert limited == accepts_base64()


def test_networks_without_constants_are_skipped() -> None:
    text = FOLD.replace('tensor.constant() {value = (1.0, 2.0, 3.0, 4.0)}',
                        'tensor.activation(%x) {kind = "relu"}')
    assert not ConstantFold().run(ir(text), PassContext())


@pytest.mark.parametrize(("value", "dtype"), [(2**70, "i64"), (-(2**70), "i64"), (2**40, "i32"),
                                              (300, "i8")])
def test_constants_out_of_their_type_range_are_left_alone(value: int, dtype: str) -> None:
    """The verifier rejects such constants, but IR built in memory may hold one: folding must
    leave it, not crash with OverflowError."""
    t = TensorType((2,), dtype)
    c = _constant(value, t)
    assert decode_constant(c) is None
    add = Operation("tensor.add", "s", [c.results[0], c.results[0]], [t], {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not fold_op(add, 100)
    assert add.op == "tensor.add" and add.operands == [c.results[0], c.results[0]]


def test_integer_division_folds_exact_quotients_only_and_never_warns() -> None:
    t = TensorType((2,), "i32")
    results = {}
    for name, num, den in [("zero", (1, 0), 0), ("inexact", (7, -7), 2), ("exact", (6, -6), 3)]:
        a, b = _constant(num, t), _constant(den, t)
        div = Operation("tensor.div", name, [a.results[0], b.results[0]], [t], {})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            results[name] = fold_op(div, 100) and div.attrs["value"]
    assert results == {"zero": False, "inexact": False, "exact": (2, -2)}


OVERFLOWING_DIV = (
    'module {{\n  network @D(%x: {t}[2]) loc("t.neural":1:1) {{\n'
    '    %a = tensor.constant() {{value = ({low}, 6)}} -> {t}[2] loc("t.neural":2:5)\n'
    '    %b = tensor.constant() {{value = -1}} -> {t}[2] loc("t.neural":3:5)\n'
    '    %q = tensor.div(%a, %b) -> {t}[2] loc("t.neural":4:5)\n'
    '    %y = tensor.add(%q, %x) -> {t}[2] loc("t.neural":5:5)\n'
    "    return(%y)\n  }}\n}}\n"
)


@pytest.mark.parametrize(("dtype", "low"), [("i64", -(2**63)), ("i32", -(2**31)), ("i8", -128)])
def test_integer_division_overflowing_its_type_stays_in_place(dtype: str, low: int) -> None:
    """INT_MIN / -1 has no value in its type (numpy's int64 floor_divide warns and wraps to
    INT_MIN; a narrower quotient would wrap on the cast): the division is not folded."""
    module = ir(OVERFLOWING_DIV.format(t=dtype, low=low))
    ctx = PassContext()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not ConstantFold().run(module, ctx)
    out = roundtrip(module)
    assert f"%q = tensor.div(%a, %b) -> {dtype}[2]" in out
    assert ctx.hits == {}
    # The same division without INT_MIN is exact and folds.
    fits = ir(OVERFLOWING_DIV.format(t=dtype, low=low + 2))
    assert ConstantFold().run(fits, PassContext())
    assert f"%q = tensor.constant() {{value = ({-(low + 2)}, -6)}} -> {dtype}[2]" in roundtrip(fits)


def test_nan_and_signed_zero_splats() -> None:
    nan = np.full((2, 2), np.nan, dtype="float32")
    value = encode_constant(nan)
    assert isinstance(value, float) and np.isnan(value)
    assert encode_constant(np.array([0.0, -0.0], dtype="float32")) == (0.0, -0.0)
    assert encode_constant(np.array([-0.0, -0.0], dtype="float32")) == -0.0
