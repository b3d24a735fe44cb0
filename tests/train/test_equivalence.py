"""PyTorch and TensorFlow training from the same initial weights and batches give the same
losses; Keras' Adam epsilon, reproduced on torch; the fused logits cross-entropy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from train_testlib import RunCli, Writer, model_text, read_json

torch = pytest.importorskip("torch")
pytest.importorskip("tensorflow")


@pytest.mark.parametrize(
    "optimizer",
    [
        "Adam(learning_rate=0.01, beta_1=0.85, beta_2=0.99, epsilon=1e-6)",
        "SGD(learning_rate=0.1, momentum=0.9)",
        "RMSprop(learning_rate=0.005)",
    ],
)
def test_pytorch_and_tensorflow_losses_agree(
    optimizer: str, write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    text = model_text(
        optimizer=optimizer,
        train="epochs: 2\n    batch_size: 32\n    shuffle: false",
        output='Dense(8, activation="tanh")\n    Output(3, activation="softmax")',
    )
    model = write("m.neural", text)
    losses = {}
    for target in ("pytorch", "tensorflow"):
        code, err = run_cli(
            "run",
            model,
            "--synthetic",
            192,
            "--target",
            target,
            "--output-dir",
            tmp_path / target,
            "--metrics-json",
            tmp_path / f"{target}.json",
        )
        assert code == 0, err
        losses[target] = np.array(read_json(tmp_path / f"{target}.json")["steps"]["loss"])
    assert len(losses["pytorch"]) == 12
    np.testing.assert_allclose(losses["pytorch"], losses["tensorflow"], atol=1e-3)
    assert losses["pytorch"][-1] < losses["pytorch"][0]


def test_keras_adam_adds_epsilon_before_bias_correction() -> None:
    """Keras 3: var -= lr·sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε), i.e. ε is added to sqrt(v)
    (not to sqrt(v̂) as torch does). train_torch sets torch's eps to ε/sqrt(1-β2^t) each step,
    which reproduces Keras exactly; torch's plain eps does not."""
    import keras

    eps, lr, steps = 1e-3, 0.1, 3
    grads = [np.array([1e-3, -2e-3, 5e-4], np.float32) * (k + 1) for k in range(steps)]
    var = keras.Variable(np.ones(3, np.float32))
    opt = keras.optimizers.Adam(learning_rate=lr, epsilon=eps)
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(g)], [var])
    keras_result = np.asarray(var.numpy())

    def torch_run(emulate: bool) -> np.ndarray:
        p = torch.nn.Parameter(torch.ones(3))
        opt_t = torch.optim.Adam([p], lr=lr, eps=eps)
        for t, g in enumerate(grads, start=1):
            if emulate:
                opt_t.param_groups[0]["eps"] = eps / math.sqrt(1 - 0.999**t)
            p.grad = torch.from_numpy(g)
            opt_t.step()
        return p.detach().numpy()

    np.testing.assert_allclose(torch_run(True), keras_result, rtol=0, atol=1e-6)
    assert np.abs(torch_run(False) - keras_result).max() > 1e-3


def test_softmax_output_trains_on_logits_and_predicts_probabilities(tmp_path: Path) -> None:
    from neuralc.frontend.check import check_program
    from neuralc.frontend.parser import parse_text
    from neuralc.lower import train_torch
    from neuralc.lower.pytorch import import_artifact
    from neuralc.lower.target import BuildOptions, get_target
    from neuralc.lower.training import training_config

    text = model_text(optimizer="SGD(learning_rate=1e-9)", train="epochs: 1\n    batch_size: 64")
    network = check_program(parse_text(text, "m.neural")).networks[0].network
    config = training_config(network)
    assert config["output"] == {
        "shape": [3],
        "dtype": "float32",
        "activation": "softmax",
        "logits_layer": "output",
        "loss_input": "logits",
    }
    path = tmp_path / "m.py"
    path.write_bytes(get_target("pytorch").emit(network, BuildOptions("m.neural")))
    model = import_artifact(path).build_model()
    rng = np.random.default_rng(0)
    x = (10 * rng.standard_normal((64, 8))).astype(np.float32)  # large logits
    y = rng.integers(0, 3, 64)
    record = train_torch.train(model, config, {"x": x, "y": y}, verbose=False)
    with torch.no_grad():
        logits = model.output(torch.relu(model.dense(torch.from_numpy(x))))
        probs = model(torch.from_numpy(x))
    expected = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)).item()
    assert record["steps"]["loss"][0] == pytest.approx(expected, rel=1e-6)
    double = torch.nn.functional.cross_entropy(probs, torch.from_numpy(y)).item()
    assert abs(double - expected) > 1e-2  # what a double softmax would have reported
    np.testing.assert_allclose(probs.sum(-1).numpy(), 1.0, rtol=1e-6)
