"""Network-level configuration: loss, optimizer, metrics, `train { }`, `execution { }`.

Validated here so that a misspelled optimizer or an impossible device is reported at its source
line by `neuralc check`, long before a backend would choke on it.
"""

from __future__ import annotations

import ast as pyast
import re

from neuralc.diagnostics import Diagnostic, SourceLocation, did_you_mean, error
from neuralc.frontend import ast
from neuralc.frontend.values import Trial, to_attr
from neuralc.ir.types import Attr, CallAttr, HPOAttr

LOSSES = (
    "categorical_crossentropy", "sparse_categorical_crossentropy", "cross_entropy",
    "binary_crossentropy", "mse", "mean_squared_error", "mae", "mean_absolute_error", "huber",
    "nll", "kl_divergence",
)  # fmt: skip
OPTIMIZERS = ("Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam")
SCHEDULES = (
    "ExponentialDecay", "StepDecay", "CosineDecay", "PolynomialDecay", "PiecewiseConstantDecay",
    "InverseTimeDecay", "WarmupCosineDecay", "Warmup",
)  # fmt: skip
TRAIN_KEYS = (
    "epochs", "batch_size", "validation_split", "early_stopping_patience", "checkpoint_path",
    "search_method", "num_trials", "shuffle", "seed", "gradient_clip", "steps_per_epoch",
)  # fmt: skip
EXECUTION_KEYS = ("device", "mixed_precision")
SEARCH_METHODS = ("bayesian", "random", "grid", "tpe")

_DEVICE = re.compile(r"^(cpu|cuda|gpu|auto|cuda:\d+)$")
DEVICE_HELP = 'valid devices are "cpu", "cuda", "cuda:N", "gpu" and "auto"'


def check_device(value: Attr, loc: SourceLocation) -> str:
    if not isinstance(value, str) or not _DEVICE.match(value):
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        raise error(f"invalid device {shown}", loc, DEVICE_HELP)
    return value


def network_attrs(
    net: ast.Network, trial: Trial | None, warnings: list[Diagnostic]
) -> dict[str, Attr]:
    attrs: dict[str, Attr] = {}
    if net.loss is not None:
        attrs["loss"] = _loss(net.loss)
    if net.optimizer is not None:
        attrs["optimizer"] = _optimizer(net.optimizer, trial)
    if net.metrics is not None:
        metrics = to_attr(net.metrics, trial)
        attrs["metrics"] = metrics if isinstance(metrics, tuple) else (metrics,)
    for block in net.blocks:
        key = "train" if block.keyword == "train" else "execution"
        known = TRAIN_KEYS if key == "train" else EXECUTION_KEYS
        settings: dict[str, Attr] = dict(attrs.get(key) or {})  # type: ignore[arg-type]
        for setting in block.settings:
            value = to_attr(setting.value, trial)
            if setting.key not in known:
                hint = did_you_mean(setting.key, known)
                warnings.append(
                    Diagnostic(
                        f"unknown {key} setting '{setting.key}' is ignored",
                        setting.loc,
                        "warning",
                        (hint,) if hint else (),
                    )
                )
            elif setting.key == "device":
                check_device(value, setting.value.loc)
            elif setting.key == "search_method" and value not in SEARCH_METHODS:
                raise error(
                    f"unknown search_method {value!r}",
                    setting.value.loc,
                    "use one of " + ", ".join(f'"{m}"' for m in SEARCH_METHODS),
                )
            elif setting.key == "validation_split":
                _check_fraction(value, setting.value.loc)
            elif setting.key in ("epochs", "batch_size", "num_trials"):
                _check_positive_int(setting.key, value, setting.value.loc)
            settings[setting.key] = value
        attrs[key] = settings
    for setting in net.settings:
        hint = did_you_mean(setting.key, ("input", "layers", "loss", "optimizer", "metrics"))
        warnings.append(
            Diagnostic(
                f"unknown network setting '{setting.key}' is ignored",
                setting.loc,
                "warning",
                (hint,) if hint else (),
            )
        )
    return attrs


def _loss(expr: ast.Expr) -> str:
    value = to_attr(expr)
    if not isinstance(value, str):
        raise error('loss must be a name such as "categorical_crossentropy"', expr.loc)
    if value not in LOSSES:
        hint = did_you_mean(value, LOSSES)
        raise error(
            f"unknown loss '{value}'", expr.loc, hint or "known losses: " + ", ".join(LOSSES)
        )
    return value


def _optimizer(expr: ast.Expr, trial: Trial | None) -> CallAttr:
    value = to_attr(expr, trial)
    if isinstance(value, str):
        value = _parse_call_string(value, expr.loc)
    if not isinstance(value, CallAttr):
        raise error(
            "optimizer must be a name or a call such as Adam(learning_rate=0.001)", expr.loc
        )
    name = _canonical(value.name, OPTIMIZERS, "optimizer", expr.loc)
    for key, arg in value.kwargs:
        if isinstance(arg, CallAttr):
            _canonical(arg.name, SCHEDULES, "learning-rate schedule", expr.loc)
        elif key == "learning_rate" and not isinstance(arg, HPOAttr):
            _check_positive_number("learning_rate", arg, expr.loc)
    for arg in value.args:
        if isinstance(arg, CallAttr):
            _canonical(arg.name, SCHEDULES, "learning-rate schedule", expr.loc)
    return CallAttr(name, value.args, value.kwargs)


def _canonical(name: str, known: tuple[str, ...], what: str, loc: SourceLocation) -> str:
    for candidate in known:
        if candidate.lower() == name.lower():
            return candidate
    hint = did_you_mean(name, known)
    raise error(f"unknown {what} '{name}'", loc, hint or f"known: {', '.join(known)}")


def _parse_call_string(text: str, loc: SourceLocation) -> CallAttr:
    """`optimizer: "Adam(learning_rate=1e-4)"` — upstream examples quote the call."""
    try:
        node = pyast.parse(text.strip(), mode="eval").body
        if isinstance(node, pyast.Name):
            return CallAttr(node.id)
        if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name):
            args = tuple(pyast.literal_eval(a) for a in node.args)
            kwargs = tuple((k.arg or "", pyast.literal_eval(k.value)) for k in node.keywords)
            return CallAttr(node.func.id, args, kwargs)
    except (SyntaxError, ValueError):
        pass
    raise error(
        f"cannot read optimizer {text!r}",
        loc,
        "write it as a call: optimizer: Adam(learning_rate=0.001)",
    )


def _check_fraction(value: Attr, loc: SourceLocation) -> None:
    if isinstance(value, HPOAttr):
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1:
        raise error(f"validation_split must be a number in [0, 1), got {value!r}", loc)


def _check_positive_int(key: str, value: Attr, loc: SourceLocation) -> None:
    if isinstance(value, HPOAttr):
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise error(f"{key} must be a positive integer, got {value!r}", loc)


def _check_positive_number(key: str, value: Attr, loc: SourceLocation) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise error(f"{key} must be a positive number, got {value!r}", loc)
