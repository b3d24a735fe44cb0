"""Every program of the shared conformance corpus parses to the structure its text shows.

Files whose intended outcome is a semantic rejection (IncompatibleLayers, InvalidDeviceModel,
seq2seq_verbatim) parse too: the checker rejects them later, with a location from this AST.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance_expected import EXPECTED
from frontend_testlib import CONFORMANCE, conformance_files, dump, require

from neuralc.diagnostics import SourceLocation
from neuralc.frontend import ast
from neuralc.frontend.parser import parse_file

FILES = conformance_files()


def _key(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _parse(key: str) -> ast.Program:
    return parse_file(require(CONFORMANCE / key))


def _at(node: ast.Expr | ast.LayerItem | ast.Network | ast.InputSpec | ast.Block) -> tuple:
    return (node.loc.line, node.loc.column)


def test_corpus_is_present_and_fully_covered() -> None:
    require(CONFORMANCE)
    assert {_key(p) for p in FILES} == set(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=_key)
def test_conformance_file_parses_to_expected_structure(path: Path) -> None:
    program = parse_file(path)
    assert dump(program) == EXPECTED[_key(path)]
    assert program.path == str(path)
    assert program.source == path.read_text(encoding="utf-8")
    for net in program.networks:
        assert net.loc.file == str(path)


def test_locations_with_leading_whitespace() -> None:
    (net,) = _parse("upstream/examples__mnist.neural").networks
    assert _at(net) == (1, 2)
    assert _at(net.inputs[0]) == (2, 5)
    assert _at(net.inputs[0].shape) == (2, 12)
    assert net.layers_loc == SourceLocation(net.loc.file, 3, 5)
    assert [_at(layer) for layer in net.layers] == [(i, 7) for i in range(4, 10)]
    assert _at(net.blocks[0]) == (14, 5)
    assert [_at(s) for s in net.blocks[0].settings] == [(15, 7), (16, 7), (17, 7)]


def test_locations_of_device_repeat_and_nested_body() -> None:
    (net,) = _parse("upstream/examples__nested_layers.neural").networks
    conv, encoder = net.layers[:2]
    assert isinstance(conv, ast.LayerCall) and isinstance(encoder, ast.LayerCall)
    assert conv.device is not None and _at(conv.device) == (4, 36)
    assert [(_at(a), _at(a.value)) for a in conv.args] == [
        ((4, 12), (4, 12)),
        ((4, 16), (4, 16)),
        ((4, 23), (4, 31)),
    ]
    assert encoder.repeat is not None and _at(encoder.repeat) == (8, 9)
    assert encoder.body is not None
    assert [_at(layer) for layer in encoder.body] == [(6, 7), (7, 7)]
    assert net.optimizer is not None and _at(net.optimizer) == (12, 14)


def test_locations_in_multi_line_schedule() -> None:
    (net,) = _parse("upstream/examples__advanced_hpo_v0.2.5.neural").networks
    optimizer = net.optimizer
    assert isinstance(optimizer, ast.Call) and _at(optimizer) == (19, 14)
    schedule = optimizer.args[0].value
    assert isinstance(schedule, ast.Call) and _at(schedule) == (20, 19)
    assert [_at(arg.value) for arg in schedule.args] == [(21, 7), (22, 7), (23, 7)]
    assert [b.keyword for b in net.blocks] == ["train", "execution"]
    assert _at(net.blocks[1]) == (37, 3)


def test_multi_input_names_shapes_and_branches() -> None:
    (net,) = _parse("upstream/tests__parser__test_networks.py__MultiInputModel.neural").networks
    assert [(spec.name, _at(spec)) for spec in net.inputs] == [
        ("image", (3, 9)),
        ("metadata", (4, 9)),
    ]
    image, metadata = net.layers[:2]
    assert isinstance(image, ast.Branch) and isinstance(metadata, ast.Branch)
    assert (image.input_name, _at(image), len(image.layers)) == ("image", (8, 9), 4)
    assert (metadata.input_name, _at(metadata), len(metadata.layers)) == ("metadata", (15, 9), 1)


def test_macros_bare_use_and_call_use() -> None:
    bare = _parse("upstream/examples__macros.neural")
    assert [m.name for m in bare.macros] == ["ConvBlock"]
    use = bare.networks[0].layers[0]
    assert isinstance(use, ast.LayerCall) and (use.name, use.has_parens) == ("ConvBlock", False)
    called = _parse("upstream/examples__LayersMultiplication+NestedLayers.neural")
    use = called.networks[0].layers[0]
    assert isinstance(use, ast.LayerCall) and use.has_parens and use.repeat is not None
    assert use.repeat == ast.Literal(3, SourceLocation(use.loc.file, 8, 23))


def test_macro_library_has_no_networks() -> None:
    program = _parse("upstream/tests__parser__test_macro.py__ResBlock.neural")
    assert program.networks == ()
    (macro,) = program.macros
    residual = macro.layers[2]
    assert isinstance(residual, ast.LayerCall)
    assert residual.has_parens and residual.body is not None and len(residual.body) == 2


def test_two_networks_with_one_name_both_kept() -> None:
    program = _parse(
        "upstream/examples__Neural_Networks_From_Scratch_In_Python__three_inputs_neuron.neural"
    )
    assert [(n.name, _at(n)) for n in program.networks] == [
        ("ThreeInputNeuron", (1, 1)),
        ("ThreeInputNeuron", (7, 1)),
    ]


def test_trailing_semicolon_and_no_final_newline() -> None:
    (net,) = _parse("upstream/Lambda-sec_Models__Transformer__transformer.neural").networks
    assert [_at(layer) for layer in net.layers] == [(4, 5), (5, 5), (6, 5), (7, 5)]
    assert net.inputs[0].shape.items[0] == ast.Literal(None, SourceLocation(net.loc.file, 2, 11))


def test_semantic_rejects_still_parse_with_locations() -> None:
    (net,) = _parse("upstream/tests__parser__test_networks.py__InvalidDeviceModel.neural").networks
    conv = net.layers[0]
    assert isinstance(conv, ast.LayerCall) and conv.device is not None
    assert (conv.device.value, _at(conv.device)) == ("quantum", (4, 37))
    (net,) = _parse("seed/seq2seq_verbatim.neural").networks
    assert _at(net.layers[0]) == (4, 5) and _at(net.inputs[0]) == (2, 3)
