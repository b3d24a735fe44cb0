"""The weights of a tensor/kernel-stage network for the functional PyTorch module: the
parameter and buffer tables (shapes and initial values), constants as tensors, and the weight
file check of `build --weights`.

Keys are the `tensor.weight` ops' keys; BatchNorm's `num_batches_tracked`, which no op reads, is
added beside each `running_mean` buffer so the weight file loads with `strict=True`. Initial
values (used only without a weight file) follow PyTorch's defaults for the layer a weight came
from, judged by the op that reads it: U(±1/sqrt(fan_in)) for linear and convolution weights and
biases, ones/zeros for norms, N(0, 1) for embeddings, U(±1/sqrt(hidden)) for recurrent layers,
Xavier for packed attention projections.
"""

from __future__ import annotations

from math import prod
from pathlib import Path

from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.ir.core import Network, Operation, Value, primary_loc
from neuralc.ir.types import TensorType
from neuralc.lower.pytorch.codegen import quote, torch_dtype
from neuralc.lower.pytorch.tensor_ops import fan_in_bound, literal

COUNT = "num_batches_tracked"


def weight_table(ops: list[Operation]) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Parameters and buffers of the `tensor.weight` ops among `ops` (a network's): key ->
    (shape, initial value), in program order."""
    inits = _initializers(ops)
    params: dict[str, tuple] = {}
    buffers: dict[str, tuple] = {}
    for op in ops:
        if op.op != "tensor.weight":
            continue
        key, shape = str(op.attrs["key"]), tuple(op.result.type.shape)
        trainable = op.attrs.get("trainable", True)
        init = _by_name(key, shape) or inits.get(key) or _default(shape, key)
        (params if trainable else buffers)[key] = (shape, init)
        if not trainable and key.endswith(".running_mean"):
            buffers[key.removesuffix("running_mean") + COUNT] = ((), "count")
    return params, buffers


def owner(key: str, ops: list[Operation]) -> Operation | None:
    """The `tensor.weight` op of `key` (of the running mean for `num_batches_tracked`)."""
    by_key = {str(op.attrs["key"]): op for op in ops if op.op == "tensor.weight"}
    return by_key.get(key) or by_key.get(key.removesuffix(COUNT) + "running_mean")


def shape_text(shape: tuple) -> str:
    return (
        "()"
        if not shape
        else f"({', '.join(str(d) for d in shape)},)"
        if len(shape) == 1
        else f"({', '.join(str(d) for d in shape)})"
    )


def constant_value(op: Operation) -> str:
    t: TensorType = op.result.type
    value = op.attrs["value"]
    dtype = f"torch.{torch_dtype(t)}"
    if isinstance(value, str):
        return (
            f"torch.frombuffer(bytearray(base64.b64decode({quote(value)})), "
            f"dtype={dtype}).reshape({shape_text(tuple(t.shape))})"
        )
    if isinstance(value, tuple):
        return f"torch.tensor({value!r}, dtype={dtype})"
    return f"torch.full({shape_text(tuple(t.shape))}, {literal(value)}, dtype={dtype})"


def _initializers(ops: list[Operation]) -> dict[str, float | str]:
    """Each weight's initial value by how its first user reads it: PyTorch's defaults for the
    layer it came from (used only when no weight file is loaded)."""
    keys = {id(op.result): str(op.attrs["key"]) for op in ops if op.op == "tensor.weight"}
    out: dict[str, float | str] = {}

    def give(v: Value, init: float | str) -> None:
        if id(v) in keys:
            out.setdefault(keys[id(v)], init)

    for op in ops:
        o, shapes = op.operands, [tuple(v.type.shape) for v in op.operands]
        if op.op in ("tensor.linear", "tensor.conv", "tensor.conv_transpose") and len(o) > 1:
            for v in o[1:]:
                give(v, fan_in_bound(shapes[1]))  # type: ignore[arg-type]
        elif op.op in ("tensor.layer_norm", "tensor.batch_norm", "kernel.add_layernorm"):
            first = 2 if op.op == "kernel.add_layernorm" else 1
            for v, init in zip(o[first:], ("ones", "zeros", "zeros", "ones"), strict=False):
                give(v, init)
        elif op.op == "tensor.gather":
            give(o[0], "normal")
        elif op.op in ("tensor.lstm", "tensor.gru", "tensor.rnn"):
            for v in o[1:]:
                give(v, round(1.0 / float(op.attrs["hidden_size"]) ** 0.5, 8))  # type: ignore[arg-type]
        elif op.op == "kernel.attention":
            w_in, b_in, w_out, b_out = o[-4:]
            rows, cols = shapes[-4]
            give(w_in, round((6.0 / (rows + cols)) ** 0.5, 8))  # type: ignore[operator]
            give(w_out, fan_in_bound(shapes[-2]))  # type: ignore[arg-type]
            give(b_in, "zeros")
            give(b_out, "zeros")
        elif op.op == "kernel.ffn":
            for v in o[1:3]:
                give(v, fan_in_bound(shapes[1]))  # type: ignore[arg-type]
            for v in o[3:5]:
                give(v, fan_in_bound(shapes[3]))  # type: ignore[arg-type]
        elif op.op == "kernel.bias_act":
            src = o[0].owner  # the bias of a linear or convolution without one
            if isinstance(src, Operation) and src.op in ("tensor.linear", "tensor.conv"):
                give(o[1], fan_in_bound(tuple(src.operands[1].type.shape)))  # type: ignore[arg-type]
    return out


KERAS_ATTENTION = ("query", "key", "value", "attention_output")


def _by_name(key: str, shape: tuple) -> float | str | None:
    """Attention weights, whose users (a packed projection, Keras kernels reshaped) do not
    tell: Xavier for `in_proj_weight`, zero biases, Keras' glorot for MultiHeadAttention."""
    parent, _, name = key.rpartition(".")
    if name == "in_proj_weight" and len(shape) == 2:
        return round((6.0 / (shape[0] + shape[1])) ** 0.5, 8)
    if name == "in_proj_bias" or key.endswith("out_proj.bias"):
        return "zeros"
    if parent.rpartition(".")[2] in KERAS_ATTENTION and name in ("kernel", "bias"):
        if name == "bias" or len(shape) < 3:
            return "zeros"
        receptive = prod(shape[:-2])
        return round((6.0 / ((shape[-2] + shape[-1]) * receptive)) ** 0.5, 8)
    return None


def _default(shape: tuple, key: str) -> float | str:
    if key.endswith("running_var"):
        return "ones"
    return fan_in_bound(shape) if len(shape) >= 2 else "zeros"


def check_functional_weights(network: Network, path: str | Path) -> None:
    """`build --weights` for a tensor/kernel-stage network: the file holds exactly its
    `tensor.weight` keys (and BatchNorm's `num_batches_tracked`) with their shapes."""
    from neuralc.lower.weights import load_weights

    arrays = load_weights(path)
    ops = [op for op in network.body.ops if op.op != "return"]
    params, buffers = weight_table(ops)
    problems: list[Diagnostic] = []
    for key, (shape, _) in {**params, **buffers}.items():
        op = owner(key, ops)
        loc = primary_loc(op.loc) if op is not None else None
        if key not in arrays:
            problems.append(
                Diagnostic(
                    f"weight '{key}' is missing from '{path}'",
                    loc,
                    "error",
                    (f"expected an array of shape {shape_text(shape)}",),
                )
            )
        elif tuple(arrays[key].shape) != tuple(shape):
            problems.append(
                Diagnostic(
                    f"weight '{key}' has shape {shape_text(tuple(arrays[key].shape))} in '{path}', but "
                    f"the network needs {shape_text(shape)}",
                    loc,
                    "error",
                    ("re-create the weights with `neuralc init`",),
                )
            )
    extra = [k for k in arrays if k not in params and k not in buffers]
    if extra:
        problems.append(
            Diagnostic(
                f"'{path}' has {len(extra)} weight(s) that network '{network.name}' does not have: "
                + ", ".join(f"'{k}'" for k in extra[:10]),
                primary_loc(network.loc),
                "error",
                ("was the file made for another model or network?",),
            )
        )
    if problems:
        raise CompileError(problems)


def placement_groups(devices: dict[str, str]) -> dict[str, str]:
    """Where each tensor (key -> device) lives, as the shortest key prefixes whose tensors all
    share one device (`{"transformer_encoder.0": "cuda:0", "output": "cpu"}`)."""
    seen: dict[str, set[str]] = {}
    for key, device in devices.items():
        parts = key.split(".")
        for i in range(1, len(parts) + 1):
            seen.setdefault(".".join(parts[:i]), set()).add(device)
    out: dict[str, str] = {}
    for key, device in devices.items():
        parts = key.split(".")
        prefix = next(
            p for i in range(1, len(parts) + 1) if len(seen[p := ".".join(parts[:i])]) == 1
        )
        out.setdefault(prefix, device)
    return out
