"""Lowering of LSTM, GRU and SimpleRNN: one `tensor.lstm/gru/rnn` op (ONNX has them) with the
weights in torch's layout, after a `tensor.dropout` on the inputs when the layer has one."""

from __future__ import annotations

from neuralc.ir.core import Value
from neuralc.ir.types import Attr
from neuralc.passes.lowering.emit import Layer, lowering

_OPS = {"nn.lstm": "tensor.lstm", "nn.gru": "tensor.gru", "nn.simple_rnn": "tensor.rnn"}


@lowering(*_OPS)
def recurrent(layer: Layer) -> Value:
    a = layer.attrs
    x = layer.dropout(layer.inputs[0], a["dropout"], "input_dropout")
    operands = [x, layer.weight("weight_ih_l0"), layer.weight("weight_hh_l0")]
    if layer.has_weight("bias_ih_l0"):
        operands += [layer.weight("bias_ih_l0"), layer.weight("bias_hh_l0")]
    attrs: dict[str, Attr] = {"hidden_size": a["units"],
                              "return_sequences": bool(a["return_sequences"])}
    if layer.op.op == "nn.simple_rnn":
        attrs["activation"] = layer.concrete("activation")
    return layer.emit(_OPS[layer.op.op], operands, attrs, layer.op.op[3:])
