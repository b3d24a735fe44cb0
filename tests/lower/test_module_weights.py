"""`neuralc build --weights W`: the emitted PyTorch and Keras modules load W when their caller
names no weight file (`WEIGHTS`, relative to the module so the two can move together), and
compute what `predict --weights W` computes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralc.cli import main

PROGRAM = 'network Small {\n  input: (5,)\n  layers:\n    Dense(4, activation="tanh")\n' \
          '    Output(3)\n}\n'


@pytest.mark.parametrize(("target", "level"), [("pytorch", "-O0"), ("pytorch", "-O2"),
                                               ("tensorflow", "-O2")])
def test_module_loads_the_build_weights_by_default(tmp_path: Path, target: str,
                                                   level: str) -> None:
    model, weights, x = tmp_path / "m.neural", tmp_path / "w.safetensors", tmp_path / "x.npy"
    model.write_text(PROGRAM)
    np.save(x, np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32))
    assert main(["init", str(model), "--seed", "7", "-o", str(weights)]) == 0
    assert main(["predict", str(model), "--target", "onnx", "--weights", str(weights),
                 "--input", str(x), "-o", str(tmp_path / "expected.npy")]) == 0
    built = tmp_path / "out" / "m.py"
    built.parent.mkdir()
    assert main(["build", str(model), "--target", target, level, "--weights", str(weights),
                 "-o", str(built)]) == 0
    assert 'WEIGHTS: str | None = "../w.safetensors"' in built.read_text()
    # Moved together with its weight file, run from elsewhere, without --weights.
    moved = tmp_path / "moved"
    (moved / "out").mkdir(parents=True)
    shutil.copy(built, moved / "out" / "m.py")
    shutil.copy(weights, moved / "w.safetensors")
    y = tmp_path / "y.npy"
    subprocess.run([sys.executable, str(moved / "out" / "m.py"), "--input", str(x), "-o",
                    str(y)], check=True, cwd="/", capture_output=True)
    np.testing.assert_allclose(np.load(y), np.load(tmp_path / "expected.npy"), atol=1e-5)


def test_without_build_weights_the_module_names_none(tmp_path: Path) -> None:
    model = tmp_path / "m.neural"
    model.write_text(PROGRAM)
    assert main(["build", str(model), "--target", "pytorch", "-o", str(tmp_path / "m.py")]) == 0
    assert "WEIGHTS: str | None = None" in (tmp_path / "m.py").read_text()
