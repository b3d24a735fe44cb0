"""Helpers of the pass tests: IR from DSL source or IR text, and temporary fake passes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Module
from neuralc.ir.parser import parse_module
from neuralc.ir.printer import print_module
from neuralc.passes import PASSES, Pass

MLP = """network Net {
  input: (8,)
  layers:
    Dense(16, activation="relu")
    Dropout(0.5)
    Activation("linear")
    Dense(4) * 2
    Output(2)
}
"""


def compile_nn(src: str = MLP, path: str = "m.neural") -> Module:
    """The nn IR of a DSL program (its first HPO combination)."""
    return check_program(parse_text(src, path)).module


def ir(text: str) -> Module:
    return parse_module(text, "t.nir")


def roundtrip(module: Module) -> str:
    """Print, parse, print: the text, asserting the two prints agree."""
    text = print_module(module)
    assert print_module(parse_module(text, "rt.nir")) == text
    return text


@contextmanager
def registered(*classes: type[Pass]) -> Iterator[None]:
    """Register fake passes for the duration of a test."""
    for cls in classes:
        assert cls.name not in PASSES, cls.name
        PASSES[cls.name] = cls
    try:
        yield
    finally:
        for cls in classes:
            PASSES.pop(cls.name, None)
