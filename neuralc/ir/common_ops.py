"""Ops every dialect shares: device transfers.

`place-devices` inserts a transfer where a value flows between ops on different devices; the op
runs on (and its `device` is) the destination:

    %dense.to_cuda_1 = nn.transfer(%dense) {to = "cuda:1"} -> f32[N,64] @"cuda:1" loc(...)

`nn.transfer` sits among nn ops, `tensor.transfer` among tensor and kernel ops; both take one
operand and return it unchanged on device `to` ("cpu", "cuda" or "cuda:N").
"""

from __future__ import annotations

import importlib
import importlib.util
import re

from neuralc.ir.core import OPS, OpDef, Operation, VerifyError, register_op

TRANSFER_OPS = ("nn.transfer", "tensor.transfer")
CONCRETE_DEVICE = re.compile(r"cpu|cuda|cuda:\d+")


def verify_transfer(op: Operation) -> None:
    """One operand, returned unchanged (same type) on the device `to`, which is the op's own
    device when it has one."""
    extra = [k for k in op.attrs if k != "to"]
    if extra:
        raise VerifyError(f"unexpected attribute '{extra[0]}'", op)
    to = op.attrs.get("to")
    if not isinstance(to, str) or not CONCRETE_DEVICE.fullmatch(to):
        raise VerifyError(f"attribute 'to' must be a device (\"cpu\", \"cuda\" or \"cuda:N\"), "
                          f"got {to!r}", op)
    if op.results and op.operands and op.results[0].type != op.operands[0].type:
        raise VerifyError(f"result type {op.results[0].type} must equal the operand type "
                          f"{op.operands[0].type}", op)
    if op.device is not None and op.device != to:
        raise VerifyError(f"runs on {op.device} but transfers to {to}; a transfer runs on its "
                          "destination", op)


def _opdef(name: str) -> OpDef:
    return OpDef(name, f"{verify_transfer.__doc__}\n\n    %x.to_cuda_1 = {name}(%x) "
                 '{to = "cuda:1"} -> f32[N,64] @"cuda:1"', num_operands=1, num_results=1,
                 verify=verify_transfer)


def register_common_ops() -> None:
    # The tensor dialect may define tensor.transfer itself: load it first and keep its op.
    if importlib.util.find_spec("neuralc.ir.tensor") is not None:
        importlib.import_module("neuralc.ir.tensor")
    for name in TRANSFER_OPS:
        if name not in OPS:
            register_op(_opdef(name))


register_common_ops()
