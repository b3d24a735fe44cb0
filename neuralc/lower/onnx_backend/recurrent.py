"""Recurrent layers: LSTM, GRU, SimpleRNN (and `tensor.lstm/gru/rnn`) as ONNX's LSTM, GRU and
RNN ops (one direction).

The weight file holds torch's tensors; ONNX orders the gates differently, so the graph reorders
them with Split/Concat on the initializers (folded by ONNX Runtime at session start):
  LSTM  torch i, f, g, o  →  ONNX i, o, f, c
  GRU   torch r, z, n     →  ONNX z, r, h   (with linear_before_reset=1, torch's GRU)
  RNN   one gate
B is [Wb, Rb] concatenated. The sequence runs time-major (a Transpose on either side).
"""

from __future__ import annotations

from typing import Any

from neuralc.ir.core import Operation
from neuralc.lower.onnx_backend.graph import CL, Scope, Slot
from neuralc.lower.onnx_backend.stages import Lowerer, Val

# ONNX gate position -> torch gate index.
_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}
_OP = {"nn.lstm": "LSTM", "nn.gru": "GRU", "nn.simple_rnn": "RNN"}
_TENSOR_OP = {"tensor.lstm": "LSTM", "tensor.gru": "GRU", "tensor.rnn": "RNN"}


def onnx_gates(g: Scope, tensor: str, kind: str, units: int) -> str:
    """Torch-ordered gate blocks of `tensor` in ONNX order, with a leading direction axis."""
    order = _ORDER[kind]
    if len(order) > 1:
        parts = g.split(tensor, [units] * len(order), axis=0)
        tensor = g.op("Concat", *(parts[i] for i in order), axis=0)
    return g.unsqueeze(tensor, [0])


def _reordered(s: Scope, key: str, kind: str, units: int) -> str:
    return onnx_gates(s.child(key), s.weight(key), kind, units)


def _attributes(kind: str, activation: str | None) -> dict[str, Any]:
    if kind == "GRU":
        return {"linear_before_reset": 1}
    if kind == "RNN":
        return {"activations": ["Relu" if activation == "relu" else "Tanh"]}
    return {}


def lower_recurrent(s: Scope, op: Operation, attrs: dict[str, Any], ins: list[Slot]) -> Slot:
    (x_slot,) = ins
    kind = _OP[op.op]
    units = int(attrs["units"])
    w = _reordered(s, "weight_ih_l0", kind, units)
    r = _reordered(s, "weight_hh_l0", kind, units)
    inputs = [s.transpose(s.get(x_slot, CL), [1, 0, 2]), w, r]
    if attrs["use_bias"]:
        b = s.child("bias")
        inputs.append(
            b.op(
                "Concat",
                _reordered(s, "bias_ih_l0", kind, units),
                _reordered(s, "bias_hh_l0", kind, units),
                axis=1,
            )
        )
    extra = _attributes(kind, attrs.get("activation"))
    y, y_h = s.op_n(kind, inputs, 2, hidden_size=units, **extra)
    if attrs["return_sequences"]:
        # Y: [L, 1, N, units] -> [N, L, units]
        return Slot(3, {CL: s.transpose(s.squeeze(y, [1]), [1, 0, 2])})
    return Slot(2, {CL: s.squeeze(y_h, [0])})


def lower_tensor_recurrent(e: Lowerer, op: Operation, a: dict[str, Any], ins: list[Val]) -> Val:
    """`tensor.lstm/gru/rnn`: the same, with the weights as operands (x, w_ih, w_hh[, b_ih,
    b_hh]); the sequence goes time-major and back with transposes that cancel against
    neighbouring ones."""
    kind = _TENSOR_OP[op.op]
    units = int(a["hidden_size"])
    s, g = e.s, e.s.child("gates")
    w, r = (onnx_gates(g, e.nat(v), kind, units) for v in ins[1:3])
    inputs = [e.transpose(e.nat(ins[0]), [1, 0, 2]), w, r]
    if len(ins) == 5:
        biases = (onnx_gates(g, e.nat(v), kind, units) for v in ins[3:])
        inputs.append(g.op("Concat", *biases, axis=1))
    extra = _attributes(kind, a.get("activation"))
    y, y_h = s.op_n(kind, inputs, 2, hidden_size=units, **extra)
    if a.get("return_sequences"):  # Y: [L, 1, N, units] -> [N, L, units]
        return e.out(nat=e.transpose(s.squeeze(y, [1]), [1, 0, 2]))
    return e.out(nat=s.squeeze(y_h, [0]))


LOWERINGS = {"LSTM": lower_recurrent, "GRU": lower_recurrent, "SimpleRNN": lower_recurrent}
