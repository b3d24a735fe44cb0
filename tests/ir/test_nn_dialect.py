"""The nn dialect: generated layer ops, reserved attributes, structural op definitions."""

from __future__ import annotations

import pytest
from ir_testlib import FAKE_SCALE

from neuralc.ir.core import OPS, Operation, Value, VerifyError
from neuralc.ir.nn import (
    RESERVED_ATTRS,
    STRUCTURAL_OPS,
    layer_opdef,
    register_nn_dialect,
    verify_layer_op,
)
from neuralc.ir.types import TensorType
from neuralc.layers import all_layers
from neuralc.layers.spec import LayerSpec

T4 = TensorType(("N", 4))


def test_every_layer_has_an_op_and_registering_again_changes_nothing() -> None:
    register_nn_dialect()
    before = dict(OPS)
    register_nn_dialect()
    assert before == OPS and all(OPS[k] is v for k, v in before.items())
    for spec in all_layers():
        opdef = OPS[spec.op_name]
        assert opdef.num_results == 1
        assert (opdef.max_regions == 2) == spec.takes_body
        assert spec.op_name in opdef.doc or spec.takes_body


def test_structural_ops_are_documented_with_their_ir() -> None:
    for name in STRUCTURAL_OPS:
        assert name + "(" in OPS[name].doc
    assert OPS["nn.yield"].terminator and OPS["nn.residual"].max_regions == 2


def test_a_layer_cannot_shadow_a_structural_op() -> None:
    spec = LayerSpec(name="Repeat", params=(), infer=lambda a, i: i[0], doc="", category="x")
    with pytest.raises(ValueError, match="shadow"):
        layer_opdef(spec)


def _scale(attrs: dict, operands: int = 1, out: TensorType | None = None) -> Operation:
    xs = [Value(f"x{i}", T4) for i in range(operands)]
    return Operation("nn.fake_scale", "s", xs, [out or TensorType(("N", 8))], attrs)


def test_reserved_cross_attention() -> None:
    assert {"cross_attention": bool} == RESERVED_ATTRS
    verify_layer_op(FAKE_SCALE, _scale({"factor": 2, "rate": 0.0, "cross_attention": True}, 2))
    with pytest.raises(VerifyError, match="takes 2 operand"):
        verify_layer_op(FAKE_SCALE, _scale({"factor": 2, "rate": 0.0, "cross_attention": True}))
    with pytest.raises(VerifyError, match="'cross_attention' must be a bool"):
        verify_layer_op(FAKE_SCALE, _scale({"factor": 2, "rate": 0.0, "cross_attention": 1}))


def test_unknown_attributes_are_rejected() -> None:
    with pytest.raises(VerifyError, match="invalid attributes: .*no attribute 'units'"):
        verify_layer_op(FAKE_SCALE, _scale({"factor": 2, "rate": 0.0, "units": 3}))


def test_layers_registered_later_get_their_op() -> None:
    spec = LayerSpec(name="LateLayer", params=(), infer=lambda a, i: i[0], doc="late",
                     category="test")
    try:
        register_nn_dialect([spec])
        assert OPS["nn.late_layer"].doc.startswith("late")
        register_nn_dialect([spec])  # idempotent
    finally:
        OPS.pop("nn.late_layer", None)
