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
    # Option ranges and choices (were internal errors: UnboundLocalError, ValueError).
    (["--passes", "canonicalize{max-iterations=0}"], "must be at least 1, got 0"),
    (["--passes", "canonicalize{max-iterations=-1}"], "must be at least 1, got -1"),
    (["--passes", "legalize{stage=foo}"], "must be one of nn, tensor, kernel, got 'foo'"),
    (["-O2", "--print-ir-after", "autotune"],
     "error: --print-ir-after autotune: pass 'autotune' is not in this pipeline\n"
     "note: this pipeline runs: unroll-repeat, remove-dropout,"),
    (["-O0", "--devices", "cuda:0,cuda:0"], "--devices lists cuda:0 more than once"),
    (["-O2", "--emit", "kernel", "--disable-pass", "lower-nn-to-tensor"],
     "note: lower-nn-to-tensor, which lowers it, was disabled: drop --disable-pass "
     "lower-nn-to-tensor"),
    (["--passes", "legalize"], "error: illegal op 'nn.dense' (%dense) at the kernel stage "
     "(and 6 more)"),
    (["--passes", "legalize"], "note: lower-nn-to-tensor, which lowers it, is not in this "
     "pipeline: add it"),
    (["--passes", "unroll-repeat", "--emit", "kernel"],
     "error: --emit kernel: the pipeline ends at the nn stage; 'nn.dense' (%dense) is not "
     "lowered (and 5 more)"),
    (["--passes", "unroll-repeat", "--emit", "tensor"],
     "note: lower-nn-to-tensor, which lowers it, is not in this pipeline: add it\n"),
])
def test_flag_errors_are_diagnostics(nir: Path, capsys: pytest.CaptureFixture[str],
                                     argv: list[str], expected: str) -> None:
    assert main(["opt", str(nir), *argv]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_o2_on_kernel_ir_is_idempotent(nir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`opt K.nir -O2` where K.nir is `-O2 --emit kernel` output: kernel ops are a legal
    superset after lowering, and nothing is left for the passes to do."""
    kernel = tmp_path / "k.nir"
    assert main(["opt", str(nir), "-O2", "--emit", "kernel", "-o", str(kernel)]) == 0
    text = kernel.read_text()
    assert "kernel." in text and " = nn." not in text
    capsys.readouterr()
    for argv in (["-O2"], ["-O2", "--emit", "kernel"], ["-O3"]):
        assert main(["opt", str(kernel), *argv]) == 0, argv
        out = capsys.readouterr().out
        assert out == text or argv == ["-O3"], argv
    assert "autotune = true" in out
    # Fused IR cannot be turned back into tensor IR: an error, not kernel IR labelled tensor.
    assert main(["opt", str(kernel), "-O2", "--emit", "tensor"]) == 1
    assert "error: --emit tensor: the IR is already past the tensor stage" in \
        capsys.readouterr().err


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
