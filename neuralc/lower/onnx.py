"""The ONNX target: `TARGET` builds a `.onnx` model directly from the IR and runs it with ONNX
Runtime. The implementation lives in `neuralc.lower.onnx_backend` (see its package doc)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from neuralc.ir.core import Network
    from neuralc.lower.target import BuildOptions


class OnnxTarget:
    name = "onnx"
    suffix = ".onnx"

    def emit(self, network: Network, options: BuildOptions, artifact: Path | None = None) -> bytes:
        """The model's bytes, from a network at any stage of the IR: `nn` (its weights from
        `options.weights`, else `init_weights(network, options.seed)`), or `tensor`/`kernel`
        (after -O2: its `tensor.weight` keys are looked up in `options.weights`, which is then
        required). `options.kernels` "auto" (default) lets `kernel.attention` below opset 23 use
        ONNX Runtime's fused `com.microsoft.MultiHeadAttention`; "torch" keeps standard ONNX ops
        only. `artifact` (where the caller will write the bytes) is needed only for models over
        2 GB, whose weights then go to `<artifact>.data` beside it."""
        from neuralc.lower.onnx_backend.emitter import emit_model

        return emit_model(network, options, artifact)

    def predict(
        self, artifact: Path, weights: Path | None, inputs: dict[str, np.ndarray], device: str
    ) -> np.ndarray:
        from neuralc.lower.onnx_backend.runtime import predict

        return predict(artifact, weights, inputs, device)


TARGET = OnnxTarget()
