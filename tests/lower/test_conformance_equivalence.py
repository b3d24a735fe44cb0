"""The language's central promise, on real programs: every accepting conformance program,
shrunk to run in seconds, gives the same output through PyTorch, TensorFlow and ONNX Runtime
from one weight file (max abs difference ≤ 1e-4 in float32).

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


@pytest.mark.heavy
@pytest.mark.parametrize("name", _accepted())
def test_three_backends_agree(name: str, conformance_dir: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / Path(name).name
    model.write_text(shrink((conformance_dir / name).read_text()))
    program = parse_text(model.read_text(), str(model))
    networks = check_program(program).module.networks
    rng = np.random.default_rng()
    for network in networks:
        weights = tmp_path / f"{network.name}.safetensors"
        assert main(["init", str(model), "--network", network.name, "--seed", "3",
                     "-o", str(weights)]) == 0
        input_args = []
        for value in network.inputs:
            shape = [2 if not isinstance(d, int) else d for d in value.type.shape]
            shape = [2 if d == "N" else d for d in shape]
            if value.type.dtype == "i64":
                array = rng.integers(0, 10, size=shape).astype(np.int64)
            else:
                array = rng.standard_normal(shape).astype(np.float32)
            path = tmp_path / f"{network.name}.{value.name}.npy"
            np.save(path, array)
            input_args.append(f"{value.name}={path}" if len(network.inputs) > 1 else str(path))
        outputs = {}
        for target in ("pytorch", "tensorflow", "onnx"):
            out = tmp_path / f"{network.name}.{target}.npy"
            argv = ["predict", str(model), "--network", network.name, "--target", target,
                    "--weights", str(weights), "-o", str(out), "--device", "cpu"]
            for item in input_args:
                argv += ["--input", item]
            assert main(argv) == 0, capsys.readouterr().err
            outputs[target] = np.load(out)
        reference = outputs["pytorch"]
        assert np.isfinite(reference).all()
        for target in ("tensorflow", "onnx"):
            assert outputs[target].shape == reference.shape
            difference = float(np.max(np.abs(outputs[target] - reference)))
            assert difference <= TOLERANCE, f"{target} differs from pytorch by {difference}"
