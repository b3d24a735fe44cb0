"""Shape rules against the frameworks: each Keras layer (channels-last) run on a small random
input, or its own shape arithmetic for many random window configurations; MultiHeadAttention's
weights against Keras; Transformer and recurrent outputs against torch (batch_first)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralc.ir.types import TensorType
from neuralc.layers import ShapeError, get_layer
from neuralc.layers.binding import bind

BATCH = 2


def f32(*dims: int) -> TensorType:
    return TensorType(("N", *dims), "f32")


def infer(name: str, args: list[tuple[str | None, Any]], *inputs: TensorType) -> tuple[Any, ...]:
    spec = get_layer(name)
    assert spec is not None
    out = spec.infer(bind(spec, args), list(inputs))
    return tuple(BATCH if d == "N" else d for d in out.shape)


KCase = tuple[str, list[tuple[str | None, Any]], list[tuple[int, ...]], Callable[[Any], Any]]

KERAS_CASES: list[KCase] = [
    ("Dense", [(None, 10)], [(7,)], lambda L: L.Dense(10)),
    ("Dense", [(None, 128)], [(28, 28)], lambda L: L.Dense(128)),
    ("Output", [(None, 10)], [(28, 28, 1)], lambda L: L.Dense(10)),
    ("Dropout", [(None, 0.5)], [(6, 3)], lambda L: L.Dropout(0.5)),
    ("Activation", [(None, "softmax")], [(6, 3)], lambda L: L.Activation("softmax")),
    ("Flatten", [], [(5, 4, 3)], lambda L: L.Flatten()),
    ("Flatten", [], [(5,)], lambda L: L.Flatten()),
    ("Reshape", [(None, (6, -1))], [(4, 3, 2)], lambda L: L.Reshape((6, -1))),
    ("Reshape", [("target_shape", (196, 768))], [(14, 14, 768)],
     lambda L: L.Reshape((196, 768))),
    ("Conv1D", [(None, 4), (None, 3)], [(10, 2)], lambda L: L.Conv1D(4, 3)),
    ("Conv1D", [(None, 4), (None, 3), ("strides", 2), ("padding", "same")], [(11, 2)],
     lambda L: L.Conv1D(4, 3, strides=2, padding="same")),
    ("Conv2D", [(None, 8), (None, (3, 3)), (None, "relu")], [(28, 28, 1)],
     lambda L: L.Conv2D(8, 3, activation="relu")),
    ("Conv2D", [(None, 4), ("kernel_size", (16, 16)), ("strides", 16)], [(64, 48, 3)],
     lambda L: L.Conv2D(4, 16, strides=16)),
    ("Conv2D", [(None, 4), (None, (3, 2)), ("dilation_rate", (2, 1)), ("padding", "same")],
     [(9, 7, 2)], lambda L: L.Conv2D(4, (3, 2), dilation_rate=(2, 1), padding="same")),
    ("Conv2DTranspose", [(None, 4), (None, 3), ("strides", 2)], [(5, 6, 2)],
     lambda L: L.Conv2DTranspose(4, 3, strides=2)),
    ("Conv2DTranspose", [(None, 4), (None, 3), ("strides", 2), ("padding", "same")],
     [(5, 6, 2)], lambda L: L.Conv2DTranspose(4, 3, strides=2, padding="same")),
    ("MaxPooling1D", [], [(9, 3)], lambda L: L.MaxPooling1D()),
    ("MaxPooling2D", [(None, (3, 3)), ("strides", (2, 2)), ("padding", "same")], [(9, 8, 3)],
     lambda L: L.MaxPooling2D(3, strides=2, padding="same")),
    ("AveragePooling1D", [(None, 3), ("strides", 1)], [(9, 3)],
     lambda L: L.AveragePooling1D(3, strides=1)),
    ("AveragePooling2D", [(None, (2, 3))], [(9, 8, 3)], lambda L: L.AveragePooling2D((2, 3))),
    ("GlobalAveragePooling1D", [], [(9, 3)], lambda L: L.GlobalAveragePooling1D()),
    ("GlobalAveragePooling2D", [("keepdims", True)], [(9, 8, 3)],
     lambda L: L.GlobalAveragePooling2D(keepdims=True)),
    ("GlobalMaxPooling1D", [("keepdims", True)], [(9, 3)],
     lambda L: L.GlobalMaxPooling1D(keepdims=True)),
    ("GlobalMaxPooling2D", [], [(9, 8, 3)], lambda L: L.GlobalMaxPooling2D()),
    ("UpSampling2D", [(None, (2, 3))], [(4, 5, 3)], lambda L: L.UpSampling2D((2, 3))),
    ("ZeroPadding2D", [(None, (1, 2))], [(4, 5, 3)], lambda L: L.ZeroPadding2D((1, 2))),
    ("BatchNormalization", [], [(4, 5, 3)], lambda L: L.BatchNormalization()),
    ("LayerNormalization", [], [(4, 6)], lambda L: L.LayerNormalization()),
    ("LSTM", [(None, 5)], [(7, 3)], lambda L: L.LSTM(5)),
    ("LSTM", [(None, 5), ("return_sequences", True)], [(7, 3)],
     lambda L: L.LSTM(5, return_sequences=True)),
    ("GRU", [(None, 5), ("return_sequences", True)], [(7, 3)],
     lambda L: L.GRU(5, return_sequences=True)),
    ("SimpleRNN", [(None, 5)], [(7, 3)], lambda L: L.SimpleRNN(5)),
    ("Add", [], [(4, 3), (4, 3)], lambda L: L.Add()),
    ("Concatenate", [], [(4, 3), (4, 5)], lambda L: L.Concatenate()),
    ("Concatenate", [("axis", 1)], [(4, 3), (2, 3)], lambda L: L.Concatenate(axis=1)),
]


def _kid(case: KCase) -> str:
    return f"{case[0]}({case[1]})-{case[2]}"


@pytest.mark.parametrize("case", KERAS_CASES, ids=[_kid(c) for c in KERAS_CASES])
def test_shape_matches_keras(case: KCase, keras: ModuleType) -> None:
    name, args, shapes, factory = case
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((BATCH, *s)).astype("float32") for s in shapes]
    layer = factory(keras.layers)
    out = layer(arrays) if len(arrays) > 1 else layer(arrays[0])
    assert infer(name, args, *(f32(*s) for s in shapes)) == tuple(out.shape)


def test_embedding_matches_keras(keras: ModuleType) -> None:
    ids = np.zeros((BATCH, 12), dtype="int64")
    out = keras.layers.Embedding(100, 8)(ids)
    assert infer("Embedding", [(None, 100), (None, 8)], TensorType(("N", 12), "i64")) == tuple(
        out.shape)


MHA_CASES = [
    ([("num_heads", 8), ("key_dim", 64)], (100, 128), {}),
    ([(None, 2), (None, 4), ("value_dim", 3), ("output_shape", 5), ("use_bias", False)],
     (10, 6), {"value_dim": 3, "output_shape": (5,), "use_bias": False}),
    ([(None, 3), (None, 5), ("dropout", 0.1)], (7, 12), {"dropout": 0.1}),
]


@pytest.mark.parametrize("args,shape,kwargs", MHA_CASES)
def test_multi_head_attention_matches_keras(args: list, shape: tuple[int, int],
                                            kwargs: dict, keras: ModuleType) -> None:
    spec = get_layer("MultiHeadAttention")
    assert spec is not None
    attrs = bind(spec, args)
    x = np.zeros((BATCH, *shape), dtype="float32")
    layer = keras.layers.MultiHeadAttention(attrs["num_heads"], attrs["key_dim"], **kwargs)
    out = layer(x, x)
    assert infer("MultiHeadAttention", args, f32(*shape)) == tuple(out.shape)
    keras_weights = {w.path.split("/", 1)[1].replace("/", "."): tuple(w.shape)
                     for w in layer.weights}
    ours = spec.weights(attrs, [f32(*shape)])
    assert {k: w.shape for k, w in ours.items()} == keras_weights
    assert spec.count_params(attrs, [f32(*shape)]) == layer.count_params()


def test_multi_head_attention_reference_count() -> None:
    spec = get_layer("MultiHeadAttention")
    assert spec is not None
    attrs = bind(spec, [("num_heads", 8), ("key_dim", 64)])
    assert spec.count_params(attrs, [f32(100, 128)]) == 263_808


TORCH_SEQ_CASES: list[tuple[str, list, Callable[[Any], Any]]] = [
    ("TransformerEncoder", [(None, 2), (None, 8), (None, 16)],
     lambda nn: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)),
    ("LSTM", [(None, 5), ("return_sequences", True)], lambda nn: nn.LSTM(8, 5, batch_first=True)),
    ("GRU", [(None, 5), ("return_sequences", True)], lambda nn: nn.GRU(8, 5, batch_first=True)),
    ("SimpleRNN", [(None, 5), ("return_sequences", True)],
     lambda nn: nn.RNN(8, 5, batch_first=True)),
]


@pytest.mark.parametrize("name,args,factory", TORCH_SEQ_CASES)
def test_sequence_shape_matches_torch(name: str, args: list, factory: Callable[[Any], Any],
                                      torch: ModuleType) -> None:
    out = factory(torch.nn)(torch.zeros(BATCH, 6, 8))
    out = out[0] if isinstance(out, tuple) else out
    assert infer(name, args, f32(6, 8)) == tuple(out.shape)


def test_decoder_cross_attention_shape_matches_torch(torch: ModuleType) -> None:
    layer = torch.nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)
    out = layer(torch.zeros(BATCH, 6, 8), torch.zeros(BATCH, 9, 8))
    args = [(None, 2), (None, 8), (None, 16), ("cross_attention", True)]
    assert infer("TransformerDecoder", args, f32(6, 8), f32(9, 8)) == tuple(out.shape)


# Window arithmetic, many configurations: Keras' own compute_output_shape is the oracle.

windows = st.tuples(
    st.integers(1, 40), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3),
    st.sampled_from(["valid", "same"]),
)


@settings(max_examples=60, deadline=None)
@given(windows)
def test_conv1d_arithmetic_matches_keras(keras: ModuleType, w: tuple) -> None:
    d, k, s, dil, padding = w
    dil = 1 if s > 1 else dil  # Keras (and the registry) reject strides > 1 with dilation > 1
    args = [(None, 4), (None, k), ("strides", s), ("dilation_rate", dil), ("padding", padding)]
    layer = keras.layers.Conv1D(4, k, strides=s, dilation_rate=dil, padding=padding)
    try:
        expected: tuple | None = tuple(layer.compute_output_shape((BATCH, d, 3)))
    except ValueError:
        expected = None
    if expected is None or expected[1] <= 0:
        with pytest.raises(ShapeError, match="does not fit"):
            infer("Conv1D", args, f32(d, 3))
    else:
        assert infer("Conv1D", args, f32(d, 3)) == expected


@settings(max_examples=60, deadline=None)
@given(windows, st.sampled_from(["MaxPooling2D", "AveragePooling2D"]))
def test_pool2d_arithmetic_matches_keras(keras: ModuleType, w: tuple, name: str) -> None:
    d, k, s, _, padding = w
    args = [(None, (k, 2)), ("strides", (s, 1)), ("padding", padding)]
    layer = getattr(keras.layers, name)((k, 2), strides=(s, 1), padding=padding)
    try:
        expected: tuple | None = tuple(layer.compute_output_shape((BATCH, d, 5, 3)))
    except ValueError:
        expected = None
    if expected is None or expected[1] <= 0:
        with pytest.raises(ShapeError, match="does not fit"):
            infer(name, args, f32(d, 5, 3))
    else:
        assert infer(name, args, f32(d, 5, 3)) == expected


@settings(max_examples=30, deadline=None)
@given(windows)
def test_conv2d_transpose_arithmetic_matches_keras(keras: ModuleType, w: tuple) -> None:
    d, k, s, _, padding = w
    args = [(None, 4), (None, (k, 1)), ("strides", (s, 1)), ("padding", padding)]
    layer = keras.layers.Conv2DTranspose(4, (k, 1), strides=(s, 1), padding=padding)
    expected = tuple(layer.compute_output_shape((BATCH, d, 5, 3)))
    assert infer("Conv2DTranspose", args, f32(d, 5, 3)) == expected
