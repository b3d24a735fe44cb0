"""The training templates as the PyTorch emitter is to carry them: `training_tail` appended to
an emitted module makes `python model.py --data D.npz` train; `training_config`'s checks."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from train_testlib import model_text, read_json, teacher_data

from neuralc.diagnostics import CompileError
from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.lower.training import (
    MAIN_DISPATCH,
    training_config,
    training_imports,
    training_source,
)

pytest.importorskip("torch")


def _network(text: str):  # noqa: ANN202 - a Network
    return check_program(parse_text(text, "m.neural")).networks[0].network


def _top_level_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_emitted_module_with_the_training_tail_trains(tmp_path: Path) -> None:
    from neuralc.lower.target import BuildOptions, get_target

    network = _network(model_text(train="epochs: 2\n    batch_size: 32"))
    emitted = get_target("pytorch").emit(network, BuildOptions("m.neural")).decode()
    # The module `build` writes carries the loop: `python model.py --data D` trains.
    assert emitted.endswith(MAIN_DISPATCH)
    assert "TRAIN_CONFIG = " in emitted and "def train_main(" in emitted
    script = tmp_path / "model.py"
    script.write_text(emitted)
    x, y = teacher_data(128)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--data",
            str(tmp_path / "d.npz"),
            "--output-dir",
            str(tmp_path / "o"),
            "--metrics-json",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    record = read_json(tmp_path / "m.json")
    assert len(record["epochs"]) == 2 and (tmp_path / "o" / "weights.safetensors").exists()
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=x, y=y.astype(np.float32))
    done = subprocess.run(
        [sys.executable, str(script), "--data", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "takes integer class ids" in done.stderr


def test_sources_have_no_neuralc_imports() -> None:
    for target in ("pytorch", "tensorflow"):
        source = training_source(target)
        assert "neuralc." not in "".join(
            line for line in source.splitlines() if line.lstrip().startswith(("import", "from"))
        )
        ast.parse(source)
        lean = training_source(target, imports=False)
        assert "\nimport " not in lean and "import torch\n" not in lean
        assert "import numpy as np" in training_imports(target)


def test_config_normalizes_the_optimizer() -> None:
    text = model_text(optimizer="Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.95, "
                              "epsilon=1e-8, global_clipnorm=1.0)")
    config = training_config(_network(text))
    assert config["optimizer"] == {
        "name": "Adam",
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.95,
        "epsilon": 1e-8,
        "amsgrad": False,
        "weight_decay": 0.0,
    }
    assert config["train"]["gradient_clip"] == 1.0
    guide = model_text(
        optimizer="Adam(\n    learning_rate=ExponentialDecay(6e-4, 10000, "
        "0.95),\n    beta_1=0.9,\n    beta_2=0.95\n  )"
    )
    assert training_config(_network(guide))["optimizer"]["learning_rate"] == {
        "name": "ExponentialDecay",
        "initial_learning_rate": 6e-4,
        "decay_steps": 10000,
        "decay_rate": 0.95,
    }


@pytest.mark.parametrize(
    ("optimizer", "message"),
    [
        ("Adam(momentum=0.9)", "Adam() has no argument 'momentum'"),
        ("SGD(learning_rate=CosineDecay(0.1, 100, foo=1))", "CosineDecay() has no argument"),
        ("Adam(0.1, 0.2)", "takes the learning rate as its only positional argument"),
    ],
)
def test_config_diagnostics(optimizer: str, message: str) -> None:
    with pytest.raises(CompileError) as info:
        training_config(_network(model_text(optimizer=optimizer)))
    assert message in info.value.diagnostics[0].message


def test_open_hpo_takes_its_first_candidate() -> None:
    notes: list[str] = []
    config = training_config(
        _network(model_text(optimizer="Adam(learning_rate=HPO(log_range(1e-4, 1e-2)))")), notes
    )
    assert config["optimizer"]["learning_rate"] == 1e-4
    assert "neuralc tune" in notes[0]


def test_loss_reads_the_right_output() -> None:
    def source(loss: str, output: str) -> str:
        return training_config(_network(model_text(loss=loss, output=output)))["output"][
            "loss_input"
        ]

    assert source("categorical_crossentropy", 'Output(3, activation="softmax")') == "logits"
    assert source("cross_entropy", "Output(3)") == "output_logits"
    assert source("nll", 'Output(3, activation="log_softmax")') == "log_probs"
    assert source("binary_crossentropy", 'Output(3, activation="sigmoid")') == "logits"
    assert source("categorical_crossentropy", 'Output(3, activation="tanh")') == "probs"
    assert source("mse", "Output(3)") == "values"
