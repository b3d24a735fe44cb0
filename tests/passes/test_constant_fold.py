"""`constant-fold`: encodings, bounds and what is left alone."""

from __future__ import annotations

import base64

import numpy as np
from passes_testlib import ir, roundtrip

from neuralc.ir.core import Operation
from neuralc.ir.types import TensorType
from neuralc.passes import PassContext
from neuralc.passes.constant_fold import (
    ConstantFold,
    accepts_base64,
    decode_constant,
    encode_constant,
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
