"""`run --data FOLDER` with files that are not arrays: each is a diagnostic naming the file
(`neuralc.lower.train_data.load_arrays`), where numpy's exception once escaped as an internal
error. The emitted module's `--data` reads folders with the same code."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from train_testlib import RunCli, Writer, model_text, teacher_data


def _folder(tmp_path: Path, x_file: str) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    x, y = teacher_data(16)
    np.save(folder / "y.npy", y)
    target = folder / "x.npy"
    if x_file == "folder":
        target.mkdir()
    elif x_file == "dangling link":
        os.symlink(tmp_path / "gone.npy", target)
    elif x_file == "empty":
        target.write_bytes(b"")
    elif x_file == "text":
        target.write_text("1 2 3\n")
    elif x_file == "truncated":
        np.save(target, x)
        target.write_bytes(target.read_bytes()[:150])
    elif x_file == "object array":
        np.save(target, np.array([{"a": 1}] * 16, dtype=object), allow_pickle=True)
    return folder


@pytest.mark.parametrize(
    ("x_file", "message"),
    [
        ("folder", "x.npy' is a folder, not a .npy file"),
        ("dangling link", "x.npy': No such file or directory"),
        ("empty", "x.npy' is not a .npy file (no NumPy header)"),
        # np.load unpickles a headerless file and then blamed allow_pickle
        ("text", "x.npy' is not a .npy file (no NumPy header)"),
        ("truncated", "x.npy': Failed to read all data for array"),
        ("object array", "x.npy': it holds Python objects (an object array)"),
    ],
)
def test_unreadable_arrays_in_a_data_folder(
    x_file: str, message: str, write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, x_file)
    model = write("m.neural", model_text())
    code, err = run_cli("run", model, "--data", folder, "--output-dir", tmp_path / "o")
    assert code == 1, err
    first = err.splitlines()[0]
    assert first.startswith(f"neuralc: error: {folder}: ") and message in first, err
    assert "internal error" not in err and not (tmp_path / "o").exists()


def test_scalar_labels_are_not_zero_labels(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """`y.npy` holding one number was reported as '0 labels'."""
    folder = tmp_path / "data"
    folder.mkdir()
    np.save(folder / "x.npy", teacher_data(16)[0])
    np.save(folder / "y.npy", np.int64(1))
    code, err = run_cli("run", write("m.neural", model_text()), "--data", folder,
                        "--output-dir", tmp_path / "o")
    assert code == 1
    assert "y is a single value (shape ()) but there are 16 samples" in err
