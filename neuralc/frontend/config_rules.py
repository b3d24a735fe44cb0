"""The configuration tables: what each optimizer/schedule parameter and each `train { }` /
`execution { }` setting may hold.

Kept apart from the checks that use them (`neuralc.frontend.config` for settings,
`neuralc.frontend.optimizer_calls` for optimizer and schedule calls) so that the tables read as
one reference, and so that both checkers share a single `Rule` and `check_value`.

Which optimizers and schedules exist, their parameters (in Keras' positional order), their
defaults and the PyTorch spellings the backends know are the training backend's own tables
(`neuralc.lower.training`): this module reads them, so that what `check` accepts is what
`neuralc run` and `neuralc tune` honour. What each parameter may hold (type and range) is
`PARAMETERS` below, keyed by parameter name because a name means the same thing in every
optimizer and schedule; `OPTIMIZER_TABLE` / `SCHEDULE_TABLE` join the two into one row per
parameter (name, rule, default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from neuralc.diagnostics import SourceLocation, error
from neuralc.frontend.values import show
from neuralc.ir.types import INT64_MAX, INT64_MIN, Attr, HPOAttr, fits_int64
from neuralc.lower.training import OPTIMIZER_DEFAULTS, SCHEDULE_PARAMS

OPTIMIZERS = tuple(OPTIMIZER_DEFAULTS)
SCHEDULES = tuple(SCHEDULE_PARAMS)
# `neuralc tune`'s samplers (neuralc.train.hpo.SAMPLERS; a test keeps the two equal).
SEARCH_METHODS = ("bayesian", "random", "grid", "tpe")


# What a parameter or setting may hold ----------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """The values one optimizer/schedule parameter or one train/execution setting takes.

    `kind`: "number", "integer", "bool", "path", "choice", "device", "numbers" (a list of
    numbers) or "rate" (a number or a learning-rate schedule). Numbers lie in the interval
    `low`..`high` (open at an end where `low_open`/`high_open`). `hpo` is None when the value
    may be an `HPO(...)`, else the note saying why it may not.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False  # None (the DSL's `None`) means "not set"
    choices: tuple[str, ...] = ()
    hpo: str | None = None

    def accepts(self, value: Attr) -> bool:
        if value is None:
            return self.optional
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind in ("path", "device"):
            return isinstance(value, str) and bool(value.strip())
        if self.kind == "choice":
            return value in self.choices
        if self.kind == "numbers":
            return isinstance(value, tuple) and all(is_number(v) for v in value)
        if self.kind == "integer" and not (isinstance(value, int) and is_number(value)):
            return False
        if not is_number(value):
            return False
        number: float = value  # type: ignore[assignment]
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return False
        high = self.high
        return high is None or (number < high if self.high_open else number <= high)

    def describe(self) -> str:
        text = {
            "bool": "true or false",
            "path": "a file path in quotes",
            "device": "a device",
            "numbers": "a list of numbers",
            "choice": "one of " + ", ".join(show(c) for c in self.choices),
        }.get(self.kind) or self._describe_number()
        return f"{text} or None" if self.optional else text

    def _describe_number(self) -> str:
        noun = "integer" if self.kind == "integer" else "number"
        if self.high is None and self.low == 0:
            return f"a positive {noun}" if self.low_open else f"a non-negative {noun}"
        if self.high is None and self.low == 1 and self.kind == "integer":
            return "a positive integer"
        if self.low is None and self.high is None:
            return f"a {noun}"
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        return f"a {noun} in {lo}{_num(self.low)}, {_num(self.high)}{hi}"


def _num(value: float | None) -> str:
    if value is None:
        return "inf"
    return str(int(value)) if float(value).is_integer() else str(value)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_BOOL = Rule("bool")
_POSITIVE = Rule("number", 0, low_open=True)
_NON_NEGATIVE = Rule("number", 0)
_FRACTION = Rule("number", 0, 1, high_open=True)  # [0, 1)
_UNIT = Rule("number", 0, 1)  # [0, 1]

# Optimizer and schedule parameters, by name (Keras 3's meaning and limits). The backends'
# tables say which optimizer or schedule takes which; a name missing here is a bug that the
# tests catch (test_every_backend_parameter_has_a_rule).
PARAMETERS: dict[str, Rule] = {
    "learning_rate": Rule("rate", 0, low_open=True),
    "beta_1": _FRACTION,
    "beta_2": _FRACTION,
    "rho": _FRACTION,
    "epsilon": _POSITIVE,  # 0 divides by zero for a parameter whose gradient stays 0
    "amsgrad": _BOOL,
    "nesterov": _BOOL,
    "centered": _BOOL,
    "weight_decay": _NON_NEGATIVE,
    "momentum": _UNIT,  # Keras 3's SGD raises outside [0, 1]
    "initial_accumulator_value": _NON_NEGATIVE,
    "global_clipnorm": _POSITIVE,
    "initial_learning_rate": _POSITIVE,
    "decay_steps": _POSITIVE,
    "decay_rate": _POSITIVE,  # a negative rate to a fractional power is a complex number
    "staircase": _BOOL,
    "cycle": _BOOL,
    "alpha": _UNIT,  # the final rate as a fraction of the initial one
    "warmup_target": Rule("number", 0, low_open=True, optional=True),
    "warmup_steps": _POSITIVE,  # the backend rejects 0 (neuralc.lower.training._schedule)
    "end_learning_rate": _NON_NEGATIVE,
    "power": _POSITIVE,
    "boundaries": Rule("numbers"),
    "values": Rule("numbers"),
}
# Where one schedule's parameter differs from the name's meaning elsewhere: Warmup ramps up
# from `initial_learning_rate`, which defaults to 0.
PARAMETER_OVERRIDES: dict[tuple[str, str], Rule] = {
    ("Warmup", "initial_learning_rate"): _NON_NEGATIVE,
}
# Every optimizer also takes Keras' `global_clipnorm` (the backend clips the global norm).
OPTIMIZER_EXTRAS: dict[str, Attr] = {"global_clipnorm": None}


@dataclass(frozen=True)
class Parameter:
    """One row of an optimizer's or a schedule's parameter table."""

    name: str
    rule: Rule
    default: Attr = None
    required: bool = False


def _optimizer_table() -> dict[str, tuple[Parameter, ...]]:
    return {
        name: tuple(
            Parameter(p, PARAMETERS[p], default)
            for p, default in {**defaults, **OPTIMIZER_EXTRAS}.items()
        )
        for name, defaults in OPTIMIZER_DEFAULTS.items()
    }


def _schedule_table() -> dict[str, tuple[Parameter, ...]]:
    table = {}
    for name, (params, required) in SCHEDULE_PARAMS.items():
        table[name] = tuple(
            Parameter(p, PARAMETER_OVERRIDES.get((name, p), PARAMETERS[p]), None, i < required)
            for i, p in enumerate(params)
        )
    return table


OPTIMIZER_TABLE = _optimizer_table()
SCHEDULE_TABLE = _schedule_table()


# The train { } and execution { } settings ---------------------------------------------------------


TUNE_RANKS = "`neuralc tune` ranks trials by their loss"
_SEARCH_SETTING = "it configures the search itself; set it once"
_EXECUTION_HPO = (
    "execution settings choose where and how the model runs, not what it learns, and " + TUNE_RANKS
)
TRAIN_SETTINGS: dict[str, Rule] = {
    "epochs": Rule("integer", 1),
    "batch_size": Rule("integer", 1),
    "validation_split": Rule(
        "number", 0, 1, high_open=True,
        hpo=TUNE_RANKS + " on the validation data, which must be the same for every trial",
    ),
    "early_stopping_patience": Rule("integer", 1, optional=True),
    "checkpoint_path": Rule("path", optional=True, hpo="a path is not a hyperparameter"),
    "search_method": Rule("choice", choices=SEARCH_METHODS, hpo=_SEARCH_SETTING),
    "num_trials": Rule("integer", 1, hpo=_SEARCH_SETTING),
    "shuffle": _BOOL,
    "seed": Rule("integer", 0, hpo="searching over seeds selects a lucky draw, not a model"),
    "gradient_clip": Rule("number", 0, low_open=True, optional=True),
    "steps_per_epoch": Rule("integer", 1, optional=True),
}  # fmt: skip
EXECUTION_SETTINGS: dict[str, Rule] = {
    "device": Rule("device", hpo=_EXECUTION_HPO),
    "mixed_precision": Rule("bool", hpo=_EXECUTION_HPO),
}


# Checking a value against its rule ----------------------------------------------------------------


def check_value(value: Attr, rule: Rule, what: str, loc: SourceLocation, note: str = "") -> None:
    """Raise unless `value`, or every value an HPO expression can give, satisfies `rule`."""
    if isinstance(value, HPOAttr):
        for candidate in value.candidates():
            if not rule.accepts(candidate):
                raise error(
                    f"{what} must be {rule.describe()}, but this HPO can give {show(candidate)}",
                    loc,
                    note,
                )
            _check_int64(candidate, what, loc)
            _check_finite(candidate, what, loc)
        return
    if rule.kind == "numbers" and isinstance(value, tuple):
        # A list may hold HPO expressions: `boundaries=(HPO(choice(10, 20)), 40)`.
        for item in value:
            check_value(item, Rule("number"), f"every value of {what}", loc, note)
        return
    if not rule.accepts(value):
        raise error(f"{what} must be {rule.describe()}, got {show(value)}", loc, note)
    _check_int64(value, what, loc)
    _check_finite(value, what, loc)


def _check_finite(value: Attr, what: str, loc: SourceLocation) -> None:
    """A literal past float64's range (`learning_rate=1e400`) reads as infinity; no setting
    means that, and training with it only fails later, as a NaN loss."""
    if isinstance(value, float) and not math.isfinite(value):
        raise error(
            f"{what} {show(value)} is not a finite number",
            loc,
            "64-bit floats hold magnitudes up to about 1.8e308",
        )


def _check_int64(value: Attr, what: str, loc: SourceLocation) -> None:
    """Integers that a rule accepts (`epochs: 100000000000000000000` is a positive integer) must
    still fit in the int64 that the IR and every backend hold them in: past it, the training
    loop fails (numpy and PyTorch raise OverflowError) long after `check` passed."""
    if isinstance(value, int) and is_number(value) and not fits_int64(value):
        limit = (
            f"at most 2**63 - 1 = {INT64_MAX:,}"
            if value > 0
            else f"at least -2**63 = {INT64_MIN:,}"
        )
        raise error(
            f"{what} {show(value)} does not fit in a 64-bit integer", loc, f"integers are {limit}"
        )


__all__ = [
    "EXECUTION_SETTINGS",
    "OPTIMIZERS",
    "OPTIMIZER_EXTRAS",
    "OPTIMIZER_TABLE",
    "PARAMETERS",
    "PARAMETER_OVERRIDES",
    "SCHEDULES",
    "SCHEDULE_TABLE",
    "SEARCH_METHODS",
    "TRAIN_SETTINGS",
    "TUNE_RANKS",
    "Parameter",
    "Rule",
    "check_value",
    "is_number",
]
