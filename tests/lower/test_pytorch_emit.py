"""The generated PyTorch module as a file: golden text, running it as a script, placement on
devices, structure of repeats, diagnostics, and every conformance program the checker accepts.

Regenerate the golden file with `NEURALC_UPDATE_GOLDEN=1 pytest tests/lower/test_pytorch_emit.py`.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralc import __version__
from neuralc.diagnostics import CompileError, SourceLocation
from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_file, parse_text
from neuralc.ir.core import Network, Operation
from neuralc.ir.types import TensorType
from neuralc.layers import LayerSpec
from neuralc.lower.pytorch import TARGET, import_artifact, lower
from neuralc.lower.target import BuildOptions, get_target
from neuralc.lower.weights import LayerInstance, init_weights, network_weight_specs, save_weights

torch = pytest.importorskip("torch")

GOLDEN = Path(__file__).parent / "golden"
CUDA = torch.cuda.is_available() and not os.environ.get("NEURALC_NO_CUDA")


def compile_net(src: str, path: str = "m.neural") -> Network:
    return check_program(parse_text(src, path)).networks[0].network


def emit(net: Network, path: Path, **options: object) -> Path:
    path.write_bytes(TARGET.emit(net, BuildOptions("m.neural", **options)))  # type: ignore[arg-type]
    return path


def test_target_contract() -> None:
    target = get_target("pytorch")
    assert target is TARGET and target.name == "pytorch" and target.suffix == ".py"


def test_golden_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    net = check_program(parse_file("small_convnet.neural")).networks[0].network
    text = TARGET.emit(net, BuildOptions("small_convnet.neural")).decode()
    text = text.replace(f"neuralc {__version__} ", "neuralc <version> ")
    golden = GOLDEN / "small_convnet.py"
    if os.environ.get("NEURALC_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), "regenerate with NEURALC_UPDATE_GOLDEN=1"


def test_golden_module_is_what_it_says(tmp_path: Path) -> None:
    """The golden file is a working module: its keys are the weight file's."""
    net = check_program(parse_file(str(GOLDEN / "small_convnet.neural"))).networks[0].network
    module = import_artifact(GOLDEN / "small_convnet.py")
    with torch.device("meta"):
        model = module.SmallConvNet()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        k: s.shape for k, s in network_weight_specs(net).items()
    }
    source = (GOLDEN / "small_convnet.py").read_text()
    for needle in (
        "nn.ModuleList([ConvBlock(index) for index in range(2)])",
        "for block in self.conv_block:  # small_convnet.neural:9",
        "return inputs + x",
        "def build_model(",
        "def load_weights(",
        'if __name__ == "__main__":',
    ):
        assert needle in source
    assert "neuralc." not in source.replace("neuralc.neural", "")  # imports nothing from us


def test_runs_as_a_script(tmp_path: Path) -> None:
    net = compile_net("""network Tiny { input: (3, 4) layers:
        Dense(5, activation="relu")
        GlobalAveragePooling1D()
        Output(2) }""")
    artifact = emit(net, tmp_path / "tiny.py")
    weights = tmp_path / "w.safetensors"
    save_weights(weights, init_weights(net, 4))
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(
        [
            sys.executable,
            str(artifact),
            "--weights",
            str(weights),
            "--input",
            str(tmp_path / "x.npy"),
            "-o",
            str(tmp_path / "y.npy"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    expected = TARGET.predict(artifact, weights, {"input": x}, "cpu")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)


def test_without_weights_torch_initialization_is_seeded(tmp_path: Path) -> None:
    net = compile_net("network S { input: (4,) layers: Dense(3) }")
    module = import_artifact(emit(net, tmp_path / "a.py", seed=5))
    first, second = module.build_model(), module.build_model()
    torch.testing.assert_close(first.dense.weight, second.dense.weight)
    other = import_artifact(emit(net, tmp_path / "b.py", seed=6)).build_model()
    assert not torch.equal(first.dense.weight, other.dense.weight)


# Repeats ----------------------------------------------------------------------------------------

NESTED = """
define Inner {
  Dense(4) * 2
  Dropout(0.1)
}
define Outer {
  Dense(4)
  ResidualConnection { Dense(4) }
  Inner * 2
}
network Nest {
  input: (6,)
  layers:
    Inner * 2
    Dense(5) * 3
    Outer * 2
    ResidualConnection { Dense(4, activation="tanh") } * 2
    Output(2)
}
"""


def test_nested_repeats_choose_constructors_by_index(tmp_path: Path) -> None:
    net = compile_net(NESTED)
    artifact = emit(net, tmp_path / "nest.py")
    source = artifact.read_text()
    assert "nn.Linear(6, 4) if (index, j) == (0, 0) else nn.Linear(4, 4) for j in range(2)" in (
        source
    )
    assert "nn.Linear(4, 5) if index == 0 else nn.Linear(5, 5) for index in range(3)" in source
    module = import_artifact(artifact)
    model = module.build_model()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        k: s.shape for k, s in network_weight_specs(net).items()
    }
    weights = tmp_path / "w.safetensors"
    save_weights(weights, init_weights(net, 0))
    y = TARGET.predict(artifact, weights, {"input": np.ones((3, 6), np.float32)}, "cpu")
    assert y.shape == (3, 2)


def test_repeated_decoders_receive_the_encoder_output(tmp_path: Path) -> None:
    net = compile_net("""define Dec { TransformerDecoder(num_heads=2, dff=8) Dropout(0.1) }
        network S { input: (4, 8) layers:
        TransformerEncoder(num_heads=2, dff=8) * 2
        Dense(8)
        Dec * 2 }""")
    source = emit(net, tmp_path / "s.py").read_text()
    assert "def forward(self, x: torch.Tensor, transformer_encoder: torch.Tensor)" in source
    assert "x = block(x, transformer_encoder)" in source
    module = import_artifact(tmp_path / "s.py")
    y = module.predict(module.build_model(), np.zeros((2, 4, 8), np.float32))
    assert y.shape == (2, 4, 8)


# Devices ----------------------------------------------------------------------------------------

PLACED = """network P { input: (4,) layers:
    Dense(8, activation="relu") @ "cuda:0"
    Dense(3) @ "cpu"
    Output(2) }"""


@pytest.mark.skipif(CUDA, reason="checks the diagnostic of a machine without CUDA")
def test_cuda_placement_without_cuda_names_the_layer(tmp_path: Path) -> None:
    net = compile_net(PLACED)
    artifact = emit(net, tmp_path / "p.py")
    module = import_artifact(artifact)
    with pytest.raises(
        RuntimeError,
        match=r"layer 'dense' is placed on cuda:0 but this machine "
        r"has no CUDA device; run with --device cpu",
    ):
        module.build_model()
    weights = tmp_path / "w.safetensors"
    save_weights(weights, init_weights(net, 0))
    y = TARGET.predict(artifact, weights, {"input": np.ones((2, 4), np.float32)}, "cpu")
    assert y.shape == (2, 2)


def test_mixed_placement_moves_data_at_boundaries(tmp_path: Path) -> None:
    net = compile_net(PLACED)
    source = emit(net, tmp_path / "p.py").read_text()
    assert "'dense': 'cuda:0'" in source.replace('"', "'")
    assert 'x = x.to(self.devices["dense"])' in source
    assert 'x = x.to(self.devices["dense_1"])' in source
    assert 'self.devices["output"]' not in source  # output stays where dense_1 left the data
    overridden = emit(net, tmp_path / "cpu.py", device="cpu").read_text()
    assert "PLACEMENT" not in overridden and 'DEVICE = "cpu"' in overridden
    module = import_artifact(tmp_path / "cpu.py")
    assert module.build_model().device == torch.device("cpu")


def test_placement_inside_a_repeated_block_is_a_diagnostic(tmp_path: Path) -> None:
    net = compile_net("""define B { Dense(4) @ "cuda:0"
        Dense(4) }
        network P { input: (4,) layers:
        B * 2 }""")
    with pytest.raises(CompileError) as info:
        emit(net, tmp_path / "p.py")
    diagnostic = info.value.diagnostics[0]
    assert "placed on cuda:0 inside 'b'" in diagnostic.message
    assert diagnostic.loc is not None and diagnostic.loc.line == 1
    emit(net, tmp_path / "p.py", device="cpu")  # one device for all: fine


@pytest.mark.gpu
def test_mixed_cuda_and_cpu_placement_runs(tmp_path: Path) -> None:
    net = compile_net(PLACED)
    artifact = emit(net, tmp_path / "p.py")
    weights = tmp_path / "w.safetensors"
    save_weights(weights, init_weights(net, 0))
    x = {"input": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)}
    placed = TARGET.predict(artifact, weights, x, "")
    on_cpu = TARGET.predict(artifact, weights, x, "cpu")
    on_gpu = TARGET.predict(artifact, weights, x, "cuda")
    np.testing.assert_allclose(placed, on_cpu, atol=1e-5)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-5)


GPU_PROGRAMS = [
    """network G { input: (6,) layers:
        Embedding(30, 8)
        TransformerEncoder(num_heads=2, dff=16) * 2
        TransformerDecoder(num_heads=2, dff=16) * 2
        Dense(30, activation="softmax") }""",
    """network C { input: (9, 9, 2) layers:
        Conv2D(4, (3, 3), strides=(2, 2), padding="same", activation="relu")
        AveragePooling2D((2, 2), padding="same")
        Conv2DTranspose(3, 3, strides=2, padding="same")
        BatchNormalization()
        Flatten()
        Output(3)
        execution { device: "gpu" } }""",
    """network R { input: (5, 4) layers:
        MultiHeadAttention(num_heads=2, key_dim=3) @ "auto"
        LSTM(6, return_sequences=true)
        GRU(3) }""",
]


@pytest.mark.gpu
@pytest.mark.parametrize("src", GPU_PROGRAMS)
def test_cuda_matches_cpu(src: str, tmp_path: Path) -> None:
    net = compile_net(src)
    artifact = emit(net, tmp_path / "g.py")
    weights = tmp_path / "w.safetensors"
    save_weights(weights, init_weights(net, 0))
    rng = np.random.default_rng(0)
    value = net.inputs[0]
    shape = (3, *value.type.shape[1:])
    x = (
        rng.integers(0, 30, shape)
        if not value.type.is_float
        else rng.standard_normal(shape).astype(np.float32)
    )
    on_cpu = TARGET.predict(artifact, weights, {value.name: x}, "cpu")
    for device in ("", "cuda", "cuda:0"):
        on_gpu = TARGET.predict(artifact, weights, {value.name: x}, device)
        np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-3, rtol=2e-3)


# Diagnostics ------------------------------------------------------------------------------------


def test_layer_without_lowering_is_a_diagnostic_at_its_line() -> None:
    spec = LayerSpec(name="Teleport", params=(), infer=lambda a, i: i[0], doc="", category="x")
    loc = SourceLocation("m.neural", 7, 5)
    op = Operation("nn.teleport", "teleport", [], [TensorType(("N", 4))], {}, loc)
    inst = LayerInstance(
        "teleport", op, spec, {}, (TensorType(("N", 4)),), TensorType(("N", 4)), None
    )
    with pytest.raises(CompileError) as info:
        lower(inst)
    assert info.value.diagnostics[0].loc == loc
    assert "no lowering for Teleport" in info.value.diagnostics[0].message


def test_build_checks_the_weight_file(tmp_path: Path) -> None:
    net = compile_net("network S { input: (4,) layers: Dense(3) }")
    other = compile_net("network S { input: (5,) layers: Dense(3) }")
    weights = tmp_path / "w.safetensors"
    save_weights(weights, init_weights(other, 0))
    with pytest.raises(CompileError, match="'dense.weight' has shape"):
        TARGET.emit(net, BuildOptions("m.neural", weights=weights))


# The corpus -------------------------------------------------------------------------------------


def _accepted(directory: Path) -> list[Path]:
    out = []
    for path in sorted(directory.glob("*/*.neural")):
        try:
            check_program(parse_file(str(path)))
        except CompileError:
            continue
        out.append(path)
    return out


def test_every_accepted_conformance_program_emits(conformance_dir: Path, tmp_path: Path) -> None:
    """Full-size models, instantiated on the meta device: the state_dict keys and shapes are the
    weight file's."""
    accepted = _accepted(conformance_dir)
    assert len(accepted) >= 15
    for path in accepted:
        for built in check_program(parse_file(str(path))).networks:
            net = built.network
            artifact = tmp_path / f"{path.stem}_{net.name}.py"
            artifact.write_bytes(TARGET.emit(net, BuildOptions(str(path))))
            module = import_artifact(artifact)
            root = getattr(module, inspect.signature(module.build_model).return_annotation)
            with torch.device("meta"):
                model = root()
            state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
            specs = {k: s.shape for k, s in network_weight_specs(net).items()}
            assert state == specs, f"{path.name}: {net.name}"
            trainable = sum(v.numel() for v in model.parameters())
            assert trainable == built.params, f"{path.name}: {net.name}"


SINGLE_REPEATS = """define Block {
  Conv2D(2, 3, padding="same")
  BatchNormalization()
}
network M {
  input: (5, 4, 2)
  layers:
    Block * 1
    Dense(3) * 1
    Flatten()
    Output(2)
}
"""


@pytest.mark.parametrize("passes", [["-O1"], ["-O0", "--passes", "unroll-repeat"]])
def test_numbered_copies_outside_a_repeat_are_module_list_items(
    passes: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-O1 inlines `* 1` (and unroll-repeat unrolls) into layers named `block.0.conv2d`,
    `dense.0`: the nn-stage module once emitted `self.dense.0 = ...`, a SyntaxError."""
    from neuralc.cli import main

    model = tmp_path / "m.neural"
    model.write_text(SINGLE_REPEATS)
    weights, x = tmp_path / "w.safetensors", tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).normal(size=(2, 5, 4, 2)).astype(np.float32))
    assert main(["init", str(model), "-o", str(weights)]) == 0
    outputs = []
    for options in (["-O0"], passes):
        out = tmp_path / f"y{len(outputs)}.npy"
        argv = ["predict", str(model), "--target", "pytorch", "--weights", str(weights),
                "--input", str(x), "-o", str(out), "--device", "cpu", *options]
        assert main(argv) == 0, capsys.readouterr().err
        outputs.append(np.load(out))
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=0, atol=1e-5)
