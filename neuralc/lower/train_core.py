"""Framework-neutral parts of neuralc's training loops: learning-rate schedules, the epoch's batch
order, early stopping, divergence, checkpoint paths, progress and the metrics record.

Standalone: it imports only the standard library, numpy and (optionally) rich, because
`neuralc.lower.training.training_source()` inlines its text into the emitted PyTorch module.
The PyTorch (`train_torch.py`) and Keras (`train_keras.py`) loops share it, so a schedule, a
shuffle order or a stopping rule cannot differ between backends.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

CHECKPOINT_FORMAT = "neuralc-checkpoint-v1"


class TrainingError(RuntimeError):
    """A training failure the user can act on (divergence, a missing checkpoint, bad data)."""


class Diverged(TrainingError):
    """The loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, global_step: int, value: float) -> None:
        self.epoch, self.step, self.global_step, self.value = epoch, step, global_step, value
        super().__init__(
            f"training diverged: the loss is {value} at epoch {epoch}, step {step} "
            f"(global step {global_step}); lower the learning rate or set "
            "train { gradient_clip: 1.0 }"
        )


# Learning-rate schedules (Keras semantics; `step` counts optimizer steps from 0) -------------


Schedule = Callable[[int], float]


def make_schedule(spec: Any) -> Schedule:
    """`spec` is a number or `{"name": ..., **arguments}` (see training_config)."""
    if not isinstance(spec, Mapping):
        value = float(spec)
        return lambda step: value
    a = dict(spec)
    name = a.pop("name")
    builder = _SCHEDULES.get(name)
    if builder is None:
        raise TrainingError(f"unknown learning-rate schedule {name!r}")
    return builder(a)


def _exponential(a: dict[str, Any]) -> Schedule:
    init, steps, rate = float(a["initial_learning_rate"]), float(a["decay_steps"]), a["decay_rate"]
    stair = bool(a.get("staircase", False))
    return lambda s: init * rate ** (math.floor(s / steps) if stair else s / steps)


def _step_decay(a: dict[str, Any]) -> Schedule:
    return _exponential({**a, "staircase": True})


def _inverse_time(a: dict[str, Any]) -> Schedule:
    init, steps, rate = float(a["initial_learning_rate"]), float(a["decay_steps"]), a["decay_rate"]
    stair = bool(a.get("staircase", False))
    return lambda s: init / (1 + rate * (math.floor(s / steps) if stair else s / steps))


def _cosine(a: dict[str, Any]) -> Schedule:
    init, steps = float(a["initial_learning_rate"]), float(a["decay_steps"])
    alpha = float(a.get("alpha", 0.0))
    target, warm = a.get("warmup_target"), float(a.get("warmup_steps", 0) or 0)

    def decay(step: float, top: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))
        return top * ((1 - alpha) * cosine + alpha)

    if target is None:
        return lambda s: decay(s, init)
    top = float(target)
    return lambda s: (init + (top - init) * s / warm) if s < warm else decay(s - warm, top)


def _warmup_cosine(a: dict[str, Any]) -> Schedule:
    return _cosine(
        {
            "initial_learning_rate": 0.0,
            "decay_steps": a["decay_steps"],
            "alpha": a.get("alpha", 0.0),
            "warmup_target": a["initial_learning_rate"],
            "warmup_steps": a["warmup_steps"],
        }
    )


def _polynomial(a: dict[str, Any]) -> Schedule:
    init, steps = float(a["initial_learning_rate"]), float(a["decay_steps"])
    end, power = float(a.get("end_learning_rate", 0.0001)), float(a.get("power", 1.0))
    cycle = bool(a.get("cycle", False))

    def lr(s: int) -> float:
        horizon = steps * max(1.0, math.ceil(s / steps)) if cycle else steps
        fraction = 1 - (s if cycle else min(s, steps)) / horizon
        return (init - end) * fraction**power + end

    return lr


def _piecewise(a: dict[str, Any]) -> Schedule:
    bounds, values = list(a["boundaries"]), [float(v) for v in a["values"]]
    if len(values) != len(bounds) + 1:
        raise TrainingError("PiecewiseConstantDecay needs one value more than boundaries")
    return lambda s: values[sum(1 for b in bounds if s > b)]


def _warmup(a: dict[str, Any]) -> Schedule:
    after = make_schedule(a["learning_rate"])
    warm, start = float(a["warmup_steps"]), float(a.get("initial_learning_rate", 0.0))
    peak = after(0)
    return lambda s: start + (peak - start) * s / warm if s < warm else after(int(s - warm))


_SCHEDULES: dict[str, Callable[[dict[str, Any]], Schedule]] = {
    "ExponentialDecay": _exponential,
    "StepDecay": _step_decay,
    "CosineDecay": _cosine,
    "WarmupCosineDecay": _warmup_cosine,
    "PolynomialDecay": _polynomial,
    "PiecewiseConstantDecay": _piecewise,
    "InverseTimeDecay": _inverse_time,
    "Warmup": _warmup,
}


# Batches ---------------------------------------------------------------------------------


def epoch_order(n: int, shuffle: bool, seed: int, epoch: int) -> np.ndarray | None:
    """The sample order of one epoch (None: in order). Depends on (seed, epoch) only, so a
    resumed run sees the batches an uninterrupted one would have."""
    if not shuffle:
        return None
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def batch_bounds(n: int, batch_size: int, steps: int | None = None) -> list[tuple[int, int]]:
    """`[(start, stop), ...]`; the last batch may be short (Keras and DataLoader keep it)."""
    bounds = [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    return bounds[:steps] if steps else bounds


# Early stopping, state ------------------------------------------------------------------------


@dataclass
class TrainState:
    """What a checkpoint restores besides weights and optimizer state."""

    epoch: int = 0  # the epoch in progress (0-based); completed epochs = epoch
    batch: int = 0  # batches already done in `epoch` (a checkpoint taken mid-epoch)
    step: int = 0  # optimizer steps done in total
    best: float = math.inf
    best_epoch: int = 0
    wait: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> TrainState:
        return cls(**json.loads(text))


def monitor_name(has_validation: bool) -> str:
    return "val_loss" if has_validation else "train_loss"


def update_best(state: TrainState, logs: Mapping[str, float], monitor: str) -> bool:
    """Record the epoch's monitored value; True when it is the best so far."""
    value = float(logs[monitor])
    if value < state.best:
        state.best, state.best_epoch, state.wait = value, int(logs["epoch"]), 0
        return True
    state.wait += 1
    return False


def check_finite(values: list[float], state: TrainState, first_step: int) -> None:
    """Raise `Diverged` at the first non-finite per-step loss (`first_step`: its 0-based
    global step)."""
    for offset, value in enumerate(values):
        if not math.isfinite(value):
            global_step = first_step + offset + 1
            steps_before = sum(h.get("steps", 0) for h in state.history)
            raise Diverged(state.epoch + 1, global_step - steps_before, global_step, value)


def checkpoint_location(path: str | None, output_dir: str) -> tuple[str, str | None]:
    """Where checkpoints go, and a note when the DSL path was changed. Relative paths are
    relative to the output directory; `.h5`/`.keras` become `.safetensors` beside them."""
    note = None
    target = path or "checkpoint.safetensors"
    root, ext = os.path.splitext(target)
    if ext.lower() in (".h5", ".hdf5", ".keras", ".pt", ".pth", ".ckpt"):
        note = (
            f"checkpoint_path {target!r}: checkpoints are safetensors files (weights, "
            f"optimizer state, epoch); writing {root + '.safetensors'!r}"
        )
        target = root + ".safetensors"
    elif not ext:
        target += ".safetensors"
    if not os.path.isabs(target):
        target = os.path.join(output_dir, target)
    return target, note


# Metrics record -------------------------------------------------------------------------------


def epoch_logs(
    sums: Mapping[str, float], counts: Mapping[str, float], prefix: str = ""
) -> dict[str, float]:
    logs: dict[str, float] = {}
    for name, total in sums.items():
        key = "train_loss" if name == "loss" and not prefix else prefix + name
        logs[key] = float(total) / max(float(counts[name]), 1.0)
    return logs


def run_record(state: TrainState, config: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The metrics JSON: per-epoch `train_loss`, `val_loss`, metrics, `lr`; per-step loss and
    learning rate; the best epoch."""
    return {
        "network": config.get("network"),
        "loss": config.get("loss"),
        "epochs": state.history,
        "steps": {"loss": state.step_losses, "lr": state.lrs},
        "best_epoch": state.best_epoch or None,
        "best": state.best if math.isfinite(state.best) else None,
        **extra,
    }


def running_loss(sums: Mapping[str, Any], counts: Mapping[str, Any]) -> str:
    return f"loss {float(sums['loss']) / max(float(counts['loss']), 1.0):.4g}"


def write_json(path: str, record: Mapping[str, Any]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, default=float)
        handle.write("\n")
    os.replace(tmp, path)


# Progress -------------------------------------------------------------------------------------


class EpochProgress:
    """One progress bar per epoch (rich when available) with the running loss and metrics.
    No refresh thread: the loop redraws at most every 0.2 s, so the bar costs no share of a
    step worth measuring."""

    def __init__(self, verbose: bool, total_epochs: int) -> None:
        self.verbose, self.total_epochs = verbose, total_epochs
        self.bar: Any = None
        self.task: Any = None
        self.last = 0.0
        self.done = 0

    def start(self, epoch: int, steps: int) -> None:
        self.done, self.last = 0, time.perf_counter()
        if not self.verbose:
            return
        if self.bar is None:
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )
            except ImportError:
                return
            from rich.console import Console

            self.bar = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
                auto_refresh=False,
                console=Console(stderr=True),
            )
            self.bar.start()
        self.task = self.bar.add_task(
            "train", total=steps, info="", epoch=f"{epoch + 1}/{self.total_epochs}"
        )
        self.bar.refresh()

    def advance(self, count: int, info: Callable[[], str]) -> None:
        self.done += count
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self.last > 0.2:
            self.last = now
            self.bar.update(self.task, completed=self.done, info=info())
            self.bar.refresh()

    def finish(self, logs: Mapping[str, float]) -> None:
        text = "  ".join(
            f"{k} {v:.4g}"
            for k, v in logs.items()
            if k not in ("epoch", "steps", "time_s", "lr", "samples_per_s")
        )
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=self.done, info=text)
            self.bar.refresh()
            self.task = None
        elif self.verbose:
            print(f"epoch {int(logs['epoch'])}/{self.total_epochs}: {text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def print_table(history: list[dict[str, Any]], note: str = "") -> None:
    """The final per-epoch table (rich when available)."""
    if not history:
        return
    keys = [k for k in history[0] if k not in ("steps",)]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print("  ".join(keys))
        for row in history:
            print("  ".join(_cell(row.get(k)) for k in keys))
        return
    table = Table(title="training", caption=note or None)
    for key in keys:
        table.add_column(key, justify="right")
    for row in history:
        table.add_row(*(_cell(row.get(k)) for k in keys))
    Console().print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return "" if value is None else str(value)
