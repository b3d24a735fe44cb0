"""`build`, `init` and `predict` check a program as `check` does: `--network NAME` checks only
that network, and a layer's user error is a diagnostic, not an internal error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuralc.cli import main

pytest.importorskip("torch")

# A valid network A beside a network B with an error (line 9, column 11).
VALID_AND_BROKEN = """network A {
  input: (4,)
  layers:
    Dense(2)
}
network B {
  input: (4,)
  layers:
    Dense(-3)
}
"""

DECODER_WITHOUT_ENCODER = """network G {
  input: (6, 16)
  layers:
    TransformerDecoder(num_heads=2, dff=32, cross_attention=true)
    GlobalAveragePooling1D()
}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


COMMANDS = {
    "build": ["--target", "pytorch", "-o", "out.py"],
    "init": ["-o", "w.safetensors"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_network_option_compiles_only_that_network(
    workdir: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """As `check --network A`: B's error does not stop A's build or weights."""
    (workdir / "two.neural").write_text(VALID_AND_BROKEN)
    extra = COMMANDS[command]
    code, out, err = cli(capsys, command, "two.neural", *extra, "--network", "A")
    assert code == 0, err
    assert out.strip() == extra[-1] and (workdir / extra[-1]).exists()
    for network in ([], ["--network", "B"]):
        code, _, err = cli(capsys, command, "two.neural", *extra[:-1], "again", *network)
        assert code == 1
        assert err.startswith("two.neural:9:11: error: Dense units must be >= 1, got -3"), err
        assert not (workdir / "again").exists()
    code, _, err = cli(capsys, command, "two.neural", *extra, "--network", "Q")
    assert code == 1 and "no network named 'Q' in two.neural" in err


def test_predict_network_option_compiles_only_that_network(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "two.neural").write_text(VALID_AND_BROKEN)
    assert cli(capsys, "init", "two.neural", "--network", "A", "-o", "w.safetensors")[0] == 0
    np.save(workdir / "x.npy", np.ones((3, 4), np.float32))
    code, _, err = cli(
        capsys,
        "predict",
        "two.neural",
        "--target",
        "pytorch",
        "--network",
        "A",
        "--weights",
        "w.safetensors",
        "--input",
        "x.npy",
        "-o",
        "y.npy",
    )
    assert code == 0, err
    assert np.load(workdir / "y.npy").shape == (3, 2)


@pytest.mark.parametrize("command", ["check", *sorted(COMMANDS)])
def test_cross_attention_without_an_encoder_is_a_diagnostic(
    workdir: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    (workdir / "g.neural").write_text(DECODER_WITHOUT_ENCODER)
    extra = [] if command == "check" else COMMANDS[command]
    code, _, err = cli(capsys, command, "g.neural", *extra)
    assert code == 1, err
    lines = err.splitlines()
    assert lines[0] == (
        "g.neural:4:45: error: TransformerDecoder cross_attention=true has no "
        "encoder output to attend to"
    )
    assert lines[2] == "  " + " " * 44 + "^"
    assert lines[3].startswith(
        "note: cross-attention attends to the output of a TransformerEncoder"
    )
    assert "internal error" not in err and "Traceback" not in err
