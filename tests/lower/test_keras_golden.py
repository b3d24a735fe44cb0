"""The emitted Keras module of one program stays readable and stable: it equals the golden file
(regenerate with `NEURALC_UPDATE_GOLDEN=1 pytest tests/lower/test_keras_golden.py` and review the
diff), passes `ruff check`, and runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.lower.keras import TARGET
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import init_weights, save_weights

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "keras_model.py"

SOURCE = """\
define ConvBlock {
  Conv2D(8, (3, 3), padding="same", activation="relu")
  BatchNormalization()
}

network Golden {
  input: (8, 8, 3)
  layers:
    ConvBlock * 2
    ResidualConnection {
      Conv2D(8, (3, 3), padding="same")
    }
    MaxPooling2D((2, 2))
    Reshape(target_shape=(16, 8))
    TransformerEncoder(num_heads=2, dff=16) * 2
    GlobalAveragePooling1D()
    Dropout(0.1)
    Output(10, activation="softmax")
}
"""


@pytest.fixture
def emitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # the emitter quotes source lines from ./model.neural
    Path("model.neural").write_text(SOURCE)
    net = check_program(parse_text(SOURCE, "model.neural")).networks[0].network
    return TARGET.emit(net, BuildOptions("model.neural")).decode()


def test_golden(emitted: str) -> None:
    if os.environ.get("NEURALC_UPDATE_GOLDEN"):
        GOLDEN.write_text(emitted)
    assert emitted == GOLDEN.read_text(), (
        "the emitted Keras module changed; if intended, regenerate with "
        "NEURALC_UPDATE_GOLDEN=1 and review the diff")


def test_golden_passes_ruff(emitted: str, tmp_path: Path) -> None:
    (tmp_path / "keras_model.py").write_text(emitted)
    for command in (["check", "--extend-select", "E501"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--config", str(REPO / "pyproject.toml"),
             str(tmp_path / "keras_model.py")], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_golden_runs_with_initial_weights(emitted: str, tmp_path: Path) -> None:
    """`neuralc init`'s weights (PyTorch's initializers) load and run in the emitted module."""
    net = check_program(parse_text(SOURCE, "model.neural")).networks[0].network
    (tmp_path / "keras_model.py").write_text(emitted)
    save_weights(tmp_path / "w.safetensors", init_weights(net, seed=0))
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    y = TARGET.predict(tmp_path / "keras_model.py", tmp_path / "w.safetensors", {"input": x},
                       "cpu")
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)
