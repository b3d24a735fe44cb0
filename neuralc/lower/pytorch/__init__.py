"""The PyTorch target: a readable, standalone `nn.Module` file, and running it.

`TARGET.emit(network, options)` returns the source of one Python module: per layer for an `nn`
network (`emitter.py`, with `rolled.py` and `module_text.py`), one functional call per op at the
tensor and kernel stages (`functional.py`);
`TARGET.predict(artifact, weights, inputs, device)` imports *that file* by path, builds the model
with the weights, and runs it in eval mode without gradients.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from neuralc.lower.pytorch.emitter import emit_source
from neuralc.lower.pytorch.layers import LOWERINGS, LayerCode, lower, register_lowerings
from neuralc.lower.target import BuildOptions, module_weights

if TYPE_CHECKING:
    import numpy as np

    from neuralc.ir.core import Network

__all__ = ["LOWERINGS", "TARGET", "LayerCode", "PyTorchTarget", "import_artifact", "lower"]

register_lowerings()


class PyTorchTarget:
    name = "pytorch"
    suffix = ".py"

    def emit(self, network: Network, options: BuildOptions, artifact: Path | None = None) -> bytes:
        """The module's source; `artifact` (where it will be written) places `WEIGHTS`."""
        if options.weights is not None:
            # Fail at build time, at the layers' lines, rather than in load_state_dict.
            from neuralc.lower.pytorch.functional import is_functional
            from neuralc.lower.pytorch.functional_weights import check_functional_weights
            from neuralc.lower.weights import load_checked_weights

            if is_functional(network):
                check_functional_weights(network, options.weights)
            else:
                load_checked_weights(network, options.weights)
        return emit_source(network, module_weights(options, artifact)).encode("utf-8")

    def predict(
        self,
        artifact: Path,
        weights: Path | None,
        inputs: dict[str, np.ndarray],
        device: str,
    ) -> np.ndarray:
        """Run the generated module. `device` "" (or None) keeps the model's own placement."""
        module = import_artifact(artifact)
        model = module.build_model(str(weights) if weights is not None else None, device or None)
        return module.predict(model, inputs)  # type: ignore[no-any-return]


def import_artifact(path: Path | str) -> ModuleType:
    """Import a generated file by path under a private module name.

    The module is in `sys.modules` while it executes, as a normal import would have it: its
    training loop's dataclasses resolve their annotations through it."""
    path = Path(path).resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"neuralc_artifact_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


TARGET = PyTorchTarget()
