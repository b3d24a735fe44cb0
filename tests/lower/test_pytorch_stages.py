"""The PyTorch emitter at every stage of the IR: `nn` (per-layer modules, -O0/-O1) and the
`tensor` and `kernel` stages (one functional call per op, -O2 and `--emit tensor`) compute the
same function from one weight file, whose keys are the functional module's state_dict keys.

Regenerate the golden file with `NEURALC_UPDATE_GOLDEN=1 pytest tests/lower/test_pytorch_stages.py`.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_pytorch_layers import CASES, random_inputs

from neuralc import __version__
from neuralc.diagnostics import CompileError
from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network
from neuralc.ir.parser import parse_module
from neuralc.ir.verifier import verify_module
from neuralc.lower.pytorch import TARGET, import_artifact
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import init_weights, save_weights
from neuralc.passes.base import PassContext
from neuralc.passes.manager import PassManager
from neuralc.passes.presets import pipeline_for_level

torch = pytest.importorskip("torch")
F = torch.nn.functional

GOLDEN = Path(__file__).parent / "golden"
TOLERANCE = 1e-4
CUDA = torch.cuda.is_available() and not os.environ.get("NEURALC_NO_CUDA")

# (-O level, --emit stage): -O1 stays at the nn stage; the others are tensor/kernel-stage.
BUILDS = [(1, None), (2, None), (0, "tensor"), (2, "tensor")]


def compiled(
    src: str, level: int | None = None, stop: str | None = None, path: str = "probe.neural"
) -> Network:
    """The network of `src`, after the -O`level` pipeline (none: as checked)."""
    module = check_program(parse_text(src, path)).module
    if level is not None:
        PassManager(pipeline_for_level(level, stop_after=stop), PassContext(opt_level=level)).run(
            module
        )
    return module.networks[0]


def emit(net: Network, path: Path, **options: object) -> Path:
    path.write_bytes(TARGET.emit(net, BuildOptions("probe.neural", **options)))  # type: ignore[arg-type]
    return path


def weight_file(net: Network, tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = init_weights(net, 0)
    path = tmp_path / "w.safetensors"
    save_weights(path, arrays)
    return path, arrays


@pytest.mark.parametrize(
    ("layer", "index", "src"), CASES, ids=[f"{layer}-{index}" for layer, index, _ in CASES]
)
def test_every_stage_computes_what_o0_computes(
    layer: str, index: int, src: str, tmp_path: Path
) -> None:
    net = compiled(src)
    weights, arrays = weight_file(net, tmp_path)
    inputs = random_inputs(net)
    expected = TARGET.predict(emit(net, tmp_path / "o0.py"), weights, inputs, "cpu")
    for level, stop in BUILDS:
        staged = compiled(src, level, stop)
        artifact = emit(staged, tmp_path / f"o{level}_{stop}.py", opt_level=level)
        got = TARGET.predict(artifact, weights, inputs, "cpu")
        assert got.shape == expected.shape
        np.testing.assert_allclose(
            got, expected, atol=TOLERANCE, rtol=0, err_msg=f"-O{level} {stop}"
        )
        if level == 2 and stop is None:
            model = import_artifact(artifact).build_model()
            state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
            assert state == {k: tuple(a.shape) for k, a in arrays.items()}


TRANSFORMERS = [
    """network Enc { input: (6, 8) layers:
        TransformerEncoder(num_heads=2, dff=16) * 2
        TransformerDecoder(num_heads=2, dff=16)
        GlobalAveragePooling1D()
        Output(3, activation="softmax") }""",
    """network Pre { input: (5, 8) layers:
        TransformerEncoder(num_heads=4, dff=8, activation="gelu", norm_first=true)
        MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2) }""",
]


@pytest.mark.parametrize("src", TRANSFORMERS)
def test_torch_kernels_and_auto_kernels_agree_on_cpu(src: str, tmp_path: Path) -> None:
    net = compiled(src)
    weights, _ = weight_file(net, tmp_path)
    inputs = random_inputs(net)
    staged = compiled(src, 2)
    auto = emit(staged, tmp_path / "auto.py", opt_level=2)
    composite = emit(staged, tmp_path / "torch.py", opt_level=2, kernels="torch")
    assert "from neuralc.kernels import" in auto.read_text()
    assert "neuralc.kernels" not in composite.read_text()
    assert "fused_" not in composite.read_text()
    assert "attention(" in composite.read_text() and "feed_forward(" in composite.read_text()
    np.testing.assert_array_equal(
        TARGET.predict(auto, weights, inputs, "cpu"),
        TARGET.predict(composite, weights, inputs, "cpu"),
    )


def test_auto_kernels_fall_back_without_neuralc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module stays standalone: without `neuralc.kernels` the composites run."""
    src = TRANSFORMERS[0]
    net = compiled(src)
    weights, _ = weight_file(net, tmp_path)
    inputs = random_inputs(net)
    artifact = emit(compiled(src, 2), tmp_path / "auto.py", opt_level=2)
    expected = TARGET.predict(artifact, weights, inputs, "cpu")
    monkeypatch.setitem(sys.modules, "neuralc.kernels", None)  # import raises ImportError
    module = import_artifact(artifact)
    assert module.fused_attention is None
    got = module.predict(module.build_model(str(weights), "cpu"), inputs)
    np.testing.assert_array_equal(got, expected)


def test_causal_decoder_stays_causal_at_o2(tmp_path: Path) -> None:
    src = """network GPT { input: (6,) layers:
        Embedding(30, 8)
        TransformerDecoder(num_heads=2, dff=16) * 2
        Dense(30) }"""
    staged = compiled(src, 2)
    text = emit(staged, tmp_path / "gpt.py", opt_level=2).read_text()
    assert text.count("causal=True") == 2
    weights, _ = weight_file(compiled(src), tmp_path)
    ids = np.random.default_rng(0).integers(0, 30, (2, 6)).astype(np.int64)
    later = ids.copy()
    later[:, 4:] = (later[:, 4:] + 7) % 30
    y = TARGET.predict(tmp_path / "gpt.py", weights, {"input": ids}, "cpu")
    y_later = TARGET.predict(tmp_path / "gpt.py", weights, {"input": later}, "cpu")
    np.testing.assert_allclose(y[:, :4], y_later[:, :4], atol=1e-6)  # the past ignores the future
    assert not np.allclose(y[:, 4:], y_later[:, 4:])
    expected = TARGET.predict(
        emit(compiled(src), tmp_path / "o0.py"), weights, {"input": ids}, "cpu"
    )
    np.testing.assert_allclose(y, expected, atol=TOLERANCE, rtol=0)


def test_embedding_model_at_o2(tmp_path: Path) -> None:
    src = """network Classifier { input: (7,) layers:
        Embedding(50, 16)
        TransformerEncoder(num_heads=4, dff=32)
        GlobalAveragePooling1D()
        Dropout(0.1)
        Output(4, activation="softmax") }"""
    staged = compiled(src, 2)
    artifact = emit(staged, tmp_path / "c.py", opt_level=2)
    text = artifact.read_text()
    forward = text.split("def forward")[1].split("def place")[0]
    assert "F.embedding(x, self.embedding.weight)" in forward and "dropout" not in forward
    weights, _ = weight_file(compiled(src), tmp_path)
    ids = {"input": np.random.default_rng(1).integers(0, 50, (3, 7)).astype(np.int64)}
    expected = TARGET.predict(emit(compiled(src), tmp_path / "o0.py"), weights, ids, "cpu")
    np.testing.assert_allclose(
        TARGET.predict(artifact, weights, ids, "cpu"), expected, atol=TOLERANCE
    )


DYNAMIC = [
    (
        """network D { input: (None, None, 3) layers:
        Conv1D(4, 3, strides=2, padding="same")
        MaxPooling1D(3, strides=2, padding="same")
        AveragePooling1D(2, padding="same")
        LSTM(5, return_sequences=true)
        TransformerEncoder(num_heads=1, dff=8)
        GlobalMaxPooling1D() }""",
        (2, 9, 3),
    ),
    (
        """network E { input: (None, None, None, 2) layers:
        Conv2D(3, (3, 3), strides=(2, 2), padding="same", activation="relu")
        Conv2DTranspose(3, 3, strides=2, padding="same")
        UpSampling2D(2, interpolation="bilinear")
        AveragePooling2D((3, 3), strides=(2, 2), padding="same")
        GlobalAveragePooling2D() }""",
        (2, 7, 5, 2),
    ),
]


@pytest.mark.parametrize(("src", "shape"), DYNAMIC, ids=["1d", "2d"])
def test_dynamic_sizes_pad_as_same_upper(src: str, shape: tuple, tmp_path: Path) -> None:
    net = compiled(src)
    weights, _ = weight_file(net, tmp_path)
    x = {"input": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    expected = TARGET.predict(emit(net, tmp_path / "o0.py"), weights, x, "cpu")
    artifact = emit(compiled(src, 2), tmp_path / "o2.py", opt_level=2)
    assert "same_pad(" in artifact.read_text()
    got = TARGET.predict(artifact, weights, x, "cpu")
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


def test_training_mode_matches_the_nn_path(tmp_path: Path) -> None:
    """Batch statistics in training, and the running statistics they update, as nn.BatchNorm."""
    src = """network T { input: (5, 5, 2) layers:
        Conv2D(3, (3, 3), padding="same", activation="relu")
        BatchNormalization(momentum=0.9)
        Flatten()
        Output(2) }"""
    net = compiled(src)
    weights, _ = weight_file(net, tmp_path)
    x = torch.from_numpy(random_inputs(net, batch=4)["input"])
    results = []
    for name, stage in (
        ("nn", net),
        ("tensor", compiled(src, 0, "tensor")),
        ("kernel", compiled(src, 2)),
    ):
        module = import_artifact(emit(stage, tmp_path / f"{name}.py"))
        model = module.build_model(str(weights), "cpu").train()
        y = model(x)
        results.append((y.detach(), model.state_dict()))
    for y, state in results[1:]:
        torch.testing.assert_close(y, results[0][0], atol=TOLERANCE, rtol=0)
        for key in ("batch_normalization.running_mean", "batch_normalization.running_var"):
            torch.testing.assert_close(state[key], results[0][1][key], atol=1e-6, rtol=0)


PLACED = """network P { input: (4,) layers:
    Dense(8, activation="relu") @ "cuda:0"
    Dense(3) @ "cpu"
    Output(2) }"""


def test_mixed_placement_moves_weights_and_activations(tmp_path: Path) -> None:
    staged = compiled(PLACED, 2)
    artifact = emit(staged, tmp_path / "p.py", opt_level=2)
    text = artifact.read_text()
    assert '"dense": "cuda:0"' in text and '"dense_1": "cpu"' in text
    assert 'self.devices["cuda:0"])' in text and 'self.devices["cpu"])' in text
    weights, _ = weight_file(compiled(PLACED), tmp_path)
    x = {"input": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)}
    expected = TARGET.predict(emit(compiled(PLACED), tmp_path / "o0.py"), weights, x, "cpu")
    np.testing.assert_allclose(
        TARGET.predict(artifact, weights, x, "cpu"), expected, atol=TOLERANCE
    )
    if not CUDA:
        with pytest.raises(RuntimeError, match="layer 'dense' is placed on cuda:0"):
            import_artifact(artifact).build_model()
    overridden = emit(staged, tmp_path / "cpu.py", opt_level=2, device="cpu").read_text()
    assert "PLACEMENT" not in overridden and ".to(self.devices" not in overridden


def test_nn_transfers_are_accepted(tmp_path: Path) -> None:
    """After place-devices (any level), the nn path moves data between its layers itself."""
    placed = compiled(PLACED, 0)
    assert any(op.op == "nn.transfer" for op in placed.walk())
    text = emit(placed, tmp_path / "p.py").read_text()
    assert text == emit(compiled(PLACED), tmp_path / "plain.py").read_text()
    assert any(op.op == "nn.transfer" for op in placed.walk())  # the caller's IR is unchanged


def test_reduced_precision_autocasts_on_cuda_only(tmp_path: Path) -> None:
    src = """network G { input: (6, 8) layers:
        TransformerEncoder(num_heads=2, dff=16)
        Flatten()
        Output(3)
        execution { device: "gpu" } }"""
    staged = compiled(src, 3)
    assert staged.attrs.get("precision") == "bf16"
    artifact = emit(staged, tmp_path / "g.py", opt_level=3)
    assert 'torch.autocast("cuda", dtype=torch.bfloat16' in artifact.read_text()
    weights, _ = weight_file(compiled(src), tmp_path)
    x = random_inputs(compiled(src))
    expected = TARGET.predict(emit(compiled(src), tmp_path / "o0.py"), weights, x, "cpu")
    np.testing.assert_allclose(
        TARGET.predict(artifact, weights, x, "cpu"), expected, atol=TOLERANCE
    )
    if CUDA:
        on_gpu = TARGET.predict(artifact, weights, x, "cuda")
        np.testing.assert_allclose(on_gpu, expected, atol=1e-2)


@pytest.mark.gpu
@pytest.mark.parametrize("level", [2, 3])
def test_fused_kernels_run_on_cuda(
    level: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = """network G { input: (6, 16) layers:
        TransformerEncoder(num_heads=2, dff=32) * 2
        TransformerDecoder(num_heads=2, dff=32)
        Flatten()
        Output(3)
        execution { device: "gpu" } }"""
    artifact = emit(compiled(src, level), tmp_path / "g.py", opt_level=level)
    module = import_artifact(artifact)
    calls: dict[str, int] = {}
    for name in ("fused_attention", "fused_ffn", "fused_add_layer_norm"):

        def spy(
            *args: object,
            _kernel: object = getattr(module, name),
            _name: str = name,
            **kwargs: object,
        ) -> object:
            calls[_name] = calls.get(_name, 0) + 1
            return _kernel(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(module, name, spy)
    weights, _ = weight_file(compiled(src), tmp_path)
    x = random_inputs(compiled(src), batch=3)
    on_cpu = module.predict(module.build_model(str(weights), "cpu"), x)
    assert not calls
    on_gpu = module.predict(module.build_model(str(weights), "cuda"), x)
    assert set(calls) == {"fused_attention", "fused_ffn", "fused_add_layer_norm"}
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-3 if level == 2 else 5e-2)


def test_build_checks_the_weight_file_at_the_kernel_stage(tmp_path: Path) -> None:
    src = "network S { input: (4,) layers:\n Dense(3)\n BatchNormalization() }"
    other = compiled("network S { input: (5,) layers:\n Dense(3)\n BatchNormalization() }")
    weights, _ = weight_file(other, tmp_path)
    with pytest.raises(CompileError, match="'dense.weight' has shape") as info:
        TARGET.emit(compiled(src, 2), BuildOptions("m.neural", weights=weights))
    assert info.value.diagnostics[0].loc is not None and info.value.diagnostics[0].loc.line == 2
    good, _ = weight_file(compiled(src), tmp_path / "..")
    TARGET.emit(compiled(src, 2), BuildOptions("m.neural", weights=good))  # num_batches_tracked


def test_without_weights_the_model_is_seeded(tmp_path: Path) -> None:
    module = import_artifact(emit(compiled(TRANSFORMERS[0], 2), tmp_path / "m.py", opt_level=2))
    a, b = module.build_model().state_dict(), module.build_model().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    bound = 1 / 8**0.5  # linear1.weight: U(±1/sqrt(fan_in))
    w = a["transformer_encoder.0.linear1.weight"]
    assert 0 < w.abs().max() <= bound
    assert torch.equal(a["transformer_encoder.0.norm1.weight"], torch.ones(8))


# Ops the registry's layers never produce in these combinations, against their definitions in
# docs/dialects.md written independently with torch.

WINDOWS = """
    %w = tensor.weight() {key = "c.weight"} -> f32[6,2,3,2]
    %b = tensor.weight() {key = "c.bias"} -> f32[6]
    %conv = tensor.conv(%input, %w, %b) {strides = (1, 2), pads = (1, 0, 2, 1), dilations = (2, 1), groups = 2} -> f32[N,6,6,3]
    %mp = tensor.max_pool(%conv) {kernel = (2, 2), strides = (2, 1), pads = (0, 1, 1, 0)} -> f32[N,6,3,3]
    %ap = tensor.avg_pool(%mp) {kernel = (2, 2), strides = (1, 1), pads = (1, 0, 0, 1), count_include_pad = true} -> f32[N,6,3,3]
    %tw = tensor.weight() {key = "t.weight"} -> f32[6,3,3,2]
    %ct = tensor.conv_transpose(%ap, %tw) {strides = (2, 2), pads = (1, 0, 0, 1), output_padding = (1, 1)} -> f32[N,3,7,6]
    %up = tensor.resize(%ct) {scales = (1, 2, 1, 3), mode = "nearest"} -> f32[N,6,7,18]
    return(%up)"""


def windows_reference(x: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
    h = F.pad(x, (0, 1, 1, 2))  # pads are (begins, ends) per axis; F.pad goes last axis first
    h = F.conv2d(h, w["c.weight"], w["c.bias"], stride=(1, 2), dilation=(2, 1), groups=2)
    h = F.max_pool2d(F.pad(h, (1, 0, 0, 1), value=float("-inf")), 2, (2, 1))
    h = F.avg_pool2d(F.pad(h, (0, 1, 1, 0)), 2, 1)
    full = F.conv_transpose2d(h, w["t.weight"], stride=2)  # [N, 3, 7, 6]
    h = F.pad(full[:, :, 1:, :], (0, 0, 0, 1))  # crop 1 at the top, 1 output_padding row
    return h.repeat_interleave(2, 1).repeat_interleave(3, 3)


IDS = base64.b64encode(np.array([[2, 0], [1, 1]], dtype="<i8").tobytes()).decode()
VALUES = f"""
    %ids = tensor.constant() {{value = "{IDS}"}} -> i64[2,2]
    %g = tensor.gather(%input, %ids) {{axis = 1}} -> f32[N,2,2,4]
    %r = tensor.reshape(%g) {{shape = (0, -1, 4)}} -> f32[N,4,4]
    %cat = tensor.concat(%r, %input) {{axis = 1}} -> f32[N,7,4]
    %kt = tensor.transpose(%input) {{perm = (0, 2, 1)}} -> f32[N,4,3]
    %sc = tensor.matmul(%cat, %kt) -> f32[N,7,3]
    %sm = tensor.softmax(%sc) {{axis = -1, causal = true}} -> f32[N,7,3]
    %act = tensor.activation(%sm) {{kind = "leaky_relu", alpha = 0.3}} -> f32[N,7,3]
    %hs = tensor.activation(%act) {{kind = "hard_sigmoid"}} -> f32[N,7,3]
    %one = tensor.constant() {{value = 1.0}} -> f32[7,3]
    %zero = tensor.constant() {{value = 0.0}} -> f32[7,3]
    %ln = tensor.layer_norm(%hs, %one, %zero) {{eps = 0.001, axis = -2}} -> f32[N,7,3]
    %bw = tensor.weight() {{key = "bn.weight"}} -> f32[7]
    %bb = tensor.weight() {{key = "bn.bias"}} -> f32[7]
    %bm = tensor.weight() {{key = "bn.running_mean", trainable = false}} -> f32[7]
    %bv = tensor.weight() {{key = "bn.running_var", trainable = false}} -> f32[7]
    %bn = tensor.batch_norm(%ln, %bw, %bb, %bm, %bv) {{eps = 0.01, axis = 1}} -> f32[N,7,3]
    %ba = tensor.weight() {{key = "ba.bias"}} -> f32[3]
    %bact = kernel.bias_act(%bn, %ba) {{activation = "elu"}} -> f32[N,7,3]
    %w1 = tensor.weight() {{key = "f.w1"}} -> f32[5,3]
    %b1 = tensor.weight() {{key = "f.b1"}} -> f32[5]
    %w2 = tensor.weight() {{key = "f.w2"}} -> f32[3,5]
    %b2 = tensor.weight() {{key = "f.b2"}} -> f32[3]
    %ffn = kernel.ffn(%bact, %w1, %b1, %w2, %b2) {{activation = "leaky_relu", alpha = 0.1, dropout = 0.5}} -> f32[N,7,3]
    %g1 = tensor.constant() {{value = 1.0}} -> f32[3]
    %b0 = tensor.weight() {{key = "aln.beta"}} -> f32[3]
    %aln = kernel.add_layernorm(%ffn, %bact, %g1, %b0) {{eps = 1e-05, dropout = 0.2}} -> f32[N,7,3]
    %wi = tensor.weight() {{key = "rnn.wi"}} -> f32[2,3]
    %wh = tensor.weight() {{key = "rnn.wh"}} -> f32[2,2]
    %rnn = tensor.rnn(%aln, %wi, %wh) {{hidden_size = 2, return_sequences = true, activation = "relu"}} -> f32[N,7,2]
    %mean = tensor.reduce_mean(%rnn) {{axes = (1, 2), keepdims = false}} -> f32[N]
    return(%mean)"""


def values_reference(x: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
    cat = torch.cat([x[:, [[2, 0], [1, 1]]].reshape(len(x), 4, 4), x], 1)
    scores = cat @ x.transpose(1, 2)
    visible = torch.ones(7, 3, dtype=torch.bool).tril()
    h = torch.softmax(scores.masked_fill(~visible, float("-inf")), -1)
    h = torch.clamp(torch.where(h > 0, h, 0.3 * h) + 3, 0, 6) / 6
    mean, var = h.mean((1, 2), keepdim=True), h.var((1, 2), unbiased=False, keepdim=True)
    h = (h - mean) / torch.sqrt(var + 1e-3)
    stats = (w["bn.running_mean"][:, None], w["bn.running_var"][:, None])
    h = (h - stats[0]) / torch.sqrt(stats[1] + 0.01) * w["bn.weight"][:, None]
    skip = F.elu(h + w["bn.bias"][:, None] + w["ba.bias"])
    h = skip @ w["f.w1"].T + w["f.b1"]
    h = torch.where(h > 0, h, 0.1 * h) @ w["f.w2"].T + w["f.b2"] + skip
    h = (h - h.mean(-1, keepdim=True)) / torch.sqrt(h.var(-1, unbiased=False, keepdim=True) + 1e-5)
    h = h + w["aln.beta"]
    state, steps = torch.zeros(len(x), 2), []
    for t in range(7):
        state = torch.relu(h[:, t] @ w["rnn.wi"].T + state @ w["rnn.wh"].T)
        steps.append(state)
    return torch.stack(steps, 1).mean((1, 2))


@pytest.mark.parametrize(
    ("body", "shape", "reference"),
    [(WINDOWS, (2, 4, 7, 6), windows_reference), (VALUES, (2, 3, 4), values_reference)],
    ids=["windows", "values"],
)
def test_ops_match_their_definitions(
    body: str, shape: tuple, reference: Callable, tmp_path: Path
) -> None:
    text = f"module {{\n  network @Ops(%input: f32[N,{','.join(map(str, shape[1:]))}]) {{{body}\n  }}\n}}\n"
    module = parse_module(text, "ops.nir")
    verify_module(module)
    artifact = emit(module.networks[0], tmp_path / "ops.py")
    model = import_artifact(artifact).build_model()  # seeded initial weights
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    with torch.no_grad():
        got = model.eval()(x)
        expected = reference(x, dict(model.state_dict()))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


ENCODER = GOLDEN / "encoder_o2.neural"


def test_golden_o2_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    net = compiled(ENCODER.read_text(), 2, path=ENCODER.name)
    text = TARGET.emit(net, BuildOptions(ENCODER.name, opt_level=2)).decode()
    text = text.replace(f"neuralc {__version__} ", "neuralc <version> ")
    golden = GOLDEN / "encoder_o2.py"
    if os.environ.get("NEURALC_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), "regenerate with NEURALC_UPDATE_GOLDEN=1"


def test_generated_stage_code_is_ruff_clean(tmp_path: Path) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed")
    files = [GOLDEN / "encoder_o2.py"]
    for layer, i, src in CASES:
        for level, stop in ((2, None), (0, "tensor")):
            path = tmp_path / f"{layer.lower()}_{i}_{level}_{stop}.py"
            files.append(emit(compiled(src, level, stop), path, opt_level=level))
    files.append(emit(compiled(PLACED, 2), tmp_path / "placed.py", opt_level=2))
    files.append(emit(compiled(TRANSFORMERS[0], 2), tmp_path / "torch.py", kernels="torch"))
    select = ["--select", "E,F,W,I,UP,B,SIM"]
    common = ["--isolated", "--line-length", "100"]
    check = subprocess.run(
        [str(ruff), "check", *common, *select, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [str(ruff), "format", *common, "--check", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_o3_forwards_autotune_their_kernels_and_o2_forwards_do_not(tmp_path: Path) -> None:
    """`autotune` (-O3) marks the network; the emitted forward runs its Triton kernels inside
    `kernel_autotuning(AUTOTUNE)` (`contextlib.nullcontext` where neuralc is not installed).
    The switch covers the forward only: backward kernels autotune at either level."""
    from neuralc.cli import main

    model = tmp_path / "enc.neural"
    model.write_text("network Enc {\n  input: (6, 16)\n  layers:\n"
                     "    TransformerEncoder(num_heads=2, d_model=16, dff=32)\n"
                     "    GlobalAveragePooling1D()\n    Output(3)\n}\n")
    texts = {}
    for level in ("-O2", "-O3"):
        out = tmp_path / f"enc{level}.py"
        assert main(["build", str(model), "--target", "pytorch", level, "-o", str(out)]) == 0
        texts[level] = out.read_text()
        assert "with kernel_autotuning(AUTOTUNE):" in texts[level]
    assert "AUTOTUNE = False" in texts["-O2"] and "AUTOTUNE = True" in texts["-O3"]
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((2, 6, 16)).astype(np.float32))
    done = subprocess.run([sys.executable, "-I", str(tmp_path / "enc-O3.py"), "--input", str(x),
                           "-o", str(tmp_path / "y.npy")], capture_output=True, text=True,
                          cwd="/", check=False)
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "y.npy").shape == (2, 3)
