"""PyTorch and TensorFlow train layers whose parameters or statistics torch and Keras hold
differently to the same losses: LSTM/SimpleRNN (torch's two biases, Keras' one), Embedding
under Adam/RMSprop (Keras' TF backend squares IndexedSlices row by row), BatchNormalization's
moving variance (torch's unbiased batch variance, Keras' biased); and SGD with momentum under a
schedule with weight decay (Keras' decoupled decay and lr-scaled velocity, `KerasSGD`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from train_testlib import RunCli, Writer, read_json

torch = pytest.importorskip("torch")
pytest.importorskip("tensorflow")

_N = 64


def _network(input_shape: str, layers: str, optimizer: str, train: str = "") -> str:
    return f"""network N {{
  input: {input_shape}
  layers:
    {layers}
    Output(3, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: {optimizer}
  train {{
    epochs: 2
    batch_size: 16
    shuffle: false
    {train}
  }}
}}
"""


def _data(path: Path, x: np.ndarray) -> Path:
    y = np.random.default_rng(7).integers(0, 3, len(x)).astype(np.int64)
    np.savez(path, x=x, y=y)
    return path


_RNG = np.random.default_rng(3)
_SEQ = _RNG.standard_normal((_N, 10, 4)).astype(np.float32)
_IDS = _RNG.integers(0, 12, (_N, 6)).astype(np.int64)  # ids repeat within each batch
_VEC = _RNG.standard_normal((_N, 8)).astype(np.float32)

CASES: dict[str, tuple[Any, ...]] = {
    "lstm_sgd": ("(10, 4)", "LSTM(8)", "SGD(learning_rate=0.5)", "", _SEQ),
    # -O2 emits functional code over plain parameter containers (no nn.LSTM to find)
    "lstm_sgd_O2": ("(10, 4)", "LSTM(8)", "SGD(learning_rate=0.5)", "", _SEQ, "2"),
    "gru_lstm_adam_O2": (
        "(10, 4)",
        "GRU(6, return_sequences=true)\n    LSTM(4)",
        "Adam(learning_rate=0.02)",
        "",
        _SEQ,
        "2",
    ),
    "simple_rnn_adam": ("(10, 4)", "SimpleRNN(8)", "Adam(learning_rate=0.02)", "", _SEQ),
    "embedding_adam": (
        "(6,)",
        "Embedding(12, 5)\n    Flatten()",
        "Adam(learning_rate=0.02)",
        "",
        _IDS,
    ),
    "embedding_rmsprop": (
        "(6,)",
        "Embedding(12, 5)\n    GlobalAveragePooling1D()",
        "RMSprop(learning_rate=0.02)",
        "",
        _IDS,
    ),
    "batch_norm_val": (
        "(8,)",
        "Dense(16)\n    BatchNormalization(momentum=0.5)",
        "Adam(learning_rate=0.01)",
        "validation_split: 0.25",
        _VEC,
    ),
    "sgd_momentum_schedule_decay": (
        "(8,)",
        'Dense(16, activation="relu")',
        "SGD(learning_rate=ExponentialDecay(0.2, 2, 0.5), momentum=0.9, nesterov=true, "
        "weight_decay=0.05)",
        "",
        _VEC,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_backends_train_to_the_same_losses(
    case: str, write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    input_shape, layers, optimizer, train, x, *level = CASES[case]
    model = write("m.neural", _network(input_shape, layers, optimizer, train))
    data = _data(tmp_path / "d.npz", x)
    records = {}
    for target in ("pytorch", "tensorflow"):
        out = tmp_path / f"{target}.json"
        code, err = run_cli(
            "run", model, "--data", data, "--target", target,
            "--output-dir", tmp_path / target, "--metrics-json", out, "-O", *(level or ["1"]),
        )  # fmt: skip
        assert code == 0, err
        records[target] = read_json(out)
    pt, tf = records["pytorch"], records["tensorflow"]
    assert len(pt["steps"]["loss"]) == len(tf["steps"]["loss"]) > 4
    np.testing.assert_allclose(pt["steps"]["loss"], tf["steps"]["loss"], rtol=0, atol=1e-4)
    for a, b in zip(pt["epochs"], tf["epochs"], strict=True):
        if "val_loss" in a:
            assert abs(a["val_loss"] - b["val_loss"]) < 1e-4


def test_torch_rnn_trains_one_bias_like_keras() -> None:
    """After `fold_recurrent_biases` the LSTM computes the same function, `bias_hh` is zero and
    frozen, and one SGD step moves `bias_ih + bias_hh` by lr·grad (not 2·lr·grad)."""
    from neuralc.lower.train_torch_ops import fold_recurrent_biases

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(4, 3, batch_first=True)
    x = torch.randn(2, 5, 4)
    before = lstm(x)[0].detach()
    total = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().clone()
    fold_recurrent_biases(lstm)
    torch.testing.assert_close(lstm(x)[0], before)
    assert not lstm.bias_hh_l0.requires_grad and not lstm.bias_hh_l0.abs().any()
    lstm(x)[0].sum().backward()
    grad = lstm.bias_ih_l0.grad.clone()
    torch.optim.SGD(lstm.parameters(), lr=0.1).step()
    torch.testing.assert_close(lstm.bias_ih_l0 + lstm.bias_hh_l0, total - 0.1 * grad)
