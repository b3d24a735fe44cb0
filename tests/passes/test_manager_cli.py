"""The pipeline flags through `neuralc opt` and `run_pipeline` (what build and predict call)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from passes_testlib import MLP, compile_nn

from neuralc.cli import main
from neuralc.commands.pipeline_args import add_pipeline_arguments, run_pipeline
from neuralc.diagnostics import CompileError
from neuralc.ir.parser import parse_module
from neuralc.ir.printer import print_module


@pytest.fixture
def nir(tmp_path: Path) -> Path:
    path = tmp_path / "m.nir"
    path.write_text(print_module(compile_nn(MLP)))
    return path


def test_opt_without_flags_only_round_trips(nir: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    assert main(["opt", str(nir)]) == 0
    captured = capsys.readouterr()
    assert captured.out == nir.read_text() and captured.err == ""


def test_opt_runs_a_pipeline(nir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["opt", str(nir), "--passes", "remove-dropout,canonicalize,unroll-repeat"]) == 0
    out = capsys.readouterr().out
    assert "nn.dropout" not in out and "nn.repeat" not in out and "nn.activation" not in out
    assert "%dense_1.1 = nn.dense(%dense_1.0)" in out
    parse_module(out)


def test_opt_level_and_disable_pass(nir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["opt", str(nir), "-O", "1", "--disable-pass", "remove-dropout"]) == 0
    out = capsys.readouterr().out
    assert "nn.dropout" in out and "nn.activation" not in out


def test_print_ir_after_all_goes_to_stderr(nir: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    assert main(["opt", str(nir), "-O1", "--print-ir-after-all", "--time-passes"]) == 0
    captured = capsys.readouterr()
    assert "// IR after" not in captured.out
    headers = [line for line in captured.err.splitlines() if line.startswith("// IR after")]
    assert headers == ["// IR after remove-dropout", "// IR after canonicalize",
                       "// IR after constant-fold", "// IR after cse", "// IR after dce",
                       "// IR after place-devices"]
    assert "modified" in captured.err and "total" in captured.err
    parse_module(captured.out)


def test_print_ir_after_one_pass_and_dump_dir(nir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    dumps = tmp_path / "ir"
    assert main(["opt", str(nir), "--passes", "remove-dropout,cse,dce", "--print-ir-after",
                 "cse", "--ir-dump-dir", str(dumps), "--report", "fusion"]) == 0
    err = capsys.readouterr().err
    assert err.count("// IR after ") == 1 and "// IR after cse" in err
    assert "fusion report:" in err and "remove-dropout.dropout: 1" in err
    assert sorted(p.name for p in dumps.iterdir()) == [
        "00_input.nir", "01_remove-dropout.nir", "02_cse.nir", "03_dce.nir"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["--passes", "canonicalise"], "did you mean 'canonicalize'?"),
    (["-O1", "--disable-pass", "csee"], "unknown pass 'csee'"),
    (["-O1", "--print-ir-after", "dcee"], "did you mean 'dce'?"),
    (["--passes", "cse", "--devices", "cuda:0,tpu"], 'invalid device "tpu" in --devices'),
    (["--passes", "place-devices", "--device", "tpu"], 'invalid device "tpu"'),
])
def test_flag_errors_are_diagnostics(nir: Path, capsys: pytest.CaptureFixture[str],
                                     argv: list[str], expected: str) -> None:
    assert main(["opt", str(nir), *argv]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_emit_nn_stops_before_lowering(nir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["opt", str(nir), "-O2", "--emit", "nn"]) == 0
    out = capsys.readouterr().out
    assert "nn.repeat" not in out and "tensor." not in out and '@"' not in out


def _build_like_parser() -> argparse.ArgumentParser:
    """A parser with build's own -O and --device, as `neuralc build` has them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-O", dest="opt_level", type=int, choices=(0, 1, 2, 3), default=0)
    parser.add_argument("--device")
    add_pipeline_arguments(parser, default_level=2)
    return parser


def test_run_pipeline_for_build() -> None:
    parser = _build_like_parser()
    args = parser.parse_args(["-O", "1", "--device", "cpu"])
    module, ctx = run_pipeline(compile_nn(), args, {"target": "pytorch",
                                                    "available_devices": ("cpu",)})
    assert ctx.opt_level == 1 and ctx.target == "pytorch" and ctx.hits
    assert all(op.device == "cpu" for op in module.networks[0].walk() if op.results)


def test_run_pipeline_defaults_and_unavailable_device() -> None:
    parser = argparse.ArgumentParser()
    add_pipeline_arguments(parser, default_level=1)
    args = parser.parse_args(["--devices", "gpu,cuda:1", "--kernels", "torch"])
    src = MLP.replace('Output(2)', 'Output(2) @ "cuda:3"')
    with pytest.raises(CompileError) as info:
        run_pipeline(compile_nn(src), args, {"available_devices": ("cpu", "cuda:0")})
    text = info.value.render()
    assert "m.neural:8:5: error: layer 'output' is placed on cuda:3 but only cpu, cuda:0 are " \
           "available" in text
    assert "note: use --device cpu" in text
    args = parser.parse_args(["--devices", "gpu,cuda:1", "--kernels", "torch"])
    _, ctx = run_pipeline(compile_nn(), args)
    assert ctx.devices == ("cuda", "cuda:1") and ctx.kernels == "torch" and ctx.opt_level == 1


def test_opt_device_alone_places_everything(nir: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    assert main(["opt", str(nir), "--device", "gpu"]) == 0
    out = capsys.readouterr().out
    assert out.count('@"cuda"') == out.count(" = nn.") and "nn.transfer" not in out
