"""`autotune` (-O3): record that the fused kernels should be autotuned.

Autotuning itself is the kernels' business at run time (`neuralc.kernels.autotuning`); the
compiler marks the module, `module attributes {autotune = true}`, and each network
(`attributes {autotune = true}`: an emitter is handed one network), and the PyTorch emitter
runs the forward inside `with kernel_autotuning(AUTOTUNE):`, AUTOTUNE being the mark. Without
it (-O2) the forward's Triton kernels launch their first configuration: no search on the first
call.

That switch is a ContextVar, and it reaches the forward's kernels only. The backward kernels
(training) run after the forward's block has exited, and on CUDA on autograd's own worker
threads, which do not see the caller's context: they take the default and autotune at -O2 as
well. `NEURALC_TRITON_AUTOTUNE=0` (or `1`) decides for forward and backward alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuralc.ir.core import Module
from neuralc.passes.base import Pass, PassContext, register_pass


@register_pass
@dataclass(frozen=True)
class Autotune(Pass):
    """Mark the module for kernel autotuning."""

    name = "autotune"
    description = "mark the module for kernel autotuning (module attribute autotune = true)"
    min_level = 3

    def run(self, module: Module, ctx: PassContext) -> bool:
        changed = module.attrs.get("autotune") is not True
        module.attrs["autotune"] = True
        for net in module.networks:
            changed |= net.attrs.get("autotune") is not True
            net.attrs["autotune"] = True
        return changed
