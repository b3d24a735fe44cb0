"""print(parse(text)) == text: golden files, IR built in code, and IR the frontend builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from ir_testlib import golden_files, loc

from neuralc.diagnostics import CompileError, SourceLocation
from neuralc.ir.builder import Builder, new_network
from neuralc.ir.core import FusedLoc, Module
from neuralc.ir.parser import parse_module
from neuralc.ir.printer import print_module
from neuralc.ir.types import CallAttr, HPOAttr, TensorType
from neuralc.ir.verifier import find_problems

EXPECTED_GOLDEN = {"all_attr_kinds", "dense_mlp", "fused_loc", "hpo_attrs",
                   "multi_input_concat", "repeat_region", "residual_shortcut"}


def test_golden_set_is_complete() -> None:
    assert {p.stem for p in golden_files()} == EXPECTED_GOLDEN


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: p.stem)
def test_golden_round_trips_byte_identically(path: Path) -> None:
    text = path.read_text()
    assert print_module(parse_module(text, str(path))) == text


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: p.stem)
def test_golden_verifies(path: Path) -> None:
    assert [str(p) for p in find_problems(parse_module(path.read_text(), str(path)))] == []


def build_sample() -> Module:
    """A bit of everything, built with the builder."""
    t, wide = TensorType(("N", 16)), TensorType(("N", 32))
    net, b = new_network(
        "Sample", {"input": t, "aux input": wide},
        {"optimizer": CallAttr("Adam", (), (("learning_rate", HPOAttr("log_range",
                                                                        (1e-05, 0.001))),)),
         "metrics": ("accuracy",), "train": {"epochs": 3, "shuffle": True, "seed": None}},
        loc(1, 1))
    region = b.region([t], "dense.in")
    rep = b.op("nn.repeat", net.inputs[:1], [wide], base="dense", attrs={"count": 2},
               loc=loc(3), device="cuda:0", regions=[region])
    with b.at(region):
        layer = b.op("nn.dense", region.args, [wide], name="dense.layer", loc=loc(3),
                     attrs={"units": 32, "activation": "relu", "use_bias": True})
        b.yield_(layer.result, loc=loc(3))
    cat = b.op("nn.concatenate", [rep.result, net.inputs[1]], [TensorType(("N", 64))],
               attrs={"axis": -1}, loc=FusedLoc((loc(4), loc(9, 1, "macro.neural"))))
    out = b.op("nn.output", [cat.result], [TensorType(("N", 10))], loc=loc(5),
               attrs={"units": 10, "activation": "softmax", "use_bias": True})
    b.ret(out.result)
    return Module([net])


def test_built_ir_prints_parses_and_prints_identically() -> None:
    module = build_sample()
    assert find_problems(module) == []
    text = print_module(module)
    again = parse_module(text)
    assert print_module(again) == text
    assert find_problems(again) == []
    assert '%"aux input"' in text and "%dense = nn.repeat(%input)" in text


def test_builder_names_are_fresh_and_keras_like() -> None:
    module = build_sample()
    b = Builder.for_network(module.networks[0])
    assert [b.name("dense"), b.name("dense"), b.name("Output")] == ["dense_1", "dense_2",
                                                                      "output_1"]
    with pytest.raises(ValueError, match="already used"):
        b.claim("input")


def _frontend_modules() -> list[tuple[str, Module]]:
    pytest.importorskip("textx")
    from neuralc.frontend.irgen import build_module
    from neuralc.frontend.parser import parse_file

    corpus = Path(__file__).resolve().parents[3] / "shared" / "conformance"
    if not corpus.is_dir():
        pytest.skip(f"no conformance corpus at {corpus}")
    built = []
    for path in sorted(corpus.glob("*/*.neural")):
        try:
            module, _ = build_module(parse_file(path))
        except CompileError:
            continue  # programs the frontend rejects are the frontend's tests
        built.append((path.name, module))
    return built


def test_frontend_ir_round_trips_and_verifies() -> None:
    built = _frontend_modules()
    assert len(built) >= 10
    for name, module in built:
        text = print_module(module)
        assert print_module(parse_module(text, name)) == text, name
        found = [str(p) for p in find_problems(module) if p.severity == "error"]
        assert found == [], name


def test_locations_survive_the_round_trip() -> None:
    text = print_module(build_sample())
    net = parse_module(text).networks[0]
    assert net.loc == SourceLocation("m.neural", 1, 1)
    cat = net.ops_by_name()["concatenate"]
    assert cat.loc == FusedLoc((loc(4), SourceLocation("macro.neural", 9, 1)))


def test_the_documented_example_round_trips_and_verifies() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    section = doc[doc.index("## IR text form"):]
    text = section[section.index("```\n") + 4:section.index("\n```", section.index("```\n"))]
    text += "\n"
    module = parse_module(text, "architecture.md")
    assert print_module(module) == text
    assert find_problems(module) == []
