"""The ONNX emitter at every stage of the IR: `nn` (-O0/-O1, layer by layer), `tensor`
(`--emit tensor`) and `kernel` (-O2/-O3: `kernel.attention` as ONNX's Attention op at opset 23,
ONNX Runtime's MultiHeadAttention below it, or decomposed with `--kernels torch`). Every build
computes the -O0 model's function from one weight file, is a valid model (full check) with a
dynamic batch, and keeps the weight file's keys and arrays as initializers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from test_onnx_layers import CASES, MULTI_INPUT, network, program, random_inputs
from test_onnx_reference import Reference, perturbed

from neuralc.diagnostics import CompileError
from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network
from neuralc.lower.onnx import TARGET
from neuralc.lower.onnx_backend.emitter import build_model
from neuralc.lower.onnx_backend.stages import doc_for
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import init_weights, save_weights
from neuralc.passes.base import PassContext
from neuralc.passes.manager import PassManager
from neuralc.passes.presets import pipeline_for_level

TOLERANCE = 1e-4
# (-O level, --emit stage, opset) besides -O0: -O1 stays at the nn stage, the others do not.
BUILDS = [
    (1, None, 18),
    (2, None, 18),
    (3, None, 18),
    (0, "tensor", 18),
    (2, "tensor", 18),
    (2, None, 17),
    (2, None, 23),
]

SEQUENCE = program(
    "(6,)",
    "Embedding(20, 8)\n    TransformerEncoder(num_heads=2, dff=16)\n"
    "    TransformerDecoder(num_heads=2, dff=16) * 2\n"
    "    MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5)\n"
    "    GlobalAveragePooling1D()\n    Output(3)",
)
DEVICE = program("(4,)", 'Dense(3, activation="relu") @ "cuda:0"\n    Output(2)')


def compiled(src: str, level: int, stop: str | None = None) -> Network:
    """The network of `src` after the -O`level` pipeline (`stop`: `--emit`'s stage)."""
    module = check_program(parse_text(src, "model.neural")).module
    PassManager(pipeline_for_level(level, stop_after=stop), PassContext(opt_level=level)).run(
        module
    )
    return module.networks[0]


def _model(net: Network, weights: dict[str, np.ndarray], **options: object) -> onnx.ModelProto:
    model = build_model(net, BuildOptions("model.neural", **options), weights)  # type: ignore[arg-type]
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _weight_keys(net: Network) -> set[str]:
    return {str(op.attrs["key"]) for op in net.walk() if op.op == "tensor.weight"}


def _check_initializers(model: onnx.ModelProto, net: Network, weights: dict) -> None:
    """Every weight is the initializer named by its key, holding exactly the file's array."""
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for key in _weight_keys(net):
        np.testing.assert_array_equal(inits[key], weights[key], err_msg=key)


def _case_id(case: tuple[str, str, str]) -> str:
    return f"{case[0]}-{case[2].splitlines()[0][:40]}"


@pytest.mark.parametrize("case", CASES + MULTI_INPUT, ids=_case_id)
def test_every_stage_computes_the_O0_function(case: tuple[str, str, str]) -> None:
    src = program(case[1], case[2])
    weights = perturbed(init_weights(network(src), seed=0))
    base = _model(compiled(src, 0), weights)
    feeds = random_inputs(base, 3, seed=1)
    want = _run(base, feeds)
    for level, stop, opset in BUILDS:
        net = compiled(src, level, stop)
        model = _model(net, weights, opset=opset)
        _check_initializers(model, net, weights)
        for value in (*model.graph.input, *model.graph.output):
            assert value.type.tensor_type.shape.dim[0].dim_param == "N"
        np.testing.assert_allclose(
            _run(model, feeds),
            want,
            atol=TOLERANCE,
            rtol=TOLERANCE,
            err_msg=f"-O{level} {stop} {opset}",
        )


@pytest.mark.parametrize(
    ("opset", "kernels", "core"),
    [
        (17, "auto", "MultiHeadAttention"),
        (17, "torch", "Softmax"),
        (18, "auto", "MultiHeadAttention"),
        (18, "torch", "Softmax"),
        (23, "auto", "Attention"),
        (23, "torch", "Attention"),
    ],
)
def test_attention_per_opset(opset: int, kernels: str, core: str) -> None:
    """kernel.attention (self, causal self, cross, Keras value_dim != key_dim): the standard
    Attention op at opset 23, ONNX Runtime's fused op below it, else the decomposition."""
    weights = perturbed(init_weights(network(SEQUENCE), seed=0))
    net = compiled(SEQUENCE, 2)
    assert sum(op.op == "kernel.attention" for op in net.walk()) == 6
    model = _model(net, weights, opset=opset, kernels=kernels)
    ops = {(n.op_type, n.domain) for n in model.graph.node}
    imports = {o.domain: o.version for o in model.opset_import}
    assert imports[""] == opset
    if core == "MultiHeadAttention":
        assert (core, "com.microsoft") in ops and imports["com.microsoft"] == 1
    else:
        assert (core, "") in ops and set(imports) == {""}
        assert ("MultiHeadAttention", "com.microsoft") not in ops
    base = _model(compiled(SEQUENCE, 0), weights, opset=opset)
    for batch in (1, 4):
        feeds = random_inputs(model, batch, seed=batch, vocab=20)
        np.testing.assert_allclose(
            _run(model, feeds), _run(base, feeds), atol=TOLERANCE, rtol=TOLERANCE
        )


@pytest.mark.parametrize("opset", [18, 23])
def test_dynamic_sequence_length(opset: int) -> None:
    src = program(
        "(None, None, 8)",
        "TransformerEncoder(num_heads=2, dff=16)\n    TransformerDecoder(num_heads=2, dff=16)\n"
        '    MultiHeadAttention(num_heads=2, key_dim=3)\n    Dense(4, activation="gelu")',
    )
    weights = perturbed(init_weights(network(src), seed=0))
    model = _model(compiled(src, 2), weights, opset=opset)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", "s0", 8]
    for length in (1, 4, 9):
        x = np.random.default_rng(length).normal(size=(2, length, 8)).astype(np.float32)
        want = Reference(weights)(network(src), x)
        got = _run(model, {"input": x})
        np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize(
    "layers",
    [
        'Conv2DTranspose(2, 3, strides=2, padding="same")',
        'Conv2DTranspose(2, (3, 2), strides=(1, 3), padding="same")',
        'Conv2D(3, 3, strides=2, padding="same")\n    MaxPooling2D(3, strides=2, padding="same")',
    ],
)
@pytest.mark.parametrize("level", [0, 2])
def test_dynamic_image_sizes(layers: str, level: int) -> None:
    """Unknown image sizes: "same" windows are `auto_pad = SAME_UPPER`, a "same"
    Conv2DTranspose has explicit pads at the nn stage (its crop, max(k - s, 0), does not depend
    on the size; -O0 once refused it); same function as with the sizes known."""
    known = program("(5, 6, 3)", layers)
    weights = perturbed(init_weights(network(known), seed=0))
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype(np.float32)
    want = _run(_model(compiled(known, 0), weights), {"input": x})
    dynamic = _model(compiled(program("(None, None, None, 3)", layers), level), weights)
    got = _run(dynamic, {"input": x})
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE)


def test_names_and_docs_trace_back_to_the_ir() -> None:
    """Nodes are `<op value name>/<part>/<OnnxOp>` with every source line of that op (a fused
    op's: all of them); constants are named under their op."""
    net = compiled(SEQUENCE, 2)
    weights = perturbed(init_weights(network(SEQUENCE), seed=0))
    model = _model(net, weights)
    ops = net.ops_by_name()
    for node in model.graph.node:
        owner = node.name.split("/")[0]
        assert owner in ops, node.name
        assert re.fullmatch(r"model\.neural:\d+(, model\.neural:\d+)*", node.doc_string)
        assert set(doc_for(ops[owner].loc).split(", ")) <= set(node.doc_string.split(", "))
    names = {n.name for n in model.graph.node}
    assert "transformer_decoder.0.self_attn/MultiHeadAttention" in names
    assert "transformer_encoder.linear2/hidden/Gemm" in names  # kernel.ffn's first linear
    for init in model.graph.initializer:
        assert init.name in weights or init.name.split("/")[0] in ops, init.name
    assert model.graph.output[0].name == "output"


def test_bias_activation_folds_into_the_gemm() -> None:
    src = program("(8,)", 'Dense(6, activation="relu")\n    LayerNormalization()')
    net = compiled(src, 2)
    assert [op.op for op in net.walk() if op.op.startswith("kernel.")] == ["kernel.bias_act"]
    model = _model(net, perturbed(init_weights(network(src), seed=0)))
    dense = [n for n in model.graph.node if n.name.startswith("dense/")]
    assert [n.op_type for n in dense] == ["Gemm", "Relu"]
    assert list(dense[0].input) == ["input", "dense.weight", "dense.bias"]


def test_precision_attribute_keeps_float32() -> None:
    """-O3's `precision = "bf16"` is for CUDA autocast in PyTorch: ONNX stays float32."""
    weights = perturbed(init_weights(network(SEQUENCE), seed=0))
    net = compiled(SEQUENCE, 2)
    plain = _model(net, weights)
    net.attrs["precision"] = "bf16"
    marked = _model(net, weights)
    assert marked.graph.node == plain.graph.node
    assert all(
        t.data_type == onnx.TensorProto.FLOAT for t in marked.graph.initializer if t.name in weights
    )


def test_emit_and_predict_with_a_weight_file(tmp_path: Path) -> None:
    weights = perturbed(init_weights(network(SEQUENCE), seed=0))
    path = tmp_path / "w.safetensors"
    save_weights(path, weights)
    artifact = tmp_path / "m.onnx"
    artifact.write_bytes(TARGET.emit(compiled(SEQUENCE, 2), BuildOptions("m.neural", weights=path)))
    ids = np.random.default_rng(0).integers(0, 20, size=(3, 6))
    want = Reference(weights)(network(SEQUENCE), ids)
    got = TARGET.predict(artifact, path, {"input": ids}, "cpu")
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE)
    other = tmp_path / "other.safetensors"
    save_weights(other, perturbed(weights, seed=1))
    with pytest.raises(CompileError, match="differ"):
        TARGET.predict(artifact, other, {"input": ids}, "cpu")


def test_weights_of_a_staged_network_are_checked(tmp_path: Path) -> None:
    src = program("(8,)", "Dense(6)\n    Output(3)")
    net = compiled(src, 2)
    with pytest.raises(CompileError, match="needs its weights from a file"):
        TARGET.emit(net, BuildOptions("model.neural"))
    weights = init_weights(network(src), seed=0)
    del weights["output.bias"]
    path = tmp_path / "w.safetensors"
    save_weights(path, weights)
    with pytest.raises(CompileError) as info:
        TARGET.emit(net, BuildOptions("model.neural", weights=path))
    diag = info.value.diagnostics[0]
    assert "output.bias" in diag.message and diag.loc is not None and diag.loc.line == 5


@pytest.mark.parametrize("level", [0, 2])
def test_device_transfers(level: int, tmp_path: Path) -> None:
    """place-devices' transfers (nn.transfer at -O0, tensor.transfer at -O2) are the identity;
    each op's device goes to the model's metadata for predict's device check."""
    import json

    net = compiled(DEVICE, level)
    assert any(op.op.endswith(".transfer") for op in net.walk())
    weights = perturbed(init_weights(network(DEVICE), seed=0))
    path = tmp_path / "w.safetensors"
    save_weights(path, weights)
    artifact = tmp_path / "placed.onnx"
    artifact.write_bytes(TARGET.emit(net, BuildOptions("model.neural", weights=path)))
    meta = {p.key: p.value for p in onnx.load(str(artifact)).metadata_props}
    assert json.loads(meta["neuralc.devices"])["dense"]["device"] == "cuda:0"
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    want = Reference(weights)(network(DEVICE), x)
    got = TARGET.predict(artifact, path, {"input": x}, "cpu")
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE)


def test_scaled_seed_transformer_at_every_level(conformance_dir: Path) -> None:
    src = (conformance_dir / "seed" / "transformer_pt.neural").read_text()
    src = src.replace("(512, 768)", "(16, 64)").replace("d_model=768", "d_model=64")
    src = src.replace("dff=2048", "dff=128")
    module = check_program(parse_text(src, "transformer_pt.neural")).module
    weights = perturbed(init_weights(module.networks[0], seed=0))
    x = np.random.default_rng(0).normal(size=(2, 16, 64)).astype(np.float32)
    want = Reference(weights)(module.networks[0], x)
    for level in (0, 1, 2, 3):
        module = check_program(parse_text(src, "transformer_pt.neural")).module
        PassManager(pipeline_for_level(level), PassContext(opt_level=level)).run(module)
        for opset in (18, 23):
            got = _run(_model(module.networks[0], weights, opset=opset), {"input": x})
            np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE)
