"""The size limits every layer's shape rule enforces: dimensions fit in an int64, and no weight
tensor holds more than 2**40 elements. `neuralc check` used to accept `Dense(10**32)` and a Dense
of 10**8 units on a 10**5-wide input (10**13 weights), printing a parameter count no backend can
allocate."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from neuralc.ir.types import TensorType
from neuralc.layers import LayerSpec, ShapeError, get_layer
from neuralc.layers.binding import bind
from neuralc.layers.spec import MAX_WEIGHT_ELEMENTS, SizedRule


def spec_of(name: str) -> LayerSpec:
    spec = get_layer(name)
    assert spec is not None, name
    return spec


def f32(*dims: int | str) -> TensorType:
    return TensorType(("N", *dims), "f32")


def infer(name: str, args: list[tuple[str | None, Any]], *inputs: TensorType) -> TensorType:
    spec = spec_of(name)
    return spec.infer(bind(spec, args), list(inputs))


def test_a_weight_at_the_limit_is_accepted_and_one_past_it_is_not() -> None:
    assert MAX_WEIGHT_ELEMENTS == 2**40
    assert infer("Dense", [(None, 2**20), ("use_bias", False)], f32(2**20)) == f32(2**20)
    with pytest.raises(ShapeError) as info:
        infer("Dense", [(None, 2**20 + 1)], f32(2**20))
    assert info.value.message == (
        "Dense weight 'weight' would have 1,099,512,676,352 elements (1,048,577 x 1,048,576), "
        "more than the limit of 2**40 = 1,099,511,627,776 per tensor")
    assert info.value.note is not None and "no device can allocate" in info.value.note


def test_the_reviewers_network_is_rejected() -> None:
    """`input: (100000, 100000, 100000)` then `Dense(100000000)`: 10**13 weights."""
    with pytest.raises(ShapeError, match=r"Dense weight 'weight' would have 10,000,000,000,000 "):
        infer("Dense", [(None, 100_000_000)], f32(100_000, 100_000, 100_000))


def test_weights_of_other_families_are_checked_too() -> None:
    with pytest.raises(ShapeError, match=r"Embedding weight 'weight' would have"):
        infer("Embedding", [(None, 2**21), (None, 2**20)], TensorType(("N", 4), "i64"))
    with pytest.raises(ShapeError, match=r"Conv2D weight 'weight' would have"):
        infer("Conv2D", [(None, 2**20), (None, 1)], f32(4, 4, 2**21))


def test_dimensions_beyond_int64_are_rejected() -> None:
    # Flatten multiplies: 2**32 * 2**32 = 2**64.
    with pytest.raises(ShapeError) as info:
        infer("Flatten", [], f32(2**32, 2**32))
    assert info.value.message == ("Flatten: the output has the dimension 18446744073709551616, "
                                  "which does not fit in a 64-bit integer")
    # An input that is already too large (the frontend's `input:` refuses one, but IR text or a
    # caller of the shape rules can hold it), even into a layer without weights or one that
    # drops that axis.
    for name in ("Dropout", "GlobalAveragePooling1D"):
        args: list[tuple[str | None, Any]] = [(None, 0.5)] if name == "Dropout" else []
        with pytest.raises(ShapeError, match="an input has the dimension 1000000000000000000000"):
            infer(name, args, f32(10**21, 4))
    assert infer("Flatten", [], f32(2**31, 2**31)) == f32(2**62)


def test_the_wrapper_is_transparent() -> None:
    """Specs compare as their own rules do; `dataclasses.replace` does not wrap twice."""
    spec = spec_of("Dense")
    assert isinstance(spec.infer, SizedRule)
    again = dataclasses.replace(spec, name="Dense2")
    assert isinstance(again.infer, SizedRule) and not isinstance(again.infer.rule, SizedRule)
    assert again.infer == spec.infer and again.infer.spec is again
    assert dataclasses.replace(spec) == spec


def test_a_layer_with_a_body_is_not_sized_by_its_weights() -> None:
    spec = LayerSpec(name="Wrapped", params=(), infer=lambda a, i: i[0], doc="", category="x",
                     takes_body=True, weights=lambda a, i: 1 / 0)  # type: ignore[arg-type,return-value]
    assert spec.infer({}, [f32(4)]) == f32(4)


def _check(tmp_path: Path, layer: str, input_: str = "(8)") -> str:
    pytest.importorskip("textx")
    import contextlib
    import io

    from neuralc.cli import main

    model = tmp_path / "m.neural"
    model.write_text(f"network Net {{\n  input: {input_}\n  layers:\n    {layer}\n}}\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["check", str(model)]) == 1
    return err.getvalue()


def test_check_points_at_the_argument_or_the_layer(tmp_path: Path) -> None:
    err = _check(tmp_path, "Dense(99999999999999999999999999999999)")
    assert err.startswith(f"{tmp_path / 'm.neural'}:4:11: error: Dense units must fit in a "
                          "64-bit integer, got 99999999999999999999999999999999\n")
    assert "\nnote: units (output features) takes a positive integer, e.g. 10" in err
    err = _check(tmp_path, "Dense(100000000)", "(100000, 100000, 100000)")
    assert err.startswith(f"{tmp_path / 'm.neural'}:4:5: error: Dense weight 'weight' would "
                          "have 10,000,000,000,000 elements")
    assert "Traceback" not in err and "internal error" not in err
