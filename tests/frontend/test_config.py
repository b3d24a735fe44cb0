"""Network configuration: optimizer and schedule arguments, `train { }` / `execution { }` settings,
HPO where the loss, the optimizer or the input shape stands. Each diagnostic is checked where
`neuralc check` prints it: its line and column (the caret), message and note."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralc.cli import main
from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.frontend.check import check_program
from neuralc.frontend.config_rules import (
    EXECUTION_SETTINGS,
    OPTIMIZER_TABLE,
    PARAMETERS,
    SCHEDULE_TABLE,
    SCHEDULES,
    SEARCH_METHODS,
    TRAIN_SETTINGS,
)
from neuralc.frontend.irgen import build_module
from neuralc.frontend.parser import parse_text
from neuralc.frontend.suggestions import suggest
from neuralc.frontend.values import show
from neuralc.ir.core import Network
from neuralc.ir.types import CallAttr, HPOAttr
from neuralc.lower.training import (
    OPTIMIZER_DEFAULTS,
    SCHEDULE_PARAMS,
    TRAIN_DEFAULTS,
    training_config,
)


def program(line: str, input_shape: str = "(8,)") -> str:
    """A network whose configuration line is line 5."""
    return f"network N {{\n  input: {input_shape}\n  layers:\n    Dense(2)\n  {line}\n}}\n"


def build(line: str) -> Network:
    return check_program(parse_text(program(line), "m.neural")).networks[0].network


def failure(line: str, input_shape: str = "(8,)") -> tuple[Diagnostic, int]:
    """The diagnostic for `line` and the column its caret should have: where `^` marks it."""
    text = program(line.replace("^", ""), input_shape)
    with pytest.raises(CompileError) as info:
        check_program(parse_text(text, "m.neural"))
    (diagnostic,) = info.value.diagnostics
    return diagnostic, 2 + line.index("^") + 1 if "^" in line else -1


def expect(line: str, message: str, note: str | None = None) -> Diagnostic:
    """`line` (with `^` before the token the caret must point at) fails with `message`."""
    diagnostic, column = failure(line)
    assert diagnostic.message == message
    assert diagnostic.loc is not None and diagnostic.loc.line == 5
    assert diagnostic.loc.column == column, (diagnostic.loc, column)
    if note is not None:
        assert note in diagnostic.notes, diagnostic.notes
    return diagnostic


# Optimizer arguments ----------------------------------------------------------------------------


def test_misspelled_argument_names_suggest_the_parameter() -> None:
    expect(
        "optimizer: Adam(^learning_rat=0.001)",
        "Adam() has no argument 'learning_rat'",
        "did you mean 'learning_rate'?",
    )
    expect(
        "optimizer: Adam(^betaa_1=0.9)",
        "Adam() has no argument 'betaa_1'",
        "did you mean 'beta_1'?",
    )
    diagnostic = expect("optimizer: SGD(0.1, ^mom=0.9)", "SGD() has no argument 'mom'")
    assert "did you mean 'momentum'?" in diagnostic.notes
    assert any(
        n.startswith("arguments: learning_rate=0.01, momentum=0.0") for n in diagnostic.notes
    )


@pytest.mark.parametrize(
    ("line", "message", "note"),
    [
        (
            "optimizer: Adam(^lr=0.1)",
            "Adam() has no argument 'lr'",
            "write learning_rate=0.1 (Keras 3's name; 'lr' is PyTorch's)",
        ),
        (
            "optimizer: Adam(^eps=1e-8)",
            "Adam() has no argument 'eps'",
            "write epsilon=1e-08 (Keras 3's name; 'eps' is PyTorch's)",
        ),
        (
            "optimizer: Adam(^betas=(0.9, 0.95))",
            "Adam() has no argument 'betas'",
            "write beta_1=0.9, beta_2=0.95 (Keras 3's names; 'betas' is PyTorch's)",
        ),
        (
            "optimizer: RMSprop(^alpha=0.9)",
            "RMSprop() has no argument 'alpha'",
            "write rho=0.9 (Keras 3's name; 'alpha' is PyTorch's)",
        ),
        (
            "optimizer: SGD(^clipnorm=1.0)",
            "SGD() has no argument 'clipnorm'",
            "neuralc clips the global norm: write global_clipnorm=1.0, or "
            "train { gradient_clip: 1.0 }",
        ),
        (
            "optimizer: SGD(ExponentialDecay(0.1, ^step_size=10, gamma=0.5))",
            "ExponentialDecay() has no argument 'step_size'",
            "write decay_steps=10 (Keras 3's name; 'step_size' is PyTorch's)",
        ),
    ],
)
def test_pytorch_spellings_are_errors_naming_the_keras_argument(
    line: str, message: str, note: str
) -> None:
    expect(line, message, note)


def test_global_clipnorm_is_keras_and_accepted() -> None:
    optimizer = build("optimizer: Adam(global_clipnorm=1)").attrs["optimizer"]
    assert optimizer == CallAttr("Adam", (), (("global_clipnorm", 1.0),))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("optimizer: Adam(beta_1=^1.5)", "Adam() beta_1 must be a number in [0, 1), got 1.5"),
        ("optimizer: Adam(^-0.1)", "Adam() learning_rate must be a positive number, got -0.1"),
        ("optimizer: Adam(epsilon=^0)", "Adam() epsilon must be a positive number, got 0"),
        ("optimizer: SGD(momentum=^1.5)", "SGD() momentum must be a number in [0, 1], got 1.5"),
        ('optimizer: SGD(nesterov=^"yes")', 'SGD() nesterov must be true or false, got "yes"'),
        (
            "optimizer: AdamW(weight_decay=^-1)",
            "AdamW() weight_decay must be a non-negative number, got -1",
        ),
        (
            'optimizer: Adam(learning_rate=^"fast")',
            'Adam() learning_rate must be a positive number, got "fast"',
        ),
        (
            "optimizer: Adam(beta_1=^ExponentialDecay(0.1, 10, 0.5))",
            "Adam() beta_1 must be a number in [0, 1), not a call",
        ),
    ],
)
def test_argument_values_are_range_checked_at_the_value(line: str, message: str) -> None:
    expect(line, message)


def test_too_many_positional_arguments_point_at_the_first_extra_one() -> None:
    expect(
        "optimizer: Adam(0.1,^0.2,0.3,0.4,0.5,0.6,0.7)",
        "Adam() takes the learning rate as its only positional argument",
        "name the others, e.g. Adam(0.1, beta_1=0.2)",
    )
    expect(
        "optimizer: SGD(ExponentialDecay(0.1, 10, 0.5, true, ^7))",
        "ExponentialDecay() takes at most 4 positional arguments",
        "write ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase)",
    )


def test_an_argument_given_twice_names_both_places() -> None:
    diagnostic = expect(
        "optimizer: SGD(0.1, ^learning_rate=0.2)", "SGD() gets 'learning_rate' twice"
    )
    ((first, note),) = diagnostic.related
    assert (first.line, first.column, note) == (5, 18, "first given here")


def test_quoted_optimizer_calls_are_checked_at_the_string() -> None:
    expect('optimizer: ^"Adam(lr=0.1)"', "Adam() has no argument 'lr'")
    optimizer = build('optimizer: "Adam(ExponentialDecay(0.1, 10, 0.5), amsgrad=true)"')
    assert optimizer.attrs["optimizer"] == CallAttr(
        "Adam",
        (CallAttr("ExponentialDecay", (0.1, 10, 0.5)),),
        (("amsgrad", True),),
    )


def test_optimizer_numbers_become_floats() -> None:
    """Keras 3's SGD raises on `momentum=1` (an int); the backend passes the value through."""
    optimizer = build("optimizer: SGD(1, momentum=1, nesterov=true)").attrs["optimizer"]
    assert optimizer == CallAttr("SGD", (1.0,), (("momentum", 1.0), ("nesterov", True)))
    assert all(isinstance(v, float) for v in (optimizer.args[0], optimizer.kwargs[0][1]))  # type: ignore[union-attr]


# Schedules --------------------------------------------------------------------------------------


def test_schedule_arguments_are_range_checked() -> None:
    expect(
        "optimizer: Adam(learning_rate=ExponentialDecay(0.1, ^-5, 2.0))",
        "ExponentialDecay() decay_steps must be a positive number, got -5",
    )
    expect(
        "optimizer: Adam(ExponentialDecay(0.1, 10, decay_rate=^-0.5))",
        "ExponentialDecay() decay_rate must be a positive number, got -0.5",
    )
    expect(
        "optimizer: Adam(CosineDecay(0.1, 100, alpha=^2))",
        "CosineDecay() alpha must be a number in [0, 1], got 2",
    )
    expect(
        "optimizer: Adam(ExponentialDecay(0.1, 10, 0.5, staircase=^1))",
        "ExponentialDecay() staircase must be true or false, got 1",
    )


def test_misspelled_schedule_prefers_the_abbreviated_name() -> None:
    expect(
        "optimizer: Adam(learning_rate=^ExpDecay(0.1, 5, 2.0))",
        "unknown learning-rate schedule 'ExpDecay'",
        "did you mean 'ExponentialDecay'?",
    )
    expect(
        "optimizer: Adam(^Cosine(0.1, 5))",
        "unknown learning-rate schedule 'Cosine'",
        "did you mean 'CosineDecay'?",
    )


def test_suggest() -> None:
    assert suggest("ExpDecay", SCHEDULES) == "did you mean 'ExponentialDecay'?"
    assert suggest("InvTimeDecay", SCHEDULES) == "did you mean 'InverseTimeDecay'?"
    assert suggest("learn_rate", ("learning_rate", "beta_1")) == "did you mean 'learning_rate'?"
    assert suggest("sgdd", ("Adam", "SGD")) == "did you mean 'SGD'?"
    assert suggest("epochz", TRAIN_SETTINGS) == "did you mean 'epochs'?"
    assert suggest("zzz", SCHEDULES) is None


def test_step_decay_needs_its_rate() -> None:
    """StepDecay's schedule reads decay_rate, so the table requires all three arguments."""
    expect(
        "optimizer: SGD(^StepDecay(0.1, 10))",
        "StepDecay() needs decay_rate",
        "write StepDecay(initial_learning_rate, decay_steps, decay_rate)",
    )


def test_piecewise_constant_decay_has_one_value_more_than_boundaries() -> None:
    expect(
        "optimizer: SGD(^PiecewiseConstantDecay((10, 20), (0.1, 0.01)))",
        "PiecewiseConstantDecay() needs one value more than boundaries: 2 boundaries, 2 values",
    )
    expect(
        "optimizer: SGD(^PiecewiseConstantDecay((20, 10), (0.1, 0.01, 0.001)))",
        "PiecewiseConstantDecay() boundaries must increase",
    )
    build("optimizer: SGD(PiecewiseConstantDecay((10, 20), (0.1, 0.01, 0.001)))")


def test_schedule_names_are_canonical_in_the_ir() -> None:
    """`exponentialdecay(...)` was accepted but kept its spelling, which `run` rejected."""
    net = build("optimizer: adam(learning_rate=exponentialdecay(0.1, 10, 0.5))")
    assert net.attrs["optimizer"] == CallAttr(
        "Adam", (), (("learning_rate", CallAttr("ExponentialDecay", (0.1, 10, 0.5))),)
    )
    assert training_config(net)["optimizer"]["learning_rate"]["name"] == "ExponentialDecay"


def test_warmup_wraps_a_schedule() -> None:
    net = build("optimizer: SGD(Warmup(CosineDecay(0.1, 100), 10))")
    assert training_config(net)["optimizer"]["learning_rate"]["learning_rate"] == {
        "name": "CosineDecay",
        "initial_learning_rate": 0.1,
        "decay_steps": 100,
    }


# What is accepted is what training honours -------------------------------------------------------


def test_every_backend_parameter_has_a_rule() -> None:
    for defaults in OPTIMIZER_DEFAULTS.values():
        assert set(defaults) <= set(PARAMETERS)
    for params, _ in SCHEDULE_PARAMS.values():
        assert set(params) <= set(PARAMETERS)


def _valid(rule_kind: str, name: str) -> str:
    return {
        "bool": "true",
        "numbers": "(10, 20)" if name == "boundaries" else "(0.1, 0.01, 0.001)",
    }.get(rule_kind, "0.5")


@pytest.mark.parametrize("name", sorted(OPTIMIZER_TABLE))
def test_every_accepted_optimizer_argument_trains(name: str) -> None:
    args = ", ".join(f"{p.name}={_valid(p.rule.kind, p.name)}" for p in OPTIMIZER_TABLE[name])
    config = training_config(build(f"optimizer: {name}({args})"))
    assert config["optimizer"]["name"] == name
    assert config["optimizer"]["learning_rate"] == 0.5


@pytest.mark.parametrize("name", sorted(SCHEDULE_TABLE))
def test_every_accepted_schedule_trains(name: str) -> None:
    from neuralc.lower.train_core import make_schedule

    params = SCHEDULE_TABLE[name]
    for given in ([p for p in params if p.required], list(params)):
        args = ", ".join(_valid(p.rule.kind, p.name) for p in given)
        config = training_config(build(f"optimizer: SGD({name}({args}))"))
        schedule = make_schedule(config["optimizer"]["learning_rate"])
        assert all(isinstance(schedule(step), float) for step in (0, 1, 100))


def test_settings_tables_match_the_backend() -> None:
    from neuralc.train.hpo import SAMPLERS

    assert set(TRAIN_SETTINGS) == set(TRAIN_DEFAULTS)
    assert set(SEARCH_METHODS) == set(SAMPLERS)
    assert set(EXECUTION_SETTINGS) == {"device", "mixed_precision"}


# train { } and execution { } ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message", "note"),
    [
        (
            'execution { mixed_precision: ^"yes" }',
            'mixed_precision must be true or false, got "yes"',
            "write mixed_precision: true or mixed_precision: false",
        ),
        (
            "execution { mixed_precision: ^5 }",
            "mixed_precision must be true or false, got 5",
            None,
        ),
        (
            'execution { mixed_precision: ^"true" }',
            'mixed_precision must be true or false, got "true"',
            "write mixed_precision: true, without quotes",
        ),
        (
            'train { early_stopping_patience: ^"x" }',
            'early_stopping_patience must be a positive integer or None, got "x"',
            "write e.g. early_stopping_patience: 3, or leave it out",
        ),
        (
            "train { checkpoint_path: ^5 }",
            "checkpoint_path must be a file path in quotes or None, got 5",
            'write e.g. checkpoint_path: "best_model.safetensors"',
        ),
        ("train { epochs: ^0 }", "epochs must be a positive integer, got 0", None),
        ("train { batch_size: ^32.5 }", "batch_size must be a positive integer, got 32.5", None),
        (
            "train { validation_split: ^1 }",
            "validation_split must be a number in [0, 1), got 1",
            None,
        ),
        ("train { seed: ^-1 }", "seed must be a non-negative integer, got -1", None),
        ('train { shuffle: ^"no" }', 'shuffle must be true or false, got "no"', None),
        (
            "train { gradient_clip: ^0 }",
            "gradient_clip must be a positive number or None, got 0",
            None,
        ),
        (
            "train { steps_per_epoch: ^true }",
            "steps_per_epoch must be a positive integer or None, got true",
            None,
        ),
        (
            'train { search_method: ^"sobol" }',
            'search_method must be one of "bayesian", "random", "grid", "tpe", got "sobol"',
            'use one of "bayesian", "random", "grid", "tpe"',
        ),
        ('execution { device: ^"tpu" }', 'invalid device "tpu"', None),
        ("execution { device: ^3 }", "invalid device 3", None),
    ],
)
def test_settings_are_type_checked(line: str, message: str, note: str | None) -> None:
    expect(line, message, note)


def test_optional_settings_take_none_and_values_are_kept() -> None:
    net = build(
        "train { early_stopping_patience: None checkpoint_path: None gradient_clip: 1 "
        'seed: 0 shuffle: false search_method: "tpe" } execution { mixed_precision: false }'
    )
    train = net.attrs["train"]
    assert train == {  # type: ignore[comparison-overlap]
        "early_stopping_patience": None,
        "checkpoint_path": None,
        "gradient_clip": 1,
        "seed": 0,
        "shuffle": False,
        "search_method": "tpe",
    }
    assert training_config(net)["execution"]["mixed_precision"] is False


def test_unknown_settings_stay_warnings_with_a_suggestion() -> None:
    result = check_program(parse_text(program("execution { mixed_precison: true }"), "m.neural"))
    (warning,) = result.warnings
    assert warning.message == "unknown execution setting 'mixed_precison' is ignored"
    assert warning.notes == ("did you mean 'mixed_precision'?",)


# HPO where it may and may not stand --------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        'train { search_method: ^HPO(choice("tpe", "random")) }',
        "train { num_trials: ^HPO(choice(10, 20)) }",
        "train { seed: ^HPO(choice(0, 1)) }",
        'train { checkpoint_path: ^HPO(choice("a", "b")) }',
        "train { validation_split: ^HPO(choice(0.1, 0.2)) }",
        'execution { device: ^HPO(choice("cpu", "cuda")) }',
        "execution { mixed_precision: ^HPO(choice(true, false)) }",
    ],
)
def test_hpo_over_settings_that_are_not_hyperparameters(line: str) -> None:
    key = line.split("{ ")[1].split(":")[0]
    diagnostic = expect(line, f"HPO over {key} is not supported")
    assert diagnostic.notes and "HPOAttr" not in diagnostic.notes[0]


def test_hpo_values_are_checked_against_the_setting() -> None:
    expect(
        'train { batch_size: ^HPO(choice(16, "x")) }',
        'batch_size must be a positive integer, but this HPO can give "x"',
    )
    expect(
        "optimizer: Adam(beta_1=^HPO(choice(0.9, 1.0)))",
        "Adam() beta_1 must be a number in [0, 1), but this HPO can give 1.0",
    )
    net = build(
        "train { batch_size: HPO(choice(16, 32)) early_stopping_patience: HPO(range(2, 4)) }"
    )
    assert net.attrs["train"]["batch_size"] == HPOAttr("choice", (16, 32))  # type: ignore[index]


def test_hpo_cannot_choose_between_schedules() -> None:
    expect(
        "optimizer: Adam(learning_rate=^HPO(choice(ExponentialDecay(0.1, 10, 0.5), 0.01)))",
        "an HPO cannot choose between calls",
        "put the HPO on the schedule's arguments, e.g. "
        "ExponentialDecay(HPO(log_range(1e-4, 1e-2)), 1000, 0.96)",
    )


def test_hpo_in_the_input_shape_is_a_clean_diagnostic() -> None:
    diagnostic, _ = failure('loss: "mse"', "(HPO(choice(28, 32)), 28, 1)")
    assert diagnostic.message == "HPO is not supported in input shapes"
    assert diagnostic.loc is not None and (diagnostic.loc.line, diagnostic.loc.column) == (2, 11)
    assert "put the HPO(...) on a layer argument" in diagnostic.notes[0]
    diagnostic, _ = failure('loss: "mse"', "(true, 28)")
    assert diagnostic.message == "input dimension must be a positive integer or None, got true"


def test_hpo_over_the_loss_is_refused_honestly() -> None:
    diagnostic = expect(
        'loss: ^HPO(choice("categorical_crossentropy", "mse"))',
        "HPO over the loss is not supported",
    )
    assert "values of different losses cannot be compared" in diagnostic.notes[0]


def test_hpo_over_the_optimizer_is_a_choice_of_names_or_quoted_calls() -> None:
    source = program('optimizer: HPO(choice("adam", "SGD(0.1, momentum=0.9)"))')
    parsed = parse_text(source, "m.neural")
    net = check_program(parsed).networks[0].network
    assert net.attrs["optimizer"] == HPOAttr(
        "choice", ("Adam", CallAttr("SGD", (0.1,), (("momentum", 0.9),)))
    )
    # `neuralc run` trains the first candidate ...
    assert training_config(net)["optimizer"]["name"] == "Adam"
    # ... and `neuralc tune` builds each trial with the HPO's value fixed by its location.
    from neuralc.train.space import collect

    (hp,) = collect(parsed)
    assert hp.grid_values() == ["adam", "SGD(0.1, momentum=0.9)"]
    _, built = build_module(parsed, {hp.loc: "SGD(0.1, momentum=0.9)"})
    config = training_config(built[0].network)
    assert (config["optimizer"]["name"], config["optimizer"]["momentum"]) == ("SGD", 0.9)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('optimizer: HPO(choice("adam", ^"sgdd"))', "unknown optimizer 'sgdd'"),
        ('optimizer: HPO(choice(^"Adam(lr=0.1)"))', "Adam() has no argument 'lr'"),
        (
            "optimizer: ^HPO(choice(Adam(learning_rate=0.1), SGD))",
            "HPO over the optimizer must choose between optimizer names or quoted calls",
        ),
        (
            "optimizer: ^HPO(range(1, 2))",
            "HPO over the optimizer must choose between optimizer names or quoted calls",
        ),
    ],
)
def test_hpo_over_the_optimizer_checks_every_choice(line: str, message: str) -> None:
    expect(line, message)


def test_configuration_errors_name_no_hpo_combination() -> None:
    text = (
        "network N {\n  input: (8,)\n  layers:\n    Dense(HPO(choice(4, 8)))\n"
        "  optimizer: Adam(lr=0.1)\n}\n"
    )
    with pytest.raises(CompileError) as info:
        check_program(parse_text(text, "m.neural"))
    assert not any("HPO combination" in n for n in info.value.diagnostics[0].notes)


# The command line ------------------------------------------------------------------------------------


def test_check_prints_the_caret_under_the_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.neural"
    path.write_text(
        program("optimizer: Adam(beta_1=1.5, learning_rate=ExponentialDecay(0.1, -5, 2.0))")
    )
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[:3] == [
        f"{path}:5:26: error: Adam() beta_1 must be a number in [0, 1), got 1.5",
        "    optimizer: Adam(beta_1=1.5, learning_rate=ExponentialDecay(0.1, -5, 2.0))",
        "                           ^",
    ]
    assert "Traceback" not in err


def test_show_writes_dsl_values() -> None:
    assert show(True) == "true"
    assert show("x") == '"x"'
    assert show((28,)) == "(28,)"
    assert show(HPOAttr("choice", (28, 32))) == "HPO(choice(28, 32))"
    assert show(HPOAttr("range", (0.1, 0.3), (("step", 0.1),))) == "HPO(range(0.1, 0.3, step=0.1))"
    assert show(CallAttr("Adam", (0.1,), (("amsgrad", False),))) == "Adam(0.1, amsgrad=false)"
