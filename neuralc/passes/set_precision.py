"""`set-precision{dtype=bf16}` (-O3): let the emitters autocast a network to reduced precision.

Marks the network attribute `precision = "bf16"` (or "f16") when all of these hold:
- it runs on CUDA: its `execution.device`, or any op's device, is cuda/cuda:N/gpu (or `auto`
  with CUDA devices in `--devices`);
- the model allows it: `execution { mixed_precision: false }` is not set, and no value is f64
  (a model that asked for double precision keeps it);
- something is float at all: autocast only touches float ops, so integer paths (embedding ids,
  masks) are never converted, and an integer-only network is left unmarked.
The IR's types do not change; the emitters wrap the forward pass in autocast.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuralc.ir.core import Module, Network
from neuralc.passes.base import Pass, PassContext, option, register_pass

REDUCED = ("bf16", "f16")


def _cuda(device: object) -> bool:
    return isinstance(device, str) and (device.startswith("cuda") or device == "gpu")


def runs_on_cuda(net: Network, ctx: PassContext) -> bool:
    execution = net.attrs.get("execution")
    device = execution.get("device") if isinstance(execution, dict) else None
    devices = [device, *(op.device for op in net.walk())]
    if any(_cuda(d) for d in devices):
        return True
    return "auto" in devices and any(_cuda(d) for d in ctx.devices)


def precision_allowed(net: Network) -> bool:
    execution = net.attrs.get("execution")
    if isinstance(execution, dict) and execution.get("mixed_precision") is False:
        return False
    types = [v.type for v in net.inputs] + [r.type for op in net.walk() for r in op.results]
    if any(t.dtype == "f64" for t in types):
        return False
    return any(t.is_float for t in types)


@register_pass
@dataclass(frozen=True)
class SetPrecision(Pass):
    """Mark CUDA networks for reduced-precision autocast."""

    name = "set-precision"
    description = "mark networks on CUDA for bf16 (or f16) autocast where the model allows it"
    min_level = 3
    dtype: str = option("bf16", choices=REDUCED)

    def run(self, module: Module, ctx: PassContext) -> bool:
        changed = False
        for net in module.networks:
            if net.attrs.get("precision") == self.dtype:
                continue
            if runs_on_cuda(net, ctx) and precision_allowed(net):
                net.attrs["precision"] = self.dtype
                changed = True
        return changed
