"""`autotune` (-O3): record on the module that kernels may be autotuned.

Autotuning itself is the kernels' business at run time (`neuralc.kernels`); the compiler only
marks the module, `module attributes {autotune = true}`, for the emitters to pass on.
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
        if module.attrs.get("autotune") is True:
            return False
        module.attrs["autotune"] = True
        return True
