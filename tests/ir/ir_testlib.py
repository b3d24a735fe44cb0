"""Helpers of the IR tests: a permissive `test` dialect, fake layers, small IR builders."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralc.diagnostics import CompileError, SourceLocation
from neuralc.ir.core import OpDef
from neuralc.ir.parser import parse_module
from neuralc.ir.types import TensorType
from neuralc.layers.spec import Attrs, LayerSpec, Param, ShapeError

GOLDEN = Path(__file__).parent / "golden"

# Ops with no verify hook: any attributes, operands and result types (the hypothesis tests draw
# random ones). `test.region` holds one region ending in any terminator (`test.end`).
TEST_OPS = (
    OpDef("test.op", "any operands, one result", num_operands=None, num_results=1),
    OpDef("test.multi", "any operands, any results", num_operands=None, num_results=None),
    OpDef("test.sink", "no results", num_operands=None, num_results=0),
    OpDef("test.region", "one region", num_operands=None, num_results=1, num_regions=1),
    OpDef("test.end", "a terminator", num_operands=None, num_results=0, terminator=True),
)


def _scale_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    x = inputs[0]  # with cross_attention the rule sees the encoder output too
    last = x.shape[-1]
    if not isinstance(last, int):
        raise ShapeError("FakeScale needs a static last dimension", param="factor")
    return x.with_shape((*x.shape[:-1], last * attrs["factor"]))


def _merge_infer(attrs: Attrs, inputs: list[TensorType]) -> TensorType:
    total = sum(t.shape[-1] for t in inputs)  # type: ignore[misc]
    return inputs[0].with_shape((*inputs[0].shape[:-1], total))


# Fake layers whose ops (nn.fake_scale, nn.fake_merge) are registered by the conftest fixture,
# never in the layer registry: their semantics stay fixed whatever the real families do.
FAKE_SCALE = LayerSpec(
    name="FakeScale", category="test", doc="Multiplies the last dimension by `factor`.",
    params=(Param("factor", "int", minimum=1),
            Param("rate", "float", 0.0, minimum=0.0, maximum=1.0, affects_shape=False)),
    infer=_scale_infer,
)
FAKE_MERGE = LayerSpec(name="FakeMerge", category="test", doc="Concatenates.", params=(),
                       infer=_merge_infer, arity=None)
FAKE_LAYERS = (FAKE_SCALE, FAKE_MERGE)


def loc(line: int, column: int = 5, file: str = "m.neural") -> SourceLocation:
    return SourceLocation(file, line, column)


def module_text(*body: str, inputs: str = "%x: f32[N,4]") -> str:
    """A one-network module around `body` lines (indented for the network body)."""
    lines = ["module {", f"  network @Net({inputs}) {{", *("    " + b for b in body), "  }", "}"]
    return "\n".join(lines) + "\n"


def parse_error(text: str, path: str = "t.nir") -> tuple[int, int, str]:
    """(line, column, message) of the CompileError that parsing `text` raises."""
    with pytest.raises(CompileError) as info:
        parse_module(text, path)
    diag = info.value.diagnostics[0]
    assert diag.loc is not None and diag.loc.file == path
    return diag.loc.line, diag.loc.column, diag.message


def golden_files() -> list[Path]:
    return sorted(GOLDEN.glob("*.nir"))
