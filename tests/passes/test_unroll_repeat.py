"""`unroll-repeat` as a registered pass (the golden files hold the IR)."""

from __future__ import annotations

from passes_testlib import compile_nn, roundtrip

from neuralc.passes import PASSES, PassContext
from neuralc.passes.pipeline import build_pipeline
from neuralc.passes.unroll_repeat import UnrollRepeat, unroll_network

SRC = """network Net {
  input: (32,)
  layers:
    Dense(64) * 3
    Dense(8) * 5
}
"""


def test_registered_with_its_option() -> None:
    assert PASSES["unroll-repeat"] is UnrollRepeat
    assert build_pipeline("unroll-repeat{max-count=4}") == [UnrollRepeat(max_count=4)]
    assert UnrollRepeat.min_level == 2


def test_pass_matches_the_function() -> None:
    by_pass, by_function = compile_nn(SRC), compile_nn(SRC)
    assert UnrollRepeat().run(by_pass, PassContext())
    assert unroll_network(by_function.networks[0])
    assert roundtrip(by_pass) == roundtrip(by_function)
    assert "nn.repeat" not in roundtrip(by_pass)
    assert not UnrollRepeat().run(by_pass, PassContext())


def test_max_count_leaves_long_repeats_rolled() -> None:
    module = compile_nn(SRC)
    assert UnrollRepeat(max_count=3).run(module, PassContext())
    text = roundtrip(module)
    assert "%dense.2 = nn.dense" in text and "%dense_1 = nn.repeat" in text
