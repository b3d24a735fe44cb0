"""`neuralc check`: expected diagnostics (file, line, column, message, note) and outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from neuralc.cli import main


def run_check(tmp_path: Path, source: str | bytes, capsys: pytest.CaptureFixture[str],
              *extra: str) -> tuple[int, str, str, Path]:
    path = tmp_path / "model.neural"
    if isinstance(source, bytes):
        path.write_bytes(source)
    else:
        path.write_text(source)
    code = main(["check", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err, path


def network(layers: str, input_shape: str = "(28, 28, 1)", extra: str = "") -> str:
    return f"network Net {{\n  input: {input_shape}\n  layers:\n{layers}\n{extra}}}\n"


# (layers, input, line, column, message fragment, note fragment or None)
CASES = [
    ("    Dense(10)\n    Conv3X(3)", "(32,)", 5, 5, "unknown layer 'Conv3X'", None),
    ("    Dense(10)\n    Dense2(3)", "(32,)", 5, 5, "unknown layer 'Dense2'", "did you mean"),
    ("    Dense(unitz=10)", "(32,)", 4, 11, "unitz", "did you mean 'units'"),
    ("    Dense(activation=\"relu\")", "(32,)", 4, 5, "units", None),
    ("    Dense(\"ten\")", "(32,)", 4, 11, "units", None),
    ("    Dense(10)\n    Dropout(1.5)", "(32,)", 5, 13, "1.5", None),
    ("    Dense(-3)", "(32,)", 4, 11, "units", None),
    ("    TransformerEncoder(num_heads=7, d_model=64, dff=128)", "(10, 64)", 4, 24,
     "num_heads", None),
    ("    TransformerEncoder(num_heads=8, d_model=512, dff=128)", "(10, 64)", 4, 37,
     "d_model", "omit d_model"),
    ("    Dense(10) @ \"tpu\"", "(32,)", 4, 17, 'invalid device "tpu"', "cuda:N"),
    ("    Dense(10) * 0", "(32,)", 4, 17, "at least 1", "remove the layer"),
    ("    Flatten()\n    Reshape(target_shape=(7, 7))", "(28, 28, 1)", 5, 13, "Reshape", None),
    ("    TransformerDecoder(num_heads=2, dff=32, cross_attention=true)", "(6, 16)", 4, 45,
     "no encoder output to attend to", "TransformerEncoder earlier in the network"),
]


@pytest.mark.parametrize(("layers", "shape", "line", "column", "message", "note"), CASES)
def test_diagnostic(tmp_path: Path, capsys: pytest.CaptureFixture[str], layers: str,
                    shape: str, line: int, column: int, message: str, note: str | None) -> None:
    code, _, err, path = run_check(tmp_path, network(layers, shape), capsys)
    assert code == 1, err
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}:{line}:{column}: error: "), err
    assert message in lines[0], err
    source_line = path.read_text().splitlines()[line - 1]
    assert lines[1] == "  " + source_line
    assert lines[2] == "  " + " " * (column - 1) + "^"
    if note is not None:
        assert any(x.startswith("note: ") and note in x for x in lines), err
    assert "Traceback" not in err


def test_shape_mismatch_names_both_shapes(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    source = network("    Flatten()\n    Reshape(target_shape=(7, 7))")
    code, _, err, _ = run_check(tmp_path, source, capsys)
    assert code == 1
    assert "784" in err and "(7, 7)" in err


def test_duplicate_network_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = network("    Dense(1)", "(3,)") + network("    Dense(2)", "(3,)")
    code, _, err, path = run_check(tmp_path, source, capsys)
    assert code == 1
    assert err.startswith(f"{path}:6:1: error: network 'Net' is defined twice")
    assert f"{path}:1:1: note: first definition is here" in err


@pytest.mark.parametrize(("macros", "line", "message"), [
    ("define Blk {\n  Dense(4)\n  Blk\n}\n", 3, "macro 'Blk' uses itself"),
    ("define A {\n  Dense(4)\n  B()\n}\ndefine B {\n  ResidualConnection {\n    A\n  }\n}\n",
     7, "macro 'A' uses itself through B"),
])
@pytest.mark.parametrize("used", [True, False])
def test_recursive_macros(tmp_path: Path, capsys: pytest.CaptureFixture[str], macros: str,
                          line: int, message: str, used: bool) -> None:
    """Found where it is defined, used or not (expanding it used to exhaust the stack)."""
    body = "    Blk\n" if used and "Blk" in macros else "    Dense(2)\n"
    code, _, err, path = run_check(tmp_path, macros + network(body, "(3,)"), capsys)
    assert code == 1, err
    assert err.splitlines()[0].startswith(f"{path}:{line}:"), err
    assert message in err and "is defined here" in err and "`* N`" in err


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err, path = run_check(tmp_path, "  \n# nothing\n", capsys)
    assert code == 1
    assert err.startswith(f"{path}:1:1: error: ")


def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = network("    Dense(1)", "(3,)").encode() + b"# caf\xe9\n"
    code, _, err, path = run_check(tmp_path, source, capsys)
    assert code == 1
    assert err.startswith(f"{path}:6:") and "UTF-8" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(tmp_path / "nope.neural")])
    err = capsys.readouterr().err
    assert code == 1
    assert "nope.neural" in err and "error" in err and "Traceback" not in err


def test_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path)]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_usage_error_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "neuralc.cli", "check"], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_version_and_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "neuralc.cli", "--version"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("neuralc ")
    proc = subprocess.run([sys.executable, "-m", "neuralc.cli", "--help"],
                          capture_output=True, text=True, check=True)
    assert "check" in proc.stdout and "opt" in proc.stdout


def test_leading_none_is_the_batch_with_a_note(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err, path = run_check(tmp_path, network("    Dense(4)", "(None, 32)"), capsys,
                                     "--json")
    assert code == 0
    assert f"{path}:2:11: note: the leading None is the batch dimension" in err
    assert json.loads(out)["networks"][0]["input_shape"] == [32]


def test_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = network("    Conv2D(8, (3, 3)) @ \"cuda:0\"\n    Flatten()\n    Output(10)")
    code, out, _, _ = run_check(tmp_path, source, capsys, "--json")
    assert code == 0
    summary = json.loads(out)["networks"][0]
    assert summary["name"] == "Net"
    assert summary["input_shape"] == [28, 28, 1]
    assert summary["input_dtype"] == "f32"
    assert summary["output_shape"] == [10]
    assert summary["params"] == 80 + 26 * 26 * 8 * 10 + 10
    assert [(x["name"], x["op"], x["output_shape"], x["device"], x["line"])
            for x in summary["layers"]] == [
        ("conv2d", "Conv2D", [26, 26, 8], "cuda:0", 4),
        ("flatten", "Flatten", [5408], None, 5),
        ("output", "Output", [10], None, 6),
    ]


def test_text_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _, _ = run_check(tmp_path, network("    Dense(16) * 2\n    Output(3)", "(8,)"),
                                capsys)
    assert code == 0
    assert "dense.0 (Dense)" in out and "dense.1 (Dense)" in out
    assert "Total params: " + f"{(8 * 16 + 16) + (16 * 16 + 16) + (16 * 3 + 3):,}" in out


def test_emit_nn_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from neuralc.ir.parser import parse_module
    from neuralc.ir.printer import print_module

    code, out, _, _ = run_check(tmp_path, network("    Dense(16) * 2\n    Output(3)", "(8,)"),
                                capsys, "--emit", "nn")
    assert code == 0
    assert "nn.repeat" in out and "nn.dense" in out
    assert print_module(parse_module(out)) == out


def test_hpo_failing_combination_is_named(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    layers = "    TransformerEncoder(num_heads=HPO(choice(8, 7)), dff=64)"
    code, _, err, _ = run_check(tmp_path, network(layers, "(10, 64)"), capsys)
    assert code == 1
    assert "HPO combination 7" in err


def test_network_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = network("    Dense(1)", "(3,)").replace("Net", "A") + \
        network("    Dense(2)", "(3,)").replace("Net", "B")
    code, out, _, _ = run_check(tmp_path, source, capsys, "--json", "--network", "B")
    assert code == 0
    assert [n["name"] for n in json.loads(out)["networks"]] == ["B"]
    code, _, err, _ = run_check(tmp_path, source, capsys, "--network", "C")
    assert code == 1 and "no network named 'C'" in err


def test_network_option_ignores_errors_in_other_networks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = network("    Dense(-3)", "(4,)").replace("Net", "Bad") + \
        network("    Dense(3)", "(4,)").replace("Net", "Good")
    code, out, _, _ = run_check(tmp_path, source, capsys, "--network", "Good")
    assert code == 0 and "Total params: 15" in out
    code, _, err, _ = run_check(tmp_path, source, capsys)
    assert code == 1 and "Dense(-3)" in err


def test_macro_library_outputs_stay_machine_readable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    library = "define Block {\n  Dense(8)\n  Dropout(0.1)\n}\n"
    code, out, _, _ = run_check(tmp_path, library, capsys, "--json")
    assert code == 0 and json.loads(out) == {"networks": [], "macros": ["Block"]}
    code, out, _, _ = run_check(tmp_path, library, capsys, "--emit", "nn")
    assert code == 0 and out == "module {\n}\n"
    ir = tmp_path / "empty.nir"
    ir.write_text(out)
    assert main(["opt", str(ir)]) == 0
    assert capsys.readouterr().out == out


def test_json_and_emit_are_exclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_check(tmp_path, network("    Dense(1)", "(3,)"), capsys, "--json", "--emit", "nn")
    assert exited.value.code == 2
    assert "not allowed with argument --json" in capsys.readouterr().err
