"""Training data: reading `.npz` files and `.npy` folders, matching arrays to the model's inputs
and loss, and the validation split.

Standalone (standard library and numpy only): `neuralc.lower.training.training_source()`
inlines it into the emitted PyTorch module, so `python model.py --data D.npz` and `neuralc run`
accept and refuse the same data with the same messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SPARSE_LOSSES = ("sparse_categorical_crossentropy", "nll")
DENSE_LOSSES = ("categorical_crossentropy", "kl_divergence")
BINARY_LOSSES = ("binary_crossentropy",)


class DataError(ValueError):
    """Data that does not fit the model; `notes` say how to fix it."""

    def __init__(self, message: str, *notes: str) -> None:
        super().__init__(message)
        self.message, self.notes = message, tuple(n for n in notes if n)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"note: {n}" for n in self.notes)])


@dataclass
class Prepared:
    xs: list[np.ndarray]  # one array per model input, in the model's input order
    y: np.ndarray
    xs_val: list[np.ndarray] | None
    y_val: np.ndarray | None
    label_mode: str  # "sparse" (class ids), "dense" (one-hot/probabilities), "binary", "value"

    @property
    def n(self) -> int:
        return int(self.y.shape[0])


def load_arrays(path: str) -> dict[str, np.ndarray]:
    """`.npz` (keys `x`, `y`, optionally `x_val`, `y_val`) or a folder of `NAME.npy` files."""
    if os.path.isdir(path):
        names = sorted(f for f in os.listdir(path) if f.endswith(".npy"))
        if not names:
            raise DataError(
                f"data folder '{path}' holds no .npy files",
                "write x.npy and y.npy (and optionally x_val.npy, y_val.npy)",
            )
        return {n[:-4]: _load_npy(os.path.join(path, n)) for n in names}
    if not os.path.exists(path):
        raise DataError(f"data file '{path}' does not exist")
    if not path.endswith(".npz"):
        raise DataError(
            f"cannot read data from '{path}'",
            "give a .npz file with arrays x and y, or a folder of .npy files",
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read data file '{path}': {exc}") from None


def _load_npy(path: str) -> np.ndarray:
    """One array of a data folder. A folder is user input like the data in it: a file that is
    not an array (a subfolder named x.npy, a dangling link, an empty, truncated or pickled
    file) is a DataError naming it, not numpy's exception."""
    if os.path.isdir(path):
        raise DataError(f"'{path}' is a folder, not a .npy file")
    fix = "write it with numpy.save(path, array) from a numeric array"
    try:
        with open(path, "rb") as f:
            # Without numpy's magic, np.load falls back to unpickling and then blames pickles
            # and allow_pickle, which is not what is wrong with an arbitrary file.
            if f.read(6) != b"\x93NUMPY":
                raise DataError(f"'{path}' is not a .npy file (no NumPy header)", fix)
        return np.load(path, allow_pickle=False)
    except DataError:
        raise  # a ValueError too; already says what is wrong
    except OSError as exc:
        raise DataError(f"cannot read '{path}': {exc.strerror or exc}") from None
    except ValueError as exc:
        reason = (
            "it holds Python objects (an object array)"
            if "allow_pickle" in str(exc)
            else str(exc)
        )
        raise DataError(f"cannot read '{path}': {reason}", fix) from None


def _input_key(arrays: Mapping[str, np.ndarray], name: str, single: bool, suffix: str) -> str:
    candidates = ([f"x{suffix}"] if single else []) + [f"x_{name}{suffix}", f"{name}{suffix}"]
    for key in candidates:
        if key in arrays:
            return key
    return ""


def select_arrays(arrays: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> Prepared:
    """Pick each input's array and the labels, check them against the model, split off the
    validation data."""
    inputs = config["inputs"]
    single = len(inputs) == 1
    xs: list[np.ndarray] = []
    xs_val: list[np.ndarray] = []
    for spec in inputs:
        key = _input_key(arrays, spec["name"], single, "")
        if not key:
            wanted = "x" if single else f"x_{spec['name']} (or {spec['name']})"
            raise DataError(
                f"the data has no array '{wanted}' for the model's input '{spec['name']}'",
                f"arrays in the data: {', '.join(arrays)}",
            )
        xs.append(arrays[key])
        val_key = _input_key(arrays, spec["name"], single, "_val")
        if val_key:
            xs_val.append(arrays[val_key])
    if "y" not in arrays:
        raise DataError("the data has no labels 'y'", f"arrays in the data: {', '.join(arrays)}")
    has_val = bool(xs_val) and "y_val" in arrays
    if xs_val and len(xs_val) != len(inputs) or bool(xs_val) != ("y_val" in arrays):
        raise DataError("validation data needs x_val and y_val (one x_val per input)")
    return prepare(
        xs, arrays["y"], xs_val if has_val else None, arrays["y_val"] if has_val else None, config
    )


def prepare(
    xs: Sequence[np.ndarray],
    y: np.ndarray,
    xs_val: Sequence[np.ndarray] | None,
    y_val: np.ndarray | None,
    config: Mapping[str, Any],
) -> Prepared:
    checked = check_inputs(xs, config, "x")
    labels, mode = check_labels(y, config, "y", checked[0].shape[0])
    val_x: list[np.ndarray] | None = None
    val_y: np.ndarray | None = None
    if xs_val is not None and y_val is not None:
        val_x = check_inputs(xs_val, config, "x_val")
        val_y, _ = check_labels(y_val, config, "y_val", val_x[0].shape[0])
    else:
        split = float(config["train"].get("validation_split") or 0.0)
        if split > 0:
            # Keras' rule: the last `split` fraction, taken before any shuffling.
            at = int(labels.shape[0] * (1.0 - split))
            if at < 1 or at >= labels.shape[0]:
                raise DataError(
                    f"validation_split {split} leaves no training or no validation "
                    f"samples out of {labels.shape[0]}"
                )
            val_x, val_y = [x[at:] for x in checked], labels[at:]
            checked, labels = [x[:at] for x in checked], labels[:at]
    return Prepared(checked, labels, val_x, val_y, mode)


def _fits(shape: Sequence[int], expected: Sequence[Any]) -> bool:
    return len(shape) == len(expected) and all(
        e is None or e == s for s, e in zip(shape, expected, strict=True)
    )


def _shape_text(dims: Sequence[Any]) -> str:
    inner = ", ".join("None" if d is None else str(d) for d in dims)
    return f"({inner},)" if len(dims) == 1 else f"({inner})"


def check_inputs(
    xs: Sequence[np.ndarray], config: Mapping[str, Any], what: str
) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    n = None
    for x, spec in zip(xs, config["inputs"], strict=True):
        x = np.asarray(x)
        label = what if len(config["inputs"]) == 1 else f"{what} for input '{spec['name']}'"
        if not _fits(x.shape[1:], spec["shape"]):
            raise DataError(
                f"{label} has shape {_shape_text(x.shape)} but the model's input "
                f"'{spec['name']}' takes {_shape_text([None, *spec['shape']])} "
                "(batch first)",
                "the first axis is the sample; the others must match `input:` in the model",
            )
        if n is not None and x.shape[0] != n:
            raise DataError(f"{label} has {x.shape[0]} samples but the first input has {n}")
        n = x.shape[0]
        if spec["dtype"].startswith("int"):
            if not np.issubdtype(x.dtype, np.integer):
                raise DataError(
                    f"{label} holds {x.dtype} values but input '{spec['name']}' feeds an "
                    "Embedding, which takes integer token ids",
                    "convert the ids with x.astype('int64')",
                )
            vocab = spec.get("vocab")
            if x.size and vocab and (x.min() < 0 or x.max() >= vocab):
                raise DataError(
                    f"{label} holds token ids in [{x.min()}, {x.max()}] but the "
                    f"Embedding's input_dim is {vocab}"
                )
            out.append(x.astype(np.int64, copy=False))
        else:
            if not _real(x.dtype):
                raise DataError(f"{label} holds {x.dtype} values; the model takes real numbers")
            out.append(_finite_float32(x, label))
    if n == 0:
        raise DataError(f"{what} has no samples", "training and validation data need at least one")
    return out


def _finite_float32(array: np.ndarray, what: str) -> np.ndarray:
    """The array as float32; NaN, infinities and values past float32's range are refused
    (the range would turn into infinities with only numpy's RuntimeWarning)."""
    if not np.isfinite(array).all():
        raise DataError(f"{what} contains NaN or infinite values")
    with np.errstate(over="ignore"):
        converted = array.astype(np.float32, copy=False)
    if not np.isfinite(converted).all():
        raise DataError(
            f"{what} holds values beyond float32's range (±{np.finfo(np.float32).max:.4g}), "
            "which the model computes in",
            "scale the data into float32's range",
        )
    return converted


def _real(dtype: np.dtype) -> bool:
    """Numbers a float32 model can take without losing part of them: not complex (casting
    drops the imaginary part with only a warning), not strings or objects."""
    return dtype == np.bool_ or (
        np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)
    )


def label_mode(config: Mapping[str, Any], y: np.ndarray) -> str:
    loss = config["loss"]
    if loss in SPARSE_LOSSES:
        return "sparse"
    if loss in DENSE_LOSSES:
        return "dense"
    if loss == "cross_entropy":
        return "sparse" if np.issubdtype(y.dtype, np.integer) else "dense"
    if loss in BINARY_LOSSES:
        return "binary"
    return "value"


def check_labels(
    y: np.ndarray, config: Mapping[str, Any], what: str, n: int
) -> tuple[np.ndarray, str]:
    y = np.asarray(y)
    loss, out_shape = config["loss"], list(config["output"]["shape"])
    mode = label_mode(config, y)
    if y.ndim == 0:
        # "0 labels" would be wrong: it holds one value, not one per sample.
        raise DataError(f"{what} is a single value (shape ()) but there are {n} samples",
                        "the first axis of the labels is the sample, as for x")
    if y.shape[0] != n:
        raise DataError(f"{what} has {y.shape[0]} labels but there are {n} samples")
    if mode == "sparse":
        if not np.issubdtype(y.dtype, np.integer):
            if _fits(y.shape[1:], out_shape) and out_shape[-1] != 1:
                raise DataError(
                    f"{what} holds one-hot labels of shape {_shape_text(y.shape)} but loss "
                    f"'{loss}' takes integer class ids",
                    'one-hot labels need loss: "categorical_crossentropy"',
                    f"or convert them to class ids: {what}.argmax(-1)",
                )
            raise DataError(
                f"{what} holds {y.dtype} labels but loss '{loss}' takes integer class ids",
                'for one-hot labels use loss: "categorical_crossentropy"',
                f"for class ids stored as floats convert them: {what}.astype('int64')",
            )
        expected = out_shape[:-1]
        if y.ndim == len(expected) + 2 and y.shape[-1] == 1:
            y = y[..., 0]
        if not _fits(y.shape[1:], expected):
            hint = (
                'one-hot labels need loss: "categorical_crossentropy"'
                if _fits(y.shape[1:], out_shape)
                else ""
            )
            raise DataError(
                f"{what} has shape {_shape_text(y.shape)} but loss '{loss}' on the "
                f"output {_shape_text([None, *out_shape])} takes class ids of shape "
                f"{_shape_text([None, *expected])}",
                hint,
            )
        classes = out_shape[-1]
        if y.size and classes and (y.min() < 0 or y.max() >= classes):
            raise DataError(
                f"{what} holds class ids in [{y.min()}, {y.max()}] but the output "
                f"has {classes} classes"
            )
        return y.astype(np.int64, copy=False), mode
    if not _real(y.dtype):
        raise DataError(f"{what} holds {y.dtype} values; loss '{loss}' takes real numbers")
    if out_shape and out_shape[-1] == 1 and _fits(y.shape[1:], out_shape[:-1]):
        y = y[..., None]
    if not _fits(y.shape[1:], out_shape):
        hint = ""
        if (
            mode == "dense"
            and np.issubdtype(y.dtype, np.integer)
            and _fits(y.shape[1:], out_shape[:-1])
        ):
            hint = 'class ids need loss: "sparse_categorical_crossentropy"'
        raise DataError(
            f"{what} has shape {_shape_text(y.shape)} but loss '{loss}' compares it "
            f"with the output {_shape_text([None, *out_shape])}",
            hint,
        )
    y = _finite_float32(y, what)
    if mode == "binary" and y.size and (y.min() < 0 or y.max() > 1):
        raise DataError(f"{what} holds values outside [0, 1] but loss '{loss}' takes probabilities")
    return y, mode
