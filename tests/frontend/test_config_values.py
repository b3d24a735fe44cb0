"""Configuration values `neuralc check` must refuse where they are written rather than let a
backend fail on them: integers past int64 in `train { }` settings and optimizer calls, quoted
optimizer calls that Python's parser or literal_eval cannot read, and metrics the training loops
do not compute. Each diagnostic is checked at its line, column, message and note."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralc.cli import main
from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.frontend.check import check_program
from neuralc.frontend.config_rules import TRAIN_SETTINGS
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network
from neuralc.ir.types import INT64_MAX, HPOAttr
from neuralc.lower.training import METRICS, training_config

TOO_BIG = 100000000000000000000  # 10**20 > 2**63 - 1
INT64_NOTE = "integers are at most 2**63 - 1 = 9,223,372,036,854,775,807"


def program(line: str) -> str:
    """A network whose configuration line is line 5."""
    return f"network N {{\n  input: (8,)\n  layers:\n    Dense(2)\n  {line}\n}}\n"


def build(line: str) -> Network:
    return check_program(parse_text(program(line), "m.neural")).networks[0].network


def expect(line: str, message: str, note: str | None = None) -> Diagnostic:
    """`line` (with `^` before the token the caret must point at) fails with `message`."""
    with pytest.raises(CompileError) as info:
        check_program(parse_text(program(line.replace("^", "", 1)), "m.neural"))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == message
    assert diagnostic.loc is not None
    assert (diagnostic.loc.line, diagnostic.loc.column) == (5, 2 + line.index("^") + 1)
    if note is not None:
        assert note in diagnostic.notes, diagnostic.notes
    return diagnostic


# Integers past int64 ---------------------------------------------------------------------------

INTEGER_SETTINGS = sorted(k for k, rule in TRAIN_SETTINGS.items() if rule.kind == "integer")


@pytest.mark.parametrize("key", INTEGER_SETTINGS)
def test_integer_settings_past_int64_are_errors_at_the_value(key: str) -> None:
    expect(
        f"train {{ {key}: ^{TOO_BIG} }}",
        f"{key} {TOO_BIG} does not fit in a 64-bit integer",
        INT64_NOTE,
    )


@pytest.mark.parametrize("key", INTEGER_SETTINGS)
def test_integer_settings_up_to_int64_max_are_kept(key: str) -> None:
    assert build(f"train {{ {key}: {INT64_MAX} }}").attrs["train"] == {key: INT64_MAX}


def test_hpo_candidates_past_int64_are_errors() -> None:
    expect(
        f"train {{ batch_size: ^HPO(choice(16, {TOO_BIG})) }}",
        f"batch_size {TOO_BIG} does not fit in a 64-bit integer",
        INT64_NOTE,
    )
    net = build(f"train {{ batch_size: HPO(choice(16, {INT64_MAX})) }}")
    assert net.attrs["train"] == {"batch_size": HPOAttr("choice", (16, INT64_MAX))}


def test_schedule_arguments_past_int64_are_errors() -> None:
    expect(
        f"optimizer: Adam(ExponentialDecay(0.1, ^{TOO_BIG}, 0.9))",
        f"ExponentialDecay() decay_steps {TOO_BIG} does not fit in a 64-bit integer",
        INT64_NOTE,
    )
    expect(
        f'optimizer: ^"Adam(ExponentialDecay(0.1, {TOO_BIG}, 0.9))"',
        f"ExponentialDecay() decay_steps {TOO_BIG} does not fit in a 64-bit integer",
    )


FINITE_NOTE = "64-bit floats hold magnitudes up to about 1.8e308"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("optimizer: Adam(learning_rate=^1e400)", "Adam() learning_rate inf"),
        ('optimizer: ^"Adam(learning_rate=1e400)"', "Adam() learning_rate inf"),
        ("optimizer: Adam(learning_rate=^HPO(choice(0.1, 1e400)))", "Adam() learning_rate inf"),
        (
            "optimizer: Adam(ExponentialDecay(^1e400, 10, 0.9))",
            "ExponentialDecay() initial_learning_rate inf",
        ),
        ("optimizer: Adam(epsilon=^1e999)", "Adam() epsilon inf"),
    ],
)
def test_numbers_past_float64_are_errors_at_the_value(line: str, message: str) -> None:
    # Such literals read as infinity; training with them would only fail later, as NaN.
    expect(line, f"{message} is not a finite number", FINITE_NOTE)


def test_check_reports_epochs_past_int64(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.neural"
    path.write_text(program(f"train {{\n    epochs: {TOO_BIG}\n  }}"))
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:6:13: error: epochs {TOO_BIG} does not fit in a 64-bit integer",
        f"      epochs: {TOO_BIG}",
        "              ^",
        f"note: {INT64_NOTE}",
    ]


# Quoted optimizer calls that Python cannot read as literals -------------------------------------

UNREADABLE = {
    "nested parentheses": "Adam(" + "(" * 5000 + "1" + ")" * 5000 + ")",  # SyntaxError
    "nested lists": "Adam(" + "[" * 5000 + "]" * 5000 + ")",  # SyntaxError
    "a long unary chain": "Adam(" + "-" * 100000 + "1)",  # MemoryError in the parser
    "a long sum": "Adam(" + "+".join(["1"] * 100000) + ")",  # RecursionError
    "an unhashable set item": "Adam({1, [2]})",  # TypeError in literal_eval
    "an unhashable dict key": "Adam(learning_rate={[1]: 2})",  # TypeError
    "a name": "Adam(learning_rate=x + 1)",  # ValueError
    "unpacked keywords": "Adam(**{'learning_rate': 0.1})",
    "bytes": "Adam(b'x')",
    "a complex number": "Adam(1j)",
    "an ellipsis": "Adam(learning_rate=...)",
    "a nested schedule's set": "Adam(ExponentialDecay({1}, 10, 0.5))",
}


@pytest.mark.parametrize("text", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_quoted_calls_are_diagnostics(text: str) -> None:
    diagnostic = expect(f'optimizer: ^"{text}"', f'cannot read optimizer "{text}"')
    assert diagnostic.notes == ("write it as a call: optimizer: Adam(learning_rate=0.001)",)


@pytest.mark.parametrize("text", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_quoted_calls_in_an_hpo_choice_are_diagnostics(text: str) -> None:
    expect(f'optimizer: HPO(choice("adam", ^"{text}"))', f'cannot read optimizer "{text}"')


def test_check_reports_an_unreadable_call_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.neural"
    path.write_text(program('optimizer: "Adam({1, [2]})"'))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f'{path}:5:14: error: cannot read optimizer "Adam({{1, [2]}})"\n')
    assert "internal error" not in err


# Metrics -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message", "note"),
    [
        ('metrics: ["accuracy", ^"f1score"]', "unknown metric 'f1score'", None),
        ('metrics: ^"acuracy"', "unknown metric 'acuracy'", "did you mean 'accuracy'?"),
        ("metrics: [mae, ^accurasy]", "unknown metric 'accurasy'", "did you mean 'accuracy'?"),
        ("metrics: (^3,)", "unknown metric 3", None),
        ('metrics: [^HPO(choice("accuracy", "f1"))]', "unknown metric 'f1'", None),
    ],
)
def test_unknown_metrics_are_errors_at_the_metric(
    line: str, message: str, note: str | None
) -> None:
    diagnostic = expect(line, message, note)
    if note is None:
        assert diagnostic.notes == ("known metrics: " + ", ".join(METRICS),)


def test_known_metrics_are_kept_in_any_spelling_the_backends_know() -> None:
    net = build('metrics: ["acc", MAE, "mean_squared_error"]')
    assert net.attrs["metrics"] == ("acc", "MAE", "mean_squared_error")
    assert training_config(net)["metrics"] == ["accuracy", "mae", "mse"]
