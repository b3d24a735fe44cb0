"""The PyTorch backend on every registry layer: a small program per layer emits, passes ruff,
imports, loads the framework-neutral weight file (its keys are the module's state_dict keys),
and runs with the output shape the IR declares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network
from neuralc.layers import all_layers
from neuralc.lower.pytorch import TARGET, import_artifact
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import init_weights, network_weight_specs, save_weights

torch = pytest.importorskip("torch")


def _net(input_shape: str, *layers: str) -> str:
    body = "\n".join(f"    {layer}" for layer in layers)
    return f"network Probe {{\n  input: {input_shape}\n  layers:\n{body}\n}}\n"


_BRANCHES = """network Probe {{
  input: {{ a: (4,), b: (4,) }}
  layers:
    a: {{ Dense(3) }}
    b: {{ Dense(3, activation="tanh") }}
    {merge}
}}
"""

# One small program per layer (several for layers with notable options).
PROGRAMS: dict[str, list[str]] = {
    "Dense": [
        _net("(6,)", 'Dense(4, activation="relu")'),
        _net("(3, 6)", "Dense(4, use_bias=false)"),
    ],
    "Output": [_net("(6,)", 'Output(3, activation="softmax")')],
    "Dropout": [_net("(6,)", "Dropout(0.5)")],
    "Activation": [_net("(2, 6)", 'Activation("gelu")')],
    "Flatten": [_net("(3, 4, 2)", "Flatten()")],
    "Reshape": [_net("(12,)", "Reshape((3, -1))")],
    "Embedding": [_net("(5,)", "Embedding(20, 4)")],
    "Conv1D": [
        _net("(9, 3)", 'Conv1D(4, 3, strides=2, padding="same")'),
        _net("(9, 3)", "Conv1D(2, 2, dilation_rate=2, use_bias=false)"),
    ],
    "Conv2D": [
        _net("(7, 7, 2)", 'Conv2D(3, (3, 3), "relu", strides=(2, 2), padding="same")'),
        _net("(6, 5, 2)", "Conv2D(3, (2, 3))"),
    ],
    "Conv2DTranspose": [
        _net("(4, 5, 2)", 'Conv2DTranspose(3, 3, strides=2, padding="same")'),
        _net("(4, 5, 2)", "Conv2DTranspose(3, (2, 3), strides=(1, 2))"),
    ],
    "BatchNormalization": [
        _net("(5, 5, 3)", "BatchNormalization()"),
        _net("(4,)", "BatchNormalization(epsilon=0.01, scale=false)"),
        _net("(3, 4)", "BatchNormalization(center=false, scale=false)"),
    ],
    "LayerNormalization": [
        _net("(4, 6)", "LayerNormalization()"),
        _net("(6,)", "LayerNormalization(scale=false)"),
        _net("(6,)", "LayerNormalization(center=false)"),
    ],
    "MaxPooling1D": [_net("(9, 3)", 'MaxPooling1D(3, strides=2, padding="same")')],
    "MaxPooling2D": [_net("(7, 7, 2)", "MaxPooling2D((2, 2))")],
    "AveragePooling1D": [_net("(9, 3)", "AveragePooling1D(2)")],
    "AveragePooling2D": [
        _net("(7, 7, 2)", 'AveragePooling2D((3, 3), strides=(2, 2), padding="same")')
    ],
    "GlobalAveragePooling1D": [_net("(5, 3)", "GlobalAveragePooling1D()")],
    "GlobalAveragePooling2D": [_net("(4, 4, 3)", "GlobalAveragePooling2D(keepdims=true)")],
    "GlobalMaxPooling1D": [_net("(5, 3)", "GlobalMaxPooling1D()")],
    "GlobalMaxPooling2D": [_net("(4, 4, 3)", "GlobalMaxPooling2D()")],
    "UpSampling2D": [
        _net("(3, 4, 2)", "UpSampling2D((2, 3))"),
        _net("(3, 4, 2)", 'UpSampling2D(2, interpolation="bilinear")'),
    ],
    "ZeroPadding2D": [_net("(3, 4, 2)", "ZeroPadding2D((1, 2))")],
    "MultiHeadAttention": [
        _net("(5, 8)", "MultiHeadAttention(num_heads=2, key_dim=3)"),
        _net(
            "(5, 8)",
            "MultiHeadAttention(num_heads=2, key_dim=3, "
            "value_dim=2, use_bias=false, output_shape=(4,))",
        ),
    ],
    "TransformerEncoder": [
        _net("(5, 8)", "TransformerEncoder(num_heads=2, d_model=8, dff=16)"),
        _net(
            "(5, 8)", 'TransformerEncoder(num_heads=4, dff=8, activation="gelu", norm_first=true)'
        ),
    ],
    "TransformerDecoder": [
        _net("(5, 8)", "TransformerDecoder(num_heads=2, dff=16)"),
        _net(
            "(5, 8)",
            "TransformerEncoder(num_heads=2, dff=16)",
            "TransformerDecoder(num_heads=2, dff=16)",
        ),
    ],
    "LSTM": [_net("(5, 3)", "LSTM(4)"), _net("(5, 3)", "LSTM(4, return_sequences=true)")],
    "GRU": [_net("(5, 3)", "GRU(4, return_sequences=true, use_bias=false)")],
    "SimpleRNN": [_net("(5, 3)", 'SimpleRNN(4, activation="relu", dropout=0.2)')],
    "ResidualConnection": [
        _net("(6,)", "ResidualConnection { Dense(6) Dropout(0.1) }"),
        _net(
            "(6, 6, 4)",
            "ResidualConnection {",
            'Conv2D(8, (3, 3), strides=(2, 2), padding="same")',
            'Conv2D(8, (1, 1), strides=(2, 2), padding="same") }',
        ),
    ],
    "Add": [_BRANCHES.format(merge="Add()")],
    "Concatenate": [_BRANCHES.format(merge="Concatenate()")],
}

CASES = [(layer, i, src) for layer, srcs in PROGRAMS.items() for i, src in enumerate(srcs)]


def compile_net(src: str) -> Network:
    return check_program(parse_text(src, "probe.neural")).networks[0].network


def random_inputs(net: Network, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for value in net.inputs:
        shape = (batch, *(d if isinstance(d, int) else 3 for d in value.type.shape[1:]))
        if value.type.is_float:
            out[value.name] = rng.standard_normal(shape).astype(np.float32)
        else:
            out[value.name] = rng.integers(0, 20, shape).astype(np.int64)
    return out


def emit_to(net: Network, path: Path) -> Path:
    path.write_bytes(TARGET.emit(net, BuildOptions("probe.neural")))
    return path


def test_programs_cover_every_layer() -> None:
    assert {spec.name for spec in all_layers()} <= set(PROGRAMS)


@pytest.mark.parametrize(
    ("layer", "index", "src"), CASES, ids=[f"{layer}-{index}" for layer, index, _ in CASES]
)
def test_layer_emits_loads_and_runs(layer: str, index: int, src: str, tmp_path: Path) -> None:
    net = compile_net(src)
    artifact = emit_to(net, tmp_path / "probe.py")
    module = import_artifact(artifact)
    model = module.build_model()
    specs = network_weight_specs(net)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert state == {k: s.shape for k, s in specs.items()}
    weights = tmp_path / "w.safetensors"
    arrays = init_weights(net, 0)
    save_weights(weights, arrays)
    inputs = random_inputs(net)
    y = TARGET.predict(artifact, weights, inputs, "cpu")
    out_type = net.outputs[0].type
    assert y.dtype == np.float32
    assert y.shape == (2, *out_type.shape[1:])
    assert np.isfinite(y).all()
    # The loaded parameters are the file's, bit for bit.
    loaded = module.build_model(str(weights))
    for key, value in loaded.state_dict().items():
        np.testing.assert_array_equal(value.float().numpy(), arrays[key].reshape(value.shape))


def test_generated_code_is_ruff_clean(tmp_path: Path) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed")
    files = [
        emit_to(compile_net(src), tmp_path / f"{layer.lower()}_{i}.py") for layer, i, src in CASES
    ]
    check = subprocess.run(
        [
            str(ruff),
            "check",
            "--isolated",
            "--line-length",
            "100",
            "--select",
            "E,F,W,I,UP,B,SIM",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [str(ruff), "format", "--isolated", "--line-length", "100", "--check", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
