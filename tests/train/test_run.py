"""`neuralc run` end to end: loss falls on both backends, early stopping, checkpoints and resume,
divergence, Ctrl-C, data diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from train_testlib import TARGETS, RunCli, Writer, model_text, read_json, teacher_data

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("target", TARGETS)
def test_loss_falls(target: str, write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    model = write("m.neural", model_text(train="epochs: 4\n    batch_size: 32"))
    out = tmp_path / "out"
    code, err = run_cli(
        "run",
        model,
        "--synthetic",
        256,
        "--target",
        target,
        "--output-dir",
        out,
        "--metrics-json",
        tmp_path / "m.json",
    )
    assert code == 0, err
    record = read_json(tmp_path / "m.json")
    losses = [e["train_loss"] for e in record["epochs"]]
    assert len(losses) == 4 and losses[-1] < 0.7 * losses[0]
    assert record["epochs"][-1]["accuracy"] > record["epochs"][0]["accuracy"]
    assert len(record["steps"]["loss"]) == len(record["steps"]["lr"]) == 4 * 8
    weights = "weights.safetensors"  # both backends write the framework-neutral file
    assert (out / weights).exists() and (out / f"m_{target}.py").exists()
    assert (out / "metrics.json").exists()


def test_npz_data_and_validation(write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    x, y = teacher_data(192)
    data = tmp_path / "d.npz"
    np.savez(data, x=x[:128], y=y[:128], x_val=x[128:], y_val=y[128:])
    model = write("m.neural", model_text())
    code, err = run_cli(
        "run",
        model,
        "--data",
        data,
        "--output-dir",
        tmp_path / "o",
        "--metrics-json",
        tmp_path / "m.json",
    )
    assert code == 0, err
    epochs = read_json(tmp_path / "m.json")["epochs"]
    assert {"train_loss", "val_loss", "accuracy", "val_accuracy"} <= set(epochs[0])
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]


def test_early_stopping_stops_and_restores_best(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """Validation labels contradict the training labels: val_loss rises while training
    improves, so patience 1 stops after the second epoch and restores epoch 1's weights."""
    x, y = teacher_data(256)
    data = tmp_path / "d.npz"
    np.savez(data, x=x[:192], y=y[:192], x_val=x[192:], y_val=(y[192:] + 1) % 3)
    train = "epochs: 10\n    batch_size: 32\n    early_stopping_patience: 1"
    model = write("m.neural", model_text(train=train))
    out = tmp_path / "o"
    code, err = run_cli(
        "run", model, "--data", data, "--output-dir", out, "--metrics-json", tmp_path / "m.json"
    )
    assert code == 0, err
    record = read_json(tmp_path / "m.json")
    assert record["stopped_early"] and len(record["epochs"]) < 10
    assert record["restored_best"] and record["best_epoch"] == 1
    # The saved weights are epoch 1's: their validation loss is the best epoch's.
    from safetensors.numpy import load_file

    w = load_file(out / "weights.safetensors")
    h = np.maximum(x[192:] @ w["dense.weight"].T + w["dense.bias"], 0)
    z = h @ w["output.weight"].T + w["output.bias"]
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    val = -logp[np.arange(64), (y[192:] + 1) % 3].mean()
    assert val == pytest.approx(record["epochs"][0]["val_loss"], rel=1e-4)


@pytest.mark.parametrize("target", TARGETS)
def test_checkpoint_resume_reaches_the_same_state(
    target: str, write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    train = 'epochs: 3\n    batch_size: 32\n    checkpoint_path: "best_model.h5"'
    model = write("m.neural", model_text(train=train))
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["--synthetic", 160, "--target", target]
    assert run_cli("run", model, *common, "--output-dir", straight)[0] == 0
    assert run_cli("run", model, *common, "--output-dir", split, "--epochs", 1)[0] == 0
    code, err = run_cli("run", model, *common, "--output-dir", split, "--resume")
    assert code == 0, err
    from safetensors.numpy import load_file

    a = load_file(straight / "best_model.safetensors")  # .h5 is written as safetensors
    b = load_file(split / "best_model.safetensors")
    assert set(a) == set(b) and any(k.startswith("optimizer.") for k in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert len(read_json(split / "metrics.json")["epochs"]) == 3


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    from torch import nn

    from neuralc.lower import train_torch
    from neuralc.lower.train_core import TrainState

    config = _config(model_text(train="epochs: 3\n    batch_size: 32"))
    x, y = teacher_data(128)
    model = nn.Sequential(nn.Linear(8, 3))

    def interrupt(epoch: int, logs: dict) -> None:
        raise KeyboardInterrupt

    path = str(tmp_path / "ckpt.safetensors")
    config["output"]["loss_input"] = "output_logits"
    with pytest.raises(KeyboardInterrupt):
        train_torch.train(
            model, config, {"x": x, "y": y}, checkpoint=path, callbacks=[interrupt], verbose=False
        )
    record = train_torch.train(
        nn.Sequential(nn.Linear(8, 3)),
        config,
        {"x": x, "y": y},
        checkpoint=path,
        resume=True,
        verbose=False,
    )
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]
    assert isinstance(TrainState().to_json(), str)


def test_divergence_names_epoch_and_step(write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    model = write(
        "m.neural",
        model_text(
            optimizer="SGD(learning_rate=1e12)", loss="mse", output="Output(3)", metrics='["mae"]'
        ),
    )
    code, err = run_cli("run", model, "--synthetic", 128, "--output-dir", tmp_path / "o")
    assert code == 1
    assert "training diverged: the loss is" in err and "at epoch 1, step" in err


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            lambda x, y: {"x": x[:, :7], "y": y},
            "x has shape (64, 7) but the model's input 'input' takes (None, 8)",
        ),
        (
            lambda x, y: {"x": x, "y": y.astype(np.float32)},
            "y holds float32 labels but loss "
            "'sparse_categorical_crossentropy' takes integer class ids",
        ),
        (lambda x, y: {"x": x, "y": y + 3}, "y holds class ids in [3, 5] but the output has 3"),
        (lambda x, y: {"x": x, "y": np.eye(3)[y]}, "one-hot labels need loss"),
        (lambda x, y: {"x": x}, "the data has no labels 'y'"),
        # complex features lost their imaginary part to a cast, with only numpy's warning
        (
            lambda x, y: {"x": x.astype(np.complex64), "y": y},
            "x holds complex64 values; the model takes real numbers",
        ),
        # float64 past float32's range became infinities with only numpy's RuntimeWarning
        (
            lambda x, y: {"x": x.astype(np.float64) * 1e300, "y": y},
            "x holds values beyond float32's range (±3.403e+38)",
        ),
        # zero samples trained "successfully" with a loss of 0
        (lambda x, y: {"x": x[:0], "y": y[:0]}, "x has no samples"),
        (
            lambda x, y: {"x": x, "y": y, "x_val": x[:0], "y_val": y[:0]},
            "x_val has no samples",
        ),
    ],
)
def test_data_diagnostics(
    arrays: Callable[..., dict], message: str, write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    x, y = teacher_data(64)
    data = tmp_path / "d.npz"
    np.savez(data, **arrays(x, y))
    model = write("m.neural", model_text())
    code, err = run_cli("run", model, "--data", data, "--output-dir", tmp_path / "o")
    assert code == 1
    assert message in err and str(data) in err


def test_embedding_input_refuses_float_ids(write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    text = """network Tok {
  input: (6,)
  layers:
    Embedding(input_dim=20, output_dim=4)
    GlobalAveragePooling1D()
    Output(2, activation="softmax")
  loss: "sparse_categorical_crossentropy"
}
"""
    data = tmp_path / "d"
    data.mkdir()
    np.save(data / "x.npy", np.ones((8, 6), np.float32))
    np.save(data / "y.npy", np.zeros(8, np.int64))
    code, err = run_cli(
        "run", write("t.neural", text), "--data", data, "--output-dir", tmp_path / "o"
    )
    assert code == 1 and "feeds an Embedding, which takes integer token ids" in err


def test_unknown_metric_is_reported_at_the_metric(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """`run` pointed at the network (1:1); `check` passed the same file."""
    model = write("m.neural", model_text(metrics='["accuracy", "f1score"]'))
    for command in (("check",), ("run", "--synthetic", 32, "--output-dir", tmp_path / "o")):
        code, err = run_cli(command[0], model, *command[1:])
        assert code == 1
        assert err.splitlines()[:3] == [
            f"{model}:8:25: error: unknown metric 'f1score'",
            '    metrics: ["accuracy", "f1score"]',
            "  " + " " * 24 + "^",
        ]
    assert not (tmp_path / "o").exists()


def _config(text: str) -> dict:
    from neuralc.frontend.check import check_program
    from neuralc.frontend.parser import parse_text
    from neuralc.lower.training import training_config

    return training_config(check_program(parse_text(text, "m.neural")).networks[0].network)


@pytest.mark.parametrize("command", ["run", "tune"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be a positive integer, got 0"),
        ("-2", "must be a positive integer, got -2"),
        ("2.5", "expected a positive integer, got '2.5'"),
        (str(2**63), f"must be at most 2**63 - 1 = {2**63 - 1:,}, got {2**63}"),
        ("9" * 5000, "must be at most 2**63 - 1 = 9,223,372,036,854,775,807, got a 5,000-digit"),
    ],
)
def test_epochs_and_batch_size_are_positive_int64s(
    command: str, value: str, message: str, write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A count past int64 used to pass argparse and fail mid-run (OverflowError); zero or less
    was a diagnostic only after the build. Both are usage errors now, before anything runs."""
    from neuralc.cli import main, parse_args

    model = write("m.neural", model_text())
    for option in ("--epochs", "--batch-size"):
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main([command, str(model), "--synthetic", "8", option, value])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert f"neuralc {command}: error: argument {option}: {message}" in err, err
    args = parse_args([command, str(model), "--synthetic", "8", "--epochs", str(2**63 - 1)])
    assert args.epochs == 2**63 - 1 and args.batch_size is None


@pytest.mark.parametrize("command", ["run", "tune"])
def test_synthetic_sizes_are_checked_before_drawing(
    command: str, write: Writer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`--synthetic` past int64 is a usage error; a count whose inputs would not fit in memory
    is a diagnostic before numpy tries (it raised 'Maximum allowed dimension exceeded')."""
    from neuralc.cli import main

    model = write("m.neural", model_text(optimizer="Adam(learning_rate=HPO(choice(0.01, 0.1)))"))
    with pytest.raises(SystemExit) as info:
        main([command, str(model), "--synthetic", str(10**20)])
    assert info.value.code == 2
    assert "argument --synthetic: must be at most 2**63 - 1" in capsys.readouterr().err
    out = (
        ["--output-dir", str(tmp_path / "o")]
        if command == "run"
        else ["-o", str(tmp_path / "b.neural")]
    )
    assert main([command, str(model), "--synthetic", str(2**62), *out]) == 1
    err = capsys.readouterr().err
    # tune reports it as the reason no trial completed.
    assert f"--synthetic {2**62:,} needs about" in err, err
    if command == "run":
        assert "note: at most 16 GiB; use fewer samples" in err
    assert "Traceback" not in err


def test_initial_weights_are_checked_before_training(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """`run --weights` gets the checks `predict` has: a missing file, a directory and another
    model's weights are diagnostics (they were an internal error, or PyTorch's state-dict
    message with an unrelated note)."""
    from neuralc.cli import main

    model = write("m.neural", model_text())
    other = write("other.neural", model_text().replace("Dense(16", "Dense(5"))
    assert main(["init", str(other), "-o", str(tmp_path / "other.safetensors")]) == 0
    (tmp_path / "folder").mkdir()
    cases = {
        "missing.safetensors": "weights file '{}' does not exist",
        "folder": "weights file '{}' is a directory",
        "other.safetensors": "in '{}', but layer",
    }
    for name, message in cases.items():
        weights = tmp_path / name
        code, err = run_cli("run", model, "--synthetic", 8, "--output-dir", tmp_path / "out",
                            "--weights", weights)
        assert code == 1, err
        assert message.format(weights) in err, err
        assert "internal error" not in err
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("validation", [False, True])
def test_samples_too_short_for_a_dynamic_length_network(
    target: str, validation: bool, write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """With `input: (None, None, 2)` the data decides the length; a window longer than the
    samples was PyTorch's or TensorFlow's error reported as a neuralc bug."""
    model = write("dyn.neural", model_text(output='Output(2, activation="softmax")').replace(
        "input: (8,)", "input: (None, None, 2)").replace(
        'Dense(16, activation="relu")', "Conv1D(3, 5)\n    GlobalAveragePooling1D()"))
    rng = np.random.default_rng(0)
    long, short = rng.standard_normal((8, 6, 2)), rng.standard_normal((4, 3, 2))
    arrays = {"x": long, "y": np.zeros(8, np.int64), "x_val": short, "y_val": np.zeros(4, np.int64)}
    if not validation:
        arrays = {"x": short, "y": np.zeros(4, np.int64)}
    np.savez(tmp_path / "d.npz", **arrays)
    code, err = run_cli("run", model, "--data", tmp_path / "d.npz", "--target", target,
                        "--output-dir", tmp_path / "o")
    assert code == 1, err
    assert "dyn.neural:4:5: error: with the given input sizes (input (4, 3, 2)): Conv1D" in err
    assert "internal error" not in err
