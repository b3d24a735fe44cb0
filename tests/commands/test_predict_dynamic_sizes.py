"""`neuralc predict` with arrays too small for a layer of a network with dynamic dimensions: the
layer's diagnostic at its line, on every target, before anything runs (the frameworks raised
'Output size is too small' and the like, reported as internal errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuralc.cli import main

MODEL = """network M {
  input: (None, None, None, 2)
  layers:
    MaxPooling2D(2, strides=3)
    AveragePooling2D(2, strides=1)
    GlobalMaxPooling2D()
    Output(3)
}
"""


@pytest.mark.parametrize("target", ["pytorch", "tensorflow", "onnx"])
def test_arrays_too_small_for_a_window_are_the_layers_diagnostic(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, weights = tmp_path / "m.neural", tmp_path / "w.safetensors"
    model.write_text(MODEL)
    assert main(["init", str(model), "-o", str(weights)]) == 0
    base = ["predict", str(model), "--target", target, "--weights", str(weights), "--device",
            "cpu", "-o", str(tmp_path / "y.npy"), "--input"]
    # 3x3 pools to 1x1, which the 2x2 AveragePooling2D does not fit.
    np.save(tmp_path / "small.npy", np.ones((2, 3, 3, 2), np.float32))
    capsys.readouterr()
    assert main([*base, str(tmp_path / "small.npy")]) == 1
    err = capsys.readouterr().err
    assert "m.neural:5:5: error: with the given input sizes (input (2, 3, 3, 2)): " in err, err
    assert "AveragePooling2D window (2, 2) does not fit its input f32[N,1,1,2]" in err
    assert "internal error" not in err
    assert not (tmp_path / "y.npy").exists()
    np.save(tmp_path / "fits.npy", np.ones((2, 6, 7, 2), np.float32))
    assert main([*base, str(tmp_path / "fits.npy")]) == 0, capsys.readouterr().err
    assert np.load(tmp_path / "y.npy").shape == (2, 3)
