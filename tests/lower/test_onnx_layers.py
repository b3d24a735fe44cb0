"""Every layer of the registry through the ONNX backend: the model is valid (full check), ONNX
Runtime runs it at two batch sizes, and it computes what the PyTorch backend computes (or, while
that backend is missing, the torch reference in test_onnx_reference.py) on the same weights.

Both oracles are used when the PyTorch backend exists; NEURALC_ONNX_ORACLE=reference skips it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from test_onnx_reference import Reference, perturbed

from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network
from neuralc.layers import all_layers
from neuralc.lower.onnx_backend.emitter import build_model
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import init_weights, save_weights

ATOL = RTOL = 1e-4


def network(src: str) -> Network:
    return check_program(parse_text(src, "model.neural")).networks[0].network


def program(inputs: str, layers: str) -> str:
    return f"network Test {{\n  input: {inputs}\n  layers:\n    {layers}\n}}\n"


def random_inputs(
    model: onnx.ModelProto, batch: int, seed: int = 0, vocab: int = 10
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.input:
        t = value.type.tensor_type
        shape = [batch if d.dim_param == "N" else (d.dim_value or 5) for d in t.shape.dim]
        if t.elem_type == onnx.TensorProto.INT64:
            feeds[value.name] = rng.integers(0, vocab, size=shape, dtype=np.int64)
        else:
            feeds[value.name] = rng.normal(size=shape).astype(np.float32)
    return feeds


def _pytorch_backend() -> Any:
    """The PyTorch target, unless NEURALC_ONNX_ORACLE=reference (or it is not there)."""
    if os.environ.get("NEURALC_ONNX_ORACLE") == "reference":
        return None
    if importlib.util.find_spec("neuralc.lower.pytorch") is None:
        return None
    try:
        from neuralc.lower.pytorch import TARGET
    except (ImportError, AttributeError):
        return None
    return TARGET


def oracles(
    net: Network, weights: dict[str, np.ndarray], feeds: dict[str, np.ndarray], tmp: Path
) -> dict[str, np.ndarray]:
    """What the network computes: the torch reference's answer, and the PyTorch backend's when
    that backend exists."""
    out = {"reference": Reference(weights).multi(net, feeds)}
    target = _pytorch_backend()
    if target is not None:
        wpath = tmp / "weights.safetensors"
        save_weights(wpath, weights)
        artifact = tmp / f"model{target.suffix}"
        artifact.write_bytes(target.emit(net, BuildOptions("model.neural", weights=wpath)))
        out["pytorch backend"] = target.predict(artifact, wpath, feeds, "cpu")
    return out


def check_layer(
    src: str, tmp: Path, vocab: int = 10, opset: int = 18, batches: tuple[int, ...] = (1, 3)
) -> onnx.ModelProto:
    net = network(src)
    weights = perturbed(init_weights(net, seed=0))
    model = build_model(net, BuildOptions("model.neural", opset=opset), weights)
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in batches:
        feeds = random_inputs(model, batch, seed=batch, vocab=vocab)
        (got,) = sess.run(None, feeds)
        assert got.dtype == np.float32
        for oracle, want in oracles(net, weights, feeds, tmp).items():
            assert got.shape == want.shape, oracle
            np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL, err_msg=oracle)
    return model


# One or more programs per registry layer: (layer, input, layers).
CASES: list[tuple[str, str, str]] = [
    ("Dense", "(8,)", 'Dense(6, activation="relu")'),
    ("Dense", "(5, 8)", "Dense(4, use_bias=false)"),
    ("Dense", "(None, None, 8)", 'Dense(4, activation="softmax")'),
    ("Output", "(8,)", 'Output(3, activation="softmax")'),
    ("Output", "(4, 8)", 'Output(3, activation="log_softmax")'),
    ("Dropout", "(8,)", "Dense(6)\n    Dropout(0.5)"),
    ("Dropout", "(8,)", "Dropout(0.5)"),
    ("Flatten", "(6, 6, 2)", 'Conv2D(3, (3, 3), "relu")\n    Flatten()\n    Dense(4)'),
    ("Flatten", "(3, 4)", "Flatten()"),
    ("Reshape", "(12,)", "Reshape((3, 4))"),
    ("Reshape", "(4, 6)", "Reshape((-1, 3))\n    Dense(2)"),
    ("Embedding", "(7,)", "Embedding(50, 8)"),
    ("BatchNormalization", "(8,)", "Dense(6)\n    BatchNormalization()"),
    ("BatchNormalization", "(6, 6, 2)", "Conv2D(3, (3, 3))\n    BatchNormalization()"),
    ("BatchNormalization", "(5, 4)", "BatchNormalization(epsilon=0.01, scale=false)"),
    ("BatchNormalization", "(5, 5, 3)", "BatchNormalization(center=false)"),
    ("LayerNormalization", "(5, 8)", "LayerNormalization(epsilon=1e-5)"),
    ("LayerNormalization", "(8,)", "LayerNormalization(center=false, scale=false)"),
    ("Conv1D", "(9, 3)", 'Conv1D(4, 3, padding="same", strides=2)'),
    ("Conv1D", "(9, 3)", "Conv1D(4, 3, dilation_rate=2, use_bias=false)"),
    (
        "Conv1D",
        "(None, None, 3)",
        'Conv1D(4, 3, padding="same", strides=2)\n'
        '    MaxPooling1D(2, padding="same")\n    GlobalAveragePooling1D()',
    ),
    ("Conv2D", "(7, 9, 3)", 'Conv2D(4, (3, 3), "relu", strides=(2, 2), padding="same")'),
    ("Conv2D", "(7, 9, 3)", 'Conv2D(4, (2, 3), padding="same", dilation_rate=(2, 1))'),
    ("Conv2D", "(7, 9, 3)", 'Conv2D(4, 4, "tanh", strides=3)'),
    ("Conv2DTranspose", "(4, 5, 3)", 'Conv2DTranspose(2, 3, strides=2, padding="same")'),
    ("Conv2DTranspose", "(4, 5, 3)", 'Conv2DTranspose(2, 1, strides=2, padding="same")'),
    ("Conv2DTranspose", "(4, 5, 3)", 'Conv2DTranspose(2, (2, 3), "relu", strides=(1, 2))'),
    # valid with a kernel shorter than the stride: Keras' (d-1)*s + max(k, s) needs output_padding
    ("Conv2DTranspose", "(4, 5, 3)", "Conv2DTranspose(2, (1, 2), strides=(3, 3))"),
    ("MaxPooling1D", "(9, 3)", 'MaxPooling1D(2, padding="same")'),
    ("MaxPooling2D", "(7, 9, 3)", "MaxPooling2D((2, 2))"),
    ("MaxPooling2D", "(7, 9, 3)", 'MaxPooling2D((3, 3), strides=(2, 2), padding="same")'),
    ("AveragePooling1D", "(9, 3)", 'AveragePooling1D(3, strides=2, padding="same")'),
    ("AveragePooling2D", "(7, 9, 3)", 'AveragePooling2D((3, 3), strides=(2, 2), padding="same")'),
    ("AveragePooling2D", "(7, 9, 3)", "AveragePooling2D((2, 2))"),
    ("GlobalAveragePooling1D", "(6, 4)", "GlobalAveragePooling1D()"),
    (
        "GlobalAveragePooling2D",
        "(5, 5, 3)",
        'Conv2D(4, 3, padding="same")\n    GlobalAveragePooling2D(keepdims=true)',
    ),
    ("GlobalMaxPooling1D", "(6, 4)", "GlobalMaxPooling1D(keepdims=true)"),
    ("GlobalMaxPooling2D", "(5, 5, 3)", "Conv2D(4, 3)\n    GlobalMaxPooling2D()"),
    ("UpSampling2D", "(3, 4, 2)", "UpSampling2D((2, 3))"),
    ("UpSampling2D", "(3, 4, 2)", 'Conv2D(2, 1)\n    UpSampling2D(2, interpolation="bilinear")'),
    ("ZeroPadding2D", "(3, 4, 2)", "ZeroPadding2D((1, 2))\n    Conv2D(2, 3)\n    ZeroPadding2D(1)"),
    ("LSTM", "(6, 4)", "LSTM(5, return_sequences=true)"),
    ("LSTM", "(6, 4)", "LSTM(5)"),
    ("LSTM", "(None, None, 4)", "LSTM(5, return_sequences=true)\n    LSTM(3)"),
    ("GRU", "(6, 4)", "GRU(5, return_sequences=true)"),
    ("GRU", "(6, 4)", "GRU(5, use_bias=false)"),
    ("SimpleRNN", "(6, 4)", 'SimpleRNN(5, activation="relu", return_sequences=true)'),
    ("SimpleRNN", "(6, 4)", "SimpleRNN(5)"),
    ("MultiHeadAttention", "(5, 8)", "MultiHeadAttention(num_heads=2, key_dim=3)"),
    (
        "MultiHeadAttention",
        "(5, 8)",
        "MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4, "
        "use_bias=false, output_shape=(2, 3))",
    ),
    ("TransformerEncoder", "(5, 8)", "TransformerEncoder(num_heads=2, dff=16)"),
    (
        "TransformerEncoder",
        "(None, None, 8)",
        "TransformerEncoder(num_heads=4, dff=16, "
        'activation="gelu", norm_first=true, layer_norm_eps=1e-3)',
    ),
    ("TransformerDecoder", "(5, 8)", "TransformerDecoder(num_heads=2, dff=16) * 2"),
    (
        "TransformerDecoder",
        "(None, None, 8)",
        "TransformerDecoder(num_heads=2, dff=16, norm_first=true)",
    ),
    (
        "TransformerDecoder",
        "(6,)",
        "Embedding(20, 8)\n    TransformerEncoder(num_heads=2, "
        "dff=16)\n    TransformerDecoder(num_heads=2, dff=16) * 2\n    Dense(3)",
    ),
    (
        "ResidualConnection",
        "(8,)",
        'ResidualConnection {\n      Dense(8, activation="relu")\n      Dense(8)\n    }',
    ),
    (
        "ResidualConnection",
        "(6, 6, 4)",
        "ResidualConnection {\n      Conv2D(8, 3, strides=2, "
        'padding="same")\n      BatchNormalization()\n      Conv2D(8, 1, strides=2)\n    }',
    ),
]

MULTI_INPUT: list[tuple[str, str, str]] = [
    ("Add", "{ a: (6,), b: (4,) }", "a: { Dense(5) }\n    b: { Dense(5) }\n    Add()"),
    (
        "Add",
        "{ a: (6, 6, 2), b: (6, 6, 3) }",
        'a: { Conv2D(4, 3, padding="same") }\n    b: { Conv2D(4, 1) }\n    Add()\n    Flatten()',
    ),
    (
        "Concatenate",
        "{ a: (6,), b: (4,) }",
        "a: { Dense(5) }\n    b: { Dense(2) }\n    Concatenate()",
    ),
    (
        "Concatenate",
        "{ a: (6, 6, 2), b: (6, 6, 3) }",
        'a: { Conv2D(4, 3, padding="same") }\n'
        "    b: { MaxPooling2D(1) }\n    Concatenate(axis=-1)\n    Conv2D(2, 1)",
    ),
    (
        "Concatenate",
        "{ a: (4, 3), b: (5, 3) }",
        "a: { Dense(3) }\n    b: { Dense(3) }\n    Concatenate(axis=1)",
    ),
]

ACTIVATIONS = [
    "linear",
    "relu",
    "gelu",
    "tanh",
    "sigmoid",
    "softmax",
    "elu",
    "selu",
    "leaky_relu",
    "swish",
    "silu",
    "softplus",
    "softsign",
    "hard_sigmoid",
    "log_softmax",
]


def _case_id(case: tuple[str, str, str]) -> str:
    return f"{case[0]}-{case[2].splitlines()[0][:40]}"


@pytest.mark.parametrize("case", CASES + MULTI_INPUT, ids=_case_id)
def test_layer_matches_reference(case: tuple[str, str, str], tmp_path: Path) -> None:
    _, inputs, layers = case
    check_layer(program(inputs, layers), tmp_path, vocab=20)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_reference(name: str, tmp_path: Path) -> None:
    check_layer(program("(3, 6)", f'Activation("{name}")'), tmp_path, batches=(2,))
    check_layer(program("(6,)", f'Dense(4, activation="{name}")'), tmp_path, batches=(2,))


def test_every_registry_layer_has_a_case() -> None:
    covered = {case[0] for case in CASES + MULTI_INPUT} | {"Activation"}
    assert {spec.name for spec in all_layers()} <= covered


def test_channels_first_runs_transpose_once(tmp_path: Path) -> None:
    """Conv → BN → pool → conv stays channels-first: one Transpose in, one out."""
    model = check_layer(
        program(
            "(8, 8, 3)",
            'Conv2D(4, 3, "relu", padding="same")\n'
            "    BatchNormalization()\n    MaxPooling2D(2)\n"
            "    Conv2D(2, 3)\n    Flatten()",
        ),
        tmp_path,
        batches=(2,),
    )
    transposes = [n for n in model.graph.node if n.op_type == "Transpose"]
    assert len(transposes) == 2


OPSET_SENSITIVE = [c for c in CASES if c[0].startswith(("MultiHead", "Transformer"))] + [
    ("Activation", "(3, 6)", 'Activation("gelu")'),
    ("GlobalMaxPooling1D", "(6, 4)", "GlobalMaxPooling1D()"),
]


@pytest.mark.parametrize("opset", [17, 23])
@pytest.mark.parametrize("case", OPSET_SENSITIVE, ids=_case_id)
def test_opset_sensitive_lowerings(case: tuple[str, str, str], opset: int, tmp_path: Path) -> None:
    """Lowerings that change with the opset (Attention at 23, Gelu at 20, Reduce* axes at 18)."""
    _, inputs, layers = case
    check_layer(program(inputs, layers), tmp_path, vocab=20, opset=opset, batches=(2,))
