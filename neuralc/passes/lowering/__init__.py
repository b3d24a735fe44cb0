"""Per-family lowerings of `nn` ops to the `tensor` dialect, one module per layer family
(`core`, `conv`, `norm`, `attention`, `recurrent`); importing the package registers every
lowering in `LOWERINGS` (nn op name → function of a `Layer`). The pass that drives them is
`neuralc.passes.lower_nn_to_tensor`."""

from __future__ import annotations

from neuralc.passes.lowering import attention, conv, core, norm, recurrent  # noqa: F401
from neuralc.passes.lowering.emit import LOWERINGS, Emitter, Layer, lowering

__all__ = ["LOWERINGS", "Emitter", "Layer", "lowering"]
