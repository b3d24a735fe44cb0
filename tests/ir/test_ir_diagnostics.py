"""Diagnostics about IR text: verifier findings point at the `.nir` line of the op (with its DSL
`loc` as a related note), end-of-input errors quote the line that is cut short, and integers or
locations out of range are diagnostics, never a Python exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from ir_testlib import module_text, parse_error

from neuralc.diagnostics import CompileError, SourceLocation
from neuralc.ir.core import Block, Module, Network, Operation, Value, VerifyError, text_loc
from neuralc.ir.parser import parse_module
from neuralc.ir.types import TensorType
from neuralc.ir.verifier import as_diagnostic, find_problems, verify_module

# What `neuralc check --emit nn` prints for a two-layer Dense network, one result type wrong.
DENSE = (
    'module {\n'
    '  network @Net(%input: f32[N,8]) loc("m.neural":1:1) {\n'
    '    %dense = nn.dense(%input) {units = 16, activation = "relu", use_bias = true} '
    '-> f32[N,16] loc("m.neural":4:5)\n'
    '    %output = nn.output(%dense) {units = 4, activation = "linear", use_bias = true} '
    '-> f32[N,4]{output_loc}\n'
    '    return(%output)\n'
    '  }\n'
    '}\n'
)


def first_finding(text: str, path: str = "t.nir") -> VerifyError:
    with pytest.raises(VerifyError) as info:
        verify_module(parse_module(text, path))
    return info.value


def rendered(text: str, path: str = "t.nir") -> str:
    return as_diagnostic(first_finding(text, path)).render({path: text})


def errors(module: Module) -> list[str]:
    return [p.detail for p in find_problems(module) if p.severity == "error"]


# -- verifier findings point into the .nir file -----------------------------------------------


def test_an_op_without_loc_is_reported_at_its_nir_line_with_a_caret() -> None:
    text = DENSE.replace("-> f32[N,4]{output_loc}", "-> f32[N,5]")
    assert rendered(text).splitlines() == [
        "t.nir:4:5: error: %output (nn.output): result type f32[N,5] does not match the type "
        "inferred from its operands and attributes, f32[N,4]",
        "      %output = nn.output(%dense) {units = 4, activation = \"linear\", use_bias = true}"
        " -> f32[N,5]",
        "      ^",
    ]


def test_an_op_with_a_dsl_loc_gets_it_as_a_related_note() -> None:
    text = DENSE.replace("-> f32[N,4]{output_loc}", '-> f32[N,5] loc("model.neural":5:5)')
    diag = as_diagnostic(first_finding(text))
    assert diag.loc == SourceLocation("t.nir", 4, 5)
    assert diag.related == ((SourceLocation("model.neural", 5, 5), "the op comes from here"),)
    lines = diag.render({"t.nir": text}).splitlines()
    assert lines[0].startswith("t.nir:4:5: error: %output (nn.output): result type f32[N,5]")
    assert lines[2] == "      ^"
    assert lines[3] == "model.neural:5:5: note: the op comes from here"


def test_a_tensor_op_finding_points_at_the_nir_line() -> None:
    text = module_text(
        '%w = tensor.weight() {key = "d.weight"} -> f32[8,15]',
        "%d = tensor.linear(%x, %w) -> f32[N,8]",
        "return(%d)",
        inputs="%x: f32[N,16]",
    )
    diag = as_diagnostic(first_finding(text))
    assert diag.loc == SourceLocation("t.nir", 4, 5)
    assert diag.message.startswith("%d (tensor.linear): ") and diag.related == ()


def test_a_network_finding_points_at_the_network_line() -> None:
    text = 'module {\n  network @Net(%x: f32[N,4]) loc("m.neural":1:1) {\n  }\n}\n'
    diag = as_diagnostic(first_finding(text))
    assert diag.message == "the network body must end with 'return' (it is empty)"
    assert diag.loc == SourceLocation("t.nir", 2, 3)
    assert diag.related == ((SourceLocation("m.neural", 1, 1), "network @Net comes from here"),)


def test_a_region_op_points_at_its_own_line() -> None:
    text = module_text(
        "%r = nn.repeat(%x) {count = 2} -> f32[N,4] {",
        "^(%r.in: f32[N,4]):",
        "  %r.d = test.op(%r.in) -> f32[N,0]",
        "  nn.yield(%r.d)",
        "}",
        "return(%r)",
    )
    diag = as_diagnostic(first_finding(text))
    assert diag.loc == SourceLocation("t.nir", 5, 7)
    assert "dimension 0 is zero" in diag.message


def test_ir_text_without_a_file_keeps_the_dsl_location() -> None:
    """Text parsed in memory (the default path, e.g. a network copied by an emitter) has no
    file to quote: the finding stays at the op's DSL location, as for IR built in code."""
    text = DENSE.replace("-> f32[N,4]{output_loc}", '-> f32[N,5] loc("m.neural":5:5)')
    module = parse_module(text)
    assert text_loc(module.networks[0].body.ops[1]) is None
    with pytest.raises(VerifyError) as info:
        verify_module(module)
    diag = as_diagnostic(info.value)
    assert diag.loc == SourceLocation("m.neural", 5, 5) and diag.related == ()


def test_text_positions_do_not_change_the_printed_ir() -> None:
    from neuralc.ir.printer import print_module

    text = DENSE.replace("{output_loc}", "")
    assert print_module(parse_module(text, "t.nir")) == print_module(parse_module(text))


def test_a_malformed_loc_built_in_code_is_not_the_header() -> None:
    op = Operation("test.op", "y", [], [TensorType(("N", 4))], {}, SourceLocation("x", 0, -1))
    body = Block([Value("x", TensorType(("N", 4)))])
    body.append(op)
    body.append(Operation("return", "return", [op.results[0]]))
    module = Module([Network("Net", body)])
    problem = next(p for p in find_problems(module) if p.severity == "error")
    assert problem.detail == 'bad location: loc("x":0:-1): line and column numbers start at 1'
    assert "SourceLocation(" not in str(problem)
    assert as_diagnostic(problem).loc is None


def test_opt_prints_the_nir_line_and_a_caret(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from neuralc.cli import main

    ir_file = tmp_path / "bad.nir"
    ir_file.write_text(DENSE.replace("-> f32[N,4]{output_loc}", "-> f32[N,5]"))
    assert main(["opt", str(ir_file)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{ir_file}:4:5: error: IR verification failed: %output")
    assert err[1].lstrip().startswith("%output = nn.output(%dense)") and err[2] == "      ^"


# -- end of input -------------------------------------------------------------------------------


def test_end_of_input_errors_quote_the_last_line() -> None:
    text = DENSE.replace("{output_loc}", "")[: -len("  }\n}\n")]
    with pytest.raises(CompileError) as info:
        parse_module(text, "t.nir")
    lines = info.value.render({"t.nir": text}).splitlines()
    assert lines == [
        "t.nir:5:20: error: expected '}' to close the block, found end of input",
        "      return(%output)",
        "                     ^",
    ]


def test_end_of_an_empty_file_is_at_its_start() -> None:
    assert parse_error("  \n\n", "t.nir")[:2] == (1, 1)


# -- locations and integers in the text -----------------------------------------------------------


@pytest.mark.parametrize(("loc", "bad", "message"), [
    ('"x":0:-1', "0", "invalid line number 0 in a location"),
    ('"x":3:0', "0", "invalid column number 0 in a location"),
    ('"x":3:-2', "-2", "invalid column number -2 in a location"),
    ('fused["a":1:1, "x":-1:1]', "-1", "invalid line number -1 in a location"),
    ('"x":99999999999999999999:1', "9", "line number 99999999999999999999 is out of the 64-bit"),
])
def test_invalid_location_numbers_are_parse_errors(loc: str, bad: str, message: str) -> None:
    """`loc("x":0:-1)` used to verify into a message quoting `SourceLocation(file='x', ...)`."""
    op = f"%y = test.op(%x) -> f32[4] loc({loc})"
    text = module_text(op, "return(%y)")
    with pytest.raises(CompileError) as info:
        parse_module(text, "t.nir")
    diag = info.value.diagnostics[0]
    assert message in diag.message and "SourceLocation" not in diag.message
    # The caret is on the offending number (the last one written as `bad` in the location).
    column = 4 + op.index(":" + bad, op.index('"x"')) + 2
    assert diag.loc == SourceLocation("t.nir", 3, column)
    assert diag.notes


def test_an_out_of_range_dimension_is_a_parse_error() -> None:
    line, column, message = parse_error(module_text(
        "%y = test.op(%x) -> f32[N,99999999999999999999999]", "return(%y)"))
    assert (line, column) == (3, 31)
    assert message == "dimension 99999999999999999999999 is out of the 64-bit integer range"
    assert parse_error(module_text("%y = test.op(%x) -> f32[N,9223372036854775808]",
                                   "return(%y)"))[2].startswith("dimension 9223372036854775808")
    ok = parse_module(module_text("%y = test.op(%x) -> f32[N,9223372036854775807]", "return(%y)"))
    assert ok.networks[0].body.ops[0].results[0].type.shape == ("N", 2**63 - 1)


@pytest.mark.parametrize(("tail", "message"), [
    ("-> f32[N,{big}]", "dimension 99999999999999999999... (5000 digits) is out of the 64-bit"),
    ("{{k = {big}}} -> f32[N,4]", "integer literal with 5,000 digits is too long"),
    ('-> f32[N,4] loc("m":{big}:1)', "line number 99999999999999999999... (5000 digits)"),
])
def test_integers_past_pythons_digit_limit_are_diagnostics(tail: str, message: str) -> None:
    """int() refuses more than 4300 digits with a ValueError; that was an internal error."""
    text = module_text(f"%y = test.op(%x) {tail.format(big='9' * 5000)}", "return(%y)")
    line, _, got = parse_error(text)
    assert line == 3 and got.startswith(message), got


# -- what the verifier rejects ----------------------------------------------------------------


def test_zero_dimensions_are_rejected() -> None:
    text = module_text("%y = test.op(%x) -> f32[N,0]", "return(%y)")
    finding = first_finding(text)
    assert finding.detail == "%y has an ill-formed type: dimension 0 is zero: sizes are at least 1"
    assert as_diagnostic(finding).loc == SourceLocation("t.nir", 3, 5)
    # A block argument too (reported at the network).
    finding = first_finding(module_text("return(%x)", inputs="%x: f32[N,0]"))
    assert "dimension 0 is zero" in finding.detail
    assert as_diagnostic(finding).loc == SourceLocation("t.nir", 2, 3)


def test_dimensions_beyond_int64_built_in_code_are_rejected() -> None:
    body = Block([Value("x", TensorType(("N", 2**63)))])
    body.append(Operation("return", "return", [body.args[0]]))
    found = errors(Module([Network("Net", body)]))
    assert found == ["%x has an ill-formed type: dimension 9223372036854775808 does not fit in a "
                     "64-bit integer"]


def test_return_without_outputs_is_rejected() -> None:
    finding = first_finding(module_text("return()"))
    assert finding.detail == "a network returns at least one value: 'return' has no operands"
    assert as_diagnostic(finding).loc == SourceLocation("t.nir", 3, 5)


def test_op_attributes_beyond_int64_are_rejected() -> None:
    text = module_text("%c = tensor.constant() {value = 99999999999999999999999} -> i64[2]",
                       "return(%x)")
    finding = first_finding(text)
    assert finding.detail == ("attribute 'value': the integer 99999999999999999999999 does not fit "
                              "in a 64-bit integer")
    assert as_diagnostic(finding).loc == SourceLocation("t.nir", 3, 5)
    nested = module_text("%y = test.op(%x) {k = hpo.choice(1, (2, -9223372036854775809))} "
                         "-> f32[N,4]", "return(%y)")
    assert "the integer -9223372036854775809" in first_finding(nested).detail
    # Network attributes (a DSL `train { seed: ... }`) may hold any int: the frontend writes them.
    ok = parse_module('module {\n  network @Net(%x: f32[N,4]) attributes {seed = '
                      '99999999999999999999999} {\n    return(%x)\n  }\n}\n', "t.nir")
    assert errors(ok) == []


@pytest.mark.parametrize(("value", "type_", "fits"), [
    ("127", "i8[]", True), ("128", "i8[]", False), ("-129", "i8[]", False),
    ("2147483647", "i32[]", True), ("2147483648", "i32[]", False),
    ("9223372036854775807", "i64[]", True), ("(1, 300)", "i8[2]", False),
    ("1", "bool[]", False), ("true", "bool[]", True),
])
def test_constant_elements_fit_their_dtype(value: str, type_: str, fits: bool) -> None:
    """Constant folding turns the value into a numpy array: an element outside the dtype's range
    raised OverflowError there."""
    module = parse_module(module_text(f"%c = tensor.constant() {{value = {value}}} -> {type_}",
                                      "return(%x)"), "t.nir")
    found = errors(module)
    assert (found == []) if fits else any("does not fit" in f for f in found), found
