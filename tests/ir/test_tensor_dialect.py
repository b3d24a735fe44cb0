"""The tensor dialect: every op's verify hook (attributes, operand counts, shape rules) on IR
text, and the shape rules' symbolic-dimension naming."""

from __future__ import annotations

import pytest

from neuralc.ir.core import OPS, Operation, VerifyError
from neuralc.ir.parser import parse_module
from neuralc.ir.tensor import SIGNATURES, attr, infer_type
from neuralc.ir.types import TensorType
from neuralc.ir.verifier import find_problems

INPUTS = ("%x: f32[N,6,8], %img: f32[N,3,9,9], %seq: f32[N,3,11], %ids: i64[N,6], "
          "%w: f32[16,8], %b: f32[16], %v: f32[8], %cw: f32[4,3,3,3], %cb: f32[4], "
          "%m: f32[N,8,6], %s: f32[N,s0,8], %tw: f32[3,4,3,3]")


def problems(*lines: str, inputs: str = INPUTS) -> list[str]:
    body = "\n".join(f"    {line}" for line in lines)
    last = lines[-1].split(" =", 1)[0]
    text = (f"module {{\n  network @T({inputs}) {{\n{body}\n    return({last})\n  }}\n}}\n")
    return [str(p) for p in find_problems(parse_module(text)) if p.severity == "error"]


VALID = [
    '%r = tensor.weight() {key = "dense.weight"} -> f32[16,8]',
    '%r = tensor.weight() {key = "bn.running_mean", trainable = false} -> f32[8]',
    "%r = tensor.constant() {value = 0.5} -> f32[]",
    "%r = tensor.constant() {value = ((1, 2), (3, 4))} -> i64[2,2]",
    '%r = tensor.constant() {value = "AACAPwAAAEA="} -> f32[2]',
    "%r = tensor.add(%x, %v) -> f32[N,6,8]",
    "%r = tensor.sub(%x, %x) -> f32[N,6,8]",
    "%r = tensor.mul(%x, %v) -> f32[N,6,8]",
    "%r = tensor.div(%v, %x) -> f32[N,6,8]",
    '%r = tensor.activation(%x) {kind = "gelu"} -> f32[N,6,8]',
    '%r = tensor.activation(%x) {kind = "leaky_relu", alpha = 0.1} -> f32[N,6,8]',
    '%r = tensor.activation(%x) {kind = hpo.choice("relu", "tanh")} -> f32[N,6,8]',
    "%r = tensor.softmax(%x) {axis = -1, causal = true} -> f32[N,6,8]",
    "%r = tensor.log_softmax(%x) {axis = 1} -> f32[N,6,8]",
    "%r = tensor.matmul(%x, %m) -> f32[N,6,6]",
    "%r = tensor.linear(%x, %w, %b) -> f32[N,6,16]",
    "%r = tensor.linear(%s, %w) -> f32[N,s0,16]",
    "%r = tensor.layer_norm(%x, %v, %v) {eps = hpo.range(1e-05, 0.001)} -> f32[N,6,8]",
    "%r = tensor.batch_norm(%x, %v, %v, %v, %v) {eps = 0.001, momentum = 0.01} -> f32[N,6,8]",
    "%r = tensor.conv(%img, %cw, %cb) {strides = (2, 2), pads = (1, 1, 1, 1), "
    "dilations = (1, 1)} -> f32[N,4,5,5]",
    '%r = tensor.conv(%img, %cw) {strides = (2, 2), pads = "same_upper"} -> f32[N,4,5,5]',
    "%r = tensor.conv_transpose(%img, %tw, %cb) {strides = (2, 2), pads = (0, 0, 1, 1), "
    "output_padding = (0, 0)} -> f32[N,4,18,18]",
    "%r = tensor.max_pool(%img) {kernel = (2, 2), pads = (0, 0, 1, 1), strides = (2, 2)} "
    "-> f32[N,3,5,5]",
    "%r = tensor.avg_pool(%seq) {kernel = (3,), strides = (2,), pads = (1, 1), "
    "count_include_pad = true} -> f32[N,3,6]",
    "%r = tensor.reduce_mean(%x) {axes = (1,)} -> f32[N,8]",
    "%r = tensor.reduce_max(%img) {axes = (2, 3), keepdims = true} -> f32[N,3,1,1]",
    "%r = tensor.reshape(%x) {shape = (0, -1)} -> f32[N,48]",
    "%r = tensor.reshape(%s) {shape = (0, -1, 4)} -> f32[N,s0_x2,4]",
    "%r = tensor.transpose(%x) {perm = (0, 2, 1)} -> f32[N,8,6]",
    "%r = tensor.concat(%x, %x) {axis = 1} -> f32[N,12,8]",
    "%r = tensor.concat(%x, %s) {axis = 1} -> f32[N,s0_p6,8]",
    "%r = tensor.slice(%x) {axis = -1, start = 2, end = 6} -> f32[N,6,4]",
    "%r = tensor.gather(%w, %ids) {axis = 0} -> f32[N,6,8]",
    "%r = tensor.dropout(%x) {rate = 0.5} -> f32[N,6,8]",
    "%r = tensor.pad(%x) {pads = (0, 1, 0, 0, 1, 0)} -> f32[N,8,8]",
    '%r = tensor.resize(%img) {scales = (1, 1, 2, 3), mode = "linear"} -> f32[N,3,18,27]',
    "%r = tensor.lstm(%x, %w.4, %w.h) {hidden_size = 2, return_sequences = true} "
    "-> f32[N,6,2]",
    "%r = tensor.gru(%x, %w.3, %w.g) {hidden_size = 2} -> f32[N,2]",
    '%r = tensor.rnn(%x, %w.1, %w.r) {hidden_size = 2, activation = "relu"} -> f32[N,2]',
    '%r = tensor.transfer(%x) {to = "cuda:1"} -> f32[N,6,8] @"cuda:1"',
]
RNN_INPUTS = INPUTS + ", %w.4: f32[8,8], %w.h: f32[8,2], %w.3: f32[6,8], %w.g: f32[6,2], " \
                      "%w.1: f32[2,8], %w.r: f32[2,2]"


@pytest.mark.parametrize("line", VALID)
def test_valid_ops_verify(line: str) -> None:
    assert problems(line, inputs=RNN_INPUTS) == []


def test_every_tensor_op_has_a_valid_case_and_a_documented_example() -> None:
    covered = {line.split("= ", 1)[1].split("(", 1)[0] for line in VALID}
    registered = {name for name in OPS if name.startswith("tensor.")}
    assert registered <= covered
    for name in registered:
        doc = OPS[name].doc
        assert f"{name}(" in doc and "\n\n" in doc, name


INVALID = [
    ('%r = tensor.weight() {key = "k"} -> f32[N,8]', "static shape"),
    ("%r = tensor.weight() -> f32[8]", "missing attribute 'key'"),
    ('%r = tensor.weight() {key = "k", init = 1} -> f32[8]', "unexpected attribute 'init'"),
    ("%r = tensor.constant() {value = (1.0, 2.0)} -> f32[3]", "does not match the shape"),
    ("%r = tensor.constant() {value = 1.5} -> i64[2]", "does not fit i64"),
    ('%r = tensor.constant() {value = "AAAA"} -> f32[2]', "holds 3 bytes"),
    ("%r = tensor.add(%x, %m) -> f32[N,6,8]", "do not broadcast"),
    ("%r = tensor.add(%x, %ids) -> f32[N,6,8]", "dtypes differ"),
    ("%r = tensor.add(%x, %v) -> f32[N,6,9]", "does not match the type inferred"),
    ('%r = tensor.activation(%x) {kind = "softmax"} -> f32[N,6,8]', "attribute 'kind' must be"),
    ('%r = tensor.activation(%ids) {kind = "relu"} -> i64[N,6]', "float tensor"),
    ("%r = tensor.softmax(%x) {axis = 1, causal = true} -> f32[N,6,8]", "last axis"),
    ("%r = tensor.softmax(%x) {axis = 3} -> f32[N,6,8]", "out of range"),
    ("%r = tensor.matmul(%x, %x) -> f32[N,6,8]", "contracts"),
    ("%r = tensor.linear(%x, %w, %v) -> f32[N,6,16]", "linear's bias must have shape [16]"),
    ("%r = tensor.linear(%m, %w) -> f32[N,8,16]", "weight must be [out, 6]"),
    ("%r = tensor.linear(%x) -> f32[N,6,16]", "takes 2 to 3 operand(s)"),
    ("%r = tensor.layer_norm(%x, %b, %v) {eps = 0.001} -> f32[N,6,8]", "scale must have shape"),
    ("%r = tensor.layer_norm(%x, %v, %v) -> f32[N,6,8]", "missing attribute 'eps'"),
    ("%r = tensor.batch_norm(%x, %v, %v, %v, %b) {eps = 0.001} -> f32[N,6,8]", "var must have"),
    ("%r = tensor.conv(%img, %cw) {pads = (1, 1)} -> f32[N,4,9,9]", "'pads' needs 4 entries"),
    ("%r = tensor.conv(%seq, %cw) {pads = (0, 0)} -> f32[N,4,9]", "weight must be"),
    ("%r = tensor.conv(%img, %cw, %b) {pads = (0, 0, 0, 0)} -> f32[N,4,7,7]", "bias"),
    ("%r = tensor.conv(%img, %cw) {pads = (0, 0, 0, 0), groups = 2} -> f32[N,4,7,7]",
     "group"),
    ("%r = tensor.conv(%img, %cw) {pads = (0, 0, 0, 0), strides = (1,)} -> f32[N,4,7,7]",
     "'strides' needs 2 entries"),
    ("%r = tensor.conv_transpose(%img, %w) {pads = (0, 0, 0, 0)} -> f32[N,3,9,9]",
     "weight must be [3, out, *kernel]"),
    ("%r = tensor.max_pool(%img) {kernel = (2,), pads = (0, 0)} -> f32[N,3,4,4]", "'kernel'"),
    ("%r = tensor.max_pool(%img) {kernel = (20, 20), pads = (0, 0, 0, 0)} -> f32[N,3,1,1]",
     "does not fit"),
    ("%r = tensor.reduce_mean(%x) {axes = ()} -> f32[N,6,8]", "at least one axis"),
    ("%r = tensor.reshape(%x) {shape = (0, 5, -1)} -> f32[N,5,9]", "not divisible"),
    ("%r = tensor.reshape(%x) {shape = (0, 40)} -> f32[N,40]", "element counts differ"),
    ("%r = tensor.reshape(%s) {shape = (0, 8)} -> f32[N,8]", "element counts differ"),
    ("%r = tensor.reshape(%x) {shape = (0, -1, -1)} -> f32[N,6,8]", "one -1"),
    ("%r = tensor.transpose(%x) {perm = (0, 1)} -> f32[N,6]", "not a permutation"),
    ("%r = tensor.concat(%x, %m) {axis = 1} -> f32[N,14,8]", "equal other sizes"),
    ("%r = tensor.slice(%x) {axis = -1, start = 4, end = 9} -> f32[N,6,5]", "out of range"),
    ("%r = tensor.slice(%s) {axis = 1, start = 0, end = 1} -> f32[N,1,8]", "must be static"),
    ("%r = tensor.gather(%w, %x) {axis = 0} -> f32[N,6,8,8]", "must be integers"),
    ("%r = tensor.dropout(%x) -> f32[N,6,8]", "missing attribute 'rate'"),
    ("%r = tensor.pad(%x) {pads = (1, 1)} -> f32[N,6,8]", "needs 6 non-negative"),
    ('%r = tensor.resize(%img) {scales = (1, 2)} -> f32[N,3,9,9]', "one integer scale"),
    ("%r = tensor.lstm(%x, %w, %w) {hidden_size = 2} -> f32[N,2]", "w_ih must have shape [8,8]"),
    ('%r = tensor.transfer(%x) {to = "tpu"} -> f32[N,6,8]', "must be a device"),
]


@pytest.mark.parametrize(("line", "error"), INVALID, ids=[c[1] for c in INVALID])
def test_invalid_ops_are_reported(line: str, error: str) -> None:
    found = problems(line)
    assert found and error in found[0], found
    assert "(tensor." in found[0]


def test_symbolic_sizes_follow_the_registry_names() -> None:
    seq = TensorType(("N", 3, "s0"))
    w = TensorType((4, 3, 3))
    assert infer_type("tensor.conv", [seq, w], {"pads": (0, 0)}).shape == ("N", 4, "s0_w3s1")
    assert infer_type("tensor.conv", [seq, w], {"pads": "same_upper", "strides": (2,)}
                      ).shape == ("N", 4, "s0_c2")
    assert infer_type("tensor.max_pool", [seq], {"kernel": (2,), "strides": (2,),
                                                 "pads": (0, 0)}).shape == ("N", 3, "s0_w2s2")
    t = TensorType((3, 2, 3))
    assert infer_type("tensor.conv_transpose", [seq, t], {"pads": (0, 0), "strides": (2,),
                                                          "output_padding": (0,)}
                      ).shape == ("N", 2, "s0_t3s2")
    assert infer_type("tensor.conv_transpose", [seq, t], {"pads": "same_upper",
                                                          "strides": (2,)}).shape == ("N", 2,
                                                                                       "s0_x2")
    assert infer_type("tensor.reshape", [TensorType(("N", "s0", 4, 8))], {"shape": (0, -1)}
                      ).shape == ("N", "s0_x32")
    assert infer_type("tensor.resize", [seq], {"scales": (1, 1, 2)}).shape == ("N", 3, "s0_x2")


def test_infer_type_errors_and_defaults() -> None:
    with pytest.raises(VerifyError, match="takes 1 operand"):
        infer_type("tensor.reshape", [], {"shape": (1,)})
    module = parse_module('module {\n  network @T(%x: f32[N,4]) {\n    %y = tensor.softmax(%x) '
                          '-> f32[N,4]\n    return(%y)\n  }\n}\n')
    op = module.networks[0].body.ops[0]
    assert attr(op, "axis") == -1 and attr(op, "causal") is False
    weight = Operation("tensor.weight", "w", [], [TensorType((1,))])
    with pytest.raises(KeyError, match="no attribute 'key'"):
        attr(weight, "key")
    assert set(SIGNATURES["tensor.weight"].attrs) == {"key", "trainable"}
