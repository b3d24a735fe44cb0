"""Argument binding: positional and named arguments, aliases, defaults, normalization, HPO
candidates, and the errors (message, the argument they point at, the note)."""

from __future__ import annotations

from typing import Any

import pytest

from neuralc.ir.types import CallAttr, HPOAttr
from neuralc.layers import LayerSpec, all_layers, get_layer
from neuralc.layers.binding import BindError, bind, normalize, validate_attrs
from neuralc.layers.families import EXAMPLES
from neuralc.layers.param_text import signature

Args = list[tuple[str | None, Any]]


def spec_of(name: str) -> LayerSpec:
    spec = get_layer(name)
    assert spec is not None, name
    return spec


def bound(name: str, args: Args) -> dict[str, Any]:
    return bind(spec_of(name), args)


def fails(name: str, args: Args) -> BindError:
    with pytest.raises(BindError) as info:
        bind(spec_of(name), args)
    return info.value


# Accepted forms -------------------------------------------------------------------------------


def test_positional_named_and_defaults_in_spec_order() -> None:
    attrs = bound("Dense", [(None, 64), (None, "relu")])
    assert attrs == {"units": 64, "activation": "relu", "use_bias": True}
    assert list(attrs) == [p.name for p in spec_of("Dense").params]
    assert bound("Dense", [("units", 1), ("activation", "linear"), ("use_bias", True)]) == {
        "units": 1, "activation": "linear", "use_bias": True}


def test_corpus_positional_conv2d_activation_is_third() -> None:
    attrs = bound("Conv2D", [(None, 32), (None, (3, 3)), (None, "relu")])
    assert attrs["activation"] == "relu" and attrs["kernel_size"] == (3, 3)


def test_aliases_resolve_to_canonical_names() -> None:
    attrs = bound("TransformerEncoder", [("num_heads", 8), ("ff_dim", 2048), ("dropout", 0.2)])
    assert attrs["dff"] == 2048 and attrs["dropout_rate"] == 0.2 and attrs["d_model"] is None
    assert "ff_dim" not in attrs and "dropout" not in attrs
    assert bound("Reshape", [("shape", (4, -1))])["target_shape"] == (4, -1)


@pytest.mark.parametrize("name,args,key,value", [
    ("Conv2D", [(None, 8), (None, 3)], "kernel_size", (3, 3)),
    ("Conv2D", [(None, 8), (None, 3), ("strides", 2)], "strides", (2, 2)),
    ("Conv1D", [(None, 8), (None, 5)], "kernel_size", (5,)),
    ("MaxPooling2D", [(None, 3)], "pool_size", (3, 3)),
    ("MaxPooling2D", [], "strides", None),
    ("Dropout", [(None, 0)], "rate", 0.0),
    ("BatchNormalization", [("epsilon", 1)], "epsilon", 1.0),
    ("Dense", [(None, 4), ("activation", "ReLU")], "activation", "relu"),
    ("Dense", [(None, 4), ("activation", None)], "activation", "linear"),
    ("Conv2D", [(None, 8), (None, 3), ("padding", "SAME")], "padding", "same"),
    ("Reshape", [(None, 12)], "target_shape", (12,)),
    ("LSTM", [(None, 4), ("return_sequences", True)], "return_sequences", True),
])
def test_normalization(name: str, args: Args, key: str, value: Any) -> None:
    result = bound(name, args)[key]
    assert result == value and type(result) is type(value)


def test_hpo_values_stay_symbolic_with_normalized_candidates() -> None:
    units = HPOAttr("choice", (128, 256))
    assert bound("Dense", [(None, units)])["units"] == units
    act = bound("Dense", [(None, 4), ("activation", HPOAttr("choice", ("ReLU", "tanh")))])
    assert act["activation"] == HPOAttr("choice", ("relu", "tanh"))
    kernel = bound("Conv2D", [(None, 4), ("kernel_size", HPOAttr("choice", (3, 5)))])
    assert kernel["kernel_size"] == HPOAttr("choice", ((3, 3), (5, 5)))
    rate = HPOAttr("range", (0.3, 0.7), (("step", 0.1),))
    assert bound("Dropout", [(None, rate)])["rate"] == rate
    lr = bound("Dropout", [(None, HPOAttr("log_range", (0, 0.5)))])["rate"]
    assert lr.args == (0.0, 0.5) and isinstance(lr.args[0], float)


def test_normalize_one_value() -> None:
    assert normalize(spec_of("Conv2D"), "kernel_size", 3) == (3, 3)
    assert normalize(spec_of("TransformerEncoder"), "ff_dim", 64) == 64


# Errors ---------------------------------------------------------------------------------------


def test_unknown_parameter_suggests_the_close_one() -> None:
    err = fails("Dense", [(None, 4), ("unit", 3)])
    assert err.message == "Dense has no parameter 'unit'"
    assert err.arg_index == 1 and err.note == "did you mean 'units'?"


def test_unknown_parameter_lists_the_valid_ones_when_nothing_is_close() -> None:
    err = fails("Dense", [(None, 4), ("kernel_initializer", "he")])
    assert err.note == "parameters: units, activation, use_bias"
    assert fails("Flatten", [("x", 1)]).note == "Flatten takes no parameters"


def test_too_many_positional_arguments() -> None:
    err = fails("Dropout", [(None, 0.1), (None, 0.2)])
    assert err.message == "Dropout takes at most 1 positional argument, got 2"
    assert err.arg_index == 1 and err.note == "signature: Dropout(rate)"


def test_positional_after_named() -> None:
    err = fails("Dense", [("units", 4), (None, "relu")])
    assert "positional argument after a named argument" in err.message and err.arg_index == 1


def test_duplicate_argument_also_through_an_alias() -> None:
    err = fails("Dense", [(None, 4), ("units", 5)])
    assert err.message == "parameter 'units' given twice" and err.arg_index == 1
    err = fails("TransformerEncoder", [(None, 8), ("dff", 4), ("ff_dim", 5)])
    assert err.message == "parameter 'dff' given twice (as 'ff_dim')" and err.arg_index == 2


def test_missing_required_parameter() -> None:
    err = fails("Dense", [("activation", "relu")])
    assert err.message == "Dense requires the parameter 'units'" and err.arg_index is None
    assert err.note == 'signature: Dense(units, activation="linear", use_bias=true)'
    assert "'dff'" in fails("TransformerEncoder", [(None, 8)]).message


@pytest.mark.parametrize("name,args,message,index", [
    ("Dense", [(None, "abc")], 'Dense units must be an int, got "abc"', 0),
    ("Dense", [(None, 12.5)], "Dense units must be an int, got 12.5", 0),
    ("Dense", [(None, True)], "Dense units must be an int, got true", 0),
    ("Dense", [(None, 4), ("use_bias", "true")], 'Dense use_bias must be true or false, got '
     '"true"', 1),
    ("Conv2D", [(None, 4), (None, (3, 3, 3))],
     "Conv2D kernel_size must be an int or a tuple of 2 ints, got (3, 3, 3)", 1),
    ("Dropout", [(None, CallAttr("Adam"))], "Dropout rate must be a number, got Adam()",
     0),
    ("Reshape", [(None, (2, "a"))], 'Reshape target_shape must be a tuple of ints, got (2, "a")',
     0),
])
def test_ill_typed_values(name: str, args: Args, message: str, index: int) -> None:
    err = fails(name, args)
    assert err.message == message and err.arg_index == index


def test_quoted_literals_get_a_note() -> None:
    assert fails("Dense", [(None, "12")]).note == "numbers are written without quotes"
    assert fails("Dense", [(None, 1), ("use_bias", "true")]).note == "write true without quotes"


def test_misspelled_booleans_get_a_note_about_the_spelling() -> None:
    """`use_bias=TRUE` is a bare name, not a quoted string: a note about quotes would not match
    what was written (bare `true` and `True` are booleans already)."""
    assert fails("Dense", [(None, 1), ("use_bias", "TRUE")]).note == \
        "TRUE is not a boolean: write true"
    assert fails("Dense", [(None, 1), ("use_bias", "False")]).note == \
        "False is not a boolean: write false"
    assert fails("Dense", [(None, 1), ("use_bias", 1)]).note == "write true or false"


@pytest.mark.parametrize("name,args,message", [
    ("Dropout", [(None, 1.5)], "Dropout rate must be in [0, 1), got 1.5"),
    ("Dropout", [(None, 1)], "Dropout rate must be in [0, 1), got 1"),
    ("Dropout", [(None, -0.1)], "Dropout rate must be in [0, 1), got -0.1"),
    ("Dense", [(None, 0)], "Dense units must be >= 1, got 0"),
    ("Conv2D", [(None, 4), (None, (3, 0))], "Conv2D kernel_size must be >= 1, got 0"),
    ("BatchNormalization", [("epsilon", 0)], "BatchNormalization epsilon must be > 0, got 0"),
    ("Reshape", [(None, (0, 4))], "Reshape target_shape entries must be positive (or -1 once), "
     "got (0, 4)"),
    ("Reshape", [(None, (-1, -1))], "Reshape target_shape may contain -1 only once, got (-1, -1)"),
])
def test_out_of_range(name: str, args: Args, message: str) -> None:
    assert fails(name, args).message == message


def test_invalid_choice() -> None:
    err = fails("Conv2D", [(None, 4), (None, 3), ("padding", "full")])
    assert err.message == 'Conv2D padding must be one of "valid", "same", got "full"'
    assert err.arg_index == 2
    err = fails("TransformerEncoder", [(None, 8), ("dff", 4), ("activation", "tanh")])
    assert err.message == 'TransformerEncoder activation must be one of "relu", "gelu", got "tanh"'


def test_unknown_activation_suggests() -> None:
    err = fails("Dense", [(None, 4), (None, "rleu")])
    assert err.message == "Dense activation: unknown activation 'rleu'"
    assert err.note == "did you mean 'relu'?" and err.arg_index == 1


def test_every_hpo_candidate_is_checked() -> None:
    err = fails("Dense", [(None, HPOAttr("choice", (128, 0)))])
    assert err.message == "Dense units must be >= 1, got 0 (an HPO candidate)"
    assert err.arg_index == 0
    err = fails("Dropout", [(None, HPOAttr("range", (0.5, 1.0), (("step", 0.25),)))])
    assert err.message == "Dropout rate must be in [0, 1), got 1 (an HPO candidate)"
    err = fails("Dense", [(None, 4), (None, HPOAttr("choice", ("relu", "nope")))])
    assert "unknown activation 'nope' (an HPO candidate)" in err.message


# The verifier's check -------------------------------------------------------------------------


def test_validate_attrs_accepts_bound_attrs_of_every_example() -> None:
    for spec in all_layers():
        validate_attrs(spec, bind(spec, EXAMPLES[spec.name][0]))


@pytest.mark.parametrize("attrs,message", [
    ({"units": 3, "activation": "linear"}, "Dense is missing the attribute 'use_bias'"),
    ({"units": 3, "activation": "linear", "use_bias": True, "x": 1},
     "Dense has no attribute 'x'"),
    ({"units": 0, "activation": "linear", "use_bias": True}, "Dense units must be >= 1, got 0"),
    ({"units": 3, "activation": "linear", "use_bias": 1},
     "Dense use_bias must be true or false, got 1"),
    ({"units": 3, "activation": "ReLU", "use_bias": True},
     "Dense attribute 'activation' is not normalized"),
])
def test_validate_attrs_rejects(attrs: dict[str, Any], message: str) -> None:
    with pytest.raises(BindError) as info:
        validate_attrs(spec_of("Dense"), attrs)
    assert info.value.message.startswith(message)


def test_aliases_are_not_attribute_names() -> None:
    attrs = bound("TransformerEncoder", [(None, 8), ("dff", 16)])
    attrs["ff_dim"] = attrs.pop("dff")
    with pytest.raises(BindError, match="no attribute 'ff_dim'"):
        validate_attrs(spec_of("TransformerEncoder"), attrs)


def test_signatures() -> None:
    assert signature(spec_of("Conv2D")) == (
        'Conv2D(filters, kernel_size, activation="linear", strides=(1, 1), padding="valid", '
        "dilation_rate=(1, 1), use_bias=true)")
    assert signature(spec_of("Flatten")) == "Flatten()"


# Notes with the fix ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,args,note", [
    ("Dropout", [(None, 1.5)],
     "rate (fraction of inputs zeroed during training) takes a number in [0, 1), e.g. 0.5"),
    ("Dense", [(None, -5)], "units (output features) takes a positive integer, e.g. 10"),
    ("Dense", [(None, 0)], "units (output features) takes a positive integer, e.g. 10"),
    ("Dense", [(None, 10.5)], "units (output features) takes a positive integer, e.g. 10"),
    ("Dense", [(None, 10.0)], "write 10, without a decimal point"),
    ("Dense", [(None, HPOAttr("choice", (128, 0)))],
     "units (output features) takes a positive integer, e.g. 10"),
    ("Conv2D", [(None, 4), (None, (3, 0))],
     "kernel_size takes a positive integer or a tuple of 2, e.g. 3 or (3, 3)"),
    ("Conv2D", [(None, 4), (None, (3, 3, 3))],
     "kernel_size takes a positive integer or a tuple of 2, e.g. 3 or (3, 3)"),
    ("Conv2D", [(None, 4), (None, 3), ("padding", "sme")], "did you mean 'same'?"),
    ("Dense", [(None, 4), ("activation", 3)], 'write an activation name in quotes, e.g. "relu"'),
    ("Reshape", [(None, (0, 4))], "write sizes without the batch, e.g. (7, 7, 64), or -1 for "
     "the one dimension inferred from the others, e.g. (-1, 64)"),
])
def test_errors_with_an_obvious_fix_have_a_note(name: str, args: Args, note: str) -> None:
    assert fails(name, args).note == note


def test_a_valid_default_is_the_example() -> None:
    note = fails("BatchNormalization", [("epsilon", 0)]).note
    assert note is not None and note.endswith("takes a number > 0, e.g. 0.001"), note


def test_a_parameter_given_twice_says_which_to_remove() -> None:
    err = fails("Dense", [(None, 3), ("units", 4)])
    assert err.arg_index == 1
    assert err.note == ("'units' is already given as a positional argument (argument 1); "
                        "remove one of the two")
    err = fails("TransformerEncoder", [(None, 8), ("dff", 4), ("ff_dim", 5)])
    assert err.note == "'dff' is already given as 'dff' (argument 2); remove one of the two"


# Integers beyond int64 ------------------------------------------------------------------------


@pytest.mark.parametrize("name,args,index", [
    ("Dense", [(None, 99999999999999999999999999999999)], 0),
    ("Dense", [(None, 2**63)], 0),
    ("Dense", [("use_bias", True), ("units", -(2**64))], 1),
    ("Conv2D", [(None, 4), (None, (3, 2**70))], 1),
    ("Reshape", [(None, (4, 2**63))], 0),
    # float() of this one raised OverflowError: an internal error.
    ("Dropout", [(None, 10**400)], 0),
    # HPO bounds and steps, not only the candidates checking enumerates.
    ("Dense", [(None, HPOAttr("range", (1, 10**20)))], 0),
    ("Dense", [(None, HPOAttr("range", (1, 9), (("step", 10**20),)))], 0),
    ("Dense", [(None, HPOAttr("choice", (8, 10**20)))], 0),
])
def test_integers_beyond_int64_are_rejected_at_the_argument(name: str, args: Args,
                                                            index: int) -> None:
    err = fails(name, args)
    assert "must fit in a 64-bit integer" in err.message and err.arg_index == index
    assert err.note is not None and "2**63 - 1 = 9,223,372,036,854,775,807" in err.note


def test_the_largest_int64_binds() -> None:
    assert bound("Dense", [(None, 2**63 - 1)])["units"] == 2**63 - 1


def test_a_huge_integer_is_shown_by_its_size() -> None:
    err = fails("Dense", [(None, 10**5000)])
    assert err.message == "Dense units must fit in a 64-bit integer, got a 16610-bit integer"


def test_the_verifier_check_rejects_them_too() -> None:
    with pytest.raises(BindError, match="must fit in a 64-bit integer"):
        validate_attrs(spec_of("Dense"), {"units": 2**64, "activation": "linear",
                                          "use_bias": True})
