"""Shape rules on their own: the dynamic-dimension policy and the ShapeErrors (which parameter
they blame, that the message names the shapes involved, the note)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from neuralc.ir.types import TensorType
from neuralc.layers import ShapeError, get_layer
from neuralc.layers.binding import bind

Args = list[tuple[str | None, Any]]
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def t(text: str) -> TensorType:
    """Parse `f32[N,s0,512]` (test shorthand)."""
    dtype, rest = text.split("[")
    return TensorType(tuple(int(d) if d.isdigit() else d for d in rest[:-1].split(",")), dtype)


def infer(name: str, args: Args, *inputs: str) -> str:
    spec = get_layer(name)
    assert spec is not None
    return str(spec.infer(bind(spec, args), [t(i) for i in inputs]))


def error(name: str, args: Args, *inputs: str) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        infer(name, args, *inputs)
    return info.value


SYMBOLIC = [
    ("Dense", [(None, 64)], ["f32[N,s0,512]"], "f32[N,s0,64]"),
    ("TransformerEncoder", [(None, 8), ("ff_dim", 2048)], ["f32[N,s0,512]"], "f32[N,s0,512]"),
    ("MaxPooling1D", [], ["f32[N,s0,8]"], "f32[N,s0_w2s2,8]"),
    ("MaxPooling1D", [(None, 3), ("strides", 1), ("padding", "same")], ["f32[N,s0,8]"],
     "f32[N,s0,8]"),
    ("Conv1D", [(None, 4), (None, 3), ("strides", 2), ("padding", "same")], ["f32[N,s0,8]"],
     "f32[N,s0_c2,4]"),
    ("Conv1D", [(None, 4), (None, 3), ("dilation_rate", 2)], ["f32[N,s0,8]"], "f32[N,s0_w5s1,4]"),
    ("Conv1D", [(None, 4), (None, 1)], ["f32[N,s0,8]"], "f32[N,s0,4]"),
    ("Conv2DTranspose", [(None, 4), (None, 3), ("strides", 2)], ["f32[N,s0,5,2]"],
     "f32[N,s0_t3s2,11,4]"),
    ("UpSampling2D", [], ["f32[N,s0,s1,3]"], "f32[N,s0_x2,s1_x2,3]"),
    ("ZeroPadding2D", [], ["f32[N,s0,4,3]"], "f32[N,s0_p2,6,3]"),
    ("Flatten", [], ["f32[N,s0,512]"], "f32[N,s0_x512]"),
    ("Flatten", [], ["f32[N,s0,s1,3]"], "f32[N,s0_x_s1_x3]"),
    ("Reshape", [(None, (-1, 256))], ["f32[N,s0,512]"], "f32[N,s0_x2,256]"),
    ("Reshape", [(None, (-1, 512))], ["f32[N,s0,512]"], "f32[N,s0,512]"),
    ("Reshape", [(None, (-1, 3))], ["f32[N,s0,512]"], "f32[N,s0_x512_d3,3]"),
    ("Concatenate", [("axis", 1)], ["f32[N,s0,8]", "f32[N,4,8]"], "f32[N,s0_p4,8]"),
    ("Concatenate", [("axis", 1)], ["f32[N,s0,8]", "f32[N,s1,8]"], "f32[N,s0_plus_s1,8]"),
    ("LSTM", [(None, 16)], ["f32[N,s0,8]"], "f32[N,16]"),
    ("GlobalAveragePooling1D", [], ["f32[N,s0,8]"], "f32[N,8]"),
    ("Embedding", [(None, 100), (None, 8)], ["i64[N,s0]"], "f32[N,s0,8]"),
]


@pytest.mark.parametrize("name,args,inputs,expected", SYMBOLIC)
def test_symbolic_dimensions(name: str, args: Args, inputs: list[str], expected: str) -> None:
    result = infer(name, args, *inputs)
    assert result == expected
    assert all(IDENT.match(d) or d.isdigit() for d in result.split("[")[1][:-1].split(","))


def test_derived_symbols_are_deterministic() -> None:
    args: Args = [(None, 4), (None, 3), ("strides", 2)]
    assert infer("Conv1D", args, "f32[N,s0,8]") == infer("Conv1D", args, "f32[N,s0,8]")


@pytest.mark.parametrize("name,args,inputs,role", [
    ("Dense", [(None, 4)], ["f32[N,8,s0]"], "number of input features"),
    ("Conv2D", [(None, 4), (None, 3)], ["f32[N,8,8,s0]"], "number of input channels"),
    ("LayerNormalization", [], ["f32[N,s0]"], "number of channels"),
    ("TransformerEncoder", [(None, 2), ("dff", 8)], ["f32[N,4,s0]"], "model width"),
])
def test_weight_sizing_dimensions_must_be_static(name: str, args: Args, inputs: list[str],
                                                 role: str) -> None:
    err = error(name, args, *inputs)
    assert role in err.message and inputs[0] in err.message


def test_reshape_dynamic_input_needs_minus_one() -> None:
    err = error("Reshape", [(None, (512,))], "f32[N,s0,512]")
    assert err.param == "target_shape" and "f32[N,s0,512]" in err.message
    assert err.note is not None and "-1" in err.note


def test_reshape_element_count_mismatch_names_both_shapes() -> None:
    err = error("Reshape", [(None, (196, 768))], "f32[N,15,15,768]")
    assert err.message == ("cannot reshape f32[N,15,15,768] (172800 elements per example) to "
                           "(196, 768) (150528 elements)")
    assert err.param == "target_shape"
    err = error("Reshape", [(None, (-1, 7))], "f32[N,10]")
    assert "not divisible by 7" in err.message


def test_transformer_d_model_must_match_the_input() -> None:
    err = error("TransformerEncoder", [(None, 8), (None, 512), (None, 2048)], "f32[N,100,768]")
    assert err.param == "d_model"
    assert "d_model=512" in err.message and "f32[N,100,768]" in err.message
    assert err.note is not None and "Dense(512)" in err.note


def test_transformer_heads_must_divide_d_model() -> None:
    err = error("TransformerEncoder", [(None, 7), ("dff", 64)], "f32[N,10,768]")
    assert err.param == "num_heads" and "num_heads=7 does not divide d_model=768" in err.message
    assert err.note == "num_heads must divide d_model=768; nearby divisors: 6 or 8"


def test_sequence_layers_on_a_vector_explain_the_leading_none() -> None:
    err = error("TransformerEncoder", [(None, 8), ("ff_dim", 2048)], "f32[N,512]")
    assert "f32[N,512]" in err.message
    assert err.note is not None and "input: (None, None, 512)" in err.note
    assert error("LSTM", [(None, 4)], "f32[N,512]").note is not None


def test_decoder_memory_width_must_match() -> None:
    spec = get_layer("TransformerDecoder")
    assert spec is not None
    attrs = bind(spec, [(None, 2), (None, 8), (None, 16), ("cross_attention", True)])
    with pytest.raises(ShapeError, match="f32\\[N,5,4\\].*f32\\[N,6,8\\]"):
        spec.infer(attrs, [t("f32[N,6,8]"), t("f32[N,5,4]")])


def test_conv_on_wrong_rank_and_oversized_window() -> None:
    err = error("Conv2D", [(None, 4), (None, 3)], "f32[N,28,28]")
    assert "image of shape (H, W, C)" in err.message and "f32[N,28,28]" in err.message
    err = error("Conv2D", [(None, 4), (None, 5)], "f32[N,3,3,1]")
    assert err.param == "kernel_size" and "f32[N,3,3,1]" in err.message
    err = error("MaxPooling2D", [(None, 4)], "f32[N,3,3,1]")
    assert err.param == "pool_size"
    err = error("Conv2D", [(None, 4), (None, 3), ("strides", 2), ("dilation_rate", 2)],
                "f32[N,9,9,1]")
    assert err.param == "dilation_rate"


def test_float_layers_reject_token_ids() -> None:
    err = error("Dense", [(None, 4)], "i64[N,100]")
    assert "i64[N,100]" in err.message and err.note is not None and "Embedding" in err.note


def test_embedding_float_input_without_feature_dim_suggests_going_first() -> None:
    err = error("Embedding", [(None, 100), (None, 8)], "f32[N,100]")
    assert err.note is not None and "must come first" in err.note


def test_merges_name_every_shape() -> None:
    err = error("Add", [], "f32[N,8]", "f32[N,8]", "f32[N,4]")
    assert err.message == "Add needs inputs of the same shape, got f32[N,8], f32[N,8], f32[N,4]"
    err = error("Concatenate", [], "f32[N,8,3]", "f32[N,4,3]")
    assert "f32[N,8,3], f32[N,4,3]" in err.message and err.param == "axis"
    assert "batch" in error("Concatenate", [("axis", 0)], "f32[N,8]", "f32[N,4]").message
    assert "rank" in error("Concatenate", [], "f32[N,8,3]", "f32[N,4]").message
    assert "two or more" in error("Add", [], "f32[N,8]").message


def test_residual_requires_equal_shapes_and_mentions_the_shortcut() -> None:
    assert infer("ResidualConnection", [], "f32[N,8,8,4]", "f32[N,8,8,4]") == "f32[N,8,8,4]"
    err = error("ResidualConnection", [], "f32[N,56,56,64]", "f32[N,28,28,128]")
    assert "f32[N,56,56,64]" in err.message and "f32[N,28,28,128]" in err.message
    assert err.note is not None and "shortcut projection" in err.note


def test_mha_output_shape_and_value_dim() -> None:
    args: Args = [(None, 2), (None, 4), ("value_dim", 3), ("output_shape", 5)]
    assert infer("MultiHeadAttention", args, "f32[N,s0,6]") == "f32[N,s0,5]"
