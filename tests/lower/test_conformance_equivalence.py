"""The language's central promise, on real programs: every accepting conformance program,
shrunk to run in seconds, gives the same output through PyTorch, TensorFlow and ONNX Runtime
from one weight file, at every -O level (max abs difference ≤ 1e-4 in float32 at -O0..-O2,
≤ 1e-2 at -O3, against PyTorch at -O0).

Everything goes through the command line users run: `neuralc init`, then `neuralc predict` for
each target, which builds the artifact and executes that file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from neuralc.cli import main
from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network

# Shrinking: widths, lengths, vocabularies and image sizes, chosen so every head count in the
# corpus (8, 12, 16) still divides d_model and patch/reshape arithmetic stays consistent.
SHRINK = {768: 48, 512: 48, 2048: 64, 3072: 64, 4096: 64, 1024: 16, 50257: 50, 10000: 100,
          224: 32, 196: 4, 1000: 10, 128: 16, 256: 16, 300: 16, 100: 12}
TOLERANCE = 1e-4


def shrink(text: str) -> str:
    return re.sub(r"(?<![.\w])\d+(?![.\w])",
                  lambda m: str(SHRINK.get(int(m.group()), m.group())), text)


def _accepted() -> list[str]:
    from test_conformance import ACCEPT  # the single list of accepting programs

    return sorted(ACCEPT)


def _inputs(network: Network, tmp_path: Path) -> list[str]:
    """A random batch of 2 per network input, as `--input` arguments."""
    rng = np.random.default_rng()
    arguments = []
    for value in network.inputs:
        shape = [d if isinstance(d, int) else 2 for d in value.type.shape]
        if value.type.dtype == "i64":
            array = rng.integers(0, 10, size=shape).astype(np.int64)
        else:
            array = rng.standard_normal(shape).astype(np.float32)
        path = tmp_path / f"{network.name}.{value.name}.npy"
        np.save(path, array)
        arguments.append(f"{value.name}={path}" if len(network.inputs) > 1 else str(path))
    return arguments


def _predict(model: Path, network: str, weights: Path, inputs: list[str], target: str,
             level: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> np.ndarray:
    out = tmp_path / f"{network}.{target}.O{level}.npy"
    argv = ["predict", str(model), "--network", network, "--target", target, "--weights",
            str(weights), "-o", str(out), "--device", "cpu", "-O", str(level)]
    for item in inputs:
        argv += ["--input", item]
    assert main(argv) == 0, capsys.readouterr().err
    return np.load(out)


# (target, -O level, tolerance against PyTorch at -O0)
RUNS = [("tensorflow", 2, TOLERANCE), ("onnx", 0, TOLERANCE), ("onnx", 1, TOLERANCE),
        ("onnx", 2, TOLERANCE), ("onnx", 3, 1e-2), ("pytorch", 1, TOLERANCE),
        ("pytorch", 2, TOLERANCE), ("pytorch", 3, 1e-2)]


@pytest.mark.heavy
@pytest.mark.parametrize("name", _accepted())
def test_backends_and_levels_agree(name: str, conformance_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / Path(name).name
    model.write_text(shrink((conformance_dir / name).read_text()))
    networks = check_program(parse_text(model.read_text(), str(model))).module.networks
    for network in networks:
        weights = tmp_path / f"{network.name}.safetensors"
        assert main(["init", str(model), "--network", network.name, "--seed", "3",
                     "-o", str(weights)]) == 0
        inputs = _inputs(network, tmp_path)
        reference = _predict(model, network.name, weights, inputs, "pytorch", 0, tmp_path,
                             capsys)
        assert np.isfinite(reference).all()
        for target, level, tolerance in RUNS:
            output = _predict(model, network.name, weights, inputs, target, level, tmp_path,
                              capsys)
            assert output.shape == reference.shape, (target, level)
            difference = float(np.max(np.abs(output - reference)))
            assert difference <= tolerance, (
                f"{target} -O{level} differs from pytorch -O0 by {difference}")
