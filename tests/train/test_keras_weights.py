"""Keras-trained weights in the framework-neutral format: the inverse weight converters
(`neuralc.lower.keras.inverses.neutral_weights`) undo the forward ones exactly, and
`neuralc run --target tensorflow` writes `weights.safetensors` with `neuralc init`'s keys and
shapes, which the PyTorch backend loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from train_testlib import RunCli, Writer, model_text

from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import load_weights, network_weight_specs, save_weights

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _program(inputs: str, *layers: str) -> str:
    body = "\n".join(f"    {line}" for line in layers)
    return f"network Test {{\n  input: {inputs}\n  layers:\n{body}\n}}\n"


PROGRAMS = {
    "conv": _program(
        "(6, 6, 2)", 'Conv2D(3, 3, padding="same", activation="relu")',
        "BatchNormalization(epsilon=0.01)", "Conv2DTranspose(2, 3, strides=2)",
        "BatchNormalization(center=false)", "Flatten()",
        'Dense(4, activation="relu")', "Dense(3, use_bias=false)",
        'Output(2, activation="softmax")'),
    "sequence": _program(
        "(5, 4)", "LSTM(4, return_sequences=true)", "GRU(6, return_sequences=true)",
        "SimpleRNN(4, return_sequences=true)", "LSTM(4, use_bias=false, return_sequences=true)",
        "TransformerEncoder(num_heads=2, dff=8)", "MultiHeadAttention(num_heads=2, key_dim=3)",
        "LayerNormalization()", "GRU(3)"),
    "tokens": _program(
        "(6,)", "Embedding(input_dim=9, output_dim=8)",
        "TransformerEncoder(num_heads=2, dff=16, norm_first=true)", "GlobalAveragePooling1D()",
        "Output(2)"),
}


def _network(src: str) -> Network:
    return check_program(parse_text(src, "model.neural")).networks[0].network


def _random_weights(net: Network) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for key, spec in network_weight_specs(net).items():
        if key.endswith("num_batches_tracked"):
            array = np.zeros(spec.shape)
        elif key.endswith("running_var"):
            array = rng.uniform(0.5, 1.5, spec.shape)
        else:
            array = rng.normal(0.0, 0.5, spec.shape)
        out[key] = array.astype(np.float32)
    return out


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_neutral_to_keras_to_neutral_round_trips(name: str, tmp_path: Path) -> None:
    from neuralc.lower.keras import TARGET, load_artifact
    from neuralc.lower.keras.inverses import neutral_weights

    net = _network(PROGRAMS[name])
    weights = _random_weights(net)
    path = tmp_path / "w.safetensors"
    save_weights(path, weights)
    artifact = tmp_path / f"{name}_keras.py"
    artifact.write_bytes(TARGET.emit(net, BuildOptions("model.neural")))
    module = load_artifact(artifact)
    saved = neutral_weights(module.build_model(str(path)), module.CONVERTERS)
    specs = network_weight_specs(net)
    assert {k: v.shape for k, v in saved.items()} == {k: tuple(s.shape) for k, s in specs.items()}
    for key, array in weights.items():
        if key.endswith(("bias_ih_l0", "bias_hh_l0")) and "gru" not in key:
            continue  # LSTM / SimpleRNN: only b_ih + b_hh is identifiable (checked below)
        np.testing.assert_array_equal(saved[key], array, err_msg=key)
    fused = [k for k in weights if k.endswith("bias_ih_l0") and "gru" not in k]
    if name == "sequence":
        assert fused  # the LSTM / SimpleRNN convention is exercised
    for key in fused:
        hh = key.replace("bias_ih_l0", "bias_hh_l0")
        assert not saved[hh].any()  # the documented convention: b_hh = 0, b_ih = the sum
        np.testing.assert_allclose(saved[key], weights[key] + weights[hh], rtol=1e-6)


def test_keras_training_writes_neutral_weights_pytorch_loads(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    train = 'epochs: 1\n    batch_size: 16\n    checkpoint_path: "ck.safetensors"'
    model = write("m.neural", model_text(train=train))
    out = tmp_path / "run"
    code, err = run_cli(
        "run", model, "--synthetic", 32, "--target", "tensorflow", "--output-dir", out
    )
    assert code == 0, err
    saved = load_weights(out / "weights.safetensors")
    net = _network(model.read_text())
    specs = network_weight_specs(net)
    assert {k: v.shape for k, v in saved.items()} == {k: tuple(s.shape) for k, s in specs.items()}
    from safetensors.numpy import load_file

    checkpoint = load_file(out / "ck.safetensors")  # the neutral keys, as torch's checkpoints
    neutral = {k[len("model."):]: v for k, v in checkpoint.items() if k.startswith("model.")}
    assert set(neutral) == set(specs)
    for key, array in saved.items():
        np.testing.assert_array_equal(neutral[key], array, err_msg=key)
    initial = load_weights(out / "initial.safetensors")
    assert any(not np.array_equal(saved[k], initial[k]) for k in saved)  # it trained
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32))
    code, err = run_cli(
        "predict", model, "--target", "pytorch", "--weights", out / "weights.safetensors",
        "--input", x, "-o", tmp_path / "y.npy",
    )
    assert code == 0, err
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 3) and np.allclose(y.sum(-1), 1.0, atol=1e-5)
