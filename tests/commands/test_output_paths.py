"""Output paths the user names that cannot be written are user errors (exit 1, the path, the
OS's reason and a note), never "internal error" (exit 3); ONNX external data is written with
its model, all or nothing, with ordinary permissions."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralc.cli import main
from neuralc.diagnostics import CompileError
from neuralc.fileio import (
    check_output_path,
    ensure_dir,
    write_atomic,
    write_atomic_with_companions,
)

MLP = """network Mlp {
  input: (3, 4)
  layers:
    Dense(8, activation="relu")
    Output(2)
}
"""

# Over 1 KiB per weight, so that with a lowered threshold the weights go to external data.
WIDE = """network Wide {
  input: (64,)
  layers:
    Dense(64)
    Output(2)
}
"""

PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux") or not PROC.is_dir(),
                                reason="needs Linux's /proc (a directory no file can be made in)")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlp.neural").write_text(MLP)
    (tmp_path / "adir").mkdir()
    (tmp_path / "x.npy").write_text("a file, not a directory")
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, message: str) -> None:
    assert code == 1, err
    assert "internal error" not in err and "Traceback" not in err
    assert err.startswith(f"neuralc: error: {message}"), err
    assert "\nnote: " in err, err


def predict_args(workdir: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert cli(capsys, "init", "mlp.neural", "-o", "w.safetensors")[0] == 0
    np.save(workdir / "in.npy", np.zeros((2, 3, 4), np.float32))
    return ["predict", "mlp.neural", "--target", "pytorch", "--weights", "w.safetensors",
            "--input", "in.npy"]


# -o names a directory ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["build", "mlp.neural", "--target", "pytorch"],
    ["build", "mlp.neural", "--target", "onnx"],
    ["init", "mlp.neural"],
], ids=["build-pytorch", "build-onnx", "init"])
def test_output_that_is_a_directory(workdir: Path, capsys: pytest.CaptureFixture[str],
                                    argv: list[str]) -> None:
    code, _, err = cli(capsys, *argv, "-o", "adir")
    assert_user_error(code, err, "cannot write 'adir': it is a directory")
    assert "note: name a file, e.g. 'adir/NAME'" in err
    assert list((workdir / "adir").iterdir()) == []


def test_predict_output_that_is_a_directory(workdir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = predict_args(workdir, capsys)
    code, _, err = cli(capsys, *argv, "-o", "adir")
    assert_user_error(code, err, "cannot write 'adir': it is a directory")


@pytest.mark.parametrize("output", ["x.npy/y.npy", "x.npy/sub/y.npy"])
def test_predict_output_below_a_file(workdir: Path, capsys: pytest.CaptureFixture[str],
                                     output: str) -> None:
    argv = predict_args(workdir, capsys)
    code, _, err = cli(capsys, *argv, "-o", output)
    assert_user_error(code, err, f"cannot write '{output}': 'x.npy' is a file, not a directory")
    assert "note: choose another path, or remove the file 'x.npy'" in err
    assert (workdir / "x.npy").read_text() == "a file, not a directory"


def test_build_output_below_a_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "build", "mlp.neural", "--target", "pytorch", "-o",
                       "x.npy/m.py")
    assert_user_error(code, err, "cannot write 'x.npy/m.py': 'x.npy' is a file")


@needs_proc
@pytest.mark.parametrize("output", ["/proc/neuralc-test.onnx", "/proc/neuralc-test/m.onnx"])
def test_build_output_where_no_file_can_be_made(workdir: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                output: str) -> None:
    code, _, err = cli(capsys, "build", "mlp.neural", "--target", "onnx", "-o", output)
    assert_user_error(code, err, f"cannot write '{output}': ")


# --artifact-dir and --ir-dump-dir ----------------------------------------------------------------


def test_predict_artifact_dir_that_is_a_file(workdir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = predict_args(workdir, capsys)
    (workdir / "art").mkdir()
    (workdir / "art" / "small.onnx").write_text("not a directory")
    code, _, err = cli(capsys, *argv, "-o", "y.npy", "--artifact-dir", "art/small.onnx")
    assert_user_error(code, err, "cannot create directory 'art/small.onnx': it is a file, not a "
                      "directory")
    assert not (workdir / "y.npy").exists()


@pytest.mark.parametrize("command", ["build", "opt"])
def test_ir_dump_dir_that_is_a_file(workdir: Path, capsys: pytest.CaptureFixture[str],
                                    command: str) -> None:
    argv = _pipeline_command(workdir, capsys, command)
    code, _, err = cli(capsys, *argv, "--ir-dump-dir", "x.npy")
    assert_user_error(code, err, "cannot create directory 'x.npy': it is a file, not a directory")
    assert "note: choose another directory, or remove the file 'x.npy'" in err


@needs_proc
@pytest.mark.parametrize("command", ["build", "opt"])
@pytest.mark.parametrize("directory", ["/proc/neuralc-test", "/proc"])
def test_ir_dump_dir_where_no_file_can_be_made(workdir: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               command: str, directory: str) -> None:
    argv = _pipeline_command(workdir, capsys, command)
    code, _, err = cli(capsys, *argv, "--ir-dump-dir", directory)
    assert_user_error(code, err, "cannot create ")
    assert f"directory '{directory}': " in err.splitlines()[0]


def test_run_output_dir_that_is_a_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", "mlp.neural", "--target", "pytorch", "--synthetic", "4",
                       "--output-dir", "x.npy")
    assert code == 1, err
    assert "neuralc: error: cannot create directory 'x.npy': it is a file, not a directory" in err
    assert "internal error" not in err


def test_ir_dump_dir_is_created(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _pipeline_command(workdir, capsys, "opt")
    code, _, err = cli(capsys, *argv, "--ir-dump-dir", "dumps/ir")
    assert code == 0, err
    assert (workdir / "dumps" / "ir" / "00_input.nir").is_file()


def _pipeline_command(workdir: Path, capsys: pytest.CaptureFixture[str],
                      command: str) -> list[str]:
    if command == "build":
        return ["build", "mlp.neural", "--target", "pytorch", "-O2", "-o", "m.py"]
    code, out, err = cli(capsys, "check", "mlp.neural", "--emit", "nn")
    assert code == 0, err
    (workdir / "m.nir").write_text(out)
    return ["opt", "m.nir", "-O2", "-o", "o.nir"]


# neuralc.fileio directly -------------------------------------------------------------------------


def test_write_atomic_reports_a_directory(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as caught:
        write_atomic(tmp_path, b"data")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.message == f"cannot write '{tmp_path}': it is a directory"
    assert diagnostic.notes


def test_check_output_path_creates_nothing(tmp_path: Path) -> None:
    check_output_path(tmp_path / "new" / "deeper" / "y.npy")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    with pytest.raises(CompileError, match="'.*f' is a file, not a directory"):
        check_output_path(tmp_path / "f" / "y.npy")


def test_companion_writer_disk_errors(tmp_path: Path) -> None:
    """An OSError writing into the staging directory is the user's disk (a diagnostic); any
    other OSError from the producer is its bug (kept); nothing is left behind either way."""
    def full_disk(staged: Path) -> bytes:
        (staged.parent / "m.onnx.data").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(staged.parent / "m.onnx.data"))

    with pytest.raises(CompileError, match="cannot write '.*m.onnx': no space left"):
        write_atomic_with_companions(tmp_path / "m.onnx", full_disk)
    assert list(tmp_path.iterdir()) == []

    def bug(staged: Path) -> bytes:
        raise FileNotFoundError(errno.ENOENT, "No such file", "/nonexistent/input")

    with pytest.raises(FileNotFoundError):
        write_atomic_with_companions(tmp_path / "m.onnx", bug)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root may write into a read-only directory")
def test_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(CompileError, match="permission denied"):
            write_atomic(locked / "m.py", "x")
        with pytest.raises(CompileError, match="cannot create files in directory .*permission"):
            ensure_dir(locked, writable=True)
    finally:
        locked.chmod(0o700)


# ONNX external data -----------------------------------------------------------------------------


@pytest.fixture
def external_data(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model whose weights go to `<model>.onnx.data`, as past 2 GB (a lowered threshold)."""
    pytest.importorskip("onnx")
    import neuralc.lower.onnx_backend.emitter as emitter

    monkeypatch.setattr(emitter, "EXTERNAL_DATA_THRESHOLD", 1024)
    model = workdir / "wide.neural"
    model.write_text(WIDE)
    return model


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def test_onnx_external_data_gets_ordinary_permissions(
        workdir: Path, capsys: pytest.CaptureFixture[str], external_data: Path) -> None:
    code, _, err = cli(capsys, "build", str(external_data), "--target", "onnx", "-o",
                       "out/wide.onnx")
    assert code == 0, err
    model, data = workdir / "out" / "wide.onnx", workdir / "out" / "wide.onnx.data"
    assert data.is_file() and data.stat().st_size > 0
    assert _mode(model) == _mode(data) == _umask_mode()
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["wide.onnx", "wide.onnx.data"]
    import onnx

    loaded = onnx.load(str(model))  # finds its data beside it
    assert all(t.raw_data for t in loaded.graph.initializer)


def test_onnx_failed_write_leaves_the_previous_model_and_data(
        workdir: Path, capsys: pytest.CaptureFixture[str], external_data: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The model's bytes are written before its data is renamed into place: a write that fails
    leaves the previous build's model and data, together."""
    from neuralc.lower.onnx import TARGET

    # Into a subdirectory: onnx's converter refuses a data file name that exists relative to
    # the working directory (rebuilding in the working directory fails in the emitter).
    build = ["build", str(external_data), "--target", "onnx", "-o", "out/wide.onnx"]
    assert cli(capsys, *build, "--seed", "1")[0] == 0
    model, data = workdir / "out" / "wide.onnx", workdir / "out" / "wide.onnx.data"
    before = model.read_bytes(), data.read_bytes()
    real_emit = TARGET.emit

    def emit_then_fail(*args: object, **kwargs: object) -> object:
        real_emit(*args, **kwargs)  # writes the (new) data file
        return object()  # bytes that cannot be written

    monkeypatch.setattr(TARGET, "emit", emit_then_fail)
    code, _, err = cli(capsys, *build, "--seed", "2")
    assert code == 3 and "TypeError" in err, err  # the injected failure, not another one
    assert (model.read_bytes(), data.read_bytes()) == before
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["wide.onnx", "wide.onnx.data"]
