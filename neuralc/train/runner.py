"""Train a network through the artifact `neuralc build` writes: emit it with the target's
ordinary `emit`, write it to the output directory, import *that file*, build its model from
the initial weights and call the training loop — the one the module carries, or the template
module (`neuralc.lower.train_torch` / `train_keras`) while the emitter does not carry it yet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from neuralc.commands.common import write_atomic
from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.ir.core import Network
from neuralc.lower.target import BuildOptions
from neuralc.lower.train_core import Diverged, TrainingError
from neuralc.lower.train_data import DataError, Prepared

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainJob:
    network: Network
    config: dict[str, Any]
    source_path: str
    target: str  # "pytorch" or "tensorflow"
    output_dir: Path
    seed: int = 0
    opt_level: int = 0
    device: str | None = None
    weights: Path | None = None  # initial weights; default: init_weights(network, seed)
    checkpoint: str | None = None
    save_every_epoch: bool = False
    resume: bool = False
    verbose: bool = True
    callbacks: Sequence[EpochCallback] = ()


@dataclass
class TrainResult:
    record: dict[str, Any]
    artifact: Path
    weights: Path  # the trained weights
    carried: bool  # whether the artifact carried its own training loop
    model: Any


def run_training(job: TrainJob, data: Prepared) -> TrainResult:
    from neuralc.commands.build import get_target

    job.output_dir.mkdir(parents=True, exist_ok=True)
    target = get_target(job.target)
    options = BuildOptions(
        source_path=job.source_path, seed=job.seed, opt_level=job.opt_level, device=job.device
    )
    artifact = job.output_dir / f"{Path(job.source_path).stem}_{job.target}{target.suffix}"
    weights = job.weights or _initial_weights(job)  # from the nn network, before lowering
    write_atomic(artifact, target.emit(_training_graph(job), options))
    run = _run_torch if job.target == "pytorch" else _run_keras
    return run(job, data, artifact, weights)


def _training_graph(job: TrainJob) -> Network:
    """The network the artifact is built from: at -O1 and above (PyTorch) the -O pipeline for a
    training graph — dropout kept, a softmax output with a cross-entropy loss returning logits
    (`fuse-softmax-cross-entropy`), fused kernels at -O2 — and the loop's output settings
    updated to match. Keras trains the nn stage."""
    if job.opt_level < 1 or job.target != "pytorch":
        return job.network
    import copy

    from neuralc.ir.core import Module
    from neuralc.lower.training import training_config
    from neuralc.passes.base import PassContext
    from neuralc.passes.manager import PassManager
    from neuralc.passes.presets import pipeline_for_level

    module = Module([copy.deepcopy(job.network)])
    ctx = PassContext(opt_level=job.opt_level, target=job.target, training=True)
    PassManager(pipeline_for_level(job.opt_level), ctx).run(module)
    network = module.networks[0]
    job.config["output"] = training_config(network)["output"]
    return network


def _initial_weights(job: TrainJob) -> Path:
    """The framework-neutral initial weights, so both backends start from the same values."""
    from neuralc.lower.weights import init_weights, save_weights

    path = job.output_dir / "initial.safetensors"
    save_weights(path, init_weights(job.network, job.seed))
    return path


def _errors(module: ModuleType) -> tuple[type[BaseException], ...]:
    found = [getattr(module, name, None) for name in ("TrainingError", "DataError")]
    return (TrainingError, DataError, *(e for e in found if isinstance(e, type)))


def _call(
    job: TrainJob,
    module: ModuleType,
    train: Callable[..., dict[str, Any]],
    model: Any,
    data: Prepared,
    **extra: Any,
) -> dict[str, Any]:
    try:
        return train(
            model,
            job.config,
            data,
            checkpoint=job.checkpoint,
            save_every_epoch=job.save_every_epoch,
            resume=job.resume,
            callbacks=job.callbacks,
            verbose=job.verbose,
            **extra,
        )
    except _errors(module) as exc:
        raise training_error(exc) from None
    except RuntimeError as exc:
        # PyTorch's optimizers pass the step size as a float32 scalar: a learning rate so large
        # that it overflows (`learning_rate=1e300`, or an HPO range up to it) fails the step.
        if "without overflow" not in str(exc):
            raise
        raise CompileError(
            Diagnostic(
                f"training overflowed float32: {exc}",
                None,
                "error",
                ("lower the learning rate (or the optimizer's other arguments)",),
            )
        ) from None


def training_error(exc: BaseException) -> CompileError:
    notes = tuple(getattr(exc, "notes", ()))
    message = getattr(exc, "message", None) or str(exc)
    return CompileError(Diagnostic(message, None, "error", notes))


def _run_torch(job: TrainJob, data: Prepared, artifact: Path, weights: Path) -> TrainResult:
    from neuralc.lower.pytorch import import_artifact
    from neuralc.lower.weights import save_weights

    module = import_artifact(artifact)
    carried = callable(getattr(module, "train", None))
    if carried:
        train = module.train
    else:
        from neuralc.lower.train_torch import train
    try:
        model = module.build_model(str(weights), job.device)
    except RuntimeError as exc:  # a placement this machine cannot honour
        raise CompileError(
            Diagnostic(str(exc), None, "error", ("run with --device cpu",))
        ) from None
    record = _call(job, module, train, model, data)
    out = job.output_dir / "weights.safetensors"
    save_weights(out, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    return TrainResult(record, artifact, out, carried, model)


def _run_keras(job: TrainJob, data: Prepared, artifact: Path, weights: Path) -> TrainResult:
    from neuralc.lower.keras import load_artifact
    from neuralc.lower.keras.inverses import neutral_weights
    from neuralc.lower.train_keras_ops import setup_precision
    from neuralc.lower.weights import save_weights

    module = load_artifact(artifact)
    carried = callable(getattr(module, "train", None))
    if carried:
        train = module.train
    else:
        from neuralc.lower.train_keras import train
    try:
        device = module.select_device(job.device)
    except module.DeviceError as exc:
        raise CompileError(
            Diagnostic(f"{exc.problem} on this machine", None, "error", ("run with --device cpu",))
        ) from None
    import tensorflow as tf

    precision = setup_precision(job.config, device)
    with tf.device(device):
        model = module.build_model(str(weights))
    converters = getattr(module, "CONVERTERS", {})
    extra: dict[str, Any] = {"device": device, "precision": precision}
    if not carried:  # the template loop writes the neutral weights into checkpoints too
        extra["export"] = lambda m: neutral_weights(m, converters)
    record = _call(job, module, train, model, data, **extra)
    # The framework-neutral file (`neuralc init`'s keys and PyTorch layouts), through the
    # inverse weight converters of the Keras backend.
    out = job.output_dir / "weights.safetensors"
    save_weights(out, neutral_weights(model, converters))
    return TrainResult(record, artifact, out, carried, model)


def objective_value(record: dict[str, Any]) -> float:
    """The value a study minimizes: the best monitored loss of the run."""
    best = record.get("best")
    return float(best) if best is not None and math.isfinite(best) else math.inf


def is_diverged(exc: CompileError) -> bool:
    return exc.diagnostics[0].message.startswith("training diverged")


__all__ = [
    "Diverged",
    "TrainJob",
    "TrainResult",
    "is_diverged",
    "objective_value",
    "run_training",
    "training_error",
]
