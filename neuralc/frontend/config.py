"""Network-level configuration: loss, optimizer, metrics, `train { }`, `execution { }`.

Validated here so that a misspelled optimizer or an impossible device is reported at its source
line by `neuralc check`, long before a backend would choke on it.

This module holds `network_attrs`, the entry point, and the checks of the loss, the device and
the `train { }` / `execution { }` settings. The rest of the concept lives beside it, one part
per module: the tables of what each parameter and setting may hold in
`neuralc.frontend.config_rules`, the optimizer and learning-rate-schedule calls in
`neuralc.frontend.optimizer_calls`, and the did-you-mean notes in `neuralc.frontend.suggestions`.
"""

from __future__ import annotations

import re

from neuralc.diagnostics import Diagnostic, SourceLocation, error
from neuralc.frontend import ast
from neuralc.frontend.config_rules import (
    EXECUTION_SETTINGS,
    TRAIN_SETTINGS,
    TUNE_RANKS,
    Rule,
    check_value,
)
from neuralc.frontend.optimizer_calls import optimizer_attr
from neuralc.frontend.suggestions import suggest
from neuralc.frontend.values import Trial, show, to_attr
from neuralc.ir.types import Attr, HPOAttr
from neuralc.lower.training import METRICS, canonical_metric

LOSSES = (
    "categorical_crossentropy", "sparse_categorical_crossentropy", "cross_entropy",
    "binary_crossentropy", "mse", "mean_squared_error", "mae", "mean_absolute_error", "huber",
    "nll", "kl_divergence",
)  # fmt: skip

_DEVICE = re.compile(r"^(cpu|cuda|gpu|auto|cuda:\d+)$")
DEVICE_HELP = 'valid devices are "cpu", "cuda", "cuda:N", "gpu" and "auto"'


def check_device(value: Attr, loc: SourceLocation) -> str:
    if not isinstance(value, str) or not _DEVICE.match(value):
        raise error(f"invalid device {show(value)}", loc, DEVICE_HELP)
    return value


_SETTING_EXAMPLES = {
    "checkpoint_path": 'write e.g. checkpoint_path: "best_model.safetensors"',
    "early_stopping_patience": "write e.g. early_stopping_patience: 3, or leave it out",
}


# The network's attributes -----------------------------------------------------------------------


def network_attrs(
    net: ast.Network, trial: Trial | None, warnings: list[Diagnostic]
) -> dict[str, Attr]:
    attrs: dict[str, Attr] = {}
    if net.loss is not None:
        attrs["loss"] = _loss(net.loss)
    if net.optimizer is not None:
        attrs["optimizer"] = optimizer_attr(net.optimizer, trial)
    if net.metrics is not None:
        _check_metrics(net.metrics)
        metrics = to_attr(net.metrics, trial)
        attrs["metrics"] = metrics if isinstance(metrics, tuple) else (metrics,)
    for block in net.blocks:
        key = "train" if block.keyword == "train" else "execution"
        known = TRAIN_SETTINGS if key == "train" else EXECUTION_SETTINGS
        settings: dict[str, Attr] = dict(attrs.get(key) or {})  # type: ignore[arg-type]
        for setting in block.settings:
            rule = known.get(setting.key)
            if rule is None:
                hint = suggest(setting.key, known)
                warnings.append(
                    Diagnostic(
                        f"unknown {key} setting '{setting.key}' is ignored",
                        setting.loc,
                        "warning",
                        (hint,) if hint else (),
                    )
                )
                settings[setting.key] = to_attr(setting.value, trial)
                continue
            settings[setting.key] = _setting(setting, rule, trial)
        attrs[key] = settings
    for setting in net.settings:
        hint = suggest(setting.key, ("input", "layers", "loss", "optimizer", "metrics"))
        warnings.append(
            Diagnostic(
                f"unknown network setting '{setting.key}' is ignored",
                setting.loc,
                "warning",
                (hint,) if hint else (),
            )
        )
    return attrs


def _setting(setting: ast.Setting, rule: Rule, trial: Trial | None) -> Attr:
    node, key = setting.value, setting.key
    if isinstance(node, ast.HPO) and rule.hpo is not None:
        raise error(f"HPO over {key} is not supported", node.loc, rule.hpo)
    value = to_attr(node, trial)
    if rule.kind == "device":
        return check_device(value, node.loc)
    note = _SETTING_EXAMPLES.get(key, "")
    if rule.kind == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
        note = f"write {key}: {value.lower()}, without quotes"
    elif rule.kind == "bool":
        note = f"write {key}: true or {key}: false"
    elif rule.kind == "choice":
        note = "use one of " + ", ".join(show(c) for c in rule.choices)
    check_value(value, rule, key, node.loc, note)
    return value


# Metrics ------------------------------------------------------------------------------------------


def _check_metrics(expr: ast.Expr) -> None:
    """Every metric named, or every one an HPO over a metric can give, is one the training
    loops compute (neuralc.lower.training's table, which `neuralc run` reads): reported here at
    the metric itself, where `run` could only point at the network."""
    items = expr.items if isinstance(expr, ast.ListExpr | ast.TupleExpr) else (expr,)
    for item in items:
        value = to_attr(item)
        for name in value.candidates() if isinstance(value, HPOAttr) else (value,):
            if canonical_metric(name) is not None:
                continue
            shown = f"'{name}'" if isinstance(name, str) else show(name)
            hint = suggest(name, METRICS) if isinstance(name, str) else None
            raise error(
                f"unknown metric {shown}", item.loc, hint or "known metrics: " + ", ".join(METRICS)
            )


# Loss ---------------------------------------------------------------------------------------------


def _loss(expr: ast.Expr) -> str:
    if isinstance(expr, ast.HPO):
        # `neuralc tune` minimizes the monitored loss; with the loss itself searched, it would
        # pick the loss whose values happen to be smallest (mse under cross-entropy), not the
        # better model.
        raise error(
            "HPO over the loss is not supported",
            expr.loc,
            TUNE_RANKS + ", and values of different losses cannot be compared: choose one "
            'loss, e.g. loss: "categorical_crossentropy", and put the HPO on the optimizer or '
            "a layer",
        )
    value = to_attr(expr)
    if not isinstance(value, str):
        raise error('loss must be a name such as "categorical_crossentropy"', expr.loc)
    if value not in LOSSES:
        hint = suggest(value, LOSSES)
        raise error(
            f"unknown loss '{value}'", expr.loc, hint or "known losses: " + ", ".join(LOSSES)
        )
    return value
