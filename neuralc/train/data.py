"""Datasets for `neuralc run` / `tune`: read a `.npz` file or a folder of `.npy` files, check it
against the network (as diagnostics), or make a random one of the right shapes (`--synthetic`).

The checks themselves live in the standalone `neuralc.lower.train_data`, which the emitted
PyTorch module carries too; here they become `CompileError`s that name the data file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.lower.train_data import DataError, Prepared, load_arrays, select_arrays

SYNTHETIC_LENGTH = 8  # the size of a dynamic (None) dimension in synthetic data


def data_error(exc: DataError, source: str) -> CompileError:
    return CompileError(Diagnostic(f"{source}: {exc.message}", None, "error", exc.notes))


def read_arrays(path: str) -> dict[str, np.ndarray]:
    try:
        return load_arrays(path)
    except DataError as exc:
        raise data_error(exc, path) from None


def prepare(arrays: Mapping[str, np.ndarray], config: Mapping[str, Any], source: str) -> Prepared:
    """Match `arrays` to the model's inputs and loss; split off validation data."""
    try:
        return select_arrays(arrays, config)
    except DataError as exc:
        raise data_error(exc, source) from None


def _dims(shape: list[Any]) -> tuple[int, ...]:
    return tuple(SYNTHETIC_LENGTH if d is None else int(d) for d in shape)


# The random inputs are drawn in float64 before they are cast; past this a smoke run is not one.
SYNTHETIC_BYTES_LIMIT = 16 * 2**30


def _elements(shape: Any) -> int:
    return int(np.prod(_dims(shape), dtype=object))


def synthetic(config: Mapping[str, Any], n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`n` random samples whose labels a random linear "teacher" computes from the inputs, so
    the task is learnable: loss falls when training works."""
    if n < 2:
        raise CompileError(Diagnostic(f"--synthetic needs at least 2 samples, got {n}"))
    sample_bytes = sum(8 * _elements(spec["shape"]) for spec in config["inputs"])
    if n * sample_bytes > SYNTHETIC_BYTES_LIMIT:
        # numpy would fail on such a request only after trying it (ValueError past its maximum
        # dimension, MemoryError, or the machine swapping), so size it first.
        raise CompileError(
            Diagnostic(
                f"--synthetic {n:,} needs about {n * sample_bytes / 2**30:,.1f} GiB of inputs "
                f"({sample_bytes:,} bytes per sample while it is drawn)",
                notes=(f"at most {SYNTHETIC_BYTES_LIMIT // 2**30} GiB; use fewer samples",),
            )
        )
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    features: list[np.ndarray] = []
    single = len(config["inputs"]) == 1
    for spec in config["inputs"]:
        shape = (n, *_dims(spec["shape"]))
        if spec["dtype"].startswith("int"):
            vocab = int(spec.get("vocab") or 16)
            x = rng.integers(0, vocab, size=shape, dtype=np.int64)
            features.append(x.reshape(n, -1) / vocab - 0.5)
        else:
            x = rng.standard_normal(shape).astype(np.float32)
            features.append(x.reshape(n, -1))
        arrays["x" if single else f"x_{spec['name']}"] = x
    flat = np.concatenate(features, axis=1)
    out_shape = _dims(config["output"]["shape"])
    teacher = rng.standard_normal((flat.shape[1], int(np.prod(out_shape))))
    scores = (flat @ teacher / np.sqrt(flat.shape[1])).reshape(n, *out_shape)
    mode = {
        "sparse_categorical_crossentropy": "sparse",
        "nll": "sparse",
        "cross_entropy": "sparse",
        "categorical_crossentropy": "dense",
        "kl_divergence": "dense",
        "binary_crossentropy": "binary",
    }.get(config["loss"])
    if mode == "sparse":
        arrays["y"] = scores.argmax(-1).astype(np.int64)
    elif mode == "dense":
        arrays["y"] = np.eye(out_shape[-1], dtype=np.float32)[scores.argmax(-1)]
    elif mode == "binary":
        arrays["y"] = (scores > 0).astype(np.float32)
    else:
        arrays["y"] = np.tanh(scores).astype(np.float32)
    return arrays
