"""Network names that are also module-level names of the emitted functional PyTorch module
(`AUTOTUNE`, `kernel_autotuning`, `contextlib`) must not shadow them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuralc.cli import main

torch = pytest.importorskip("torch")

LAYERS = """  input: (6, 16)
  layers:
    TransformerEncoder(num_heads=2, d_model=16, dff=32)
    GlobalAveragePooling1D()
    Output(3)
}
"""


@pytest.mark.parametrize("name", ["AUTOTUNE", "kernel_autotuning", "contextlib"])
@pytest.mark.parametrize("level", ["-O2", "-O3"])
def test_a_network_named_like_the_autotuning_switch_builds_and_runs(
    name: str, level: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The forward runs in `with kernel_autotuning(AUTOTUNE):`; a class named AUTOTUNE used to
    replace the flag (a class is truthy: -O2 modules autotuned). The module must compute what
    the same model under another name computes, with the level's flag."""
    from neuralc.lower.pytorch import import_artifact

    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 6, 16), np.float32))
    outputs = []
    for network in ("Reference", name):
        model = tmp_path / f"{network}.neural"
        model.write_text(f"network {network} {{\n{LAYERS}")
        weights = tmp_path / f"{network}.safetensors"
        artifact = tmp_path / f"{network}{level}.py"
        assert main(["init", str(model), "-o", str(weights)]) == 0
        assert main(["build", str(model), "--target", "pytorch", level, "-o", str(artifact)]) == 0
        assert "with kernel_autotuning(AUTOTUNE):" in artifact.read_text()
        module = import_artifact(artifact)
        assert module.AUTOTUNE is (level == "-O3")
        assert module.kernel_autotuning.__module__ in ("neuralc.kernels.dispatch", "contextlib")
        requested: list[object] = []
        module.kernel_autotuning = _recording(module.kernel_autotuning, requested)
        built = module.build_model(str(weights), "cpu")
        with torch.no_grad():
            outputs.append(built(x).numpy())
        assert requested == [level == "-O3"]
    capsys.readouterr()
    np.testing.assert_array_equal(outputs[1], outputs[0])


def _recording(switch: Callable[[object], Any], calls: list[object]) -> Callable[[object], Any]:
    """`switch` (the module's `kernel_autotuning`), noting the flag of each call."""

    def record(enabled: object) -> Any:
        calls.append(enabled)
        return switch(enabled)

    return record


@pytest.mark.parametrize("name", ["DataError", "TrainingError", "PredictError", "Prepared"])
@pytest.mark.parametrize("level", ["-O0", "-O2"])
def test_a_network_named_like_a_training_class_runs_as_a_script(
    name: str, level: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The training loop and command line are inlined into the module; a root class named
    DataError replaced the loop's exception class, so `python model.py` crashed with a
    TypeError while reporting its first error."""
    from neuralc.lower.pytorch import import_artifact

    model = tmp_path / f"{name}.neural"
    model.write_text(f"network {name} {{\n{LAYERS}")
    artifact = tmp_path / f"{name}.py"
    assert main(["build", str(model), "--target", "pytorch", level, "-o", str(artifact)]) == 0
    module = import_artifact(artifact)
    assert isinstance(module.DataError("m"), ValueError)
    with pytest.raises(SystemExit) as exc:
        module.main(["--input", str(tmp_path / "missing.npy"), "-o", str(tmp_path / "y.npy")])
    assert exc.value.code == 1
    assert "error: input file" in capsys.readouterr().err
