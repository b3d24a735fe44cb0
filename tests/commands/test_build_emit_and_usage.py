"""`build --emit STAGE` writes what `neuralc opt --emit STAGE` prints (and reads back);
options that do not apply are usage errors; `--input NAME=` names a real input; `--weights`
reaches the emitters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuralc.cli import main
from neuralc.lower.target import DEFAULT_OPSET, BuildOptions

MLP = """network Mlp {
  input: (3, 4)
  layers:
    Dense(8, activation="relu")
    Dense(4) * 2
    GlobalAveragePooling1D()
    Output(2, activation="softmax")
}
"""

BRANCHES = """network Both {
  input: { a: (4,), b: (2,) }
  layers:
    a: { Dense(3) }
    b: { Dense(3) }
    Add()
}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlp.neural").write_text(MLP)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    assert caught.value.code == 2
    return capsys.readouterr().err


# build --emit -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "stage"), [("0", "nn"), ("2", "kernel"), ("3", "kernel")])
def test_build_emit_round_trips_through_opt(workdir: Path, capsys: pytest.CaptureFixture[str],
                                            level: str, stage: str) -> None:
    code, nn_text, err = cli(capsys, "check", "mlp.neural", "--emit", "nn")
    assert code == 0, err
    (workdir / "m.nir").write_text(nn_text)
    code, expected, err = cli(capsys, "opt", "m.nir", "-O", level, "--emit", stage)
    assert code == 0, err

    code, out, err = cli(capsys, "build", "mlp.neural", "--target", "pytorch", "-O", level,
                         "--emit", stage, "-o", "out.nir")
    assert code == 0, err
    assert out == "out.nir\n"
    text = (workdir / "out.nir").read_text()
    assert text == expected
    assert text.startswith("module") and text.endswith("}\n")
    assert not (workdir / "mlp.py").exists()
    if level == "3":
        assert "autotune = true" in text.splitlines()[0]

    code, again, err = cli(capsys, "opt", "out.nir")
    assert code == 0, err
    assert again == text

    code, out, err = cli(capsys, "build", "mlp.neural", "--target", "pytorch", "-O", level,
                         "--emit", stage)
    assert code == 0, err
    assert out == text


def test_build_emit_output_is_atomic(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "adir").mkdir()
    code, _, err = cli(capsys, "build", "mlp.neural", "--target", "pytorch", "--emit", "nn",
                       "-o", "adir")
    assert code == 1 and err.startswith("neuralc: error: cannot write 'adir'"), err


# usage errors -------------------------------------------------------------------------------------


def test_predict_rejects_emit(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "predict", "mlp.neural", "--target", "pytorch", "--weights",
                      "w.safetensors", "--input", "x.npy", "-o", "y.npy", "--emit", "kernel")
    assert "neuralc predict: error: argument --emit:" in err
    assert "neuralc build --target pytorch --emit kernel" in err
    assert not (workdir / "y.npy").exists()


def test_predict_help_does_not_offer_emit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--emit" not in capsys.readouterr().out


@pytest.mark.parametrize("target", ["pytorch", "tensorflow"])
@pytest.mark.parametrize("command", ["build", "predict"])
def test_opset_applies_to_onnx_only(workdir: Path, capsys: pytest.CaptureFixture[str],
                                    target: str, command: str) -> None:
    extra = ([] if command == "build" else
             ["--weights", "w.safetensors", "--input", "x.npy", "-o", "y.npy"])
    err = usage_error(capsys, command, "mlp.neural", "--target", target, "--opset", "13",
                      *extra)
    assert (f"neuralc {command}: error: argument --opset: applies to --target onnx only, "
            f"not --target {target}") in err
    assert list(workdir.iterdir()) == [workdir / "mlp.neural"]


def test_opset_with_onnx(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx = pytest.importorskip("onnx")
    for argv, opset in ((["--opset", "17"], 17), ([], DEFAULT_OPSET)):
        code, _, err = cli(capsys, "build", "mlp.neural", "--target", "onnx", "-o", "m.onnx",
                           *argv)
        assert code == 0, err
        model = onnx.load(str(workdir / "m.onnx"))
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [opset]


# predict --input NAME= ----------------------------------------------------------------------------


def _branches(workdir: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    (workdir / "multi.neural").write_text(BRANCHES)
    assert cli(capsys, "init", "multi.neural", "-o", "w.safetensors")[0] == 0
    np.save(workdir / "a.npy", np.zeros((2, 4), np.float32))
    np.save(workdir / "b.npy", np.zeros((2, 2), np.float32))
    return ["predict", "multi.neural", "--target", "pytorch", "--weights", "w.safetensors",
            "-o", "y.npy", "--input", "a=a.npy"]


def test_predict_input_name_that_is_no_input(workdir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = _branches(workdir, capsys)
    code, _, err = cli(capsys, *argv, "--input", "c=b.npy")
    assert code == 1
    assert err.splitlines() == ["neuralc: error: 'c' is not an input of network 'Both'",
                                "note: inputs: a, b"]


def test_predict_input_name_did_you_mean(workdir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv = _branches(workdir, capsys)
    code, _, err = cli(capsys, *argv, "--input", "B=b.npy")
    assert code == 1
    assert err.splitlines() == ["neuralc: error: 'B' is not an input of network 'Both'",
                                "note: did you mean 'b'?", "note: inputs: a, b"]


def test_predict_single_input_misnamed(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "init", "mlp.neural", "-o", "w.safetensors")[0] == 0
    np.save(workdir / "x.npy", np.zeros((2, 3, 4), np.float32))
    argv = ["predict", "mlp.neural", "--target", "pytorch", "--weights", "w.safetensors",
            "-o", "y.npy", "--input"]
    code, _, err = cli(capsys, *argv, "inptu=x.npy")
    assert code == 1
    assert err.splitlines()[:2] == ["neuralc: error: 'inptu' is not an input of network 'Mlp'",
                                    "note: did you mean 'input'?"]
    # A file whose name holds "=" is still a file for a one-input network.
    np.save(workdir / "k=v.npy", np.zeros((2, 3, 4), np.float32))
    code, _, err = cli(capsys, *argv, "k=v.npy")
    assert code == 0, err


def test_predict_unnamed_inputs_still_ask_for_names(workdir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    argv = _branches(workdir, capsys)
    code, _, err = cli(capsys, *argv, "--input", "b.npy")
    assert code == 1
    assert "has 2 inputs; name each one" in err


# --weights ---------------------------------------------------------------------------------------


class _RecordingTarget:
    def __init__(self, name: str, suffix: str) -> None:
        self.name, self.suffix = name, suffix
        self.calls: list[tuple[BuildOptions, Path | None]] = []

    def emit(self, network: object, options: BuildOptions,
             artifact: Path | None = None) -> bytes:
        self.calls.append((options, artifact))
        return b"# emitted\n"


@pytest.mark.parametrize("target", ["pytorch", "tensorflow"])
def test_build_passes_weights_and_the_real_artifact_path(
        workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        target: str) -> None:
    """The PyTorch and Keras modules spell --weights relative to themselves: they must be given
    the weight file and the artifact's final path (not a staging path)."""
    import neuralc.commands.build as build

    assert cli(capsys, "init", "mlp.neural", "-o", "w.safetensors")[0] == 0
    recording = _RecordingTarget(target, ".py")
    monkeypatch.setattr(build, "get_target", lambda name: recording)
    code, _, err = cli(capsys, "build", "mlp.neural", "--target", target, "--weights",
                       "w.safetensors", "-o", "sub/m.py")
    assert code == 0, err
    [(options, artifact)] = recording.calls
    assert options.weights == Path("w.safetensors")
    assert artifact == Path("sub/m.py")
    assert (workdir / "sub" / "m.py").read_bytes() == b"# emitted\n"


def test_build_help_says_what_weights_do(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "the default of the others" not in help_text
    assert "record its path (relative to the module) as the weight file they load" in help_text


def test_tensorflow_refuses_passes_keras_cannot_express(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The -O presets stop at the nn stage for tensorflow; asking for more explicitly is an
    error, not silently dropped (the output used to be byte-identical to -O0's)."""
    lowering = "unroll-repeat,lower-nn-to-tensor,fuse-ffn"
    assert main(["build", "mlp.neural", "--target", "tensorflow", "--passes", lowering]) == 1
    err = capsys.readouterr().err
    assert "--passes lowers past the nn stage (lower-nn-to-tensor, fuse-ffn)" in err
    assert "--target pytorch" in err
    assert main(["build", "mlp.neural", "--target", "tensorflow", "--passes",
                 "unroll-repeat,canonicalize", "-o", "ok.py"]) == 0


@pytest.mark.parametrize("stage", ["tensor", "kernel"])
def test_tensorflow_emit_past_nn_is_a_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str], stage: str
) -> None:
    """Like --opset outside onnx: exit 2 with the usage line, before any work."""
    err = usage_error(capsys, "build", "mlp.neural", "--target", "tensorflow", "--emit", stage)
    assert err.startswith("usage: neuralc build")
    assert f"--emit {stage}: the tensorflow target is emitted from the nn stage" in err
    assert "--target pytorch" in err
    assert cli(capsys, "build", "mlp.neural", "--target", "tensorflow", "--emit", "nn")[0] == 0
