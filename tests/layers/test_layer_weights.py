"""Every layer's weights equal the PyTorch module it stands for: state_dict names, shapes, and
the trainable parameter count. (MultiHeadAttention, laid out as Keras, is checked against Keras
in test_layer_shapes.py.)"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from neuralc.ir.types import TensorType
from neuralc.layers import all_layers, get_layer
from neuralc.layers.binding import bind


def f32(*dims: int | str) -> TensorType:
    return TensorType(("N", *dims), "f32")


def i64(*dims: int) -> TensorType:
    return TensorType(("N", *dims), "i64")


Factory = Callable[[Any], Any]  # torch.nn -> module
Case = tuple[str, list[tuple[str | None, Any]], list[TensorType], Factory]

CASES: list[Case] = [
    ("Dense", [(None, 10)], [f32(7)], lambda nn: nn.Linear(7, 10)),
    ("Dense", [(None, 16), ("use_bias", False)], [f32(5, 7)],
     lambda nn: nn.Linear(7, 16, bias=False)),
    ("Output", [(None, 10), (None, "softmax")], [f32(28, 28, 1)], lambda nn: nn.Linear(1, 10)),
    ("Embedding", [(None, 100), (None, 8)], [i64(12)], lambda nn: nn.Embedding(100, 8)),
    ("Conv1D", [(None, 6), (None, 3)], [f32(20, 4)], lambda nn: nn.Conv1d(4, 6, 3)),
    ("Conv1D", [(None, 6), (None, 5), ("use_bias", False), ("dilation_rate", 2)], [f32(20, 4)],
     lambda nn: nn.Conv1d(4, 6, 5, dilation=2, bias=False)),
    ("Conv2D", [(None, 32), (None, (3, 3))], [f32(28, 28, 1)], lambda nn: nn.Conv2d(1, 32, 3)),
    ("Conv2D", [(None, 8), (None, (3, 5)), ("strides", 2), ("use_bias", False)],
     [f32(16, 16, 3)], lambda nn: nn.Conv2d(3, 8, (3, 5), stride=2, bias=False)),
    ("Conv2D", [(None, 768), ("kernel_size", (16, 16)), ("strides", 16)], [f32(224, 224, 3)],
     lambda nn: nn.Conv2d(3, 768, 16, stride=16)),
    ("Conv2DTranspose", [(None, 5), (None, (2, 3)), ("strides", 2)], [f32(8, 8, 3)],
     lambda nn: nn.ConvTranspose2d(3, 5, (2, 3), stride=2)),
    ("BatchNormalization", [], [f32(26, 26, 32)], lambda nn: nn.BatchNorm2d(32)),
    ("BatchNormalization", [], [f32(64)], lambda nn: nn.BatchNorm1d(64)),
    ("BatchNormalization", [("center", False), ("scale", False)], [f32(10, 6)],
     lambda nn: nn.BatchNorm1d(6, affine=False)),
    ("LayerNormalization", [], [f32(100, 128)], lambda nn: nn.LayerNorm(128)),
    ("LayerNormalization", [("center", False)], [f32(9)], lambda nn: nn.LayerNorm(9, bias=False)),
    ("LayerNormalization", [("center", False), ("scale", False)], [f32(9)],
     lambda nn: nn.LayerNorm(9, elementwise_affine=False)),
    ("TransformerEncoder", [("num_heads", 8), ("d_model", 768), ("dff", 2048)], [f32(16, 768)],
     lambda nn: nn.TransformerEncoderLayer(768, 8, 2048, batch_first=True)),
    ("TransformerEncoder", [(None, 2), ("ff_dim", 32)], [f32(5, 16)],
     lambda nn: nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)),
    # Decoder-only: a self-attention block, i.e. an encoder layer run with a causal mask.
    ("TransformerDecoder", [(None, 4), (None, 32), (None, 64)], [f32(10, 32)],
     lambda nn: nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)),
    ("TransformerDecoder", [(None, 4), (None, 32), (None, 64), ("cross_attention", True)],
     [f32(10, 32), f32(7, 32)],
     lambda nn: nn.TransformerDecoderLayer(32, 4, 64, batch_first=True)),
    ("TransformerDecoder", [(None, 8), (None, 512), (None, 2048), ("cross_attention", True)],
     [f32(100, 512), f32(100, 512)],
     lambda nn: nn.TransformerDecoderLayer(512, 8, 2048, batch_first=True)),
    ("LSTM", [(None, 128), ("return_sequences", True)], [f32(100, 300)],
     lambda nn: nn.LSTM(300, 128, batch_first=True)),
    ("LSTM", [(None, 8), ("use_bias", False)], [f32(5, 3)],
     lambda nn: nn.LSTM(3, 8, bias=False, batch_first=True)),
    ("GRU", [(None, 16)], [f32(5, 3)], lambda nn: nn.GRU(3, 16, batch_first=True)),
    ("SimpleRNN", [(None, 16), ("activation", "relu")], [f32(5, 3)],
     lambda nn: nn.RNN(3, 16, nonlinearity="relu", batch_first=True)),
    ("SimpleRNN", [(None, 4), ("use_bias", False)], [f32(5, 3)],
     lambda nn: nn.RNN(3, 4, bias=False, batch_first=True)),
    # Layers without weights: the matching torch module has an empty state_dict too.
    ("Dropout", [(None, 0.5)], [f32(8)], lambda nn: nn.Dropout(0.5)),
    ("Activation", [(None, "relu")], [f32(8)], lambda nn: nn.ReLU()),
    ("Flatten", [], [f32(4, 4, 2)], lambda nn: nn.Flatten()),
    ("Reshape", [(None, (8, 4))], [f32(4, 4, 2)], lambda nn: nn.Identity()),
    ("MaxPooling1D", [], [f32(8, 2)], lambda nn: nn.MaxPool1d(2)),
    ("MaxPooling2D", [], [f32(8, 8, 2)], lambda nn: nn.MaxPool2d(2)),
    ("AveragePooling1D", [], [f32(8, 2)], lambda nn: nn.AvgPool1d(2)),
    ("AveragePooling2D", [], [f32(8, 8, 2)], lambda nn: nn.AvgPool2d(2)),
    ("GlobalAveragePooling1D", [], [f32(8, 2)], lambda nn: nn.AdaptiveAvgPool1d(1)),
    ("GlobalAveragePooling2D", [], [f32(8, 8, 2)], lambda nn: nn.AdaptiveAvgPool2d(1)),
    ("GlobalMaxPooling1D", [], [f32(8, 2)], lambda nn: nn.AdaptiveMaxPool1d(1)),
    ("GlobalMaxPooling2D", [], [f32(8, 8, 2)], lambda nn: nn.AdaptiveMaxPool2d(1)),
    ("UpSampling2D", [], [f32(8, 8, 2)], lambda nn: nn.Upsample(scale_factor=2)),
    ("ZeroPadding2D", [], [f32(8, 8, 2)], lambda nn: nn.ZeroPad2d(1)),
    ("Add", [], [f32(8), f32(8)], lambda nn: nn.Identity()),
    ("Concatenate", [], [f32(8), f32(4)], lambda nn: nn.Identity()),
    ("ResidualConnection", [], [f32(8), f32(8)], lambda nn: nn.Identity()),
]

KNOWN_INITS = {"kaiming_uniform", "linear_bias", "xavier_uniform", "glorot_uniform",
               "rnn_uniform", "normal", "zeros", "ones"}


def _id(case: Case) -> str:
    name, args, inputs, _ = case
    return f"{name}({args})-{inputs[0]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_weights_match_torch(case: Case, torch: ModuleType) -> None:
    name, args, inputs, factory = case
    spec = get_layer(name)
    assert spec is not None
    attrs = bind(spec, args)
    spec.infer(attrs, inputs)  # the configuration is valid
    module = factory(torch.nn)
    weights = spec.weights(attrs, inputs)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert {k: w.shape for k, w in weights.items()} == expected
    trainable = {k for k, p in module.named_parameters()}
    assert {k for k, w in weights.items() if w.trainable} == trainable
    assert spec.count_params(attrs, inputs) == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_weight_inits_are_known(case: Case) -> None:
    name, args, inputs, _ = case
    spec = get_layer(name)
    assert spec is not None
    for weight_name, w in spec.weights(bind(spec, args), inputs).items():
        assert w.init in KNOWN_INITS, (name, weight_name, w.init)
        if w.init in ("kaiming_uniform", "linear_bias", "xavier_uniform", "rnn_uniform"):
            assert w.fan_in, (name, weight_name)


def test_transformer_encoder_reference_count() -> None:
    spec = get_layer("TransformerEncoder")
    assert spec is not None
    attrs = bind(spec, [("num_heads", 8), ("d_model", 768), ("dff", 2048)])
    assert spec.count_params(attrs, [f32(512, 768)]) == 5_513_984


def test_every_layer_is_checked_against_a_framework() -> None:
    checked = {case[0] for case in CASES} | {"MultiHeadAttention"}  # MHA: vs Keras
    assert checked == {spec.name for spec in all_layers()}


def test_registry_does_not_import_frameworks() -> None:
    import subprocess
    import sys

    code = ("import sys, neuralc.layers as L, neuralc.layers.binding, neuralc.docs_gen;"
            "L.all_layers(); bad = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'tensorflow', 'keras', 'triton')]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
