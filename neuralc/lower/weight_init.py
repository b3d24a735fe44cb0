"""Initial weight values: PyTorch's default initializers, drawn deterministically per key.

`init_array` draws one weight from its `WeightSpec`: the spec's `init` names an entry of
`INITIALIZERS` (PyTorch's defaults, plus Keras' `glorot_uniform`), and the values come from a
numpy generator seeded by `(seed, sha256(key))`, so one key's values depend on the seed and its
own name only: adding a layer leaves every other layer's initial weights unchanged.
`neuralc.lower.weights.init_weights` applies it to every weight of a network.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import numpy as np

from neuralc.layers import WeightSpec

__all__ = ["INITIALIZERS", "init_array"]

def _torch_fan_in(spec: WeightSpec) -> int:
    """torch's `_calculate_fan_in_and_fan_out`: dimension 1 times the receptive field."""
    if spec.fan_in is not None:
        return spec.fan_in
    shape = spec.shape
    if len(shape) < 2:
        return shape[0] if shape else 1
    return shape[1] * math.prod(shape[2:])


def _torch_fan_out(spec: WeightSpec) -> int:
    if spec.fan_out is not None:
        return spec.fan_out
    shape = spec.shape
    if len(shape) < 2:
        return shape[0] if shape else 1
    return shape[0] * math.prod(shape[2:])


def _keras_fans(spec: WeightSpec) -> tuple[int, int]:
    """Keras' `compute_fans`: the leading axes form the receptive field."""
    if spec.fan_in is not None and spec.fan_out is not None:
        return spec.fan_in, spec.fan_out
    shape = spec.shape
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2]) if shape else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _uniform(bound: float) -> Callable[[WeightSpec, np.random.Generator], np.ndarray]:
    def draw(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-bound, bound, size=spec.shape)

    return draw


def _kaiming_uniform(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
    # kaiming_uniform_(a=sqrt(5)): gain = sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / fan_in)
    # = 1 / sqrt(fan_in).
    fan_in = _torch_fan_in(spec)
    return _uniform(1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0)(spec, rng)


def _linear_bias(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
    fan_in = spec.fan_in if spec.fan_in is not None else spec.shape[0]
    return _uniform(1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0)(spec, rng)


def _xavier_uniform(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
    fan_in, fan_out = _torch_fan_in(spec), _torch_fan_out(spec)
    return _uniform(math.sqrt(6.0 / (fan_in + fan_out)))(spec, rng)


def _glorot_uniform(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
    fan_in, fan_out = _keras_fans(spec)
    return _uniform(math.sqrt(6.0 / (fan_in + fan_out)))(spec, rng)


def _rnn_uniform(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
    # torch.nn.RNNBase.reset_parameters: U(±1/sqrt(hidden_size)); the registry puts the hidden
    # size in `fan_in`.
    hidden = spec.fan_in if spec.fan_in is not None else spec.shape[-1]
    return _uniform(1.0 / math.sqrt(hidden))(spec, rng)


def _normal(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(size=spec.shape)


def _zeros(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
    return np.zeros(spec.shape)


def _ones(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
    return np.ones(spec.shape)


INITIALIZERS: dict[str, Callable[[WeightSpec, np.random.Generator], np.ndarray]] = {
    "kaiming_uniform": _kaiming_uniform,
    "linear_bias": _linear_bias,
    "xavier_uniform": _xavier_uniform,
    "glorot_uniform": _glorot_uniform,
    "rnn_uniform": _rnn_uniform,
    "normal": _normal,
    "zeros": _zeros,
    "ones": _ones,
}


def _key_rng(seed: int, key: str) -> np.random.Generator:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


def init_array(spec: WeightSpec, seed: int, key: str) -> np.ndarray:
    """The initial float32 value of one weight (deterministic in `seed` and `key`)."""
    try:
        draw = INITIALIZERS[spec.init]
    except KeyError:
        raise ValueError(f"unknown initializer {spec.init!r} for weight {key!r}") from None
    return np.asarray(draw(spec, _key_rng(seed, key)), dtype=np.float32, order="C")
