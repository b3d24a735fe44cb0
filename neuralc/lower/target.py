"""The contract every backend meets: emit an artifact from a network, and run that artifact.

`neuralc build` calls `emit` and writes the bytes atomically; `neuralc predict` builds the same
artifact the same way and then runs *that file* through `predict` (one path: what users build is
what predict executes). Targets are imported lazily: `check` never pays for torch or TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from neuralc.ir.core import Network

TARGET_MODULES = {
    "pytorch": "neuralc.lower.pytorch",
    "tensorflow": "neuralc.lower.keras",
    "onnx": "neuralc.lower.onnx",
}
DEFAULT_OPSET = 18


@dataclass(frozen=True)
class BuildOptions:
    source_path: str  # the .neural file, for `# model.neural:LINE` comments and doc strings
    weights: Path | None = None  # a weight file to load (PyTorch/Keras) or embed (ONNX)
    seed: int = 0  # initial weights when no weight file is given
    opset: int = DEFAULT_OPSET
    opt_level: int = 0
    device: str | None = None  # override of the model's placement (`--device cpu`)
    # `kernel.*` ops: "auto" calls neuralc's Triton kernels on CUDA tensors (the PyTorch
    # composites elsewhere); "torch" always emits the composites (`--kernels torch`).
    kernels: str = "auto"
    # The weight file the emitted PyTorch/Keras module loads when its caller names none (`build
    # --weights`), as the module spells it: relative to the module's directory when the
    # artifact's path is known (`module_weights`), so the two files can move together.
    module_weights: str | None = None


class Target(Protocol):
    name: str
    suffix: str  # ".py" or ".onnx"

    def emit(
        self, network: Network, options: BuildOptions, artifact: Path | None = None
    ) -> bytes:
        """The artifact's bytes. `artifact` is where the caller will write them; a target may
        write companion files beside it (ONNX external data for models over 2 GB)."""
        ...

    def predict(
        self,
        artifact: Path,
        weights: Path | None,
        inputs: dict[str, np.ndarray],
        device: str,
    ) -> np.ndarray:
        """Run the artifact. `device` "" keeps the model's own placement; "cpu" (or another
        device) overrides every layer's placement (`--device`)."""
        ...


def get_target(name: str) -> Target:
    module = importlib.import_module(TARGET_MODULES[name])
    return module.TARGET  # type: ignore[no-any-return]


def module_weights(options: BuildOptions, artifact: Path | None) -> BuildOptions:
    """`options` with `module_weights` set from `options.weights` for an artifact written to
    `artifact`: the path relative to the artifact's directory, or absolute when there is no
    artifact path or no relative path (another drive)."""
    if options.weights is None:
        return options
    import dataclasses
    import os

    weights = Path(options.weights).resolve()
    spelled = str(weights)
    if artifact is not None:
        with contextlib.suppress(ValueError):
            spelled = os.path.relpath(weights, Path(artifact).resolve().parent)
    return dataclasses.replace(options, module_weights=Path(spelled).as_posix())


def weights_lines(options: BuildOptions) -> list[str]:
    """`WEIGHTS`: the weight file the emitted module loads when its caller names none."""
    if options.module_weights is None:
        return ["WEIGHTS: str | None = None  # `neuralc build --weights W` names a default file"]
    return ["# The weight file `neuralc build --weights` named (a relative path is relative to",
            "# this module's directory): loaded when no other weight file is given.",
            f"WEIGHTS: str | None = {json.dumps(options.module_weights)}"]
