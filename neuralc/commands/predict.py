"""`neuralc predict MODEL --target T --weights W --input X.npy -o Y.npy [--device D] [-O N]
[--network NAME] [--artifact-dir DIR]`.

Builds the artifact exactly as `neuralc build` does (into a temporary directory, or
`--artifact-dir`), then runs *that file* through the target's `predict`: what users build is
what predict executes. Inputs are checked first (one `.npy` per network input, `NAME=X.npy` when
there are several; batch first; dtype float32 for features, int64 for token ids), and so are the
weights (names and shapes) and the model's device placement, each with a diagnostic at the
responsible line. The output is written atomically with `np.save`.

`--emit` is a usage error here: predict runs the artifact, it never prints the IR (`neuralc build
--emit STAGE` does); `--opset` applies to `--target onnx` only, as in build.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from neuralc.commands.build import (
    add_build_arguments,
    build_options,
    compile_network,
    get_target,
    optimize,
    write_artifact,
)
from neuralc.commands.build import check_usage as check_build_usage
from neuralc.commands.common import Sources, write_atomic
from neuralc.diagnostics import CompileError, Diagnostic, did_you_mean, error
from neuralc.fileio import check_output_path, ensure_dir
from neuralc.ir.core import Network, Operation, Value, primary_loc
from neuralc.ir.types import BATCH, TensorType
from neuralc.lower.predict_cli import cast_checked


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .neural file")
    # Parsed (hidden, taking the pipeline's place) only to be rejected by check_usage with a
    # pointer to build: predict never prints the IR.
    parser.add_argument("--emit", choices=("nn", "tensor", "kernel"), help=argparse.SUPPRESS)
    add_build_arguments(parser)
    parser.add_argument(
        "--weights", required=True, help="the safetensors weight file (`neuralc init`)"
    )
    parser.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="[NAME=]X.npy",
        help="the input array, batch first; NAME=X.npy once per input when the network has several",
    )
    parser.add_argument("-o", "--output", required=True, help="where to write the output .npy")
    parser.add_argument("--artifact-dir", help="keep the built artifact in this directory")


def check_usage(args: argparse.Namespace) -> str | None:
    if args.emit is not None:
        return ("argument --emit: predict runs the built artifact and does not print the IR; "
                f"use `neuralc build --target {args.target} --emit {args.emit}`")
    return check_build_usage(args)


def run(args: argparse.Namespace, sources: Sources) -> int:
    from neuralc.lower.weights import load_checked_weights

    network, path = compile_network(args, sources)
    target = get_target(args.target)
    options = build_options(args, path)
    # Before the (possibly long) run, not after it.
    check_output_path(args.output)
    inputs = read_inputs(network, args.input)
    check_dynamic_sizes(network, inputs)
    load_checked_weights(network, args.weights)
    if args.device is None:
        check_placement(network)
    else:
        check_device_available(args.device)
    network = optimize(network, args, sources)
    artifact_name = Path(path).stem + target.suffix
    # "" = no override: the model's own placement (the targets read it so).
    device = args.device or ""
    if args.artifact_dir:
        artifact = ensure_dir(args.artifact_dir).resolve() / artifact_name
        write_artifact(target, network, options, artifact)
        output = target.predict(artifact, Path(args.weights), inputs, device)
    else:
        with tempfile.TemporaryDirectory(prefix="neuralc-predict-") as tmp:
            artifact = Path(tmp) / artifact_name
            write_artifact(target, network, options, artifact)
            output = target.predict(artifact, Path(args.weights), inputs, device)
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(output), allow_pickle=False)
    write_atomic(args.output, buffer.getvalue())
    print(args.output)
    return 0


# Inputs ---------------------------------------------------------------------------------------


def read_inputs(network: Network, items: list[str]) -> dict[str, np.ndarray]:
    """Load and check the `--input` arrays; returns them by input name, cast to the network's
    dtypes."""
    values = {v.name: v for v in network.inputs}
    paths: dict[str, str] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        if sep and name in values:
            key, file = name, rest
        elif sep and name.isidentifier() and (len(values) > 1 or not Path(item).exists()):
            # NAME=X.npy naming no input (a file name may hold "=", so an existing file wins
            # when the network has one input).
            raise error(
                f"'{name}' is not an input of network '{network.name}'",
                None,
                did_you_mean(name, values) or "",
                "inputs: " + ", ".join(values),
            )
        elif len(values) == 1:
            key, file = network.inputs[0].name, item
        else:
            raise error(
                f"network '{network.name}' has {len(values)} inputs; name each one: "
                f"--input NAME=X.npy",
                None,
                "inputs: " + ", ".join(values),
            )
        if key in paths:
            raise error(f"input '{key}' is given twice")
        paths[key] = file
    missing = [name for name in values if name not in paths]
    if missing:
        raise error(
            f"no array for input '{missing[0]}' of network '{network.name}'",
            None,
            f"add --input {missing[0]}=X.npy",
        )
    arrays = {name: _load_array(path) for name, path in paths.items()}
    bound: dict[str, tuple[int, str]] = {}
    return {name: _check_input(network, values[name], arrays[name], bound) for name in values}


def _load_array(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise error(f"input file '{path}' does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise error(
            f"cannot read input file '{path}': {exc}",
            None,
            "inputs are .npy files written with numpy.save",
        ) from None
    if not isinstance(array, np.ndarray):
        raise error(f"input file '{path}' holds several arrays; give one .npy file per input")
    return array


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_dynamic_sizes(network: Network, inputs: dict[str, np.ndarray]) -> None:
    """Re-infer the top-level layers' shapes with the arrays' sizes in place of the inputs'
    dynamic dimensions: a sequence or image too short for a window (or a Reshape that no longer
    divides) is then the layer's diagnostic, as it would be with the size in `input:`, not an
    error inside the framework reported as a neuralc bug."""
    from neuralc.ir.shapes import infer_op
    from neuralc.layers import all_layers
    from neuralc.layers.spec import ShapeError

    env: dict[int, TensorType] = {}
    for value in network.inputs:
        t, array = value.type, inputs[value.name]
        dims = [d if isinstance(d, int) or d == BATCH else int(n)
                for d, n in zip(t.shape, array.shape, strict=True)]
        env[id(value)] = t.with_shape(tuple(dims))
    if all(env[id(v)] == v.type for v in network.inputs):
        return
    for op in network.body.ops:
        if op.op == "return":
            return
        try:
            types = infer_op(op, [env.get(id(v), v.type) for v in op.operands])
        except ShapeError as exc:
            spec = next((s for s in all_layers() if s.op_name == op.op), None)
            name = spec.name if spec is not None else op.op
            message = exc.message if exc.message.startswith(name) else f"{name}: {exc.message}"
            sizes = ", ".join(f"{k} {_shape_text(a.shape)}" for k, a in inputs.items())
            raise error(f"with the given input sizes ({sizes}): {message}", primary_loc(op.loc),
                        exc.note or "", "the input's dynamic dimensions take the arrays' sizes; "
                        "this layer needs larger ones") from None
        env.update({id(r): t for r, t in zip(op.results, types, strict=True)})


def _check_input(
    network: Network, value: Value, array: np.ndarray, bound: dict[str, tuple[int, str]]
) -> np.ndarray:
    t = value.type
    where = primary_loc(network.loc)
    declared = _shape_text(t.feature_shape)
    expected = _shape_text(t.shape)
    if array.ndim != t.rank:
        note = (
            f"the network's input is declared as input: {declared}; the array needs the "
            "batch dimension first"
            if array.ndim == t.rank - 1
            else f"the input is declared as input: {declared} (without the batch)"
        )
        raise error(
            f"input '{value.name}' has shape {_shape_text(array.shape)}, but network "
            f"'{network.name}' takes {expected} (batch first)",
            where,
            note,
        )
    for axis, (dim, size) in enumerate(zip(t.shape, array.shape, strict=True)):
        if isinstance(dim, int):
            if dim != size:
                raise error(
                    f"input '{value.name}' has shape {_shape_text(array.shape)}, but network "
                    f"'{network.name}' takes {expected}: axis {axis} must be {dim}",
                    where,
                    f"the network's input is declared as input: {declared}",
                )
            continue
        previous = bound.setdefault(dim, (size, value.name))
        if previous[0] != size:
            what = "the batch size" if dim == BATCH else f"dimension {dim}"
            raise error(
                f"input '{value.name}' has {what} {size}, but input '{previous[1]}' "
                f"has {previous[0]}",
                where,
                "inputs must agree on shared dimensions",
            )
    return _check_dtype(network, value, t, array)


def _check_dtype(network: Network, value: Value, t: TensorType, array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    if t.is_float:
        if kind not in "fiub":
            raise error(
                f"input '{value.name}' has dtype {array.dtype}, but network "
                f"'{network.name}' takes float32 features",
                primary_loc(network.loc),
            )
        features, overflow = cast_checked(array, np.float32)
        if overflow is not None:
            raise error(
                f"input '{value.name}' holds {array[overflow]:g} at index {overflow}, beyond "
                f"float32's range (±{np.finfo(np.float32).max:.4g}), which network "
                f"'{network.name}' computes in",
                primary_loc(network.loc),
                "scale the inputs into float32's range",
            )
        return features
    consumers = _consumers(network, value)
    loc = primary_loc(consumers[0].loc) if consumers else primary_loc(network.loc)
    if kind not in "iub":
        raise error(
            f"input '{value.name}' holds {array.dtype} values, but network '{network.name}' "
            f"takes integer token ids ({t.dtype}) because it starts with an Embedding",
            loc,
            "pass the token ids as integers, e.g. ids.astype(numpy.int64); float features "
            "cannot be used as ids",
        )
    ids = array.astype(np.int64, copy=False)
    for op in consumers:
        limit = op.attrs.get("input_dim")
        if op.op == "nn.embedding" and isinstance(limit, int) and ids.size:
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= limit:
                raise error(
                    f"input '{value.name}' holds token id {low if low < 0 else high}, "
                    f"outside the Embedding's vocabulary [0, {limit})",
                    primary_loc(op.loc),
                )
    return ids


def _consumers(network: Network, value: Value) -> list[Operation]:
    return [op for op in network.walk() if any(v is value for v in op.operands)]


# Devices ----------------------------------------------------------------------------------------


def cuda_device_count() -> int:
    if os.environ.get("NEURALC_NO_CUDA"):
        return 0
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _needs_cuda(device: str) -> int | None:
    """The CUDA index a device name needs (0 for "cuda"/"gpu"), or None."""
    if device in ("cuda", "gpu"):
        return 0
    if device.startswith("cuda:"):
        return int(device.split(":", 1)[1])
    return None


def _missing(device: str, count: int) -> str | None:
    index = _needs_cuda(device)
    if index is None or index < count:
        return None
    return (
        "this machine has no CUDA device"
        if count == 0
        else f"this machine has {count} CUDA device(s)"
    )


def check_placement(network: Network) -> None:
    """Every layer's placement must exist here (diagnostics at the placing lines)."""
    placed = [(op, op.device) for op in network.walk() if op.device]
    execution = network.attrs.get("execution")
    default = execution.get("device") if isinstance(execution, dict) else None
    if not any(_needs_cuda(d) is not None for _, d in placed) and not (
        isinstance(default, str) and _needs_cuda(default) is not None
    ):
        return
    count = cuda_device_count()
    diagnostics: list[Diagnostic] = []
    for op, device in placed:
        problem = _missing(device, count)
        if problem:
            diagnostics.append(
                Diagnostic(
                    f"layer '{op.name}' is placed on {device} but {problem}",
                    primary_loc(op.loc),
                    "error",
                    ("run with --device cpu",),
                )
            )
    if isinstance(default, str):
        problem = _missing(default, count)
        unplaced = [op for op in network.body.ops if op.op != "return" and not op.device]
        if problem and unplaced:
            diagnostics.append(
                Diagnostic(
                    f"network '{network.name}' runs on {default} (execution {{ device }}) but "
                    f"{problem}",
                    primary_loc(network.loc),
                    "error",
                    ("run with --device cpu",),
                )
            )
    if diagnostics:
        raise CompileError(diagnostics)


def check_device_available(device: str) -> None:
    if _needs_cuda(device) is None:
        return
    problem = _missing(device, cuda_device_count())
    if problem:
        raise error(f"--device {device} was requested but {problem}", None, "run with --device cpu")
