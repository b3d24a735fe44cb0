"""Helpers for the training tests: tiny models and learnable data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def model_text(
    optimizer: str = "Adam(learning_rate=0.01)",
    train: str = "epochs: 3\n    batch_size: 32",
    loss: str = "sparse_categorical_crossentropy",
    output: str = 'Output(3, activation="softmax")',
    extra: str = "",
    metrics: str = '["accuracy"]',
) -> str:
    return f"""network Mlp {{
  input: (8,)
  layers:
    Dense(16, activation="relu")
    {output}
  loss: "{loss}"
  optimizer: {optimizer}
  metrics: {metrics}
  train {{
    {train}
  }}
  {extra}
}}
"""


def teacher_data(n: int = 256, seed: int = 0, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = (x @ np.random.default_rng(99).standard_normal((8, classes))).argmax(-1)
    return x, y.astype(np.int64)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _has_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


TARGETS = [
    "pytorch",
    pytest.param(
        "tensorflow",
        marks=pytest.mark.skipif(not _has_tensorflow(), reason="needs TensorFlow"),
    ),
]

Writer = Callable[[str, str], Path]  # the `write` fixture: (file name, text) -> path
RunCli = Callable[..., tuple[int, str]]  # the `run_cli` fixture: (*args) -> (status, stderr)


# A valid network with HPO expressions, then one whose check fails (num_heads does not divide
# d_model): `tune --network Good` and `build --hpo --network Good` must not see the second.
GOOD_AND_BROKEN = """network Good {
  input: (4,)
  layers:
    Dense(HPO(choice(4, 8)), activation="relu")
    Output(2, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.01)
  train {
    epochs: 1
    batch_size: 16
  }
}
network Broken {
  input: (6, 16)
  layers:
    TransformerEncoder(num_heads=HPO(choice(3, 5)), d_model=16, dff=32)
    GlobalAveragePooling1D()
    Output(2, activation="softmax")
}
"""
