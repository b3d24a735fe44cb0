"""AST → nn IR: names, repetition, macros, residual shortcuts, cross-attention, branches, HPO."""

from __future__ import annotations

import pytest

from neuralc.diagnostics import CompileError
from neuralc.frontend.check import check_program, covering_rows, shape_hpos
from neuralc.frontend.irgen import build_module
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network
from neuralc.ir.printer import print_module
from neuralc.ir.verifier import verify_module
from neuralc.passes.unroll_repeat import unroll_network


def build(source: str) -> Network:
    result = check_program(parse_text(source, "m.neural"))
    return result.module.networks[0]


def ops(network: Network) -> list[tuple[str, str]]:
    return [(op.name, op.op) for op in network.walk()]


def test_keras_like_names_and_repeat_region() -> None:
    net = build("network N { input: (8,) layers: Dense(4) Dense(4) * 3 Output(2) }")
    assert ops(net) == [
        ("dense", "nn.dense"),
        ("dense_1", "nn.repeat"),
        ("dense_1.layer", "nn.dense"),
        ("dense_1.yield", "nn.yield"),
        ("output", "nn.output"),
        ("return", "return"),
    ]
    repeat = net.body.ops[1]
    assert repeat.attrs["count"] == 3
    assert str(repeat.result.type) == "f32[N,4]"


def test_repeat_typed_for_first_iteration_and_unrolled_with_new_types() -> None:
    net = build("network N { input: (32,) layers: Dense(64) * 3 }")
    repeat = net.body.ops[0]
    assert str(repeat.regions[0].args[0].type) == "f32[N,32]"
    assert unroll_network(net)
    verify_module(_module(net))
    names = [(op.name, str(op.result.type)) for op in net.body.ops[:-1]]
    assert names == [("dense.0", "f32[N,64]"), ("dense.1", "f32[N,64]"), ("dense.2", "f32[N,64]")]
    assert [str(op.operands[0].type) for op in net.body.ops[:-1]] == [
        "f32[N,32]", "f32[N,64]", "f32[N,64]"]


def test_repeated_macro_keeps_inner_names() -> None:
    source = """
    define Block { Conv2D(8, (3, 3)) MaxPooling2D((2, 2)) }
    network N { input: (28, 28, 1) layers: Block() * 2 }
    """
    net = build(source)
    body = [op.name for op in net.body.ops[0].regions[0].ops]
    assert body == ["block.conv2d", "block.max_pooling2d", "block.yield"]
    unroll_network(net)
    assert [op.name for op in net.body.ops[:-1]] == [
        "block.0.conv2d", "block.0.max_pooling2d", "block.1.conv2d", "block.1.max_pooling2d"]
    assert str(net.outputs[0].type) == "f32[N,5,5,8]"


def test_macro_without_parentheses_expands_inline() -> None:
    source = """
    define ConvBlock { Conv2D(4, 3) BatchNormalization() }
    network N { input: (8, 8, 1) layers: ConvBlock Dropout(0.5) }
    """
    assert [op for _, op in ops(build(source))] == [
        "nn.conv2d", "nn.batch_normalization", "nn.dropout", "return"]


def test_residual_with_projection_shortcut() -> None:
    source = """
    network R { input: (8, 8, 4) layers:
      ResidualConnection {
        Conv2D(8, (3, 3), strides=(2, 2), padding="same")
        Conv2D(8, (3, 3), padding="same")
        Conv2D(8, (1, 1), strides=(2, 2), padding="same")
      }
    }
    """
    residual = build(source).body.ops[0]
    assert residual.op == "nn.residual_connection"
    body, shortcut = residual.regions
    assert [op.op for op in body.ops] == ["nn.conv2d", "nn.conv2d", "nn.yield"]
    assert [op.op for op in shortcut.ops] == ["nn.conv2d", "nn.yield"]
    assert str(residual.result.type) == "f32[N,4,4,8]"


def test_residual_identity_when_shape_is_kept() -> None:
    source = "network R { input: (16,) layers: ResidualConnection { Dense(16) Dense(16) } }"
    residual = build(source).body.ops[0]
    assert len(residual.regions) == 1


def test_residual_shape_mismatch_is_a_diagnostic() -> None:
    source = "network R { input: (16,) layers: ResidualConnection { Dense(8) } }"
    with pytest.raises(CompileError) as info:
        build(source)
    assert "shortcut" in info.value.render()


def test_decoders_after_encoders_cross_attend() -> None:
    source = """
    network S { input: (10,) layers:
      Embedding(100, 16)
      TransformerEncoder(num_heads=2, dff=32) * 2
      TransformerDecoder(num_heads=2, dff=32) * 2
    }
    """
    net = build(source)
    encoders, decoders = net.body.ops[1], net.body.ops[2]
    decoder = decoders.regions[0].ops[0]
    assert decoder.attrs["cross_attention"] is True
    assert decoder.operands[1] is encoders.result


def test_decoder_alone_is_causal_self_attention_only() -> None:
    net = build("network G { input: (10, 16) layers: TransformerDecoder(num_heads=2, dff=32) }")
    decoder = net.body.ops[0]
    assert decoder.attrs.get("cross_attention") in (False, None)
    assert len(decoder.operands) == 1


ENCODER_THEN_DECODER = """network S {{ input: (10, 16) layers:
  TransformerEncoder(num_heads=2, dff=32)
  TransformerDecoder(num_heads=2, dff=32{cross})
}}"""


def test_explicit_cross_attention_false_is_honoured_after_an_encoder() -> None:
    """`cross_attention=false` used to be overridden by the encoder before it: the decoder is
    then self-attention only, with an encoder layer's parameters (no multihead_attn, no norm3)."""
    from neuralc.lower.weights import init_weights

    counts = {}
    for cross in ("", ", cross_attention=true", ", cross_attention=false"):
        result = check_program(parse_text(ENCODER_THEN_DECODER.format(cross=cross), "m.neural"))
        built = result.networks[0]
        encoder, decoder = built.network.body.ops[:2]
        assert decoder.attrs["cross_attention"] is (cross != ", cross_attention=false")
        assert decoder.operands[1:] == (
            [encoder.result] if decoder.attrs["cross_attention"] else []
        )
        assert str(decoder.result.type) == "f32[N,10,16]"
        counts[cross] = [row.params for row in built.rows]
        keys = sorted(k for k in init_weights(built.network, 0) if k.startswith("transformer_d"))
        assert ("transformer_decoder.multihead_attn.in_proj_weight" in keys) is (
            decoder.attrs["cross_attention"]
        )
        assert ("transformer_decoder.norm3.weight" in keys) is decoder.attrs["cross_attention"]
    encoder_params = counts[""][0]
    assert counts[""] == counts[", cross_attention=true"] == [encoder_params, 3344]
    assert counts[", cross_attention=false"] == [encoder_params, encoder_params] == [2224, 2224]


def test_cross_attention_without_an_encoder_is_a_diagnostic_at_the_argument() -> None:
    """It used to pass the front end and fail the verifier (an internal error): the op took one
    operand where cross-attention needs two."""
    source = (
        "network G { input: (10, 16) layers:\n"
        "  TransformerDecoder(num_heads=2, dff=32, cross_attention=true)\n}"
    )
    with pytest.raises(CompileError) as info:
        build(source)
    [diagnostic] = info.value.diagnostics
    assert diagnostic.message == (
        "TransformerDecoder cross_attention=true has no encoder output to attend to"
    )
    assert (diagnostic.loc.line, diagnostic.loc.column) == (2, 43)
    assert "TransformerEncoder earlier in the network" in diagnostic.notes[0]
    # Written positionally too (the eighth parameter).
    positional = source.replace(
        "num_heads=2, dff=32, cross_attention=true", '2, None, 32, 0.1, "relu", 1e-5, false, true'
    )
    with pytest.raises(CompileError, match="no encoder output to attend to"):
        build(positional)
    assert build(source.replace("=true", "=false")).body.ops[0].attrs["cross_attention"] is False


def test_branches_merge() -> None:
    source = """
    network M { input: { a: (4,), b: (6,) } layers:
      a: { Dense(3) }
      b: { Dense(5) }
      Concatenate()
      Dense(1)
    }
    """
    net = build(source)
    concat = next(op for op in net.walk() if op.op == "nn.concatenate")
    assert [v.name for v in concat.operands] == ["dense", "dense_1"]
    assert str(concat.result.type) == "f32[N,8]"


def test_branch_errors() -> None:
    bad = """
    network M { input: { a: (4,), b: (6,) } layers:
      a: { Dense(3) }
      c: { Dense(5) }
      Concatenate()
    }
    """
    with pytest.raises(CompileError, match="branch 'c'"):
        build(bad)


def test_hpo_enumerates_shape_relevant_values_only() -> None:
    source = """
    network H { input: (10, 64) layers:
      TransformerEncoder(num_heads=HPO(choice(2, 4)), dff=64,
                         dropout_rate=HPO(range(0.1, 0.3, step=0.1))) * HPO(choice(1, 2))
    }
    """
    program = parse_text(source, "m.neural")
    assert [values for _, values in shape_hpos(program)] == [(2, 4), (1, 2)]
    result = check_program(program)
    assert result.trials_checked == 4
    layer = result.module.networks[0].body.ops[0].regions[0].ops[0]
    assert "hpo.range" in print_module(result.module)
    assert layer.attrs["num_heads"] == 2


@pytest.mark.parametrize("space", ["range(4, 16)", "log_range(4, 16)"])
def test_integer_ranges_are_checked_at_every_value_the_tuner_may_draw(space: str) -> None:
    """`tune` draws any integer of [4, 16] (suggest_int), so 5 must be checked, not only the
    end points."""
    program = parse_text(f"""
    network T {{ input: (10, 512) layers:
      TransformerEncoder(num_heads=HPO({space}), dff=64) }}
    """, "m.neural")
    assert [values for _, values in shape_hpos(program)] == [tuple(range(4, 17))]
    with pytest.raises(CompileError, match="num_heads=5 does not divide") as caught:
        check_program(program)
    assert "with the HPO combination 5" in caught.value.diagnostics[0].notes[-1]


def test_a_space_past_the_cap_is_covered_value_by_value_and_pair_by_pair() -> None:
    """8,192 combinations: the failing value sits in the first hyperparameter, which a prefix of
    the product would never have varied."""
    dense = "\n".join(["Dense(HPO(choice(8, 16, 32, 64)))"] * 6)
    source = f"""
    network H {{ input: (28, 28, 1) layers:
      Conv2D(8, HPO(choice((3, 3), (29, 29))))
      Flatten()
      {dense}
    }}
    """
    with pytest.raises(CompileError, match=r"window \(29, 29\) does not fit"):
        check_program(parse_text(source, "m.neural"))
    result = check_program(parse_text(source.replace("(29, 29)", "(5, 5)"), "m.neural"))
    assert result.trials_total == 8192 and result.trials_checked < 1024
    assert "every value of each hyperparameter, and 288 of 288 pairs" in result.warnings[-1].message


def test_covering_rows_cover_every_value_and_every_pair_within_budget() -> None:
    sizes = [2, 4, 4, 3, 5]
    rows, pairs_total, covered = covering_rows(sizes, budget=1000)
    assert pairs_total == covered == sum(
        sizes[a] * sizes[b] for a in range(5) for b in range(a + 1, 5))
    seen = {(a, r[a], b, r[b]) for r in rows for a in range(5) for b in range(a + 1, 5)}
    assert len(seen) == pairs_total and len(rows) < 2 * 4 * 4 * 3 * 5
    # A budget smaller than the widest parameter still shows every value once.
    rows, _, covered = covering_rows([300, 2], budget=10)
    assert {r[0] for r in rows} == set(range(300)) and {r[1] for r in rows} == {0, 1}
    assert covered < 600 and len(rows) == 300


def test_build_without_trial_keeps_hpo_and_counts_first_candidate() -> None:
    program = parse_text("network H { input: (8,) layers: Dense(HPO(choice(4, 8))) }", "m")
    _, built = build_module(program)
    assert built[0].params == 8 * 4 + 4


def test_devices_from_layer_and_execution() -> None:
    source = """
    network D { input: (8,) layers: Dense(4) @ "cuda:1" Dense(2)
      execution { device: "cpu" } }
    """
    result = check_program(parse_text(source, "m.neural"))
    rows = result.networks[0].rows
    assert [(r.name, r.device) for r in rows] == [("dense", "cuda:1"), ("dense_1", "cpu")]
    assert result.module.networks[0].body.ops[0].device == "cuda:1"


def test_unknown_training_setting_is_a_warning() -> None:
    source = "network W { input: (8,) layers: Dense(2) train { epochz: 3 } }"
    result = check_program(parse_text(source, "m.neural"))
    assert [w.severity for w in result.warnings] == ["warning"]
    assert "did you mean 'epochs'" in result.warnings[0].render()


def test_optimizer_forms() -> None:
    for text, name in [("Adam", "Adam"), ('"adam"', "Adam"),
                       ('"Adam(learning_rate=1e-4)"', "Adam"), ("SGD(momentum=0.9)", "SGD")]:
        source = f"network O {{ input: (8,) layers: Dense(2) optimizer: {text} }}"
        net = build(source)
        assert net.attrs["optimizer"].name == name  # type: ignore[union-attr]
    with pytest.raises(CompileError, match="unknown optimizer 'Adamm'"):
        build("network O { input: (8,) layers: Dense(2) optimizer: Adamm }")


def _module(net: Network):  # noqa: ANN202
    from neuralc.ir.core import Module

    return Module([net])


def test_residual_inside_repeated_macro_is_named_once() -> None:
    source = """
    define Block { ResidualConnection { Dense(8) } }
    network N { input: (8,) layers: Block() * 2 }
    """
    net = build(source)
    names = [op.name for op in net.walk() if op.op == "nn.dense"]
    assert names == ["block.residual_connection.dense"]
    unroll_network(net)
    names = [op.name for op in net.walk() if op.op == "nn.dense"]
    assert names == ["block.0.residual_connection.dense", "block.1.residual_connection.dense"]


def test_nested_repeats_unroll_completely() -> None:
    source = """
    define Block { Dense(8) * 2 }
    network N { input: (8,) layers: Block() * 3 }
    """
    net = build(source)
    unroll_network(net)
    assert not any(op.op == "nn.repeat" for op in net.walk())
    assert [op.name for op in net.body.ops[:2]] == ["block.0.dense.0", "block.0.dense.1"]
    assert len([op for op in net.walk() if op.op == "nn.dense"]) == 6


def test_a_range_wider_than_checking_tries_is_reported_as_such() -> None:
    """`tune` may draw any of 10**8 widths; checking tries the first 10,000 and says so."""
    program = parse_text("network T { input: (4,) layers: Dense(HPO(range(1, 100000000))) }",
                         "m.neural")
    result = check_program(program)
    assert result.trials_total == 100_000_000 and result.trials_checked == 10_000
    warning = result.warnings[-1]
    assert "the first 10,000 values" in warning.message
    assert "past the first 10,000 of a range" in warning.notes[0]


@pytest.mark.parametrize(("source", "message"), [
    ("network T { input: (99999999999999999999999, 4) layers: Dense(3) }",
     "input dimension 99999999999999999999999 does not fit in a 64-bit integer"),
    ("network T { input: (4,) layers: Dense(HPO(range(1, 100000000000000000000000))) }",
     "bound 100000000000000000000000 does not fit in a 64-bit integer"),
])
def test_integers_past_int64_are_errors_where_written(source: str, message: str) -> None:
    with pytest.raises(CompileError, match=message) as caught:
        check_program(parse_text(source, "m.neural"))
    loc = caught.value.diagnostics[0].loc
    assert loc is not None and source[loc.column - 1:].startswith(("9", "HPO"))
