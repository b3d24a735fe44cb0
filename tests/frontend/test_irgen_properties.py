"""Properties of the whole check path (parse → IR → verify → print).

1. Random valid programs check, their parameter count is the sum we expect, and their IR text
   round-trips through the IR parser.
2. Random corruptions of real programs give exit code 0 or 1 with a diagnostic — never an
   internal error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralc.cli import main
from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.parser import parse_module
from neuralc.ir.printer import print_module

ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu", "linear"]


@st.composite
def mlp_layer(draw: st.DrawFn, width: int) -> tuple[str, int, int]:
    """A layer line for a `width`-wide input: (text, new width, params)."""
    kind = draw(st.sampled_from(["dense", "dropout", "norm", "act", "residual", "bn"]))
    if kind == "dense":
        units = draw(st.integers(1, 24))
        act = draw(st.sampled_from(ACTIVATIONS))
        times = draw(st.integers(1, 3))
        text = f'Dense({units}, activation="{act}")' + (f" * {times}" if times > 1 else "")
        params = width * units + units + (times - 1) * (units * units + units)
        return text, units, params
    if kind == "dropout":
        return f"Dropout({draw(st.sampled_from([0.0, 0.1, 0.5]))})", width, 0
    if kind == "norm":
        return "LayerNormalization()", width, 2 * width
    if kind == "bn":
        return "BatchNormalization()", width, 2 * width
    if kind == "act":
        return f'Activation("{draw(st.sampled_from(ACTIVATIONS))}")', width, 0
    return f"ResidualConnection {{ Dense({width}) Dropout(0.1) }}", width, width * width + width


@st.composite
def mlp_program(draw: st.DrawFn) -> tuple[str, int, int]:
    width = draw(st.integers(1, 16))
    first = width
    lines, total = [], 0
    for _ in range(draw(st.integers(1, 8))):
        text, width, params = draw(mlp_layer(width))
        device = draw(st.sampled_from(["", ' @ "cpu"', ' @ "cuda:0"']))
        separator = draw(st.sampled_from(["", ";"]))
        lines.append(f"    {text}{device}{separator}")
        total += params
    body = "\n".join(lines)
    source = f"network Random {{\n  input: ({first},)\n  layers:\n{body}\n}}\n"
    return source, width, total


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlp_program())
def test_random_valid_programs_check_and_round_trip(case: tuple[str, int, int]) -> None:
    source, width, params = case
    result = check_program(parse_text(source, "random.neural"))
    built = result.networks[0]
    assert built.params == params
    assert built.network.outputs[0].type.shape == ("N", width)
    text = print_module(result.module)
    assert print_module(parse_module(text)) == text


CORPUS = sorted((Path(__file__).resolve().parents[3] / "shared" / "conformance").rglob(
    "*.neural"))


@st.composite
def corruption(draw: st.DrawFn) -> str:
    if not CORPUS:
        pytest.skip("conformance corpus not found")
    text = draw(st.sampled_from(CORPUS)).read_text()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "digit"]))
        piece = draw(st.sampled_from(list("(){}[],:;=*@\"#.-0 \nxNone")))
        if action == "delete":
            text = text[:at] + text[at + 1:]
        elif action == "insert":
            text = text[:at] + piece + text[at:]
        elif action == "replace":
            text = text[:at] + piece + text[at + 1:]
        else:
            text = text[:at] + str(draw(st.sampled_from([0, -1, 7, 1000000]))) + text[at + 1:]
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(text=corruption())
def test_corruptions_give_diagnostics_never_tracebacks(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "corrupt.neural"
    path.write_text(text)
    code = main(["check", str(path), "--json"])
    err = capsys.readouterr().err
    assert code in (0, 1), err
    assert "internal error" not in err and "Traceback" not in err
    if code == 1:
        assert ": error: " in err
