"""The verifier: each check fires, with the op's name and location in its message."""

from __future__ import annotations

import networkx as nx
import pytest
from ir_testlib import loc, module_text

from neuralc.diagnostics import SourceLocation
from neuralc.ir.builder import new_network
from neuralc.ir.core import Block, FusedLoc, Module, Network, Operation, Value, VerifyError
from neuralc.ir.dataflow import dataflow_graph
from neuralc.ir.parser import parse_module
from neuralc.ir.types import TensorType
from neuralc.ir.verifier import (
    as_diagnostic,
    find_problems,
    verify_module,
    verify_network,
)

T4 = TensorType(("N", 4))


def errors(module: Module) -> list[str]:
    return [str(p) for p in find_problems(module) if p.severity == "error"]


def warnings(module: Module) -> list[str]:
    return [str(p) for p in find_problems(module) if p.severity == "warning"]


def check_text(*body: str, inputs: str = "%x: f32[N,4]") -> list[str]:
    return errors(parse_module(module_text(*body, inputs=inputs), "t.nir"))


def only_error(found: list[str], fragment: str) -> str:
    assert len(found) == 1 and fragment in found[0], found
    return found[0]


def dense(x: str, name: str, units: int, out: str, line: int = 3, extra: str = "") -> str:
    return (f'%{name} = nn.dense(%{x}) {{units = {units}, activation = "relu", use_bias = true'
            f'{extra}}} -> {out} loc("m.neural":{line}:5)')


def test_messages_name_the_op_and_its_location() -> None:
    found = check_text(dense("x", "dense_1", 8, "f32[N,9]"), "return(%dense_1)")
    message = only_error(found, "result type f32[N,9] does not match")
    assert message.startswith("%dense_1 (nn.dense) at m.neural:3:5: ")
    assert "inferred from its operands and attributes, f32[N,8]" in message


def test_verify_module_raises_the_first_error_only() -> None:
    module = parse_module(module_text(dense("x", "a", 8, "f32[N,9]"),
                                      dense("a", "b", 8, "f32[N,7]", 4), "return(%b)"))
    with pytest.raises(VerifyError) as info:
        verify_module(module)
    assert info.value.op is module.networks[0].body.ops[0]
    assert info.value.detail.startswith("result type f32[N,9]")
    assert len(errors(module)) == 2
    with pytest.raises(VerifyError):
        verify_network(module.networks[0])
    diag = as_diagnostic(info.value)
    assert diag.loc == SourceLocation("m.neural", 3, 5)
    assert diag.message.startswith("%a (nn.dense): result type")


def test_layer_attributes_go_through_validate_attrs() -> None:
    found = check_text('%d = nn.dense(%x) {units = 0, activation = "relu", use_bias = true} '
                       '-> f32[N,4] loc("m.neural":3:5)', "return(%d)")
    only_error(found, "invalid attributes")
    found = check_text('%d = nn.dense(%x) {units = 4} -> f32[N,4] loc("m.neural":3:5)',
                       "return(%d)")
    only_error(found, "missing the attribute 'activation'")


def test_operand_counts_of_layers_and_merges() -> None:
    only_error(check_text('%d = nn.flatten(%x, %x) -> f32[N,4] loc("m.neural":3:5)',
                          "return(%d)"), "takes 1 operand(s), got 2")
    only_error(check_text('%m = nn.fake_merge(%x) -> f32[N,4] loc("m.neural":3:5)',
                          "return(%m)"), "a merge takes at least 2 operands, got 1")
    assert check_text('%m = nn.fake_merge(%x, %x, %x) -> f32[N,12] loc("m.neural":3:5)',
                      "return(%m)") == []


def test_generic_counts_from_the_opdef() -> None:
    only_error(check_text('%y = test.sink(%x) -> f32[N,4] loc("m.neural":3:5)', "return(%y)"),
               "'test.sink' has 0 result(s), got 1")
    only_error(check_text('%y = test.region(%x) -> f32[N,4] loc("m.neural":3:5)',
                          "return(%y)"), "takes 1 region(s), got 0")
    text = ['%r = nn.residual(%x, %x) -> f32[N,4] loc("m.neural":3:5) {', "^(%a: f32[N,4]):",
            "  nn.yield(%a)", "}", "return(%r)"]
    only_error(check_text(*text), "'nn.residual' takes 1 operand(s), got 2")


def test_hpo_candidates_are_each_validated_and_skip_the_shape_check() -> None:
    # factor is shape-relevant: an open choice means no result-type check, but every candidate
    # must be valid.
    ok = '%s = nn.fake_scale(%x) {factor = hpo.choice(2, 3), rate = 0.0} -> f32[N,999]'
    assert check_text(ok + ' loc("m.neural":3:5)', "return(%s)") == []
    bad = '%s = nn.fake_scale(%x) {factor = hpo.choice(2, 0), rate = 0.0} -> f32[N,8]'
    only_error(check_text(bad + ' loc("m.neural":3:5)', "return(%s)"), "invalid attributes")
    # rate does not affect the shape: the result type is still checked.
    rate = '%s = nn.fake_scale(%x) {factor = 2, rate = hpo.range(0.1, 0.5)} -> f32[N,9]'
    only_error(check_text(rate + ' loc("m.neural":3:5)', "return(%s)"),
               "result type f32[N,9] does not match")


def test_shape_errors_of_the_shape_rule() -> None:
    found = check_text('%s = nn.fake_scale(%x) {factor = 2, rate = 0.0} -> f32[N,8] '
                       'loc("m.neural":3:5)', "return(%s)", inputs="%x: f32[N,M]")
    only_error(found, "shape error: FakeScale needs a static last dimension")


def test_cross_attention_takes_the_encoder_output() -> None:
    enc = ('%e = nn.transformer_encoder(%x) {num_heads = 2, d_model = 4, dff = 8, '
           'dropout_rate = 0.1, activation = "relu", layer_norm_eps = 1e-05, '
           'norm_first = false} -> f32[N,3,4] loc("m.neural":3:5)')
    dec = ('%d = nn.transformer_decoder(%e{operands}) {{num_heads = 2, d_model = 4, dff = 8, '
           'dropout_rate = 0.1, activation = "relu", layer_norm_eps = 1e-05, '
           'norm_first = false, cross_attention = true}} -> f32[N,3,4] loc("m.neural":4:5)')
    inputs = "%x: f32[N,3,4]"
    assert check_text(enc, dec.format(operands=", %e"), "return(%d)", inputs=inputs) == []
    only_error(check_text(enc, dec.format(operands=""), "return(%d)", inputs=inputs),
               "takes 2 operand(s), got 1")


def test_unknown_op_with_suggestion() -> None:
    net, b = new_network("Net", {"x": T4})
    d = b.op("nn.dence", net.inputs, [T4], loc=loc(3))
    b.ret(d.result)
    only_error(errors(Module([net])), "unknown op 'nn.dence' (did you mean 'nn.dense'?)")


def test_use_before_definition_and_cycles() -> None:
    net, b = new_network("Net", {"x": T4})
    a = b.op("test.op", net.inputs, [T4], loc=loc(3))
    c = b.op("test.op", [a.result], [T4], loc=loc(4))
    a.operands = [c.result]  # a ← c ← a
    b.ret(c.result)
    found = errors(Module([net]))
    assert len(found) == 2, found
    assert "%op (test.op) at m.neural:3:5: operand %op_1 is not defined" in found[0]
    assert "the dataflow graph has a cycle" in found[1]
    assert not nx.is_directed_acyclic_graph(dataflow_graph(net))


def test_values_of_a_region_and_of_other_networks_are_not_visible() -> None:
    module = parse_module(module_text(
        '%r = nn.repeat(%x) {count = 2} -> f32[N,4] loc("m.neural":3:5) {',
        "^(%r.in: f32[N,4]):",
        '  %r.layer = test.op(%r.in) -> f32[N,4] loc("m.neural":3:5)',
        '  nn.yield(%r.layer) loc("m.neural":3:5)',
        "}",
        '%y = test.op(%r) -> f32[N,4] loc("m.neural":4:5)',
        "return(%y)"))
    body = module.networks[0].body
    body.ops[1].operands = [body.ops[0].regions[0].ops[0].result]
    only_error(errors(module), "%y (test.op) at m.neural:4:5: operand %r.layer is not defined")
    other = Value("elsewhere", T4)
    body.ops[1].operands = [other]
    only_error(errors(module), "operand %elsewhere is not defined")


def test_duplicate_names_and_op_name_mismatch() -> None:
    net, b = new_network("Net", {"x": T4})
    a = b.op("test.op", net.inputs, [T4], name="a", loc=loc(3))
    c = b.op("test.op", [a.result], [T4], name="c", loc=loc(4))
    c.results[0].name = "a"
    b.ret(c.result)
    found = errors(Module([net]))
    assert any("duplicate name %a (first defined by %a (test.op))" in f for f in found), found
    assert any("the op is named 'c' but its first result is %a" in f for f in found), found


def test_unused_values_and_missing_locations_are_warnings() -> None:
    module = parse_module(module_text('%y = test.op(%x) -> f32[N,4] loc("m.neural":3:5)',
                                      "%z = test.op(%x) -> f32[N,4]", "return(%x)"))
    verify_module(module)  # warnings never raise
    found = warnings(module)
    assert found == ["%y (test.op) at m.neural:3:5: %y is never used",
                     "%z (test.op): has no source location", "%z (test.op): %z is never used"]
    assert find_problems(module)[0].op is module.networks[0].body.ops[0]
    assert as_diagnostic(find_problems(module)[0]).severity == "warning"


def test_unused_network_input_is_a_warning() -> None:
    module = parse_module(module_text("return(%x)", inputs="%x: f32[4], %unused: f32[4]"))
    assert warnings(module) == ["network @Net: input %unused is never used"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (['%y = test.op(%x) -> f32[N,4] loc("m.neural":3:5)'],
         "network @Net: the network body must end with 'return', not 'test.op'"),
        ([], "the network body must end with 'return' (it is empty)"),
        (['nn.yield(%x) loc("m.neural":3:5)'],
         "the network body must end with 'return', not 'nn.yield'"),
        (["return(%x)", "return(%x)"], "'return' terminates a block and must be its last op"),
    ],
)
def test_network_terminators(body: list[str], fragment: str) -> None:
    assert any(fragment in f for f in check_text(*body)), check_text(*body)


def test_region_terminators_and_yield_placement() -> None:
    head = '%r = nn.repeat(%x) {count = 2} -> f32[N,4] loc("m.neural":3:5) {'
    found = check_text(head, "^(%r.in: f32[N,4]):", "  return(%r.in)", "}", "return(%r)")
    only_error(found, "%r (nn.repeat) at m.neural:3:5: region 0 must end with 'nn.yield', "
                      "not 'return'")
    found = check_text(head, "^(%r.in: f32[N,4]):", "}", "return(%r)")
    only_error(found, "region 0 must end with 'nn.yield' (it is empty)")
    found = check_text('%t = test.region(%x) -> f32[N,4] loc("m.neural":3:5) {',
                       "^(%t.in: f32[N,4]):", "  nn.yield(%t.in)", "}", "return(%t)")
    only_error(found, "nn.yield in %t (test.region): nn.yield must terminate a region of an nn")


def test_devices() -> None:
    for device in ("cpu", "cuda", "cuda:0", "cuda:12", "gpu", "auto"):
        assert check_text(f'%y = test.op(%x) -> f32[N,4] @"{device}" loc("m.neural":3:5)',
                          "return(%y)") == []
    for device in ("tpu", "cuda:", "CUDA", "cuda:x", ""):
        found = check_text(f'%y = test.op(%x) -> f32[N,4] @"{device}" loc("m.neural":3:5)',
                           "return(%y)")
        only_error(found, f"invalid device '{device}': valid devices are")


def test_ill_formed_types_attributes_and_locations() -> None:
    net, b = new_network("Net", {"x": T4})
    bad_type = TensorType(("N", -1))
    y = b.op("test.op", net.inputs, [bad_type], name="y", loc=loc(3))
    z = b.op("test.op", [y.result], [TensorType(("n.m",))], name="z", loc=loc(4),
             attrs={"bad": [1], "hpo": _hpo("grid", (1,))})
    w = b.op("test.op", [z.result], [T4], name="w", loc=FusedLoc(()))
    b.ret(w.result)
    found = errors(Module([net]))
    assert "%y has an ill-formed type: dimension -1 is negative" in found[0]
    assert "attribute 'bad': a list is not an attribute value" in found[1]
    assert "attribute 'hpo': unknown HPO kind 'grid'" in found[2]
    assert "dimension 'n.m' is not a symbol" in found[3]
    assert "bad location: an empty fused location" in found[4]


def _hpo(kind: str, args: tuple) -> object:
    from neuralc.ir.types import HPOAttr

    return HPOAttr(kind, args)


def test_repeat_checks() -> None:
    def repeat(count: str, out: str, body_out: str = "f32[N,4]", units: int = 4) -> list[str]:
        return [f'%r = nn.repeat(%x) {{count = {count}}} -> {out} loc("m.neural":3:5) {{',
                "^(%r.in: f32[N,4]):",
                "  " + dense("r.in", "r.layer", units, body_out),
                '  nn.yield(%r.layer) loc("m.neural":3:5)', "}", "return(%r)"]

    assert check_text(*repeat("3", "f32[N,4]")) == []
    assert check_text(*repeat("hpo.choice(2, 4)", "f32[N,4]")) == []
    only_error(check_text(*repeat("0", "f32[N,4]")), "attribute 'count' must be an int >= 1")
    only_error(check_text(*repeat("hpo.choice(1, 0)", "f32[N,4]")), "'count' must be an int")
    only_error(check_text(*repeat("2", "f32[N,5]")),
               "result types (f32[N,5]) must equal the types after its operands, (f32[N,4])")
    # A body typed for its first iteration (Dense(8) * 3 after a 4-wide input).
    assert check_text(*repeat("3", "f32[N,8]", "f32[N,8]", 8)) == []
    only_error(check_text(*repeat("3", "f32[N,4]", "f32[N,8]", 8)),
               "must equal the types after 3 iterations, (f32[N,8])")


def test_repeat_iterations_are_re_inferred() -> None:
    conv = ('%r.layer = nn.conv2d(%r.in) {filters = 2, kernel_size = (3, 3), activation = '
            '"linear", strides = (1, 1), padding = "valid", dilation_rate = (1, 1), '
            'use_bias = true} -> f32[N,4,4,2] loc("m.neural":3:5)')
    body = ['%r = nn.repeat(%x) {count = COUNT} -> OUT loc("m.neural":3:5) {',
            "^(%r.in: f32[N,6,6,1]):", "  " + conv, '  nn.yield(%r.layer) loc("m.neural":3:5)',
            "}", "return(%r)"]

    def run(count: int, out: str) -> list[str]:
        return check_text(*(line.replace("COUNT", str(count)).replace("OUT", out)
                            for line in body), inputs="%x: f32[N,6,6,1]")

    assert run(2, "f32[N,2,2,2]") == []
    only_error(run(4, "f32[N,2,2,2]"), "iteration 3 of 4: ")


def test_repeat_body_names_are_unique() -> None:
    net, b = new_network("Net", {"x": T4})
    region = b.region([T4], "r.in")
    rep = b.op("nn.repeat", net.inputs, [T4], name="r", attrs={"count": 2}, loc=loc(3),
               regions=[region])
    with b.at(region):
        one = b.op("test.op", region.args, [T4], name="r.a", loc=loc(3))
        two = b.op("test.op", [one.result], [T4], name="r.b", loc=loc(3))
        b.yield_(two.result, loc=loc(3))
    two.name = two.results[0].name = "r.a"
    b.ret(rep.result)
    found = errors(Module([net]))
    assert any("duplicate name %r.a (first defined by %r.a (test.op))" in f for f in found)
    # The network-wide check comes first; the hook holds on its own too (e.g. for passes).
    with pytest.raises(VerifyError, match="duplicate op name 'r.a' in the repeated body"):
        rep.opdef.verify(rep)  # type: ignore[union-attr, misc]


def test_residual_checks() -> None:
    def residual(op: str, body_unit: int, out: str, shortcut: bool = False) -> list[str]:
        lines = [f'%r = {op}(%x) -> {out} loc("m.neural":3:5) {{', "^(%r.in: f32[N,4]):",
                 "  " + dense("r.in", "r.d", body_unit, f"f32[N,{body_unit}]"),
                 '  nn.yield(%r.d) loc("m.neural":3:5)']
        if shortcut:
            lines += ["} {", "^(%r.s: f32[N,4]):",
                      "  " + dense("r.s", "r.p", 8, "f32[N,8]"), '  nn.yield(%r.p)']
        return [*lines, "}", "return(%r)"]

    for op in ("nn.residual", "nn.residual_connection"):
        assert check_text(*residual(op, 4, "f32[N,4]")) == []
        assert check_text(*residual(op, 8, "f32[N,8]", shortcut=True)) == []
        assert len(check_text(*residual(op, 8, "f32[N,8]"))) == 1
        only_error(check_text(*residual(op, 4, "f32[N,8]")), "must equal the residual sum's")
    only_error(check_text(*residual("nn.residual", 8, "f32[N,8]")),
               "the body yields f32[N,8] but the input is f32[N,4]")
    only_error(check_text(*residual("nn.residual_connection", 8, "f32[N,8]")),
               "shape error: ResidualConnection adds its input")


def test_duplicate_networks_and_network_attributes() -> None:
    nets = []
    for _ in range(2):
        net, b = new_network("Net", {"x": T4}, {"bad": {1: 2}}, loc(1, 1))
        b.ret(net.inputs[0])
        nets.append(net)
    found = errors(Module(nets))
    assert "network @Net at m.neural:1:1: attribute 'bad': dict keys must be strings" in found[0]
    assert "duplicate network @Net at m.neural:1:1" in found


def test_dataflow_graph_wires_regions() -> None:
    module = parse_module(module_text(
        '%r = nn.repeat(%x) {count = 2} -> f32[N,4] loc("m.neural":3:5) {',
        "^(%r.in: f32[N,4]):",
        '  %r.layer = test.op(%r.in, %x) -> f32[N,4] loc("m.neural":3:5)',
        '  nn.yield(%r.layer) loc("m.neural":3:5)', "}", "return(%r, %r)"))
    net: Network = module.networks[0]
    rep = net.body.ops[0]
    layer, term = rep.regions[0].ops
    x, arg = net.inputs[0], rep.regions[0].args[0]
    graph = dataflow_graph(net)
    assert graph.nodes[x]["kind"] == "input" and graph.nodes[arg]["kind"] == "block_arg"
    assert graph.edges[x, arg]["kind"] == "region_arg"
    assert graph.edges[x, layer]["kind"] == "use"
    assert graph.edges[term, rep]["kind"] == "yield"
    assert graph.edges[rep, net.body.ops[1]]["values"] == [rep.result, rep.result]
    assert nx.is_directed_acyclic_graph(graph)


def test_stale_parent_links() -> None:
    net, b = new_network("Net", {"x": T4})
    y = b.op("test.op", net.inputs, [T4], loc=loc(3))
    b.ret(y.result)
    y.parent = Block()
    only_error(errors(Module([net])), "op.parent does not point at the block that holds it")


def test_yield_outside_a_region() -> None:
    op = Operation("nn.yield", "y", [])
    with pytest.raises(VerifyError, match="must terminate a region"):
        op.opdef.verify(op)  # type: ignore[union-attr, misc]
