"""What a backend's training loop needs from a network, as plain JSON-able data, and the loop's
source text for the emitters.

`training_config(network)` normalizes the network's `loss`, `optimizer` (with its schedule),
`metrics`, `train { }` and `execution { }` attributes into `TRAIN_CONFIG`: Keras' argument names
and defaults (the DSL writes `beta_1`, `epsilon`, `ExponentialDecay(...)`), every learning-rate
schedule as `{"name": ..., argument: value}`, the input and output shapes, and how the loss
reads the output (`loss_input`: an `Output(n, activation="softmax")` with a cross-entropy loss
trains on the final layer's logits). `training_source("pytorch")` (from `train_template`) is
the text of `train_core.py` + `train_data.py` + `train_torch_ops.py` + `train_torch.py` with
their neuralc imports removed, for the PyTorch emitter to append to the module it writes (see
`training_tail`).
"""

from __future__ import annotations

import pprint
from typing import Any

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation
from neuralc.ir.core import Network, Operation, primary_loc
from neuralc.ir.types import FRAMEWORK_DTYPES, Attr, CallAttr, HPOAttr
from neuralc.lower.train_template import (
    MAIN_DISPATCH,
    TEMPLATES,
    training_imports,
    training_source,
)

__all__ = [
    "MAIN_DISPATCH",
    "TEMPLATES",
    "config_literal",
    "training_config",
    "training_imports",
    "training_source",
    "training_tail",
]


OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {  # Keras 3's defaults
    "Adam": {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "weight_decay": 0.0,
    },
    "AdamW": {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "weight_decay": 0.004,
    },
    "SGD": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
    "RMSprop": {
        "learning_rate": 0.001,
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
        "weight_decay": 0.0,
    },
    "Adagrad": {
        "learning_rate": 0.001,
        "initial_accumulator_value": 0.1,
        "epsilon": 1e-7,
        "weight_decay": 0.0,
    },
    "Adadelta": {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7, "weight_decay": 0.0},
    "Adamax": {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "weight_decay": 0.0,
    },
    "Nadam": {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "weight_decay": 0.0,
    },
}
OPTIMIZER_ALIASES = {
    "lr": "learning_rate",
    "eps": "epsilon",
    "beta1": "beta_1",
    "beta2": "beta_2",
    "alpha": "rho",
    "clipnorm": "gradient_clip",
    "global_clipnorm": "gradient_clip",
}
# name -> (parameters in positional order, how many are required)
SCHEDULE_PARAMS: dict[str, tuple[tuple[str, ...], int]] = {
    "ExponentialDecay": (("initial_learning_rate", "decay_steps", "decay_rate", "staircase"), 3),
    "StepDecay": (("initial_learning_rate", "decay_steps", "decay_rate"), 3),
    "CosineDecay": (
        ("initial_learning_rate", "decay_steps", "alpha", "warmup_target", "warmup_steps"),
        2,
    ),
    "WarmupCosineDecay": (("initial_learning_rate", "decay_steps", "warmup_steps", "alpha"), 3),
    "PolynomialDecay": (
        ("initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle"),
        2,
    ),
    "PiecewiseConstantDecay": (("boundaries", "values"), 2),
    "InverseTimeDecay": (("initial_learning_rate", "decay_steps", "decay_rate", "staircase"), 3),
    "Warmup": (("learning_rate", "warmup_steps", "initial_learning_rate"), 2),
}
SCHEDULE_ALIASES = {
    "step_size": "decay_steps",
    "gamma": "decay_rate",
    "initial_lr": "initial_learning_rate",
    "lr": "initial_learning_rate",
}
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 1,
    "batch_size": 32,
    "validation_split": 0.0,
    "early_stopping_patience": None,
    "checkpoint_path": None,
    "shuffle": True,
    "seed": 0,
    "gradient_clip": None,
    "steps_per_epoch": None,
    "search_method": "bayesian",
    "num_trials": 10,
}
METRICS = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy",
    "mse": "mse",
    "mean_squared_error": "mse",
    "mae": "mae",
    "mean_absolute_error": "mae",
}
CROSS_ENTROPY = (
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "cross_entropy",
    "kl_divergence",
)
DTYPES = FRAMEWORK_DTYPES


def training_config(network: Network, notes: list[str] | None = None) -> dict[str, Any]:
    """`TRAIN_CONFIG` for `network`. Hyperparameters still open (`HPO(...)`) take their first
    candidate, with a line in `notes`; unusable settings raise a `CompileError`."""
    notes = notes if notes is not None else []
    loc = primary_loc(network.loc)
    attrs = {k: _concrete(v, k, notes) for k, v in network.attrs.items()}
    loss = attrs.get("loss") or "mse"
    if "loss" not in attrs:
        notes.append('the network names no loss; training uses loss: "mse"')
    train = dict(TRAIN_DEFAULTS)
    train.update(attrs.get("train") or {})  # type: ignore[arg-type]
    train["gradient_clip"] = train.get("gradient_clip")
    execution = {"device": None, "mixed_precision": False, **(attrs.get("execution") or {})}
    optimizer = _optimizer(attrs.get("optimizer"), loc)
    clip = optimizer.pop("gradient_clip", None)
    if clip is not None and train["gradient_clip"] is None:
        train["gradient_clip"] = clip
    return {
        "network": network.name,
        "inputs": [_input(v.name, v.type, network) for v in network.inputs],
        "output": _output(network, str(loss)),
        "loss": loss,
        "metrics": _metrics(attrs.get("metrics"), loc),
        "optimizer": optimizer,
        "train": train,
        "execution": execution,
    }


def _concrete(value: Attr, where: str, notes: list[str]) -> Any:
    if isinstance(value, HPOAttr):
        from neuralc.frontend.values import show  # the value as the DSL spells it

        chosen = value.candidates()[0]
        notes.append(
            f"{where}: HPO({value.kind}(...)) is open; using {show(chosen)} "
            "(`neuralc tune` searches it)"
        )
        return _concrete(chosen, where, notes)
    if isinstance(value, CallAttr):
        return CallAttr(
            value.name,
            tuple(_concrete(a, where, notes) for a in value.args),
            tuple((k, _concrete(v, f"{where}.{k}", notes)) for k, v in value.kwargs),
        )
    if isinstance(value, dict):
        return {k: _concrete(v, f"{where}.{k}", notes) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_concrete(v, where, notes) for v in value)
    return value


def _error(message: str, loc: SourceLocation | None, *notes: str) -> CompileError:
    return CompileError(Diagnostic(message, loc, "error", tuple(n for n in notes if n)))


def _optimizer(value: Any, loc: SourceLocation | None) -> dict[str, Any]:
    if value is None:
        value = CallAttr("Adam")
    if isinstance(value, str):
        value = CallAttr(value)
    name = value.name
    if name not in OPTIMIZER_DEFAULTS:
        raise _error(
            f"the optimizer '{name}' cannot be trained",
            loc,
            "known: " + ", ".join(OPTIMIZER_DEFAULTS),
        )
    spec: dict[str, Any] = {"name": name, **OPTIMIZER_DEFAULTS[name]}
    if len(value.args) > 1:
        raise _error(f"{name}() takes the learning rate as its only positional argument", loc)
    given = [("learning_rate", a) for a in value.args] + list(value.kwargs)
    for key, arg in given:
        key = OPTIMIZER_ALIASES.get(key, key)
        if key == "betas" and isinstance(arg, tuple) and len(arg) == 2:
            spec["beta_1"], spec["beta_2"] = float(arg[0]), float(arg[1])
        elif key == "gradient_clip":
            spec[key] = float(arg)
        elif key not in spec:
            raise _error(
                f"{name}() has no argument '{key}'",
                loc,
                "arguments: " + ", ".join(k for k in spec if k != "name"),
            )
        elif key == "learning_rate" and isinstance(arg, CallAttr):
            spec[key] = _schedule(arg, loc)
        else:
            spec[key] = arg
    return spec


def _schedule(call: CallAttr, loc: SourceLocation | None) -> dict[str, Any]:
    if call.name not in SCHEDULE_PARAMS:
        raise _error(
            f"unknown learning-rate schedule '{call.name}'",
            loc,
            "known: " + ", ".join(SCHEDULE_PARAMS),
        )
    params, required = SCHEDULE_PARAMS[call.name]
    if len(call.args) > len(params):
        raise _error(f"{call.name}() takes at most {len(params)} positional arguments", loc)
    spec: dict[str, Any] = {"name": call.name}
    for key, arg in [*zip(params, call.args, strict=False), *call.kwargs]:
        if call.name != "Warmup":
            key = SCHEDULE_ALIASES.get(key, key)
        if key not in params:
            raise _error(
                f"{call.name}() has no argument '{key}'", loc, "arguments: " + ", ".join(params)
            )
        spec[key] = (
            _schedule(arg, loc)
            if isinstance(arg, CallAttr)
            else (list(arg) if isinstance(arg, tuple) else arg)
        )
    missing = [p for p in params[:required] if p not in spec]
    if missing:
        raise _error(
            f"{call.name}() needs {', '.join(missing)}",
            loc,
            f"write {call.name}({', '.join(params[:required])})",
        )
    for key in ("decay_steps", "warmup_steps"):
        if key in spec and not (isinstance(spec[key], int | float) and spec[key] > 0):
            raise _error(f"{call.name}() {key} must be a positive number", loc)
    return spec


def canonical_metric(name: Any) -> str | None:
    """The metric the training loops compute for `name` as written (`"acc"` → `"accuracy"`),
    or None when they know no such metric. `neuralc check` (neuralc.frontend.config) asks the
    same question, so that what it accepts is what `neuralc run` trains with."""
    return METRICS.get(str(name).lower())


def _metrics(value: Any, loc: SourceLocation | None) -> list[str]:
    names = [] if value is None else list(value) if isinstance(value, tuple) else [value]
    out: list[str] = []
    for name in names:
        canonical = canonical_metric(name)
        if canonical is None:
            raise _error(f"unknown metric '{name}'", loc, "known: " + ", ".join(METRICS))
        if canonical not in out:
            out.append(canonical)
    return out


def _input(name: str, type_: Any, network: Network) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "dtype": DTYPES[type_.dtype],
        "shape": [d if isinstance(d, int) else None for d in type_.feature_shape],
    }
    if type_.dtype.startswith("i"):
        for op in network.walk():
            if op.op == "nn.embedding" and name in {v.name for v in op.operands}:
                spec["vocab"] = int(op.attrs["input_dim"])  # type: ignore[call-overload]
    return spec


def _output(network: Network, loss: str) -> dict[str, Any]:
    value = network.outputs[0]
    if network.attrs.get("output") == "logits":
        # A training graph after `fuse-softmax-cross-entropy`: the model returns the logits.
        return {
            "shape": [d if isinstance(d, int) else None for d in value.type.feature_shape],
            "dtype": DTYPES[value.type.dtype],
            "activation": network.attrs.get("output_activation"),
            "logits_layer": None,
            "loss_input": "output_logits",
        }
    owner = value.owner
    final = owner if isinstance(owner, Operation) else None
    activation = None
    if final is not None and final.op in ("nn.dense", "nn.output", "nn.activation"):
        activation = str(final.attrs.get("activation") or "linear")
    dense = final is not None and final.op in ("nn.dense", "nn.output")
    logits_layer = final.name if dense else None
    if loss in CROSS_ENTROPY or loss == "nll":
        source = {
            "softmax": "logits" if dense else "probs",
            "linear": "output_logits",
            "log_softmax": "log_probs",
        }.get(activation or "", "probs")
        if loss == "nll" and source == "output_logits":
            source = "log_probs"  # PyTorch's NLLLoss reads log-probabilities
    elif loss == "binary_crossentropy":
        source = {"sigmoid": "logits" if dense else "probs", "linear": "output_logits"}.get(
            activation or "", "probs"
        )
    else:
        source = "values"
    return {
        "shape": [d if isinstance(d, int) else None for d in value.type.feature_shape],
        "dtype": DTYPES[value.type.dtype],
        "activation": activation,
        "logits_layer": logits_layer if source == "logits" else None,
        "loss_input": source,
    }


# Source text for the emitters (the text itself: neuralc.lower.train_template) ----------------


def config_literal(config: dict[str, Any]) -> str:
    """`TRAIN_CONFIG = {...}` as a Python literal (None/True/False, floats by repr)."""
    return "TRAIN_CONFIG = " + pprint.pformat(config, width=96, sort_dicts=False)


def training_tail(network: Network, target: str = "pytorch") -> str:
    """What the emitter appends before its `if __name__ == "__main__":` block: the config
    literal and the training loop. The `__main__` block then dispatches as MAIN_DISPATCH."""
    return config_literal(training_config(network)) + "\n\n\n" + training_source(target)
