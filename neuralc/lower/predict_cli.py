"""The inference command line of the emitted PyTorch and Keras modules: `python model.py
[--weights W] --input [NAME=]X.npy ... -o Y.npy [--device D]` (`predict_main`).

Standalone (standard library and numpy): `neuralc.lower.train_template` inlines it into the
emitted modules, so a generated file reports a missing or unreadable input, an input that does
not fit the model, a weight file that does not load, a device the machine lacks or an output it
cannot write as `error: ...` lines and exit status 1 (bad option values: argparse's exit 2),
never a traceback. `neuralc predict` checks the same things with source locations. The output
is written through a temporary file and a rename, so an interrupted run leaves no half file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


class PredictError(ValueError):
    """A user error of the inference command line; `notes` say how to fix it."""

    def __init__(self, message: str, *notes: str) -> None:
        super().__init__(message)
        self.message, self.notes = message, tuple(n for n in notes if n)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"note: {n}" for n in self.notes)])


def input_paths(items: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """Each input's file from `--input [NAME=]X.npy` items (a file name may hold "=": with one
    input, an existing file wins)."""
    paths: dict[str, str] = {}
    listed = "inputs: " + ", ".join(names)
    for item in items:
        name, sep, rest = item.partition("=")
        if sep and name in names:
            key, path = name, rest
        elif sep and name.isidentifier() and (len(names) > 1 or not os.path.exists(item)):
            raise PredictError(f"'{name}' is not an input of the model", listed)
        elif len(names) == 1:
            key, path = names[0], item
        else:
            raise PredictError(
                f"the model has {len(names)} inputs; name each one: --input NAME=X.npy", listed
            )
        if key in paths:
            raise PredictError(f"input '{key}' is given twice")
        paths[key] = path
    missing = [name for name in names if name not in paths]
    if missing:
        raise PredictError(f"no array for input '{missing[0]}'", f"add --input {missing[0]}=X.npy")
    return paths


def load_array(path: str) -> np.ndarray:
    if os.path.isdir(path):
        raise PredictError(f"input file '{path}' is a directory, not a .npy file")
    if not os.path.exists(path):
        raise PredictError(f"input file '{path}' does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        reason = str(exc) or "the file is empty"
        if "pickle" in reason:
            # np.load blames pickles for any file without NumPy's header: say which it is.
            with open(path, "rb") as f:
                numpy_file = f.read(6) == b"\x93NUMPY"
            reason = "it holds Python objects" if numpy_file else "not a .npy file"
        raise PredictError(
            f"cannot read input file '{path}': {reason}",
            "inputs are .npy files of numbers written with numpy.save",
        ) from None
    if not isinstance(array, np.ndarray):
        raise PredictError(f"input file '{path}' holds several arrays; give one .npy per input")
    return array


def _shape_text(dims: Sequence[Any]) -> str:
    inner = ", ".join("None" if d is None else str(d) for d in dims)
    return f"({inner},)" if len(dims) == 1 else f"({inner})"


def check_array(array: np.ndarray, spec: Mapping[str, Any], batch: list[int]) -> np.ndarray:
    """`array` checked against one input (`{"name", "dtype", "shape"}`, the shape without the
    batch, None for a dynamic size) and cast to its dtype; `batch` holds the first input's
    batch size."""
    name, shape = spec["name"], [None, *spec["shape"]]
    if array.ndim != len(shape) or any(
        d is not None and d != s for d, s in zip(shape, array.shape, strict=True)
    ):
        raise PredictError(
            f"input '{name}' has shape {_shape_text(array.shape)} but the model takes "
            f"{_shape_text(shape)} (batch first)"
        )
    if batch and array.shape[0] != batch[0]:
        raise PredictError(
            f"input '{name}' has {array.shape[0]} samples, the first input {batch[0]}"
        )
    batch.append(array.shape[0])
    kind = array.dtype.kind
    if str(spec["dtype"]).startswith("int"):
        if kind not in "iub":
            raise PredictError(
                f"input '{name}' holds {array.dtype} values but the model takes integer ids",
                "pass the ids as integers, e.g. ids.astype(numpy.int64)",
            )
        return array.astype(spec["dtype"], copy=False)
    if kind not in "fiub":
        raise PredictError(
            f"input '{name}' holds {array.dtype} values; the model takes real numbers"
        )
    cast, overflow = cast_checked(array, spec["dtype"])
    if overflow is not None:
        raise PredictError(
            f"input '{name}' holds {array[overflow]:g} at index {overflow}, beyond "
            f"{spec['dtype']}'s range",
            f"scale the inputs into {spec['dtype']}'s range",
        )
    return cast


def cast_checked(array: np.ndarray, dtype: Any) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """`array` cast to the float `dtype`, and the index of the first finite value the cast
    turned into an infinity (float64 past float32's range; numpy only warns), else None."""
    with np.errstate(over="ignore"):
        cast = array.astype(dtype, copy=False)
    if array.dtype.kind != "f" or array.dtype.itemsize <= np.dtype(dtype).itemsize:
        return cast, None
    overflowed = np.isinf(cast) & np.isfinite(array)
    if not overflowed.any():
        return cast, None
    return cast, tuple(np.argwhere(overflowed)[0].tolist())


def read_inputs(items: Sequence[str], specs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    paths = input_paths(items, [spec["name"] for spec in specs])
    batch: list[int] = []
    return {s["name"]: check_array(load_array(paths[s["name"]]), s, batch) for s in specs}


def output_path(path: str) -> str:
    """Where np.save would write `path` (it appends .npy), checked before the model runs."""
    path = path if path.endswith(".npy") else path + ".npy"
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise PredictError(f"output '{path}' is a directory")
    if not os.path.isdir(folder):
        raise PredictError(f"cannot write '{path}': folder '{folder}' does not exist")
    return path


def save_array(path: str, array: np.ndarray) -> None:
    """Write through a temporary file and a rename: an interrupted write leaves no half file."""
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=os.path.dirname(path) or ".")
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise PredictError(f"cannot write '{path}': {exc.strerror or exc}") from None


def build_or_fail(build_model: Callable[..., Any], weights: str | None, device: str | None) -> Any:
    """`build_model(weights, device)`, whose failures are the user's inputs: a weight file that
    is not one or belongs to another model, a device this machine lacks or the framework does
    not know. They keep the library's own words."""
    if weights is not None and not os.path.isfile(weights):
        raise PredictError(f"weight file '{weights}' does not exist or is not a file")
    try:
        return build_model(weights, device)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        if weights is not None and "state_dict" in str(exc):
            raise PredictError(f"weight file '{weights}' does not fit the model: {exc}") from None
        raise PredictError(str(exc)) from None
    except Exception as exc:
        if type(exc).__name__ != "SafetensorError":  # safetensors' own, not an OSError
            raise
        raise PredictError(f"cannot read weight file '{weights}': {exc}") from None


def fail(exc: Exception) -> None:
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(1) from None


def predict_main(
    description: str,
    specs: Sequence[Mapping[str, Any]],
    build_model: Callable[..., Any],
    predict: Callable[[Any, dict[str, np.ndarray]], np.ndarray],
    default_weights: str,
    argv: Sequence[str] | None = None,
    epilog: str | None = None,
) -> None:
    """Parse the command line, check the inputs against `specs` (the PyTorch module's
    TRAIN_CONFIG["inputs"], the Keras module's INPUT_SPECS), run the model and save its
    output."""
    parser = argparse.ArgumentParser(description=description, epilog=epilog)
    parser.add_argument(
        "--weights", help=f"a safetensors weight file (neuralc init); default: {default_weights}"
    )
    parser.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="[NAME=]X.npy",
        help="an input array; name it when the model has several inputs",
    )
    parser.add_argument("-o", "--output", required=True, help="where to write the output .npy")
    parser.add_argument("--device", help="run every layer on this device (e.g. cpu)")
    args = parser.parse_args(argv)
    try:
        inputs = read_inputs(args.input, specs)
        out = output_path(args.output)
        model = build_or_fail(build_model, args.weights, args.device)
        save_array(out, predict(model, inputs))
    except PredictError as exc:
        fail(exc)
