"""The Keras 3 (TensorFlow) training loop of neuralc: `train(model, config, data)` runs a
network's `train { }` block on an emitted `keras.Model`.

A custom loop (one `tf.function` per step) rather than `model.fit`, so that both backends
share the batch order, learning-rate schedule, stopping rule, divergence check, checkpoint
contents and metrics record of `train_core`: the same data and initial weights give the same
per-step losses as the PyTorch loop. The optimizers are Keras' own, so Keras' update rules hold
here by construction (train_torch reproduces Keras' Adam epsilon).

Standalone: imports TensorFlow, Keras, numpy, and the standalone `train_core`, `train_data` and
`train_keras_ops` (inlined by `training_source("tensorflow")`). `config` is
`training_config(network)`.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

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
from neuralc.lower.train_keras_ops import (
    load_checkpoint,
    logits_layer,
    loss_function,
    make_forward,
    make_optimizer,
    metric_functions,
    save_checkpoint,
)

EpochCallback = Callable[[int, dict[str, float]], None]


# The loop -------------------------------------------------------------------------------------


def train(
    model: Any,
    config: Mapping[str, Any],
    data: Prepared | Mapping[str, np.ndarray],
    *,
    checkpoint: str | None = None,
    save_every_epoch: bool = False,
    resume: bool = False,
    callbacks: Sequence[EpochCallback] = (),
    verbose: bool = True,
    device: str | None = None,
    precision: str = "float32",
    export: Callable[[Any], Mapping[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Train `model` in place on `device` (a TensorFlow device such as "/CPU:0"); the same
    contract as train_torch.train. `export` (the Keras model -> its framework-neutral weights)
    lets checkpoints hold the weights under the neutral keys too."""
    import tensorflow as tf

    scope = tf.device(device) if device else contextlib.nullcontext()
    with scope:
        return _train(
            model,
            config,
            data,
            checkpoint,
            save_every_epoch,
            resume,
            callbacks,
            verbose,
            device,
            precision,
            export,
        )


def _train(
    model: Any,
    config: Mapping[str, Any],
    data: Any,
    checkpoint: str | None,
    save_every_epoch: bool,
    resume: bool,
    callbacks: Sequence[EpochCallback],
    verbose: bool,
    device: str | None,
    precision: str,
    export: Callable[[Any], Mapping[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    import tensorflow as tf

    prepared = data if hasattr(data, "label_mode") else select_arrays(data, config)
    t = config["train"]
    epochs, batch_size = int(t["epochs"]), int(t["batch_size"])
    optimizer = make_optimizer(config)
    optimizer.build(model.trainable_variables)
    schedule = make_schedule(config["optimizer"]["learning_rate"])
    layer = logits_layer(model, config)
    if layer is None and config["output"]["loss_input"] == "logits":
        print(
            f"note: no Dense '{config['output']['logits_layer']}' in the model to read logits "
            "from; the loss reads the output probabilities",
            file=sys.stderr,
        )
        config = {**config, "output": {**config["output"], "loss_input": "probs"}}
    forward = make_forward(model, layer)
    loss_fn = loss_function(config, prepared.label_mode)
    metrics = metric_functions(config, prepared.label_mode)
    patience = t.get("early_stopping_patience")
    monitor = monitor_name(prepared.xs_val is not None)
    state, best = TrainState(), None
    if resume:
        if checkpoint is None:
            raise TrainingError("cannot resume: no checkpoint path")
        state, best = load_checkpoint(checkpoint, model, optimizer)
    single = len(prepared.xs) == 1
    xs = [tf.constant(x) for x in prepared.xs]
    y = tf.constant(prepared.y)
    specs = [tf.TensorSpec((None, *x.shape[1:]), x.dtype) for x in xs]
    y_spec = tf.TensorSpec((None, *y.shape[1:]), y.dtype)
    variables = model.trainable_variables

    @tf.function(input_signature=[specs, y_spec, tf.TensorSpec((), tf.float32)])
    def step(xb: list[Any], yb: Any, lr: Any) -> tuple[Any, dict[str, Any]]:
        optimizer.learning_rate = lr
        with tf.GradientTape() as tape:
            out, z = forward(xb[0] if single else xb, True)
            loss = loss_fn(z, yb)
            scaled = optimizer.scale_loss(loss)
        # Dense gradients: Keras' TF backend squares an Embedding's IndexedSlices row by row
        # (before summing repeated ids), so Adam/RMSprop would differ from the true gradient
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(scaled, variables)]
        optimizer.apply(grads, variables)
        return loss, {k: fn(out, yb) for k, fn in metrics.items()}

    @tf.function(input_signature=[specs, y_spec])
    def eval_step(xb: list[Any], yb: Any) -> tuple[Any, dict[str, Any]]:
        out, z = forward(xb[0] if single else xb, False)
        return loss_fn(z, yb), {k: fn(out, yb) for k, fn in metrics.items()}

    progress = EpochProgress(verbose, epochs)
    bounds = batch_bounds(prepared.n, batch_size, t.get("steps_per_epoch"))
    stopped = False
    try:
        while state.epoch < epochs and not stopped:
            order = epoch_order(
                prepared.n, bool(t.get("shuffle", True)), int(t.get("seed", 0)), state.epoch
            )
            ex, ey = (
                (xs, y)
                if order is None
                else ([tf.gather(x, order) for x in xs], tf.gather(y, order))
            )
            sums = dict.fromkeys(["loss", *metrics], 0.0)
            counts = dict.fromkeys(sums, 0.0)
            started, done_before = time.perf_counter(), state.batch
            progress.start(state.epoch, len(bounds))
            for b in range(state.batch, len(bounds)):
                lo, hi = bounds[b]
                lr = schedule(state.step)
                loss, stats = step([x[lo:hi] for x in ex], ey[lo:hi], tf.constant(lr, tf.float32))
                value = float(loss)
                state.lrs.append(lr)
                state.step += 1
                state.batch = b + 1
                check_finite([value], state, state.step - 1)
                state.step_losses.append(value)
                sums["loss"] += value * (hi - lo)
                counts["loss"] += hi - lo
                for name, (total, count) in stats.items():
                    sums[name] += float(total)
                    counts[name] += float(count)
                progress.advance(1, lambda s=sums, c=counts: running_loss(s, c))
            logs: dict[str, Any] = {"epoch": state.epoch + 1, **epoch_logs(sums, counts)}
            if prepared.xs_val is not None:
                logs.update(evaluate(eval_step, prepared, batch_size, list(metrics)))
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
            if update_best(state, logs, monitor) and patience is not None:
                best = [v.numpy() for v in model.variables]
            state.epoch, state.batch = state.epoch + 1, 0
            for callback in callbacks:
                callback(state.epoch, logs)
            stopped = patience is not None and state.wait >= int(patience)
            if checkpoint and save_every_epoch:
                save_checkpoint(checkpoint, model, optimizer, state, best, export)
    except KeyboardInterrupt:
        if checkpoint:
            save_checkpoint(checkpoint, model, optimizer, state, best, export)
            print(
                f"interrupted: checkpoint saved to {checkpoint} (continue with --resume)",
                file=sys.stderr,
            )
        raise
    finally:
        progress.close()
    restored = best is not None and state.best_epoch != len(state.history)
    if restored:
        for variable, array in zip(model.variables, best, strict=True):
            variable.assign(array)
    return run_record(
        state,
        config,
        backend="tensorflow",
        device=device or "default",
        precision=precision,
        stopped_early=stopped,
        monitor=monitor,
        restored_best=restored,
    )


def evaluate(
    eval_step: Callable[..., Any], prepared: Prepared, batch_size: int, metrics: Sequence[str]
) -> dict[str, float]:
    """Validation loss and metrics (inference mode), weighted by batch size."""
    assert prepared.xs_val is not None and prepared.y_val is not None
    sums = dict.fromkeys(["loss", *metrics], 0.0)
    counts = dict.fromkeys(sums, 0.0)
    for lo, hi in batch_bounds(prepared.y_val.shape[0], batch_size):
        loss, stats = eval_step([x[lo:hi] for x in prepared.xs_val], prepared.y_val[lo:hi])
        sums["loss"] += float(loss) * (hi - lo)
        counts["loss"] += hi - lo
        for name, (total, count) in stats.items():
            sums[name] += float(total)
            counts[name] += float(count)
    return epoch_logs(sums, counts, prefix="val_")
