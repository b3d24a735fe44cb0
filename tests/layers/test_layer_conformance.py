"""The conformance corpus' parameter totals and output shapes, by the registry's arithmetic alone.

Each network is written here as its layer sequence (the same layers as the `.neural` file) and
threaded through the shape rules by hand, independent of the frontend: a decoder after an
encoder stack cross-attends to the stack's output, as semantics.md decides.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from neuralc.ir.types import HPOAttr, TensorType
from neuralc.layers import ShapeError, get_layer
from neuralc.layers.binding import bind
from neuralc.layers.families import check_follows

Layer = tuple[str, list[tuple[str | None, Any]], int]  # name, args, repeat


def run(input_type: TensorType, layers: list[Layer]) -> tuple[TensorType, int]:
    x, memory, total = input_type, None, 0
    for name, args, repeat in layers:
        spec = get_layer(name)
        assert spec is not None
        for _ in range(repeat):
            attrs = bind(spec, args)
            inputs = [x]
            if name == "TransformerDecoder" and memory is not None:
                attrs["cross_attention"] = True
                inputs = [x, memory]
            x = spec.infer(attrs, inputs)
            total += spec.count_params(attrs, inputs)
            if name == "TransformerEncoder":
                memory = x
    return x, total


def f32(*dims: int | str) -> TensorType:
    return TensorType(("N", *dims), "f32")


def enc(heads: int, d: int, dff: int, n: int) -> Layer:
    return ("TransformerEncoder", [("num_heads", heads), ("d_model", d), ("dff", dff)], n)


def dec(heads: int, d: int, dff: int, n: int) -> Layer:
    return ("TransformerDecoder", [("num_heads", heads), ("d_model", d), ("dff", dff)], n)


GAP: Layer = ("GlobalAveragePooling1D", [], 1)


def out(units: int, name: str = "Output") -> Layer:
    return (name, [(None, units), ("activation", "softmax")], 1)


NETWORKS: dict[str, tuple[TensorType, list[Layer], tuple[int, ...], int]] = {
    "transformer_tf": (f32(512, 768), [enc(8, 768, 2048, 1), GAP, out(10)], (10,), 5_521_674),
    "transformer_pt": (f32(512, 768), [enc(8, 768, 2048, 6), GAP, out(10)], (10,), 33_091_594),
    "bert_encoder": (f32(512, 768), [enc(12, 768, 3072, 12), GAP, out(2)], (2,), 85_056_002),
    # 12 GPT blocks (7,087,872 each) + Dense(768 → 50257) (38,647,633).
    "gpt_decoder": (f32(1024, 768), [dec(12, 768, 3072, 12), out(50257, "Dense")],
                    (1024, 50257), 123_702_097),
    "vision_transformer": (
        f32(224, 224, 3),
        [("Conv2D", [(None, 768), ("kernel_size", (16, 16)), ("strides", 16),
                     ("padding", "valid")], 1),
         ("Reshape", [("target_shape", (196, 768))], 1),
         enc(12, 768, 3072, 12), GAP, out(1000, "Dense")],
        (1000,), 86_414_056),
    "seq2seq_fixed": (
        TensorType(("N", 100), "i64"),
        [("Embedding", [("input_dim", 10000), ("output_dim", 512)], 1),
         enc(8, 512, 2048, 6), dec(8, 512, 2048, 6), out(10000, "Dense")],
        (100, 10000), 54_388_496),
    "custom_attention": (
        f32(100, 128),
        [("MultiHeadAttention", [("num_heads", 8), ("key_dim", 64)], 1),
         ("LayerNormalization", [], 1), ("Dense", [(None, 512), ("activation", "relu")], 1),
         ("Dense", [(None, 128)], 1), ("LayerNormalization", [], 1),
         ("Dropout", [(None, 0.1)], 1), out(10)],
        (100, 10), 397_322),
    # upstream examples whose totals follow from the layers alone
    "mnist": (
        f32(28, 28, 1),
        [("Conv2D", [("filters", 32), ("kernel_size", (3, 3)), ("activation", "relu")], 1),
         ("MaxPooling2D", [("pool_size", (2, 2))], 1), ("Flatten", [], 1),
         ("Dense", [("units", 128), ("activation", "relu")], 1), ("Dropout", [("rate", 0.5)], 1),
         ("Output", [("units", 10), ("activation", "softmax")], 1)],
        (10,), 320 + 692_352 + 1_290),
    "tiny": (f32(28, 28, 1), [("Output", [(None, 10)], 1)], (28, 28, 10), 20),
    "macros": (f32(28, 28, 1), [("Conv2D", [(None, 32), (None, 3), ("activation", "relu")], 1),
                                ("BatchNormalization", [], 1), ("Dropout", [(None, 0.5)], 1)],
               (26, 26, 32), 320 + 64),
    "sentiment_fixed": (
        TensorType(("N", 100), "i64"),
        [("Embedding", [("input_dim", 10000), ("output_dim", 300)], 1),
         ("LSTM", [("units", 128), ("return_sequences", True)], 1), ("LSTM", [("units", 64)], 1),
         ("Dense", [("units", 32), ("activation", "relu")], 1), out(2)],
        (2,), 3_000_000 + 4 * (128 * 300 + 128 * 128 + 256) + 4 * (64 * 128 + 64 * 64 + 128)
        + (64 * 32 + 32) + (32 * 2 + 2)),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_total(name: str) -> None:
    input_type, layers, shape, expected = NETWORKS[name]
    result, total = run(input_type, layers)
    assert result.feature_shape == shape
    assert total == expected


def test_seq2seq_decoders_cross_attend() -> None:
    # 6 encoders at 3,152,384 and 6 decoders at 4,204,032: the cross-attention (+1,050,624)
    # and its LayerNorm (+1,024) are what the corpus total counts.
    _, encoder_only = run(f32(100, 512), [enc(8, 512, 2048, 1)])
    _, with_cross = run(f32(100, 512), [enc(8, 512, 2048, 1), dec(8, 512, 2048, 1)])
    assert encoder_only == 3_152_384
    assert with_cross - encoder_only == 4_204_032


def test_hpo_transformer_every_combination_is_shape_valid() -> None:
    spec = get_layer("TransformerEncoder")
    assert spec is not None
    attrs = bind(spec, [("num_heads", HPOAttr("choice", (8, 12, 16))), ("d_model", 768),
                        ("dff", HPOAttr("choice", (2048, 3072, 4096))),
                        ("dropout_rate", HPOAttr("range", (0.1, 0.3), (("step", 0.05),)))])
    for heads, dff in itertools.product((8, 12, 16), (2048, 3072, 4096)):
        concrete = {**attrs, "num_heads": heads, "dff": dff, "dropout_rate": 0.1}
        assert spec.infer(concrete, [f32(512, 768)]) == f32(512, 768)


@pytest.mark.parametrize("feature", [(100, 512), (100, 300)])
def test_embedding_on_float_features_suggests_token_ids(feature: tuple[int, int]) -> None:
    with pytest.raises(ShapeError) as info:
        run(f32(*feature), [("Embedding", [("input_dim", 10000), ("output_dim", 512)], 1)])
    assert "integer token ids" in info.value.message
    assert f"f32[N,{feature[0]},{feature[1]}]" in info.value.message
    assert info.value.note is not None and f"input: ({feature[0]},)" in info.value.note


def test_incompatible_layers_conv2d_after_dense_on_image() -> None:
    dense, conv = get_layer("Dense"), get_layer("Conv2D")
    dropout = get_layer("Dropout")
    assert dense is not None and conv is not None and dropout is not None
    image = f32(28, 28, 1)
    # Every shape fits (Dense acts per pixel) ...
    _, _ = run(image, [("Dense", [(None, 128)], 1), ("Conv2D", [(None, 32), (None, (3, 3))], 1)])
    # ... but the composition rule rejects it, also through a transparent layer.
    for chain in ([(dense, image)], [(dropout, f32(28, 28, 128)), (dense, image)]):
        with pytest.raises(ShapeError, match="Conv2D cannot follow Dense") as info:
            check_follows(conv, chain)
        assert info.value.note is not None and "(1, 1)" in info.value.note
    # Conv2D after an image-producing layer, and Dense on a non-image, are fine.
    check_follows(conv, [(conv, image)])
    check_follows(conv, [(dense, f32(784))])
    check_follows(get_layer("Flatten"), [(dense, image)])  # type: ignore[arg-type]
