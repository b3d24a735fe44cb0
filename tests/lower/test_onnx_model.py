"""The ONNX target as a whole: the Target contract (emit bytes, predict the file), opsets,
dynamic batch, traceable names and doc strings, metadata, devices, weights checks, external
data, diagnostics, and the conformance programs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from test_onnx_layers import network, program, random_inputs
from test_onnx_reference import Reference, perturbed

from neuralc.diagnostics import CompileError
from neuralc.ir.core import Module
from neuralc.ir.printer import print_module
from neuralc.lower.onnx import TARGET
from neuralc.lower.onnx_backend import emitter
from neuralc.lower.onnx_backend.emitter import build_model
from neuralc.lower.target import BuildOptions, get_target
from neuralc.lower.weights import init_weights, save_weights

MIXED = """\
network Mixed {
  input: (8, 8, 3)
  layers:
    Conv2D(4, (3, 3), "relu", padding="same")
    BatchNormalization()
    MaxPooling2D((2, 2))
    Flatten()
    Dense(16, activation="gelu")
    Dropout(0.2)
    Output(5, activation="softmax")
}
"""

SEQUENCE = """\
network Seq {
  input: (6,)
  layers:
    Embedding(30, 8)
    TransformerEncoder(num_heads=2, dff=16) * 2
    TransformerDecoder(num_heads=2, dff=16)
    GlobalAveragePooling1D()
    Output(3)
}
"""


def _session(model: onnx.ModelProto | bytes | str) -> ort.InferenceSession:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _run(model: onnx.ModelProto | bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return _session(model).run(None, feeds)[0]


@pytest.fixture
def weights_file(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = perturbed(init_weights(network(MIXED), seed=3), seed=3)
    path = tmp_path / "mixed.safetensors"
    save_weights(path, arrays)
    return path, arrays


def test_target_is_registered() -> None:
    assert get_target("onnx") is TARGET
    assert (TARGET.name, TARGET.suffix) == ("onnx", ".onnx")


def test_emit_then_predict_the_file(
    tmp_path: Path, weights_file: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, arrays = weights_file
    net = network(MIXED)
    data = TARGET.emit(net, BuildOptions("model.neural", weights=path))
    artifact = tmp_path / "mixed.onnx"
    artifact.write_bytes(data)
    onnx.checker.check_model(str(artifact), full_check=True)
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 3))
    got = TARGET.predict(artifact, path, {"input": x}, "cpu")
    want = Reference(arrays)(net, x.astype(np.float32))
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    # Weights are embedded: the weights argument is optional, and only checked.
    np.testing.assert_allclose(TARGET.predict(artifact, None, {"input": x}, "cpu"), got)


def test_predict_rejects_other_weights(
    tmp_path: Path, weights_file: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, arrays = weights_file
    artifact = tmp_path / "mixed.onnx"
    artifact.write_bytes(TARGET.emit(network(MIXED), BuildOptions("model.neural", weights=path)))
    other = tmp_path / "other.safetensors"
    save_weights(other, {k: v + 1 for k, v in arrays.items()})
    x = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(CompileError, match="differ"):
        TARGET.predict(artifact, other, {"input": x}, "cpu")
    with pytest.raises(CompileError, match="needs input 'input'"):
        TARGET.predict(artifact, None, {"image": x, "extra": x}, "cpu")


def test_emit_is_deterministic_and_leaves_the_network_alone() -> None:
    net = network(SEQUENCE)
    before = print_module(Module([net]))
    first = TARGET.emit(net, BuildOptions("model.neural", seed=1))
    assert print_module(Module([net])) == before
    assert TARGET.emit(net, BuildOptions("model.neural", seed=1)) == first
    assert TARGET.emit(net, BuildOptions("model.neural", seed=2)) != first


def test_dynamic_batch_and_integer_input() -> None:
    net = network(SEQUENCE)
    model = build_model(net, BuildOptions("model.neural"), init_weights(net, 0))
    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert inp.name == "input" and out.name == "output"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 6]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 3]
    sess = _session(model)
    for batch in (1, 3, 7):
        ids = np.random.default_rng(batch).integers(0, 30, size=(batch, 6))
        assert sess.run(None, {"input": ids})[0].shape == (batch, 3)


@pytest.mark.parametrize("opset", [18, 23])
def test_dynamic_sequence_length_is_a_dim_param(opset: int) -> None:
    src = program(
        "(None, None, 8)",
        "TransformerDecoder(num_heads=2, dff=16)\n    MultiHeadAttention(num_heads=2, key_dim=3)",
    )
    net = network(src)
    arrays = perturbed(init_weights(net, 0))
    model = build_model(net, BuildOptions("model.neural", opset=opset), arrays)
    onnx.checker.check_model(model, full_check=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", "s0", 8]
    sess = _session(model)
    for length in (1, 4, 9):
        x = np.random.default_rng(length).normal(size=(2, length, 8)).astype(np.float32)
        got = sess.run(None, {"input": x})[0]
        np.testing.assert_allclose(got, Reference(arrays)(net, x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("opset", [17, 18, 20, 23])
def test_opsets(opset: int) -> None:
    """Every supported opset gives a valid model computing the same function."""
    for src in (MIXED, SEQUENCE):
        net = network(src)
        arrays = perturbed(init_weights(net, 0))
        model = build_model(net, BuildOptions("model.neural", opset=opset), arrays)
        assert model.opset_import[0].version == opset
        onnx.checker.check_model(model, full_check=True)
        feeds = random_inputs(model, 2, vocab=30)
        want = Reference(arrays)(net, next(iter(feeds.values())))
        np.testing.assert_allclose(_run(model, feeds), want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("opset", [16, 24])
def test_unsupported_opset_is_a_diagnostic(opset: int) -> None:
    with pytest.raises(CompileError, match="opsets 17 to 23"):
        TARGET.emit(network(MIXED), BuildOptions("model.neural", opset=opset))


def test_names_trace_back_to_the_dsl() -> None:
    net = network(SEQUENCE)
    arrays = init_weights(net, 0)
    model = build_model(net, BuildOptions("model.neural"), arrays)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    # Every weight is an initializer under its weight-file key, holding exactly its array.
    for key, value in arrays.items():
        np.testing.assert_array_equal(inits[key], value)
    # Other initializers are constants named under a layer: `<layer>/<hint>`.
    layers = {
        "embedding",
        "transformer_encoder.0",
        "transformer_encoder.1",
        "transformer_decoder",
        "global_average_pooling1d",
        "output",
    }
    for name in inits:
        assert name in arrays or name.split("/")[0] in layers, name
    # Nodes are named `<layer>/<part>/<Op>` and carry the layer's source line.
    lines = {
        "embedding": 4,
        "transformer_encoder.0": 5,
        "transformer_encoder.1": 5,
        "transformer_decoder": 6,
        "global_average_pooling1d": 7,
        "output": 8,
    }
    for node in model.graph.node:
        layer = node.name.split("/")[0]
        assert layer in lines, node.name
        assert node.doc_string == f"model.neural:{lines[layer]}", node.name
    names = {n.name for n in model.graph.node}
    assert "transformer_encoder.1/self_attn/in_proj/Gemm" in names
    assert "transformer_decoder/norm2/LayerNormalization" in names


def test_residual_weights_and_names() -> None:
    src = program("(8,)", "ResidualConnection {\n      Dense(8)\n      Dense(8)\n    }")
    net = network(src)
    model = build_model(net, BuildOptions("model.neural"), init_weights(net, 0))
    inits = {t.name for t in model.graph.initializer}
    assert {"residual_connection.dense.weight", "residual_connection.dense_1.bias"} <= inits
    assert any(n.name.startswith("residual_connection/") for n in model.graph.node)


def test_metadata() -> None:
    net = network(MIXED)
    model = build_model(net, BuildOptions("model.neural"), init_weights(net, 0))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["neuralc.network"] == "Mixed"
    assert meta["neuralc.source"] == "model.neural"
    assert json.loads(meta["neuralc.weights_skipped"]) == [
        "batch_normalization.num_batches_tracked"
    ]
    assert model.producer_name == "neuralc"


DEVICE = """\
network Placed {
  input: (4,)
  layers:
    Dense(3) @ "cuda:0"
    Output(2)
}
"""


def test_device_placement(tmp_path: Path) -> None:
    net = network(DEVICE)
    artifact = tmp_path / "placed.onnx"
    artifact.write_bytes(TARGET.emit(net, BuildOptions("model.neural")))
    meta = {p.key: p.value for p in onnx.load(str(artifact)).metadata_props}
    assert json.loads(meta["neuralc.devices"])["dense"]["device"] == "cuda:0"
    x = {"input": np.ones((2, 4), np.float32)}
    assert TARGET.predict(artifact, None, x, "cpu").shape == (2, 2)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has ONNX Runtime's CUDA provider")
    with pytest.raises(CompileError) as info:
        TARGET.predict(artifact, None, x, "")
    diag = info.value.diagnostics[0]
    assert "layer 'dense'" in diag.message and diag.loc is not None and diag.loc.line == 4
    assert any("--device cpu" in note for note in diag.notes)
    with pytest.raises(CompileError, match="--device cpu|not available"):
        TARGET.predict(artifact, None, x, "cuda")
    # Built with the --device cpu override, the model runs anywhere.
    artifact.write_bytes(TARGET.emit(net, BuildOptions("model.neural", device="cpu")))
    assert TARGET.predict(artifact, None, x, "").shape == (2, 2)


def test_external_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emitter, "EXTERNAL_DATA_THRESHOLD", 1000)
    net = network(MIXED)
    options = BuildOptions("model.neural", seed=0)
    with pytest.raises(CompileError, match="external data"):
        TARGET.emit(net, options)
    artifact = tmp_path / "big.onnx"
    data = TARGET.emit(net, options, artifact=artifact)
    artifact.write_bytes(data)
    assert (tmp_path / "big.onnx.data").is_file()
    assert len(data) < 20_000
    onnx.checker.check_model(str(artifact), full_check=True)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    want = Reference(init_weights(net, 0))(net, x)
    got = TARGET.predict(artifact, None, {"input": x}, "cpu")
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    # Rebuilt from the artifact's directory, where the data file's name now exists (onnx's
    # converter checked the working directory and raised FileExistsError).
    monkeypatch.chdir(tmp_path)
    artifact.write_bytes(TARGET.emit(net, options, artifact=artifact))
    np.testing.assert_allclose(TARGET.predict(artifact, None, {"input": x}, "cpu"), want,
                               atol=1e-4, rtol=1e-4)


def test_inexpressible_layer_is_a_diagnostic_at_its_line() -> None:
    src = program("(None, None, 3)", 'MaxPooling2D(1, strides=2, padding="same")')
    src = src.replace("(None, None, 3)", "(None, None, None, 3)")
    with pytest.raises(CompileError) as info:
        TARGET.emit(network(src), BuildOptions("model.neural"))
    diag = info.value.diagnostics[0]
    assert "pool_size smaller" in diag.message and diag.loc is not None and diag.loc.line == 4


@pytest.mark.parametrize("level", ["-O0", "-O2"])
@pytest.mark.parametrize("layer", ['MaxPooling1D(2, strides=3, padding="same")',
                                   'AveragePooling1D(1, strides=2, padding="same")'])
def test_same_pooling_narrower_than_its_stride_on_a_dynamic_length_is_a_diagnostic(
    layer: str, level: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ONNX Runtime's SAME_UPPER pooling raised "padding values must be non-negative" at run
    time for lengths 3 and 6 here (an internal error from predict); both stages refuse it."""
    from neuralc.cli import main

    model = tmp_path / "m.neural"
    model.write_text(program("(None, None, 2)", f"{layer}\n    GlobalMaxPooling1D()"))
    argv = ["build", str(model), "--target", "onnx", level, "-o", str(tmp_path / "m.onnx")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "m.neural:4:5: error: the ONNX backend cannot express padding=\"same\" pooling" in err
    assert "internal error" not in err
    # A known length gets explicit pads: the same layer builds.
    model.write_text(program("(6, 2)", f"{layer}\n    GlobalMaxPooling1D()"))
    assert main(argv) == 0, capsys.readouterr().err


def test_custom_attention_conformance_program(conformance_dir: Path) -> None:
    src = (conformance_dir / "seed" / "custom_attention.neural").read_text()
    net = network(src)
    arrays = perturbed(init_weights(net, 0))
    model = build_model(net, BuildOptions("custom_attention.neural"), arrays)
    onnx.checker.check_model(model, full_check=True)
    x = np.random.default_rng(0).normal(size=(2, 100, 128)).astype(np.float32)
    want = Reference(arrays)(net, x)
    np.testing.assert_allclose(_run(model, {"input": x}), want, atol=1e-4, rtol=1e-4)


def test_scaled_seed_transformer(conformance_dir: Path) -> None:
    """transformer_pt.neural with its sizes scaled down: same structure, same names."""
    src = (conformance_dir / "seed" / "transformer_pt.neural").read_text()
    src = src.replace("(512, 768)", "(16, 64)").replace("d_model=768", "d_model=64")
    src = src.replace("dff=2048", "dff=128")
    net = network(src)
    arrays = perturbed(init_weights(net, 0))
    model = build_model(net, BuildOptions("transformer_pt.neural"), arrays)
    onnx.checker.check_model(model, full_check=True)
    assert "transformer_encoder.5.linear2.weight" in {t.name for t in model.graph.initializer}
    x = np.random.default_rng(0).normal(size=(2, 16, 64)).astype(np.float32)
    np.testing.assert_allclose(
        _run(model, {"input": x}), Reference(arrays)(net, x), atol=1e-4, rtol=1e-4
    )
