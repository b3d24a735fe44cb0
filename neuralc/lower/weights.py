"""The framework-neutral weight file: names, shapes, initial values, safetensors I/O, checks.

A network's weights are the registry's `LayerSpec.weights(attrs, input_types)` of every layer
*instance*: repeated layers are enumerated as `unroll-repeat` would unroll them (instance names
from `neuralc.ir.naming.unrolled_name`: `transformer_encoder.3`, `block.1.conv2d`), and residual
bodies are walked too (`residual_connection.conv2d`). Keys are `<instance name>.<weight name>`,
arrays are float32 in PyTorch's layouts (see docs/weights.md); the PyTorch emitter's
`state_dict()` has exactly these keys, and the Keras and ONNX emitters map them.

The walk re-infers types as it goes and never mutates the caller's network, so it works on the
rolled IR that the emitters see and on an already-unrolled one alike.

Initial values follow PyTorch's defaults (`init_array`, in `neuralc.lower.weight_init`, which
this module re-exports), drawn with numpy from a generator seeded by `(seed, sha256(key))`: one
key's values depend on the seed and its own name only, so adding a layer leaves every other
layer's initial weights unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation, error
from neuralc.ir.core import Block, Network, Operation, Value, primary_loc
from neuralc.ir.naming import unrolled_name
from neuralc.ir.shapes import REPEAT, YIELD, concrete_attrs, infer_op
from neuralc.ir.types import TensorType
from neuralc.layers import LayerSpec, WeightSpec, all_layers
from neuralc.lower.weight_init import INITIALIZERS, init_array

__all__ = [
    "INITIALIZERS",
    "LayerInstance",
    "check_weights",
    "init_array",
    "init_weights",
    "layer_instances",
    "load_checked_weights",
    "load_weights",
    "network_weight_specs",
    "save_weights",
    "weight_owners",
]

FORMAT = "neuralc-weights-v1"
MAX_DIAGNOSTICS = 8


# Layer instances ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerInstance:
    """One layer as it exists at run time: a rolled op seen in one repetition context."""

    name: str  # the unrolled instance name: the weight-key prefix
    op: Operation  # the op in the caller's IR (shared by every repetition of it)
    spec: LayerSpec
    attrs: dict[str, Any]  # concrete attributes (open hyperparameters at their first candidate)
    inputs: tuple[TensorType, ...]  # operand types in this repetition
    output: TensorType
    device: str | None  # own placement, else the enclosing repeat's (as unroll-repeat does)

    @property
    def loc(self) -> SourceLocation | None:
        return primary_loc(self.op.loc)

    def weights(self) -> dict[str, WeightSpec]:
        return self.spec.weights(self.attrs, list(self.inputs))


def layer_instances(network: Network) -> list[LayerInstance]:
    """Every layer instance of `network` in program order (residual bodies before the residual
    op itself, whose own weights, if any, follow its body's)."""
    out: list[LayerInstance] = []
    _walk_block(network.body, [a.type for a in network.inputs], {}, _identity, None, out)
    return out


def _identity(name: str) -> str:
    return name


def _walk_block(
    block: Block,
    arg_types: list[TensorType],
    env: dict[int, TensorType],
    rename: Callable[[str], str],
    device: str | None,
    out: list[LayerInstance],
) -> list[TensorType]:
    for arg, t in zip(block.args, arg_types, strict=True):
        env[id(arg)] = t
    for op in block.ops:
        operand_types = [_type_of(v, env) for v in op.operands]
        if op.op in (YIELD, "return"):
            return operand_types
        if op.op == REPEAT:
            current = operand_types
            for index in range(int(op.attrs["count"])):  # type: ignore[call-overload]
                inner = _repeat_rename(rename, op.name, index)
                current = _walk_block(op.regions[0], current, env, inner, op.device or device, out)
            results = current
        else:
            for region in op.regions:
                _walk_block(
                    region, operand_types[: len(region.args)], env, rename, op.device or device, out
                )
            results = infer_op(op, operand_types)
            spec = _spec_for(op)
            if spec is not None:
                out.append(
                    LayerInstance(
                        rename(op.name),
                        op,
                        spec,
                        concrete_attrs(op),
                        tuple(operand_types),
                        results[0],
                        op.device or device,
                    )
                )
        for result, t in zip(op.results, results, strict=True):
            env[id(result)] = t
    return []


def _repeat_rename(outer: Callable[[str], str], repeat: str, index: int) -> Callable[[str], str]:
    return lambda name: outer(unrolled_name(name, repeat, index))


def _type_of(value: Value, env: dict[int, TensorType]) -> TensorType:
    return env.get(id(value), value.type)


_SPECS: dict[str, LayerSpec] = {}


def _spec_for(op: Operation) -> LayerSpec | None:
    if not _SPECS:
        _SPECS.update({spec.op_name: spec for spec in all_layers()})
    return _SPECS.get(op.op)


# Weight names and shapes ----------------------------------------------------------------------


def network_weight_specs(network: Network) -> dict[str, WeightSpec]:
    """`{"dense.weight": WeightSpec((16, 8), "kaiming_uniform", ...), ...}` in program order."""
    return {key: spec for key, (spec, _) in _owned_specs(network).items()}


def weight_owners(network: Network) -> dict[str, LayerInstance]:
    """The layer instance each weight key belongs to (for diagnostics and emitters)."""
    return {key: inst for key, (_, inst) in _owned_specs(network).items()}


def _owned_specs(network: Network) -> dict[str, tuple[WeightSpec, LayerInstance]]:
    out: dict[str, tuple[WeightSpec, LayerInstance]] = {}
    for inst in layer_instances(network):
        for weight, spec in inst.weights().items():
            key = f"{inst.name}.{weight}"
            if key in out:  # two instances with one name: a bug upstream of us
                raise ValueError(f"weight key {key!r} is produced twice")
            out[key] = (spec, inst)
    return out


# Initial values -------------------------------------------------------------------------------


def init_weights(network: Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh weights for `network`, PyTorch's default initialization, float32."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return {key: init_array(spec, seed, key) for key, spec in network_weight_specs(network).items()}


# Files ----------------------------------------------------------------------------------------


def save_weights(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a safetensors file atomically (a temporary file beside `path`, then a rename)."""
    from safetensors.numpy import save

    from neuralc.fileio import write_atomic

    tensors = {key: np.asarray(value, order="C") for key, value in arrays.items()}
    write_atomic(path, save(tensors, metadata={"format": FORMAT}))


def load_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Read a safetensors file; a missing or unreadable file is a `CompileError`."""
    from safetensors.numpy import load_file

    target = Path(path)
    if target.is_dir():
        raise error(
            f"weights file '{target}' is a directory",
            None,
            "give the .safetensors file itself, e.g. written by `neuralc init`",
        )
    if not target.is_file():
        raise CompileError(
            Diagnostic(
                f"weights file '{target}' does not exist",
                None,
                "error",
                ("create one with `neuralc init MODEL --seed 0 -o WEIGHTS.safetensors`",),
            )
        )
    try:
        return dict(load_file(str(target)))
    except Exception as exc:  # safetensors raises its own error types, and OSError
        raise CompileError(
            Diagnostic(
                f"cannot read weights file '{target}': {exc}",
                None,
                "error",
                ("the file must be a safetensors file, e.g. written by `neuralc init`",),
            )
        ) from None


def check_weights(
    network: Network, arrays: Mapping[str, np.ndarray], source: str | Path = "the weights file"
) -> None:
    """Raise a `CompileError` unless `arrays` holds exactly the network's weights.

    Missing keys and shape mismatches are reported at the owning layer's source line; keys the
    network does not have are listed. Float arrays must be float32 (neuralc writes nothing
    else); BatchNorm's `num_batches_tracked` may also be an integer (as torch saves it).
    """
    owned = _owned_specs(network)
    diagnostics: list[Diagnostic] = []
    for key, (spec, inst) in owned.items():
        where = f"layer '{inst.name}' ({inst.spec.name})"
        if key not in arrays:
            diagnostics.append(
                Diagnostic(
                    f"weight '{key}' of {where} is missing from {source}",
                    inst.loc,
                    "error",
                    (f"expected an array of shape {_shape_text(spec.shape)}",),
                )
            )
            continue
        array = arrays[key]
        if tuple(array.shape) != tuple(spec.shape):
            diagnostics.append(
                Diagnostic(
                    f"weight '{key}' has shape {_shape_text(array.shape)} in {source}, but {where} "
                    f"needs {_shape_text(spec.shape)}",
                    inst.loc,
                    "error",
                    (
                        "the weights were made for a different version of the model; re-create them "
                        "with `neuralc init`",
                    ),
                )
            )
        elif array.dtype != np.float32 and not (
            not spec.trainable and np.issubdtype(array.dtype, np.integer)
        ):
            diagnostics.append(
                Diagnostic(
                    f"weight '{key}' is {array.dtype} in {source}, but neuralc weights are float32",
                    inst.loc,
                    "error",
                    ("convert the file's arrays to float32",),
                )
            )
    unexpected = [key for key in arrays if key not in owned]
    if unexpected:
        shown = ", ".join(f"'{k}'" for k in unexpected[:MAX_DIAGNOSTICS])
        more = len(unexpected) - MAX_DIAGNOSTICS
        diagnostics.append(
            Diagnostic(
                f"{source} has {len(unexpected)} weight(s) that network '{network.name}' does not "
                f"have: {shown}" + (f" and {more} more" if more > 0 else ""),
                primary_loc(network.loc),
                "error",
                ("was the file made for another model or network?",),
            )
        )
    if diagnostics:
        if len(diagnostics) > MAX_DIAGNOSTICS + 1:
            rest = len(diagnostics) - MAX_DIAGNOSTICS
            diagnostics = diagnostics[:MAX_DIAGNOSTICS]
            diagnostics[-1].notes += (f"{rest} more problem(s) with the weights not shown",)
        raise CompileError(diagnostics)


def load_checked_weights(network: Network, path: str | Path) -> dict[str, np.ndarray]:
    """`load_weights` + `check_weights`; arrays come back as float32."""
    arrays = load_weights(path)
    check_weights(network, arrays, f"'{path}'")
    return {key: value.astype(np.float32, copy=False) for key, value in arrays.items()}


def _shape_text(shape: tuple[int, ...] | Any) -> str:
    dims = tuple(int(d) for d in shape)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


# Documentation --------------------------------------------------------------------------------


def weights_doc_table() -> str:
    """The per-layer table of docs/weights.md, from the registry's worked examples."""
    from neuralc.layers.binding import bind
    from neuralc.layers.families import EXAMPLES
    from neuralc.layers.families.common import dsl_call

    lines = ["| layer (example) | weight | shape | initializer |", "| --- | --- | --- | --- |"]
    for spec in all_layers():
        if spec.name not in EXAMPLES:
            continue
        args, inputs = EXAMPLES[spec.name]
        attrs = bind(spec, args)
        variants = [(dsl_call(spec.name, args), attrs, inputs)]
        if "cross_attention" in attrs:
            variants.append(
                (
                    dsl_call(spec.name, args) + " after an encoder",
                    {**attrs, "cross_attention": True},
                    [inputs[0], inputs[0]],
                )
            )
        for title, variant_attrs, variant_inputs in variants:
            weights = spec.weights(variant_attrs, list(variant_inputs))
            where = f"`{title}` on `{variant_inputs[0]}`"
            if not weights:
                lines.append(f"| {where} | (none) | | |")
                continue
            for index, (name, w) in enumerate(weights.items()):
                init = w.init + ("" if w.trainable else " (buffer)")
                shape = "[" + ", ".join(str(d) for d in w.shape) + "]"
                lines.append(f"| {where if index == 0 else ''} | `{name}` | {shape} | {init} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(weights_doc_table(), end="")
