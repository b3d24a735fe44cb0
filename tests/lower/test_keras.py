"""The TensorFlow/Keras backend: every registry layer emits, imports, loads the framework-neutral
weight file and computes what the PyTorch backend computes (max abs diff 1e-4, float32).

TensorFlow is slow to build models on small machines, so the layers are grouped into a few small
programs (tiny dims); `test_programs_cover_every_layer` keeps the grouping honest.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralc.diagnostics import CompileError, SourceLocation
from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network, Operation
from neuralc.ir.types import HPOAttr, TensorType
from neuralc.layers import all_layers
from neuralc.lower.keras import TARGET, load_artifact
from neuralc.lower.keras.layers import LOWERINGS, STRUCTURAL, TARGET_NAME
from neuralc.lower.target import BuildOptions, get_target
from neuralc.lower.weights import network_weight_specs, save_weights

ATOL = 1e-4
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def program(inputs: str, *layers: str, name: str = "Test") -> str:
    body = "\n".join(f"    {line}" for line in layers)
    return f"network {name} {{\n  input: {inputs}\n  layers:\n{body}\n}}\n"


def network(src: str) -> Network:
    return check_program(parse_text(src, "model.neural")).networks[0].network


def random_weights(net: Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Torch-layout weights of the registry's shapes, drawn so that every tensor matters (gammas
    and biases away from 1 and 0, positive running variances)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, spec in network_weight_specs(net).items():
        if key.endswith("running_var"):
            array = rng.uniform(0.5, 1.5, spec.shape)
        elif key.endswith("num_batches_tracked"):
            array = np.zeros(spec.shape)
        else:
            array = rng.normal(0.0, 0.5, spec.shape)
        out[key] = array.astype(np.float32)
    return out


def random_inputs(net: Network, batch: int = 2, seed: int = 1,
                  vocab: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in net.inputs:
        shape = [batch, *(d if isinstance(d, int) else 5 for d in value.type.shape[1:])]
        if value.type.dtype == "i64":
            feeds[value.name] = rng.integers(0, vocab, size=shape, dtype=np.int64)
        else:
            feeds[value.name] = rng.normal(size=shape).astype(np.float32)
    return feeds


def build(src: str, tmp: Path, seed: int = 0) -> tuple[Network, Path, Path]:
    """Emit the Keras module of `src` and a weight file for it into `tmp`."""
    net = network(src)
    artifact = tmp / "model_keras.py"
    artifact.write_bytes(TARGET.emit(net, BuildOptions("model.neural")))
    weights = tmp / "weights.safetensors"
    save_weights(weights, random_weights(net, seed))
    return net, artifact, weights


def pytorch_output(net: Network, weights: Path, feeds: dict[str, np.ndarray],
                   tmp: Path) -> np.ndarray:
    target = get_target("pytorch")
    artifact = tmp / "model_torch.py"
    artifact.write_bytes(target.emit(net, BuildOptions("model.neural")))
    return target.predict(artifact, weights, feeds, "cpu")


# Every layer against the PyTorch backend -------------------------------------------------------

RESIDUAL = """ResidualConnection {
      Conv2D(4, 3, padding="same", activation="relu")
      Conv2D(4, 3, padding="same")
    }"""
PROJECTED = """ResidualConnection {
      Conv2D(6, 3, strides=2, padding="same", activation="relu")
      Conv2D(6, 3, padding="same")
      Conv2D(6, 1, strides=2, padding="same")
    }"""

PROGRAMS: dict[str, str] = {
    "dense_activations": program(
        "(6,)", 'Dense(5, activation="gelu")', 'Dense(4, activation="leaky_relu", use_bias=false)',
        "Dropout(0.3)", 'Activation("elu")', 'Dense(6, activation="selu")',
        'Dense(6, activation="swish")', 'Activation("softplus")', 'Activation("softsign")',
        'Activation("hard_sigmoid")', 'Dense(5, activation="tanh")', 'Activation("sigmoid")',
        'Dense(4, activation="silu")', 'Output(3, activation="log_softmax")'),
    "dense_last_axis": program(
        "(3, 4, 2)", 'Dense(5, activation="relu")', 'Activation("softmax")', "Flatten()",
        "Reshape(target_shape=(6, -1))", 'Output(3, activation="softmax")'),
    "conv2d": program(
        "(5, 6, 2)", 'Conv2D(4, (3, 2), padding="same", strides=(2, 1))',
        'Conv2D(3, 3, padding="same", dilation_rate=2, activation="relu")',
        "BatchNormalization(epsilon=0.01)", "Flatten()", 'Output(3, activation="softmax")'),
    "conv1d": program(
        "(9, 3)", 'Conv1D(4, 4, padding="same", strides=2)', "Conv1D(3, 2, use_bias=false)",
        'MaxPooling1D(2, padding="same")', "GlobalAveragePooling1D()"),
    "conv2d_transpose": program(
        "(5, 4, 2)", 'Conv2DTranspose(3, 3, strides=2, padding="same")',
        "Conv2DTranspose(2, (2, 3), strides=(2, 2))", "Conv2DTranspose(2, 1, strides=2)",
        'Conv2DTranspose(2, 4, strides=2, padding="same")', "GlobalMaxPooling2D()"),
    # Flatten keeps every position: a Global pooling hid a missing bias-only row (issue: Keras
    # was emitted with output_padding=0, (d-1)*s + k rows instead of the registry's max(k, s)).
    "conv2d_transpose_gaps": program(
        "(3, 2, 2)", "Conv2DTranspose(2, 1, strides=3)",
        "Conv2DTranspose(2, (1, 2), strides=(2, 3))", "Flatten()"),
    "pooling2d": program(
        "(7, 6, 2)", 'MaxPooling2D((3, 2), strides=(2, 2), padding="same")',
        'AveragePooling2D((2, 2), strides=(1, 1), padding="same")', "AveragePooling2D(2)",
        "UpSampling2D(2)", 'UpSampling2D((2, 3), interpolation="bilinear")',
        "ZeroPadding2D((1, 2))", "MaxPooling2D(2)", "GlobalAveragePooling2D(keepdims=true)"),
    "pooling1d": program(
        "(9, 4)", 'AveragePooling1D(3, strides=2, padding="same")', "AveragePooling1D(2)",
        "GlobalMaxPooling1D(keepdims=true)", "GlobalMaxPooling1D()"),
    "embedding_norms": program(
        "(10,)", "Embedding(input_dim=7, output_dim=6)",
        "LayerNormalization(epsilon=0.00001, center=false)",
        "BatchNormalization(center=false, scale=false)", "LayerNormalization()",
        "GlobalMaxPooling1D()"),
    "multi_head_attention": program(
        "(6, 8)", "MultiHeadAttention(num_heads=2, key_dim=3)",
        "MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4, use_bias=false, "
        "output_shape=5)"),
    "transformer_encoder": program(
        "(6, 8)", 'TransformerEncoder(num_heads=2, dff=16, activation="gelu") * 2',
        "TransformerEncoder(num_heads=4, dff=8, norm_first=true, layer_norm_eps=0.001)"),
    "gpt_decoder": program(
        "(6, 8)", "TransformerDecoder(num_heads=2, dff=16) * 2",
        'TransformerDecoder(num_heads=2, dff=16, norm_first=true, activation="gelu")'),
    "seq2seq": program(
        "(6,)", "Embedding(input_dim=9, output_dim=8)",
        "TransformerEncoder(num_heads=2, dff=16) * 2",
        "TransformerDecoder(num_heads=2, dff=16) * 2",
        "TransformerDecoder(num_heads=2, dff=8, norm_first=true)",
        'Dense(9, activation="softmax")'),
    "recurrent": program(
        "(6, 5)", "LSTM(4, return_sequences=true)", "GRU(3, return_sequences=true)",
        'SimpleRNN(4, activation="relu", return_sequences=true)',
        "LSTM(3, use_bias=false, return_sequences=true)", "SimpleRNN(2, return_sequences=true)",
        "GRU(3, use_bias=false)"),
    "residual": program(
        "(8, 8, 3)", 'Conv2D(4, 3, padding="same")', RESIDUAL, 'Activation("relu")',
        PROJECTED, "GlobalAveragePooling2D()"),
    "merge": """network Merge {
  input: {
    image: (6, 6, 2),
    meta: (3)
  }
  layers:
    image: {
      Conv2D(3, (3, 3), "relu")
      Flatten()
      Dense(4, "relu")
    }
    meta: {
      Dense(4, "relu")
    }
    Add()
    Dense(5)
}
""",
    "concatenate": """network Concat {
  input: {
    a: (4, 3),
    b: (4, 2)
  }
  layers:
    a: {
      Dense(3)
    }
    b: {
      Dense(2)
    }
    Concatenate(axis=-1)
    Dense(5)
}
""",
    "macro_repeat": """define Block {
  Dense(6, "relu")
  LayerNormalization()
}
network Macro {
  input: (4, 6)
  layers:
    Block * 3
    Dense(2) * 2
    GlobalAveragePooling1D()
}
""",
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_matches_pytorch(name: str, tmp_path: Path) -> None:
    net, artifact, weights = build(PROGRAMS[name], tmp_path)
    feeds = random_inputs(net)
    got = TARGET.predict(artifact, weights, feeds, "cpu")
    want = pytorch_output(network(PROGRAMS[name]), weights, feeds, tmp_path)
    assert got.dtype == np.float32
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


def test_programs_cover_every_layer() -> None:
    used = {op.op for src in PROGRAMS.values() for op in network(src).walk()}
    missing = [spec.name for spec in all_layers() if spec.op_name not in used]
    assert not missing, f"no test program uses {missing}"


def test_every_layer_has_a_lowering() -> None:
    for spec in all_layers():
        assert spec.name in STRUCTURAL or TARGET_NAME in spec.lowerings, spec.name
        assert spec.name in STRUCTURAL or spec.name in LOWERINGS


# Semantics anchors ----------------------------------------------------------------------------


def test_multi_head_attention_equals_keras_layer(tmp_path: Path) -> None:
    """The emitted MultiHeadAttention is Keras' own, loaded from the file's Keras layout."""
    import keras

    src = program("(5, 6)", "MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4)")
    net, artifact, weights = build(src, tmp_path)
    feeds = random_inputs(net)
    got = TARGET.predict(artifact, weights, feeds, "cpu")

    from safetensors.numpy import load_file

    arrays = load_file(str(weights))
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4)
    x = feeds["input"]
    mha(x, x)  # build
    mha.set_weights([arrays[f"multi_head_attention.{proj}.{part}"]
                     for proj in ("query", "key", "value", "attention_output")
                     for part in ("kernel", "bias")])
    want = keras.ops.convert_to_numpy(mha(x, x, training=False))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_embedding_takes_int64_ids(tmp_path: Path) -> None:
    src = program("(4,)", "Embedding(input_dim=5, output_dim=3)")
    net, artifact, weights = build(src, tmp_path)
    assert 'keras.Input(shape=(4,), dtype="int64", name="input")' in artifact.read_text()
    ids = np.array([[0, 1, 2, 4], [4, 3, 2, 1]], dtype=np.int64)
    got = TARGET.predict(artifact, weights, {"input": ids}, "cpu")
    from safetensors.numpy import load_file

    table = load_file(str(weights))["embedding.weight"]
    np.testing.assert_array_equal(got, table[ids])


# The emitted module ------------------------------------------------------------------------------


def test_repeat_is_a_loop_with_instance_names(tmp_path: Path) -> None:
    src = PROGRAMS["macro_repeat"]
    _, artifact, weights = build(src, tmp_path)
    text = artifact.read_text()
    assert "for i in range(3):" in text
    assert 'name=f"block.{i}.dense"' in text
    assert 'name=f"dense.{i}"' in text
    module = load_artifact(artifact)
    model = module.build_model(str(weights))
    names = [layer.name for layer in model.layers]
    assert "block.2.layer_normalization" in names and "dense.1" in names


def test_unrolled_network_emits_the_same_model(tmp_path: Path) -> None:
    """Emitting after `unroll-repeat` gives the same layer names, weights and outputs."""
    from neuralc.passes.unroll_repeat import unroll_network

    src = PROGRAMS["macro_repeat"]
    net, artifact, weights = build(src, tmp_path)
    flat = network(src)
    while unroll_network(flat):
        pass
    flat_artifact = tmp_path / "flat.py"
    flat_artifact.write_bytes(TARGET.emit(flat, BuildOptions("model.neural")))
    assert "for i in" not in flat_artifact.read_text()
    feeds = random_inputs(net)
    np.testing.assert_allclose(TARGET.predict(flat_artifact, weights, feeds, "cpu"),
                               TARGET.predict(artifact, weights, feeds, "cpu"), atol=1e-6)


def test_weight_file_must_match_exactly(tmp_path: Path) -> None:
    src = program("(3,)", "Dense(2)")
    net, artifact, weights = build(src, tmp_path)
    module = load_artifact(artifact)
    arrays = random_weights(net)
    extra = tmp_path / "extra.safetensors"
    save_weights(extra, {**arrays, "dense_9.weight": np.zeros((1,), np.float32)})
    with pytest.raises(ValueError, match="dense_9.weight"):
        module.build_model(str(extra))
    missing = tmp_path / "missing.safetensors"
    save_weights(missing, {"dense.weight": arrays["dense.weight"]})
    with pytest.raises(KeyError, match="dense.bias"):
        module.build_model(str(missing))


def test_main_runs_the_file(tmp_path: Path) -> None:
    src = program("(3,)", 'Dense(2, activation="tanh")')
    net, artifact, weights = build(src, tmp_path)
    x = random_inputs(net)["input"]
    np.save(tmp_path / "x.npy", x)
    module = load_artifact(artifact)
    module.main(["--weights", str(weights), "--input", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "y.npy")])
    got = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(got, TARGET.predict(artifact, weights, {"input": x}, "cpu"))


def ruff_check(path: Path) -> None:
    """The project's ruff rules, plus the line length of 100 that neuralc keeps."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--extend-select", "E501",
                           "--config", str(REPO / "pyproject.toml"), str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_code_passes_ruff(tmp_path: Path) -> None:
    for name in ("seq2seq", "recurrent", "residual", "merge", "conv2d_transpose"):
        (tmp_path / f"{name}.py").write_bytes(
            TARGET.emit(network(PROGRAMS[name]), BuildOptions("model.neural")))
    ruff_check(tmp_path)


def test_long_source_paths_stay_within_the_line_length(tmp_path: Path) -> None:
    """CI checks out into deeper directories than a laptop: the module names its source file in
    full (diagnostics point at it), so a long path is wrapped, not left past column 100."""
    source = "/" + "/".join(["a-rather-long-directory-name"] * 5 + ["modèle_ünïcode.neural"])
    net = check_program(parse_text(program("(3,)", "Dense(2)"), source)).networks[0].network
    artifact = tmp_path / "model_keras.py"
    artifact.write_bytes(TARGET.emit(net, BuildOptions(source)))
    ruff_check(artifact)
    assert source == load_artifact(artifact).SOURCE


def test_open_hyperparameter_uses_first_candidate() -> None:
    net = network(program("(4,)", "Dense(3)", "Dropout(0.5)"))
    net.body.ops[1].attrs["rate"] = HPOAttr("choice", (0.2, 0.4))
    text = TARGET.emit(net, BuildOptions("model.neural")).decode()
    assert 'layers.Dropout(0.2, name="dropout")' in text
    assert "dropout.rate = 0.2" in text


# Devices and diagnostics --------------------------------------------------------------------------

PLACED = """network Placed {
  input: (4,)
  layers:
    Dense(3) @ "cuda:7"
    Dense(2)
}
"""


def test_missing_gpu_names_the_layer(tmp_path: Path) -> None:
    net = network(PLACED)
    artifact = tmp_path / "placed.py"
    artifact.write_bytes(TARGET.emit(net, BuildOptions("model.neural")))
    weights = tmp_path / "w.safetensors"
    save_weights(weights, random_weights(net))
    feeds = random_inputs(net)
    with pytest.raises(CompileError) as info:
        TARGET.predict(artifact, weights, feeds, "")
    diagnostic = info.value.diagnostics[0]
    assert "'dense'" in diagnostic.message and "cuda:7" in diagnostic.message
    assert diagnostic.loc == SourceLocation("model.neural", 4, 5)
    assert any("--device cpu" in note for note in diagnostic.notes)
    # `--device cpu` overrides the placement, at predict time or at build time.
    cpu = TARGET.predict(artifact, weights, feeds, "cpu")
    rebuilt = tmp_path / "cpu.py"
    rebuilt.write_bytes(TARGET.emit(net, BuildOptions("model.neural", device="cpu")))
    assert "PLACEMENT: dict[str, tuple[str, int, int]] = {}" in rebuilt.read_text()
    np.testing.assert_allclose(TARGET.predict(rebuilt, weights, feeds, "cpu"), cpu)
    # A GPU asked for at predict time must exist too.
    with pytest.raises(CompileError, match="the model is placed on cuda:7"):
        TARGET.predict(rebuilt, weights, feeds, "cuda:7")


def test_predict_checks_input_names(tmp_path: Path) -> None:
    _, artifact, weights = build(PROGRAMS["concatenate"], tmp_path)
    with pytest.raises(CompileError, match="input"):
        TARGET.predict(artifact, weights, {"a": np.zeros((1, 4, 3), np.float32)}, "cpu")


def test_op_outside_the_nn_dialect_is_a_diagnostic() -> None:
    net = network(program("(4,)", "Dense(3)"))
    dense = net.body.ops[0]
    loc = SourceLocation("model.neural", 4, 5)
    fused = Operation("kernel.fused_dense", "fused", dense.operands,
                      [TensorType(("N", 3))], {}, loc)
    net.body.ops[0] = fused
    net.body.ops[-1].operands = [fused.result]
    with pytest.raises(CompileError) as info:
        TARGET.emit(net, BuildOptions("model.neural"))
    assert info.value.diagnostics[0].loc == loc
    assert re.search(r"cannot lower 'kernel.fused_dense'", info.value.diagnostics[0].message)


# The conformance corpus ------------------------------------------------------------------------


def _accepted(conformance_dir: Path) -> list[tuple[str, Network]]:
    out = []
    for path in sorted(conformance_dir.glob("*/*.neural")):
        try:
            result = check_program(parse_text(path.read_text(), str(path)))
        except CompileError:
            continue  # files the corpus expects to be rejected
        out += [(f"{path.stem}:{built.network.name}", built.network)
                for built in result.networks]
    return out


def test_conformance_programs_emit_clean_modules(conformance_dir: Path, tmp_path: Path) -> None:
    """Every accepted corpus program emits a module that compiles and passes ruff (the big
    models are emitted only: building them in TensorFlow would take minutes)."""
    accepted = _accepted(conformance_dir)
    assert len(accepted) >= 20
    for index, (name, net) in enumerate(accepted):
        source = TARGET.emit(net, BuildOptions(f"{name}.neural")).decode()
        compile(source, name, "exec")
        (tmp_path / f"model_{index}.py").write_text(source)
    ruff_check(tmp_path)


def test_conformance_device_placement_model(conformance_dir: Path, tmp_path: Path) -> None:
    """Upstream's DevicePlacementModel places layers on cuda:0/cuda:1: without those GPUs
    predict names the first such layer; `--device cpu` runs it, equal to PyTorch."""
    import tensorflow as tf

    path = (conformance_dir / "upstream"
            / "tests__parser__test_networks.py__DevicePlacementModel.neural")
    net = check_program(parse_text(path.read_text(), str(path))).networks[0].network
    artifact = tmp_path / "placed.py"
    artifact.write_bytes(TARGET.emit(net, BuildOptions(str(path))))
    weights = tmp_path / "w.safetensors"
    save_weights(weights, random_weights(net))
    feeds = random_inputs(net)
    if len(tf.config.list_physical_devices("GPU")) < 2:
        with pytest.raises(CompileError) as info:
            TARGET.predict(artifact, weights, feeds, "")
        assert info.value.diagnostics[0].loc is not None
        assert info.value.diagnostics[0].loc.line == 4  # Conv2D(32, (3,3), "relu") @ "cuda:0"
    got = TARGET.predict(artifact, weights, feeds, "cpu")
    np.testing.assert_allclose(got, pytorch_output(net, weights, feeds, tmp_path), atol=ATOL,
                               rtol=0)


def test_placed_layers_build_through_the_default_pipeline(conformance_dir: Path,
                                                          tmp_path: Path) -> None:
    """`build` runs place-devices at -O1+, which puts `nn.transfer` ops at device boundaries:
    the Keras emitter passes the data through them (it failed on them before), and
    `predict --device cpu` still equals PyTorch's."""
    from neuralc.cli import main

    path = (conformance_dir / "upstream"
            / "tests__parser__test_networks.py__DevicePlacementModel.neural")
    weights, x = tmp_path / "w.safetensors", tmp_path / "x.npy"
    assert main(["init", str(path), "--seed", "1", "-o", str(weights)]) == 0
    np.save(x, np.random.default_rng(0).standard_normal((2, 28, 28, 1)).astype(np.float32))
    outputs = {}
    for target in ("tensorflow", "pytorch"):
        for level in ("-O0", "-O2"):
            out = tmp_path / f"{target}{level}.npy"
            assert main(["predict", str(path), "--target", target, level, "--weights",
                         str(weights), "--input", str(x), "-o", str(out), "--device", "cpu",
                         "--artifact-dir", str(tmp_path / f"art{target}{level}")]) == 0
            outputs[target, level] = np.load(out)
    assert main(["build", str(path), "--target", "tensorflow", "-o",
                 str(tmp_path / "placed.py")]) == 0
    assert "nn.transfer" not in (tmp_path / "placed.py").read_text()
    for key, value in outputs.items():
        np.testing.assert_allclose(value, outputs["pytorch", "-O0"], atol=ATOL, rtol=0,
                                   err_msg=str(key))
