"""The TensorFlow/Keras 3 backend: `nn` IR → one standalone Keras module (`TARGET`, "tensorflow").

`emit` writes a readable, ruff-formatted Python module that builds a `keras.Model` with the
functional API (see `emitter.py` for its shape and `layers.py` for each layer's lowering);
`predict` imports that file by path and runs it, so what users build is what predict executes.

Decisions:
- Keras layer names are the layer instance names unchanged, dots included (`transformer_encoder.3`):
  Keras accepts them, and one string then names the Keras layer, the PyTorch submodule and the
  weight-file prefix. Python variables replace the dots with `_`.
- Weights: `build_model(weights_path)` reads the framework-neutral safetensors file (PyTorch
  names and layouts) and converts per layer class; every key must be used exactly once.
  Without a weight file the model keeps Keras' initializers (seeded), which differ from
  PyTorch's: cross-backend equality needs the weight file.
- Transformer blocks are the `TransformerLayer` helper (torch's post-norm math written with Keras
  ops, causal mask for decoders, cross-attention to the encoder output); MultiHeadAttention is
  Keras' own layer; LSTM/GRU/SimpleRNN are Keras' with torch's weights converted (LSTM/RNN bias =
  b_ih + b_hh; GRU reset_after=True with gates reordered r,z,n → z,r,h).
- Activations use Keras' definitions: "gelu" is the exact (erf) GELU, "leaky_relu" has
  negative_slope 0.2 (Keras 3's default), "hard_sigmoid" is relu6(x + 3) / 6.
- Devices: a functional model runs as one TensorFlow graph, so per-layer placement cannot be
  expressed; the module records GPU placements (`PLACEMENT`), runs the whole model on the first
  GPU named, and fails early, naming the layer, when a named GPU is missing. `--device cpu`
  (BuildOptions.device or predict's `device`) overrides. `mixed_precision` is not applied
  (float32 inference).
- Open hyperparameters that survive into the IR (those that do not change shapes) are emitted at
  their first candidate, as shape inference reads them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation

if TYPE_CHECKING:
    import numpy as np

    from neuralc.ir.core import Network
    from neuralc.lower.target import BuildOptions

_COUNTER = itertools.count()


class KerasTarget:
    name = "tensorflow"
    suffix = ".py"

    def emit(
        self, network: Network, options: BuildOptions, artifact: Path | None = None
    ) -> bytes:
        """The module's source; `artifact` (where it will be written) places `WEIGHTS`."""
        from neuralc.lower.keras.emitter import emit_module
        from neuralc.lower.target import module_weights

        if options.weights is not None:
            # Fail at build time, at the layers' source lines, rather than when loading.
            from neuralc.lower.weights import load_checked_weights

            load_checked_weights(network, options.weights)
        return emit_module(network, module_weights(options, artifact)).encode("utf-8")

    def predict(
        self,
        artifact: Path,
        weights: Path | None,
        inputs: dict[str, np.ndarray],
        device: str,
    ) -> np.ndarray:
        module = load_artifact(artifact)
        expected = list(module.INPUTS)
        if len(expected) == 1 and len(inputs) == 1 and expected[0] not in inputs:
            inputs = {expected[0]: next(iter(inputs.values()))}
        missing = [name for name in expected if name not in inputs]
        if missing:
            raise CompileError(Diagnostic(
                f"the model's input(s) {', '.join(missing)} were not given", None, "error",
                (f"the model takes: {', '.join(expected)}",)))
        try:
            return module.run(inputs, None if weights is None else str(weights), device)
        except module.DeviceError as exc:
            loc = SourceLocation(module.SOURCE, exc.line, exc.column) if exc.line else None
            raise CompileError(Diagnostic(
                f"{exc.problem} on this machine", loc, "error",
                ("run with --device cpu to run the whole model on the CPU",))) from None


def load_artifact(artifact: Path) -> ModuleType:
    """Import an emitted module by path (a fresh module object per call)."""
    # Triton must be imported before TensorFlow in a process (both bundle LLVM); the module
    # imports TensorFlow, so make sure a later Triton import (PyTorch kernels) stays possible.
    if "tensorflow" not in sys.modules:
        with contextlib.suppress(ImportError):
            import triton  # noqa: F401
    name = f"_neuralc_keras_model_{next(_COUNTER)}"
    spec = importlib.util.spec_from_file_location(name, Path(artifact))
    if spec is None or spec.loader is None:
        raise CompileError(Diagnostic(f"cannot import the Keras module '{artifact}'"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TARGET = KerasTarget()

# Importing the lowerings attaches them to the registry (cheap: no TensorFlow import).
from neuralc.lower.keras import layers as _layers  # noqa: E402, F401
