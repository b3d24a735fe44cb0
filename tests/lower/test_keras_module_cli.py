"""The emitted Keras module's command line (`neuralc.lower.predict_cli`, inlined as its
`main()`): bad input files, weight files, devices and output paths are `error:` lines with exit
status 1, never tracebacks. Each case once raised numpy's, safetensors' or TensorFlow's
exception out of `python keras_model.py` (its main() called np.load and np.save unchecked)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.lower.keras import TARGET, load_artifact
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import init_weights, save_weights

pytest.importorskip("tensorflow")

SMALL = """network Small {
  input: (None, None, 8)
  layers:
    Dense(16, activation="relu")
    GlobalAveragePooling1D()
    Output(3, activation="softmax")
}
"""
OTHER = SMALL.replace("Dense(16", "Dense(5")
TOKENS = """network Tokens {
  input: (6,)
  layers:
    Embedding(input_dim=20, output_dim=4)
    GlobalAveragePooling1D()
    Output(2)
}
"""


def _module(tmp_path: Path, source: str, name: str) -> ModuleType:
    network = check_program(parse_text(source, "m.neural")).networks[0].network
    path = tmp_path / f"{name}.py"
    path.write_bytes(TARGET.emit(network, BuildOptions("m.neural")))
    return load_artifact(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """x.npy fits Small (any length); bad.npy is not a .npy file; other.st belongs to another
    model; small.py and tokens.py are the emitted modules."""
    root = tmp_path_factory.mktemp("keras_cli")
    np.save(root / "x.npy", np.ones((4, 3, 8), np.float32))
    np.save(root / "x5.npy", np.ones((4, 3, 5), np.float32))
    np.save(root / "ids.npy", np.array([[1, 2, 3, 4, 5, 6]]))
    np.save(root / "far.npy", np.array([[1, 2, 3, 4, 5, 60]]))
    np.save(root / "floats.npy", np.ones((1, 6)))
    (root / "bad.npy").write_text("not an array")
    (root / "folder").mkdir()
    for source, name in ((SMALL, "good"), (OTHER, "other")):
        net = check_program(parse_text(source, "m.neural")).networks[0].network
        save_weights(root / f"{name}.st", init_weights(net, 0))
    return root


@pytest.fixture(scope="module")
def small(files: Path) -> ModuleType:
    return _module(files, SMALL, "small")


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
            "error: input 'input' has shape (4, 3, 5) but the model takes (None, None, 8)",
        ),
        (["--input", "bogus=x.npy"], "error: 'bogus' is not an input of the model"),
        (["--input", "x.npy", "--weights", "nope.st"], "error: weight file 'nope.st' does not"),
        (["--input", "x.npy", "--weights", "bad.npy"], "error: cannot read weight file 'bad.npy'"),
        (["--input", "x.npy", "--weights", "other.st"], "error: other.st: layer 'dense': Layer dense weight shape (8, 16)"),
        (["--input", "x.npy", "--device", "cuda:3"], "error: the model is placed on cuda:3"),
    ],
)
def test_predict_errors_are_messages(
    argv: list[str],
    message: str,
    files: Path,
    small: ModuleType,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files)
    code, err = _exit(capsys, small.main, *argv, "-o", "out.npy")
    assert code == 1 and err.startswith(message), err
    assert "Traceback" not in err and not (files / "out.npy").exists()


def test_token_ids_are_checked(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = _module(files, TOKENS, "tokens")
    code, err = _exit(capsys, module.main, "--input", str(files / "floats.npy"), "-o", "t.npy")
    assert code == 1 and "holds float64 values but the model takes integer ids" in err
    module.main(["--input", str(files / "ids.npy"), "-o", str(files / "t.npy")])
    assert np.load(files / "t.npy").shape == (1, 2)


def test_predict_output_folder_must_exist(
    files: Path, small: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    out = files / "missing" / "y.npy"
    code, err = _exit(capsys, small.main, "--input", str(files / "x.npy"), "-o", str(out))
    assert code == 1 and f"error: cannot write '{out}': folder" in err


def test_predict_writes_the_output_atomically_and_equals_run(
    files: Path, small: ModuleType
) -> None:
    x = np.load(files / "x.npy")
    small.main(["--input", str(files / "x.npy"), "--weights", str(files / "good.st"),
                "-o", str(files / "y_out")])
    written = np.load(files / "y_out.npy")  # np.save's suffix rule
    assert written.shape == (4, 3)
    np.testing.assert_array_equal(written, small.run({"input": x}, str(files / "good.st")))
    assert [p.name for p in files.iterdir() if p.name.startswith(".tmp")] == []
