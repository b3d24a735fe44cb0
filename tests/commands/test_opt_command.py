"""`neuralc opt FILE.nir`: parse, verify and print IR text."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralc.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "ir" / "golden"


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.nir")), ids=lambda p: p.name)
def test_opt_prints_golden_ir_unchanged(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["opt", str(path)]) == 0
    assert capsys.readouterr().out == path.read_text()


def test_opt_round_trips_check_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      conformance_dir: Path) -> None:
    assert main(["check", str(conformance_dir / "seed/seq2seq_fixed.neural"), "--emit",
                 "nn"]) == 0
    ir_text = capsys.readouterr().out
    ir_file = tmp_path / "m.nir"
    ir_file.write_text(ir_text)
    assert main(["opt", str(ir_file)]) == 0
    assert capsys.readouterr().out == ir_text
    out_file = tmp_path / "out.nir"
    assert main(["opt", str(ir_file), "-o", str(out_file)]) == 0
    assert out_file.read_text() == ir_text


def test_opt_reports_verifier_errors_in_the_ir_file(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        'module {\n'
        '  network @Net(%input: f32[N,8]) {\n'
        '    %dense = nn.dense(%input) {units = 4, activation = "linear", use_bias = true} '
        '-> f32[N,5] loc("m.neural":4:5)\n'
        '    return(%dense)\n'
        '  }\n'
        '}\n'
    )
    ir_file = tmp_path / "bad.nir"
    ir_file.write_text(text)
    assert main(["opt", str(ir_file)]) == 1
    err = capsys.readouterr().err
    # At the op's line in the .nir (with its text and a caret), then where it came from.
    assert err.startswith(f"{ir_file}:3:5: error: IR verification failed: "), err
    assert err.splitlines()[1] == "  " + text.splitlines()[2]
    assert "m.neural:4:5: note: the op comes from here" in err
    assert "f32[N,4]" in err and "f32[N,5]" in err


def test_opt_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ir_file = tmp_path / "bad.nir"
    ir_file.write_text("module {\n  network @Net(%input f32[N,8]) {\n")
    assert main(["opt", str(ir_file)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{ir_file}:2:")
    assert "Traceback" not in err


def test_opt_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["opt", str(tmp_path / "missing.nir")]) == 1
    assert "cannot read" in capsys.readouterr().err
