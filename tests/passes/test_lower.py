"""`lower-nn-to-tensor`: coverage of the registry, the conformance corpus (lowered, verified,
round-tripped, weights keyed as the weight file), names, locations, devices, hyperparameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensor_testlib import compile_nn, lowered, op_counts, run

from neuralc.diagnostics import CompileError
from neuralc.ir.core import Operation
from neuralc.ir.parser import parse_module
from neuralc.ir.printer import print_module
from neuralc.ir.verifier import find_problems
from neuralc.layers import all_layers
from neuralc.lower.weights import network_weight_specs
from neuralc.passes.base import PassContext
from neuralc.passes.legality import illegal_ops
from neuralc.passes.lower_nn_to_tensor import RESIDUALS, LowerNNToTensor, lower_network
from neuralc.passes.lowering import LOWERINGS


def test_every_registered_layer_has_a_lowering() -> None:
    missing = [s.op_name for s in all_layers()
               if s.op_name not in LOWERINGS and s.op_name not in RESIDUALS]
    assert missing == []


def _accepted(conformance_dir: Path) -> list[Path]:
    out = []
    for path in sorted(conformance_dir.rglob("*.neural")):
        try:
            compile_nn(path.read_text(), str(path))
        except CompileError:
            continue
        out.append(path)
    return out


def test_conformance_programs_lower_verify_and_round_trip(conformance_dir: Path) -> None:
    paths = _accepted(conformance_dir)
    assert len(paths) >= 25
    for path in paths:
        module = compile_nn(path.read_text(), str(path))
        specs = {k: v for net in module.networks
                 for k, v in network_weight_specs(net).items()}
        LowerNNToTensor().run(module, PassContext())
        assert illegal_ops(module, "tensor") == [], path.name
        assert find_problems(module) == [], path.name  # no errors, no warnings
        text = print_module(module)
        assert print_module(parse_module(text)) == text, path.name
        weights = {op.attrs["key"]: op.result.type.shape for net in module.networks
                   for op in net.walk() if op.op == "tensor.weight"}
        expected = {k: s.shape for k, s in specs.items() if not k.endswith("num_batches_tracked")}
        assert weights == expected, path.name


def test_names_locations_and_devices_come_from_the_layer() -> None:
    module = compile_nn("""network N {
  input: (6, 8)
  layers:
    TransformerEncoder(num_heads=2, d_model=8, dff=16) * 2
    Dense(4, activation="relu") @ "cuda:0"
}""")
    before = {op.name: op for op in module.networks[0].walk() if op.dialect == "nn"}
    run(module, "lower-nn-to-tensor")
    ops = [op for op in module.networks[0].walk() if op.op != "return"]
    names = {op.name for op in ops}
    assert {"transformer_encoder.0", "transformer_encoder.1", "dense"} <= names
    for op in ops:
        layer = next(n for n in ("transformer_encoder", "dense") if op.name.startswith(n))
        assert op.loc == before[layer].loc
        assert op.device == ("cuda:0" if layer == "dense" else None)
    assert "transformer_encoder.1.self_attn.k_t" in names
    assert "transformer_encoder.1.norm2.weight" in names


def test_lowering_is_idempotent_and_reports_changes() -> None:
    module = lowered('network N { input: (4,) layers: Dense(3) }')
    text = print_module(module)
    assert lower_network(module.networks[0]) is False
    assert print_module(module) == text


def test_symbolic_lengths_lower_with_the_same_types() -> None:
    module = compile_nn("""network S {
  input: (None, None, 6)
  layers:
    Conv1D(4, 3, padding="same", strides=2)
    MaxPooling1D(2, padding="same")
    Conv1D(4, 3)
    Flatten()
}""")
    nn_output = module.networks[0].outputs[0].type
    run(module, "lower-nn-to-tensor")
    assert module.networks[0].outputs[0].type == nn_output
    convs = [op for op in module.networks[0].walk() if op.op == "tensor.conv"]
    assert convs[0].attrs["pads"] == "same_upper" and convs[1].attrs["pads"] == (0, 0)


DENSE = ('%d = nn.dense(%x) {{units = {units}, activation = {act}, use_bias = true}} '
         '-> f32[N,8] loc("h.neural":3:5)')


def _hpo_module(*body: str) -> str:
    """A network of `body` lines returning the last value defined at the top level."""
    lines = "\n".join(f"    {line}" for line in body)
    last = [line for line in body if line.startswith("%")][-1].split(" =", 1)[0]
    return (f'module {{\n  network @H(%x: f32[N,4]) loc("h.neural":1:1) {{\n{lines}\n'
            f"    return({last})\n  }}\n}}\n")


@pytest.mark.parametrize(("body", "message"), [
    ([DENSE.format(units="hpo.choice(8, 16)", act='"relu"')],
     "units = hpo.choice(8, 16) is an open hyperparameter"),
    ([DENSE.format(units=8, act='hpo.choice("relu", "softmax")')],
     'activation = hpo.choice("relu", "softmax") is an open hyperparameter'),
    (['%r = nn.repeat(%x) {count = hpo.choice(1, 2)} -> f32[N,4] loc("h.neural":3:5) {',
      "^(%r.in: f32[N,4]):",
      '  %r.layer = nn.dense(%r.in) {units = 4, activation = "linear", use_bias = true} '
      '-> f32[N,4] loc("h.neural":3:5)',
      '  nn.yield(%r.layer) loc("h.neural":3:5)', "}"],
     "its count hpo.choice(1, 2) is an open hyperparameter"),
])
def test_graph_deciding_hyperparameters_are_diagnostics(body: list[str], message: str) -> None:
    module = parse_module(_hpo_module(*body))
    with pytest.raises(CompileError) as info:
        run(module, "lower-nn-to-tensor")
    diagnostic = info.value.diagnostics[0]
    assert message in diagnostic.message
    assert diagnostic.loc is not None and (diagnostic.loc.file, diagnostic.loc.line) == (
        "h.neural", 3)


def test_float_hyperparameters_stay_open() -> None:
    module = parse_module(_hpo_module(
        DENSE.format(units=8, act='hpo.choice("relu", "swish")'),
        '%p = nn.dropout(%d) {rate = hpo.range(0.1, 0.3, step = 0.1)} -> f32[N,8] '
        'loc("h.neural":4:5)'))
    run(module, "lower-nn-to-tensor")
    ops = {op.op: op for op in module.networks[0].walk()}
    assert ops["tensor.activation"].attrs["kind"].args == ("relu", "silu")  # type: ignore
    assert ops["tensor.dropout"].attrs["rate"].kind == "range"  # type: ignore[union-attr]


def test_transfers_and_kept_ops_pass_through() -> None:
    module = parse_module("""module {
  network @T(%x: f32[N,4]) loc("t.neural":1:1) {
    %d = nn.dense(%x) {units = 4, activation = "linear", use_bias = false} -> f32[N,4] loc("t.neural":2:5)
    %t = nn.transfer(%d) {to = "cuda:1"} -> f32[N,4] @"cuda:1" loc("t.neural":3:5)
    %s = tensor.softmax(%t) -> f32[N,4] @"cuda:1" loc("t.neural":4:5)
    return(%s)
  }
}""")
    run(module, "lower-nn-to-tensor")
    counts = op_counts(module)
    assert counts["tensor.transfer"] == 1 and counts["tensor.softmax"] == 1
    assert counts["tensor.linear"] == 1 and not op_counts(module, "nn.")


def test_an_nn_op_without_lowering_is_a_diagnostic() -> None:
    module = compile_nn('network N { input: (4,) layers: Dense(3) }')
    net = module.networks[0]
    dense = net.body.ops[0]
    dense.op = "nn.mystery"
    with pytest.raises(CompileError, match="no lowering and no op tensor.mystery"):
        LowerNNToTensor().run(module, PassContext())
    assert isinstance(dense, Operation)


def test_flatten_of_a_vector_and_linear_activation_are_no_ops() -> None:
    module = lowered('network N { input: (4,) layers: Flatten() Activation("linear") '
                     'Dropout(0.0) Dense(2) }')
    assert op_counts(module) == {"tensor.weight": 2, "tensor.linear": 1, "return": 1}
    assert module.networks[0].outputs[0].name == "dense"
