"""The PyTorch training loop of neuralc: `train(model, config, data)` runs a network's
`train { }` block (optimizer, schedule, loss, metrics, early stopping, checkpoints, mixed
precision) on an emitted `nn.Module`. The emitted module's `python model.py --data D.npz` entry point,
`train_main(build_model, config)`, is in `module_cli`.

Standalone: it imports torch, numpy, safetensors and (optionally) rich, plus the standalone
modules `train_core`, `train_data` and `train_torch_ops`, whose text
`neuralc.lower.training.training_source()` inlines ahead of this one in the emitted module.
`config` is `training_config(network)`.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from neuralc.lower.train_core import (
    EpochProgress,
    TrainingError,
    TrainState,
    batch_bounds,
    check_finite,
    epoch_logs,
    epoch_order,
    make_schedule,
    monitor_name,
    run_record,
    running_loss,
    update_best,
)
from neuralc.lower.train_data import Prepared, select_arrays
from neuralc.lower.train_torch_ops import (
    fold_recurrent_biases,
    keras_running_variance,
    load_checkpoint,
    loss_function,
    make_optimizer,
    metric_functions,
    precision_plan,
    save_checkpoint,
)

EpochCallback = Callable[[int, dict[str, float]], None]


# The loop -------------------------------------------------------------------------------------


def _model_device(model: nn.Module) -> torch.device:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    return next(iter(model.parameters()), torch.empty(0)).device


def _logits_hook(model: nn.Module, config: Mapping[str, Any], box: dict[str, torch.Tensor]) -> Any:
    """Capture the pre-activation output of the final Dense/Output (`Output(n, "softmax")`
    trains on logits: no double softmax, log-softmax cross-entropy)."""
    name = config["output"].get("logits_layer")
    if config["output"]["loss_input"] != "logits" or not name:
        return None
    try:
        layer = model.get_submodule(name)
    except AttributeError:
        layer = None
    if not isinstance(layer, nn.Linear):
        return None
    return layer.register_forward_hook(lambda module, args, out: box.__setitem__("z", out))


def train(
    model: nn.Module,
    config: Mapping[str, Any],
    data: Prepared | Mapping[str, np.ndarray],
    *,
    checkpoint: str | None = None,
    save_every_epoch: bool = False,
    resume: bool = False,
    callbacks: Sequence[EpochCallback] = (),
    verbose: bool = True,
) -> dict[str, Any]:
    """Train `model` in place; return the run record (the metrics JSON). `checkpoint`: where a
    checkpoint goes (each epoch when `save_every_epoch`, and on Ctrl-C) and what `resume`
    reads. Raises `Diverged` on a NaN/Inf loss and `DataError` on data that does not fit."""
    prepared = data if hasattr(data, "label_mode") else select_arrays(data, config)
    t = config["train"]
    epochs, batch_size = int(t["epochs"]), int(t["batch_size"])
    device = _model_device(model)
    amp_dtype, scale, precision = precision_plan(
        device, bool(config["execution"].get("mixed_precision"))
    )
    scaler = torch.amp.GradScaler("cuda") if scale else None
    fold_recurrent_biases(model)
    bn_hooks = keras_running_variance(model)
    optimizer = make_optimizer(model, config)
    spec = config["optimizer"]
    schedule = make_schedule(spec["learning_rate"])
    keras_eps = spec["name"] in ("Adam", "AdamW")
    clip = t.get("gradient_clip")
    box: dict[str, torch.Tensor] = {}
    hook = _logits_hook(model, config, box)
    if hook is None and config["output"]["loss_input"] == "logits":
        # An artifact without the final layer as a submodule: the loss reads the probabilities.
        print(
            f"note: no nn.Linear '{config['output']['logits_layer']}' in the model to read "
            "logits from; the loss reads the output probabilities",
            file=sys.stderr,
        )
        config = {**config, "output": {**config["output"], "loss_input": "probs"}}
    loss_fn = loss_function(config, prepared.label_mode)
    metrics = metric_functions(config, prepared.label_mode)
    patience = t.get("early_stopping_patience")
    monitor = monitor_name(prepared.xs_val is not None)
    state, best_weights = TrainState(), None
    if resume:
        if checkpoint is None:
            raise TrainingError("cannot resume: no checkpoint path")
        state, best_weights = load_checkpoint(checkpoint, model, optimizer, scaler)
    big = sum(x.nbytes for x in prepared.xs) + prepared.y.nbytes > 2**31
    stage = torch.device("cpu") if big else device

    def tensors(arrays: Sequence[np.ndarray]) -> list[torch.Tensor]:
        return [torch.from_numpy(np.ascontiguousarray(a)).to(stage) for a in arrays]

    xs, (y,) = tensors(prepared.xs), tensors([prepared.y])
    autocast = (
        (lambda: torch.autocast(device.type, dtype=amp_dtype))
        if amp_dtype
        else (contextlib.nullcontext)
    )
    null = contextlib.nullcontext()
    same_place = stage == device
    groups = optimizer.param_groups
    eps0, beta2 = spec.get("epsilon"), spec.get("beta_2")
    move_y: bool | None = None
    sync_every = 1 if device.type == "cpu" else 32
    progress = EpochProgress(verbose, epochs)
    bounds = batch_bounds(prepared.n, batch_size, t.get("steps_per_epoch"))
    stopped = False
    try:
        while state.epoch < epochs and not stopped:
            model.train()
            order = epoch_order(
                prepared.n, bool(t.get("shuffle", True)), int(t.get("seed", 0)), state.epoch
            )
            index = None if order is None else torch.from_numpy(order).to(stage)
            sums = {"loss": 0.0, **{k: torch.zeros((), device=device) for k in metrics}}
            counts = dict.fromkeys(sums, 0)
            pending: list[torch.Tensor] = []
            sizes: list[int] = []
            started = time.perf_counter()
            progress.start(state.epoch, len(bounds))
            done_before = state.batch
            # Each batch is gathered on its own (as a hand-written loop does): a fresh,
            # cache-hot tensor rather than a view into a shuffled copy of the whole dataset.
            for b in range(state.batch, len(bounds)):
                lo, hi = bounds[b]
                rows = slice(lo, hi) if index is None else index[lo:hi]
                if same_place:
                    xb, yb = [x[rows] for x in xs], y[rows]
                else:
                    xb = [x[rows].to(device, non_blocking=True) for x in xs]
                    yb = y[rows].to(device, non_blocking=True)
                step = state.step
                lr = schedule(step)
                for group in groups:
                    group["lr"] = lr
                    if keras_eps:
                        group["eps"] = eps0 / math.sqrt(1 - beta2 ** (step + 1))
                with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else null:
                    out = model(*xb)
                    z = box.pop("z") if hook is not None else out
                    if move_y is None:  # layers placed on several devices: y goes to z's
                        move_y = yb.device != z.device
                    if move_y:
                        yb = yb.to(z.device)
                    loss = loss_fn(z, yb)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if clip:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    if clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                    optimizer.step()
                if metrics:
                    with torch.no_grad():
                        for name, fn in metrics.items():
                            total, count = fn(out.detach(), yb)
                            sums[name] += total
                            counts[name] += count
                pending.append(loss.detach())
                sizes.append(hi - lo)
                state.lrs.append(lr)
                state.step = step + 1
                state.batch = b + 1
                if len(pending) >= sync_every or b + 1 == len(bounds):
                    # One read-back per `sync_every` steps: no device sync each step on CUDA.
                    if len(pending) == 1:
                        values = [pending[0].item()]
                    else:
                        values = torch.stack(pending).float().tolist()
                    check_finite(values, state, state.step - len(values))
                    state.step_losses.extend(values)
                    for value, size in zip(values, sizes, strict=True):
                        sums["loss"] += value * size
                        counts["loss"] += size
                    pending, sizes = [], []
                    progress.advance(len(values), lambda s=sums, c=counts: running_loss(s, c))
            logs: dict[str, Any] = {"epoch": state.epoch + 1}
            logs.update(epoch_logs(_floats(sums), counts))
            if prepared.xs_val is not None:
                logs.update(
                    evaluate(
                        model,
                        config,
                        prepared,
                        batch_size,
                        loss_fn,
                        metrics,
                        autocast,
                        box,
                        hook is not None,
                    )
                )
            elapsed = time.perf_counter() - started
            logs.update(
                {
                    "lr": state.lrs[-1] if state.lrs else schedule(0),
                    "steps": len(bounds) - done_before,
                    "time_s": round(elapsed, 4),
                    "samples_per_s": round(counts["loss"] / max(elapsed, 1e-9), 1),
                }
            )
            progress.finish(logs)
            state.history.append(logs)
            improved = update_best(state, logs, monitor)
            if patience is not None and improved:
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            state.epoch, state.batch = state.epoch + 1, 0
            for callback in callbacks:
                callback(state.epoch, logs)
            stopped = patience is not None and state.wait >= int(patience)
            if checkpoint and save_every_epoch:
                save_checkpoint(checkpoint, model, optimizer, state, best_weights, scaler)
    except KeyboardInterrupt:
        progress.finish({"epoch": state.epoch + 1})
        if checkpoint:
            save_checkpoint(checkpoint, model, optimizer, state, best_weights, scaler)
            print(
                f"interrupted: checkpoint saved to {checkpoint} (continue with --resume)",
                file=sys.stderr,
            )
        raise
    finally:
        progress.close()
        for handle in bn_hooks:
            handle.remove()
        if hook is not None:
            hook.remove()
    restored = best_weights is not None and state.best_epoch != len(state.history)
    if restored:
        model.load_state_dict(best_weights)
    return run_record(
        state,
        config,
        backend="pytorch",
        device=str(device),
        precision=precision,
        stopped_early=stopped,
        monitor=monitor,
        restored_best=restored,
    )


def _floats(sums: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in sums.items()}


def evaluate(
    model: nn.Module,
    config: Mapping[str, Any],
    prepared: Prepared,
    batch_size: int,
    loss_fn: Callable[..., torch.Tensor],
    metrics: Mapping[str, Callable[..., Any]],
    autocast: Callable[[], Any],
    box: dict[str, torch.Tensor],
    hooked: bool,
) -> dict[str, float]:
    """Validation loss and metrics (eval mode, no gradients), weighted by batch size."""
    assert prepared.xs_val is not None and prepared.y_val is not None
    device = _model_device(model)
    model.eval()
    sums: dict[str, Any] = {"loss": 0.0, **dict.fromkeys(metrics, 0.0)}
    counts = dict.fromkeys(sums, 0)
    n = prepared.y_val.shape[0]
    with torch.no_grad():
        for lo, hi in batch_bounds(n, batch_size):
            xb = [
                torch.from_numpy(np.ascontiguousarray(x[lo:hi])).to(device) for x in prepared.xs_val
            ]
            yb = torch.from_numpy(np.ascontiguousarray(prepared.y_val[lo:hi])).to(device)
            with autocast():
                out = model(*xb)
                z = box.pop("z") if hooked else out
                yb = yb.to(z.device)
                sums["loss"] += float(loss_fn(z, yb)) * (hi - lo)
            counts["loss"] += hi - lo
            for name, fn in metrics.items():
                total, count = fn(out, yb)
                sums[name] += float(total)
                counts[name] += count
    return epoch_logs(sums, counts, prefix="val_")
