"""Keras pieces of neuralc's training loop: mixed-precision policy, optimizer, the forward pass
that exposes logits, losses, metrics and checkpoints. `train_keras` runs the loop with them.

Standalone: TensorFlow, Keras, numpy, safetensors and the standalone `train_core`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from neuralc.lower.train_core import CHECKPOINT_FORMAT, TrainingError, TrainState, make_schedule

_EPS = 1e-7


def setup_precision(config: Mapping[str, Any], device: str | None) -> str:
    """Call before building the model: the mixed-precision policy for `execution {
    mixed_precision: true }` on a GPU (bf16, or fp16 with loss scaling before compute
    capability 8.0); float32 on the CPU. Returns a label for the run record."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    on_gpu = bool(gpus) and not (device or "").upper().startswith("/CPU")
    if not config["execution"].get("mixed_precision") or not on_gpu:
        keras.mixed_precision.set_global_policy("float32")
        return "float32"
    capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
    if capability and tuple(capability) >= (8, 0):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        return "bfloat16 autocast"
    keras.mixed_precision.set_global_policy("mixed_float16")
    return "float16 autocast + loss scaling"


def make_optimizer(config: Mapping[str, Any]) -> Any:
    import keras

    spec = dict(config["optimizer"])
    name = spec.pop("name")
    spec["learning_rate"] = make_schedule(spec["learning_rate"])(0)
    if not spec.get("weight_decay"):
        spec.pop("weight_decay", None)
    clip = config["train"].get("gradient_clip")
    if clip:
        spec["global_clipnorm"] = float(clip)
    optimizer = getattr(keras.optimizers, name)(**spec)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def logits_layer(model: Any, config: Mapping[str, Any]) -> Any:
    """The final Dense whose logits the loss reads, or None (then it reads the output)."""
    name = config["output"].get("logits_layer")
    if config["output"]["loss_input"] != "logits" or not name:
        return None
    try:
        layer = model.get_layer(name)
    except ValueError:
        return None
    return layer if hasattr(layer, "kernel") and hasattr(layer, "activation") else None


def make_forward(model: Any, layer: Any) -> Callable[..., Any]:
    """`fn(xs, training) -> (output, z)`: z is what the loss reads. For a final Dense with a
    softmax/sigmoid (`layer`), z is its logits (computed from the layer's input and weights)."""
    from keras import ops

    if layer is None:

        def plain(xs: Any, training: bool) -> tuple[Any, Any]:
            out = model(xs, training=training)
            return out, out

        return plain
    import keras

    features = keras.Model(model.inputs, layer.input)

    def fused(xs: Any, training: bool) -> tuple[Any, Any]:
        h = features(xs, training=training)
        z = ops.matmul(h, ops.cast(layer.kernel, h.dtype))
        if layer.use_bias:
            z = z + ops.cast(layer.bias, h.dtype)
        return layer.activation(z), z

    return fused


def loss_function(config: Mapping[str, Any], mode: str) -> Callable[..., Any]:
    """The same formulas as train_torch.loss_function, in keras.ops."""
    from keras import ops

    loss, source = config["loss"], config["output"]["loss_input"]
    logits = source in ("logits", "output_logits")

    def log_probs(z: Any) -> Any:
        z = ops.cast(z, "float32")
        if logits:
            return ops.log_softmax(z, axis=-1)
        if source == "log_probs":
            return z
        return ops.log(ops.clip(z / ops.sum(z, axis=-1, keepdims=True), _EPS, 1 - _EPS))

    def f32(z: Any) -> Any:
        return ops.cast(z, "float32")

    if mode == "sparse":
        if logits:
            return lambda z, y: ops.mean(
                ops.sparse_categorical_crossentropy(y, f32(z), from_logits=True)
            )
        return lambda z, y: (
            -ops.mean(ops.take_along_axis(log_probs(z), ops.expand_dims(y, -1), axis=-1))
        )
    if loss == "kl_divergence":

        def kl(z: Any, y: Any) -> Any:
            p, t = ops.clip(ops.exp(log_probs(z)), _EPS, 1), ops.clip(y, _EPS, 1)
            return ops.mean(ops.sum(t * ops.log(t / p), axis=-1))

        return kl
    if mode == "dense":
        return lambda z, y: -ops.mean(ops.sum(y * log_probs(z), axis=-1))
    if mode == "binary":
        if logits:
            return lambda z, y: ops.mean(ops.binary_crossentropy(y, f32(z), from_logits=True))

        def bce(z: Any, y: Any) -> Any:
            p = ops.clip(f32(z), _EPS, 1 - _EPS)
            return -ops.mean(y * ops.log(p) + (1 - y) * ops.log(1 - p))

        return bce
    if loss in ("mae", "mean_absolute_error"):
        return lambda z, y: ops.mean(ops.abs(f32(z) - y))
    if loss == "huber":

        def huber(z: Any, y: Any) -> Any:
            d = ops.abs(f32(z) - y)
            return ops.mean(ops.where(d <= 1.0, 0.5 * d * d, d - 0.5))

        return huber
    return lambda z, y: ops.mean(ops.square(f32(z) - y))


def metric_functions(config: Mapping[str, Any], mode: str) -> dict[str, Callable[..., Any]]:
    from keras import ops

    threshold = 0.0 if config["output"]["loss_input"] == "output_logits" else 0.5

    def count(t: Any) -> Any:
        return ops.cast(ops.sum(ops.cast(t, "int32")), "float32")

    def size(t: Any) -> Any:
        return ops.cast(ops.size(t), "float32")

    out: dict[str, Callable[..., Any]] = {}
    for name in config["metrics"]:
        if name == "accuracy" and mode == "sparse":
            out[name] = lambda z, y: (
                count(ops.equal(ops.cast(ops.argmax(z, -1), y.dtype), y)),
                size(y),
            )
        elif name == "accuracy" and mode == "dense":
            out[name] = lambda z, y: (
                count(ops.equal(ops.argmax(z, -1), ops.argmax(y, -1))),
                size(y) / ops.cast(ops.shape(y)[-1], "float32"),
            )
        elif name == "accuracy":
            out[name] = lambda z, y: (count(ops.equal(z > threshold, y > 0.5)), size(y))
        elif name == "mae":
            out[name] = lambda z, y: (ops.sum(ops.abs(ops.cast(z, "float32") - y)), size(y))
        elif name == "mse":
            out[name] = lambda z, y: (ops.sum(ops.square(ops.cast(z, "float32") - y)), size(y))
    return out


# Checkpoints ----------------------------------------------------------------------------------


def _arrays(variables: Sequence[Any], prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.{i}": np.array(v.numpy(), order="C") for i, v in enumerate(variables)}


def save_checkpoint(
    path: str,
    model: Any,
    optimizer: Any,
    state: TrainState,
    best: Sequence[np.ndarray] | None = None,
    export: Callable[[Any], Mapping[str, np.ndarray]] | None = None,
) -> None:
    """Model variables (weights and seed states, `variables.<i>`), optimizer variables and best
    weights by index, with their Keras paths in the metadata (what `--resume` restores exactly);
    with `export` (Keras model -> framework-neutral arrays) also the weights under the neutral
    keys, `model.<layer>.<name>`, as a PyTorch checkpoint holds them. Written to a temporary
    file, then renamed."""
    from safetensors.numpy import save_file

    tensors = {
        **_arrays(model.variables, "variables"),
        **_arrays(optimizer.variables, "optimizer"),
    }
    for key, array in (export(model) if export is not None else {}).items():
        tensors[f"model.{key}"] = np.array(array, order="C")
    for i, array in enumerate(best or ()):
        tensors[f"best.{i}"] = np.array(array, order="C")
    meta = {
        "format": CHECKPOINT_FORMAT,
        "backend": "tensorflow",
        "state": state.to_json(),
        "paths": json.dumps([v.path for v in model.variables]),
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)


def load_checkpoint(
    path: str, model: Any, optimizer: Any
) -> tuple[TrainState, list[np.ndarray] | None]:
    from safetensors import safe_open

    if not os.path.exists(path):
        raise TrainingError(f"cannot resume: no checkpoint at '{path}'")
    with safe_open(path, framework="numpy") as handle:
        meta = handle.metadata() or {}
        if meta.get("format") != CHECKPOINT_FORMAT or meta.get("backend") != "tensorflow":
            raise TrainingError(f"'{path}' is not a Keras checkpoint of neuralc")
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    if json.loads(meta["paths"]) != [v.path for v in model.variables]:
        raise TrainingError(f"'{path}' holds the variables of another model")
    # Checkpoints before the neutral `model.<key>` weights kept the variables as `model.<i>`.
    own = "variables" if "variables.0" in tensors or not model.variables else "model"
    for prefix, variables in ((own, model.variables), ("optimizer", optimizer.variables)):
        for i, variable in enumerate(variables):
            variable.assign(tensors[f"{prefix}.{i}"])
    best = [tensors[f"best.{i}"] for i in range(len(model.variables)) if f"best.{i}" in tensors]
    return TrainState.from_json(meta["state"]), best or None


def save_trained(model: Any, path: str) -> None:
    """The trained variables by Keras path (Keras layouts). `neuralc run` writes the
    framework-neutral file instead (`neuralc.lower.keras.inverses.neutral_weights`)."""
    from safetensors.numpy import save_file

    arrays = {v.path: np.array(v.numpy(), order="C") for v in model.weights}
    if len(arrays) != len(model.weights):  # paths are unique in practice; never lose one
        arrays = {f"{i}:{v.path}": v.numpy() for i, v in enumerate(model.weights)}
    save_file(arrays, path, metadata={"format": "neuralc-keras-weights-v1"})
