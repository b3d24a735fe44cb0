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


def test_nested_regions_are_visited_once(monkeypatch) -> None:  # noqa: ANN001 - pytest fixture
    """Each kept op's regions were unrolled twice (once in place, once after the block), so the
    work doubled per nesting level: 20 nested ResidualConnection blocks took 20 s to build and
    60 never finished. Counting the block visits keeps the test free of timing."""
    import neuralc.passes.unroll_repeat as unroll

    depth = 12
    src = ("network Deep {\n  input: (8,)\n  layers:\n" + "    ResidualConnection() {\n" * depth
           + "      Dense(8) * 2\n" + "    }\n" * depth + "}\n")
    module = compile_nn(src)
    calls = 0
    original = unroll._unroll_block

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - forwards everything
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(unroll, "_unroll_block", counting)
    assert unroll_network(module.networks[0])
    assert "nn.repeat" not in roundtrip(module)
    assert calls < 4 * depth, calls
