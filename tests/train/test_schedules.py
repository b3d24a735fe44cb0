"""Learning-rate schedules follow Keras' formulas, per optimizer step, on both backends;
mixed precision is planned per device."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from train_testlib import TARGETS, RunCli, Writer, model_text, read_json

from neuralc.lower.train_core import make_schedule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("target", TARGETS)
def test_lr_each_step_follows_exponential_decay(
    target: str, write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    model = write(
        "m.neural",
        model_text(
            optimizer="Adam(learning_rate=ExponentialDecay(0.1, 4, 0.5))",
            train="epochs: 2\n    batch_size: 16",
        ),
    )
    code, err = run_cli(
        "run",
        model,
        "--synthetic",
        64,
        "--target",
        target,
        "--output-dir",
        tmp_path / "o",
        "--metrics-json",
        tmp_path / "m.json",
    )
    assert code == 0, err
    record = read_json(tmp_path / "m.json")
    lrs = record["steps"]["lr"]
    assert len(lrs) == 8
    for step, lr in enumerate(lrs):
        assert lr == pytest.approx(0.1 * 0.5 ** (step / 4), rel=1e-12)
    assert record["epochs"][-1]["lr"] == lrs[-1]


def test_torch_optimizer_sees_the_scheduled_lr(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """The rate the torch optimizer applies each step is the schedule's: with SGD and zero
    momentum, the weight change of step k is lr_k times the gradient."""
    from neuralc.lower import train_torch
    from neuralc.lower.train_torch_ops import KerasSGD

    config = _config(
        model_text(
            optimizer="SGD(learning_rate=StepDecay(0.5, 2, 0.1))",
            loss="mse",
            output="Output(1)",
            metrics="[]",
            train="epochs: 1\n    batch_size: 4\n    shuffle: false",
        )
    )
    config["output"]["loss_input"] = "values"
    model = torch.nn.Linear(8, 1, bias=False)
    seen: list[float] = []
    original = KerasSGD.step

    def spy(self: KerasSGD, closure: object = None) -> None:
        seen.append(self.param_groups[0]["lr"])
        return original(self, closure)

    x = np.ones((16, 8), np.float32)
    KerasSGD.step = spy  # type: ignore[method-assign]
    try:
        record = train_torch.train(model, config, {"x": x, "y": np.zeros((16, 1))}, verbose=False)
    finally:
        KerasSGD.step = original  # type: ignore[method-assign]
    assert seen == record["steps"]["lr"] == [0.5, 0.5, 0.05, 0.05]


@pytest.mark.parametrize(
    ("ours", "keras_name", "kwargs"),
    [
        (
            {
                "name": "ExponentialDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 10,
                "decay_rate": 0.9,
            },
            "ExponentialDecay",
            {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9},
        ),
        (
            {
                "name": "StepDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 10,
                "decay_rate": 0.5,
            },
            "ExponentialDecay",
            {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, "staircase": True},
        ),
        (
            {
                "name": "CosineDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 20,
                "alpha": 0.1,
                "warmup_target": 0.5,
                "warmup_steps": 5,
            },
            "CosineDecay",
            {
                "initial_learning_rate": 0.1,
                "decay_steps": 20,
                "alpha": 0.1,
                "warmup_target": 0.5,
                "warmup_steps": 5,
            },
        ),
        (
            {
                "name": "PolynomialDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 20,
                "power": 2.0,
            },
            "PolynomialDecay",
            {"initial_learning_rate": 0.1, "decay_steps": 20, "power": 2.0},
        ),
        (
            {
                "name": "InverseTimeDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 5,
                "decay_rate": 0.5,
            },
            "InverseTimeDecay",
            {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5},
        ),
        (
            {"name": "PiecewiseConstantDecay", "boundaries": [5, 12], "values": [0.1, 0.05, 0.01]},
            "PiecewiseConstantDecay",
            {"boundaries": [5, 12], "values": [0.1, 0.05, 0.01]},
        ),
    ],
)
def test_schedules_match_keras(ours: dict, keras_name: str, kwargs: dict) -> None:
    keras = pytest.importorskip("keras")

    reference = getattr(keras.optimizers.schedules, keras_name)(**kwargs)
    schedule = make_schedule(ours)
    for step in range(30):
        assert schedule(step) == pytest.approx(float(reference(step)), rel=1e-5), step


def test_warmup_schedules() -> None:
    warm = make_schedule(
        {
            "name": "WarmupCosineDecay",
            "initial_learning_rate": 1.0,
            "decay_steps": 10,
            "warmup_steps": 4,
        }
    )
    assert [warm(s) for s in range(5)] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert warm(14) == pytest.approx(0.0, abs=1e-12)
    wrapped = make_schedule(
        {
            "name": "Warmup",
            "warmup_steps": 2,
            "learning_rate": {
                "name": "ExponentialDecay",
                "initial_learning_rate": 0.2,
                "decay_steps": 1,
                "decay_rate": 0.5,
            },
        }
    )
    assert [wrapped(s) for s in range(5)] == pytest.approx([0.0, 0.1, 0.2, 0.1, 0.05])


def test_schedule_arguments_are_checked(write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    model = write("m.neural", model_text(optimizer="Adam(learning_rate=ExponentialDecay(0.1))"))
    code, err = run_cli("run", model, "--synthetic", 32, "--output-dir", tmp_path / "o")
    assert code == 1 and "ExponentialDecay() needs decay_steps, decay_rate" in err


def test_mixed_precision_is_float32_on_cpu(write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    from neuralc.lower.train_torch_ops import precision_plan

    assert precision_plan(torch.device("cpu"), True) == (None, False, "float32")
    model = write("m.neural", model_text(extra="execution {\n    mixed_precision: true\n  }"))
    code, err = run_cli(
        "run",
        model,
        "--synthetic",
        64,
        "--output-dir",
        tmp_path / "o",
        "--device",
        "cpu",
        "--metrics-json",
        tmp_path / "m.json",
    )
    assert code == 0, err
    assert read_json(tmp_path / "m.json")["precision"] == "float32"


@pytest.mark.gpu
def test_mixed_precision_autocasts_on_cuda(write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    model = write(
        "m.neural",
        model_text(
            extra="execution {\n    mixed_precision: true\n  }",
            train="epochs: 3\n    batch_size: 32",
        ),
    )
    code, err = run_cli(
        "run",
        model,
        "--synthetic",
        256,
        "--output-dir",
        tmp_path / "o",
        "--device",
        "cuda",
        "--metrics-json",
        tmp_path / "m.json",
    )
    assert code == 0, err
    record = read_json(tmp_path / "m.json")
    assert record["precision"] in ("bfloat16 autocast", "float16 autocast + loss scaling")
    assert record["device"].startswith("cuda")
    losses = [e["train_loss"] for e in record["epochs"]]
    assert losses[-1] < losses[0] and all(math.isfinite(v) for v in losses)


def _config(text: str) -> dict:
    from neuralc.frontend.check import check_program
    from neuralc.frontend.parser import parse_text
    from neuralc.lower.training import training_config

    return training_config(check_program(parse_text(text, "m.neural")).networks[0].network)


@pytest.mark.gpu
def test_float16_autocast_scales_the_loss(
    write: Writer, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where bf16 is missing, mixed precision is fp16 autocast with a GradScaler."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    model = write(
        "m.neural",
        model_text(
            extra="execution {\n    mixed_precision: true\n  }",
            train="epochs: 3\n    batch_size: 32",
        ),
    )
    code, err = run_cli(
        "run",
        model,
        "--synthetic",
        256,
        "--output-dir",
        tmp_path / "o",
        "--device",
        "cuda",
        "--metrics-json",
        tmp_path / "m.json",
    )
    assert code == 0, err
    record = read_json(tmp_path / "m.json")
    assert record["precision"] == "float16 autocast + loss scaling"
    losses = [e["train_loss"] for e in record["epochs"]]
    assert losses[-1] < losses[0]
