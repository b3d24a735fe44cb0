"""The emitted PyTorch module's own command line (`neuralc.lower.module_cli`, inlined into the
module): bad input files, weight files, devices and output paths are `error:` lines with exit
status 1, bad counts are usage errors (exit 2), never tracebacks. Each case once raised numpy's,
safetensors' or torch's exception out of `python model.py`."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.lower.pytorch import TARGET, import_artifact
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import init_weights, save_weights

torch = pytest.importorskip("torch")

SMALL = """network Small {
  input: (8,)
  layers:
    Dense(16, activation="relu")
    Output(3, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  train { epochs: 1 batch_size: 4 }
}
"""
OTHER = SMALL.replace("Dense(16", "Dense(5")
TWO = """network Two {
  input: { a: (4,), b: (6,) }
  layers:
    a: { Dense(3) }
    b: { Dense(5) }
    Concatenate()
    Output(3, activation="softmax")
}
"""


def _module(tmp_path: Path, source: str, name: str) -> ModuleType:
    network = check_program(parse_text(source, "m.neural")).networks[0].network
    path = tmp_path / f"{name}.py"
    path.write_bytes(TARGET.emit(network, BuildOptions("m.neural")))
    return import_artifact(path)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """x.npy fits Small; bad.npy is not a .npy file; other.st belongs to another model."""
    np.save(tmp_path / "x.npy", np.ones((4, 8), np.float32))
    np.save(tmp_path / "x5.npy", np.ones((4, 5), np.float32))
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.ones((4, 8), np.float32))
    np.save(tmp_path / "data" / "y.npy", np.zeros(4, np.int64))
    np.save(tmp_path / "a.npy", np.ones((4, 4), np.float32))
    (tmp_path / "bad.npy").write_text("not an array")
    (tmp_path / "folder").mkdir()
    for source, name in ((SMALL, "good"), (OTHER, "other")):
        net = check_program(parse_text(source, "m.neural")).networks[0].network
        save_weights(tmp_path / f"{name}.st", init_weights(net, 0))
    return tmp_path


def _exit(capsys: pytest.CaptureFixture[str], run: object, *argv: str) -> tuple[object, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        run(list(argv))  # type: ignore[operator]
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "nope.npy"], "error: input file 'nope.npy' does not exist"),
        (["--input", "bad.npy"], "error: cannot read input file 'bad.npy': not a .npy file"),
        (["--input", "folder"], "error: input file 'folder' is a directory"),
        (
            ["--input", "x5.npy"],
            "error: input 'input' has shape (4, 5) but the model takes (None, 8) (batch first)",
        ),
        (["--input", "bogus=x.npy"], "error: 'bogus' is not an input of the model"),
        (["--input", "x.npy", "--input", "x.npy"], "error: input 'input' is given twice"),
        (["--input", "x.npy", "--weights", "nope.st"], "error: weight file 'nope.st' does not"),
        (["--input", "x.npy", "--weights", "bad.npy"], "error: cannot read weight file 'bad.npy'"),
        (
            ["--input", "x.npy", "--weights", "other.st"],
            "error: weight file 'other.st' does not fit the model: Error(s) in loading",
        ),
        (["--input", "x.npy", "--device", "bogus"], "error: Expected one of cpu"),
    ],
)
def test_predict_errors_are_messages(
    argv: list[str],
    message: str,
    files: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files)
    module = _module(files, SMALL, "small")
    code, err = _exit(capsys, module.main, *argv, "-o", "out.npy")
    assert code == 1 and err.startswith(message), err
    assert "Traceback" not in err and not (files / "out.npy").exists()


def test_predict_output_folder_must_exist(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = _module(files, SMALL, "small")
    out = files / "missing" / "y.npy"
    code, err = _exit(capsys, module.main, "--input", str(files / "x.npy"), "-o", str(out))
    assert code == 1 and f"error: cannot write '{out}': folder" in err


def test_predict_names_the_missing_input_of_a_multi_input_model(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _module(files, TWO, "two")
    code, err = _exit(capsys, module.main, "--input", f"a={files / 'a.npy'}", "-o", "y.npy")
    assert code == 1 and err.splitlines() == [
        "error: no array for input 'b'",
        "note: add --input b=X.npy",
    ]
    code, err = _exit(capsys, module.main, "--input", str(files / "a.npy"), "-o", "y.npy")
    assert code == 1 and "the model has 2 inputs; name each one" in err


def test_predict_writes_the_output(files: Path) -> None:
    module = _module(files, SMALL, "small")
    module.main(["--input", str(files / "x.npy"), "--weights", str(files / "good.st"),
                 "-o", str(files / "y_out")])
    assert np.load(files / "y_out.npy").shape == (4, 3)  # np.save's suffix rule
    assert [p.name for p in files.iterdir() if p.name.startswith(".tmp")] == []


@pytest.mark.parametrize("option", ["--epochs", "--batch-size"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_train_counts_are_usage_errors(
    option: str, value: str, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """0 and negative counts once trained nothing (or on empty batches) and reported success."""
    module = _module(files, SMALL, "small")
    code, err = _exit(capsys, lambda a: module.train_main(module.build_model,
                                                          module.TRAIN_CONFIG, a),
                      "--data", str(files / "data"), option, value, "--output-dir", str(files / "o"))
    assert code == 2 and f"argument {option}: must be an integer from 1" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weights", "nope.st"], "error: weight file 'nope.st' does not exist"),
        (["--weights", "other.st"], "error: weight file 'other.st' does not fit the model"),
        (["--device", "bogus"], "error: Expected one of cpu"),
        (["--output-dir", "x.npy"], "error: --output-dir 'x.npy' is a file, not a directory"),
        (["--metrics-json", "folder"], "error: --metrics-json 'folder' is a directory"),
    ],
)
def test_train_errors_are_messages_before_training(
    extra: list[str],
    message: str,
    files: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files)
    module = _module(files, SMALL, "small")
    argv = ["--data", "data", "--output-dir", "o", *extra]
    code, err = _exit(capsys, lambda a: module.train_main(module.build_model,
                                                          module.TRAIN_CONFIG, a), *argv)
    assert code == 1 and err.startswith(message), err
    assert "Traceback" not in err and not (files / "o" / "weights.safetensors").exists()


def test_predict_refuses_values_beyond_float32(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """float64 past float32's range became infinities with only numpy's warning."""
    huge = np.ones((4, 8))
    huge[2, 5] = 1e300
    np.save(files / "huge.npy", huge)
    module = _module(files, SMALL, "small")
    code, err = _exit(capsys, module.main, "--input", str(files / "huge.npy"), "-o", "y.npy")
    assert code == 1 and "input 'input' holds 1e+300 at index (2, 5), beyond float32's" in err
