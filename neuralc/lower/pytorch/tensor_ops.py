"""One PyTorch expression per `tensor` / `kernel` op (docs/dialects.md, "What emitters must
implement"): `expression(site)` returns the right-hand side of the op's forward statement.
The `kernel` ops register theirs from `kernel_ops.py`.

Operands arrive as expressions (`site.args`): a variable, a weight path (`self.dense.weight`), a
literal for a scalar constant, or a constant buffer. Layouts are the IR's: batch-first and
channels-last, except the windowed ops, which are channels-first like ONNX and torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from math import prod

from neuralc.ir.core import Operation, Value
from neuralc.ir.tensor import attr
from neuralc.ir.types import HPOAttr
from neuralc.lower.pytorch.layers import py

# Elementwise activations (tensor.activation, kernel.bias_act) as expressions over `{}`.
ACTIVATIONS: dict[str, str] = {
    "linear": "{}",
    "relu": "F.relu({})",
    "gelu": "F.gelu({})",  # exact (erf)
    "tanh": "torch.tanh({})",
    "sigmoid": "torch.sigmoid({})",
    "elu": "F.elu({})",
    "selu": "F.selu({})",
    "leaky_relu": "F.leaky_relu({}, {alpha})",
    "silu": "F.silu({})",
    "softplus": "F.softplus({})",
    "softsign": "F.softsign({})",
    "hard_sigmoid": "F.hardsigmoid({})",  # relu6(x + 3) / 6
}


@dataclass
class Site:
    """One op being emitted: its operand expressions and the helpers its expression calls."""

    op: Operation
    args: list[str]
    helpers: set[str] = field(default_factory=set)
    training: str = "self.training"

    def attr(self, key: str) -> object:
        """An attribute (or its default); an open hyperparameter at its first candidate, as
        the shape rules and the nn path use it."""
        value = attr(self.op, key)
        return value.candidates()[0] if isinstance(value, HPOAttr) else value

    def splat(self, index: int) -> object:
        """The value of operand `index` when it is a splat `tensor.constant`, else None."""
        if index >= len(self.op.operands):
            return None
        return splat_value(self.op.operands[index])

    def optional(self, index: int, neutral: float) -> str:
        """Operand `index`, or "None" when it is absent or a splat of `neutral` (a norm's
        gamma 1.0 / beta 0.0, a bias 0.0): the torch functions skip it then."""
        if index >= len(self.args) or self.splat(index) == neutral:
            return "None"
        return self.args[index]


def splat_value(value: Value) -> object:
    owner = value.owner
    if isinstance(owner, Operation) and owner.op == "tensor.constant":
        v = owner.attrs.get("value")
        if isinstance(v, int | float) and not isinstance(v, bool):
            return v
    return None


def literal(value: object) -> str:
    if isinstance(value, float) and value != value:
        return 'float("nan")'
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return 'float("inf")' if value > 0 else 'float("-inf")'
    return py(value)


def _rank(site: Site, index: int = 0) -> int:
    return site.op.operands[index].type.rank


def _axis(site: Site, axis: int, index: int = 0) -> int:
    return axis % _rank(site, index) if _rank(site, index) else 0


def _dims(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(values) == 1 else py(tuple(values))


Expr = Callable[[Site], str]
EXPRESSIONS: dict[str, Expr] = {}


def expr(*names: str) -> Callable[[Expr], Expr]:
    def register(fn: Expr) -> Expr:
        for name in names:
            EXPRESSIONS[name] = fn
        return fn

    return register


def expression(site: Site) -> str:
    fn = EXPRESSIONS.get(site.op.op)
    if fn is None:
        from neuralc.diagnostics import error
        from neuralc.ir.core import primary_loc

        raise error(f"the PyTorch backend cannot express {site.op.op} (%{site.op.name})",
                    primary_loc(site.op.loc), "build at -O0 or -O1, which emit the nn layers")
    return fn(site)


# Elementwise ----------------------------------------------------------------------------------

for _op, _sym in (("add", "+"), ("sub", "-"), ("mul", "*"), ("div", "/")):
    EXPRESSIONS[f"tensor.{_op}"] = lambda s, sym=_sym: f"{s.args[0]} {sym} {s.args[1]}"


def activation(kind: object, x: str, alpha: object) -> str:
    return ACTIVATIONS[str(kind)].format(x, alpha=literal(alpha))


@expr("tensor.activation")
def _activation(s: Site) -> str:
    return activation(s.attr("kind"), s.args[0], s.attr("alpha"))


@expr("tensor.softmax")
def _softmax(s: Site) -> str:
    if s.attr("causal"):
        s.helpers.add("causal_softmax")
        return f"causal_softmax({s.args[0]})"
    return f"F.softmax({s.args[0]}, dim={s.attr('axis')})"


@expr("tensor.log_softmax")
def _log_softmax(s: Site) -> str:
    return f"F.log_softmax({s.args[0]}, dim={s.attr('axis')})"


@expr("tensor.dropout")
def _dropout(s: Site) -> str:
    return f"F.dropout({s.args[0]}, {literal(float(s.attr('rate')))}, {s.training})"  # type: ignore[arg-type]


# Linear algebra and normalization -------------------------------------------------------------


@expr("tensor.matmul")
def _matmul(s: Site) -> str:
    return f"torch.matmul({s.args[0]}, {s.args[1]})"


@expr("tensor.linear")
def _linear(s: Site) -> str:
    bias = s.optional(2, 0)
    return f"F.linear({s.args[0]}, {s.args[1]}" + ("" if bias == "None" else f", {bias}") + ")"


@expr("tensor.layer_norm")
def _layer_norm(s: Site) -> str:
    shape = s.op.operands[1].type.shape
    eps = literal(float(s.attr("eps")))  # type: ignore[arg-type]
    return (
        f"F.layer_norm({s.args[0]}, {py(tuple(shape))}, {s.optional(1, 1)}, "
        f"{s.optional(2, 0)}, {eps})"
    )


@expr("tensor.batch_norm")
def _batch_norm(s: Site) -> str:
    axis = _axis(s, int(s.attr("axis")))  # type: ignore[call-overload]
    x = s.args[0] if axis == 1 else f"{s.args[0]}.movedim({axis}, 1)"
    eps = literal(float(s.attr("eps")))  # type: ignore[arg-type]
    momentum = literal(float(s.attr("momentum")))  # type: ignore[arg-type]
    call = (
        f"F.batch_norm({x}, {s.args[3]}, {s.args[4]}, {s.optional(1, 1)}, {s.optional(2, 0)}, "
        f"{s.training}, {momentum}, {eps})"
    )
    return call if axis == 1 else f"{call}.movedim(1, {axis})"


# Shapes ---------------------------------------------------------------------------------------


@expr("tensor.reshape")
def _reshape(s: Site) -> str:
    x, source = s.args[0], s.op.operands[0].type.shape
    parts = []
    for i, size in enumerate(s.attr("shape")):  # type: ignore[attr-defined]
        if size == 0:
            parts.append(str(source[i]) if isinstance(source[i], int) else f"{x}.shape[{i}]")
        else:
            parts.append(str(size))
    return f"{x}.reshape({', '.join(parts)})"


@expr("tensor.transpose")
def _transpose(s: Site) -> str:
    return f"{s.args[0]}.permute{py(tuple(s.attr('perm')))}"  # type: ignore[arg-type]


@expr("tensor.concat")
def _concat(s: Site) -> str:
    return f"torch.cat([{', '.join(s.args)}], dim={s.attr('axis')})"


@expr("tensor.slice")
def _slice(s: Site) -> str:
    axis = _axis(s, int(s.attr("axis")))  # type: ignore[call-overload]
    window = f"{s.attr('start')}:{s.attr('end')}"
    if axis == _rank(s) - 1 and axis > 1:
        return f"{s.args[0]}[..., {window}]"
    return f"{s.args[0]}[{':, ' * axis}{window}]"


@expr("tensor.gather")
def _gather(s: Site) -> str:
    axis = _axis(s, int(s.attr("axis")))  # type: ignore[call-overload]
    data, ids = s.args
    if axis == 0 and _rank(s) == 2:
        return f"F.embedding({ids}, {data})"
    return f"{data}[{':, ' * axis}{ids}]"


@expr("tensor.pad")
def _pad(s: Site) -> str:
    pads, r = s.attr("pads"), _rank(s)
    widths = [p for i in reversed(range(r)) for p in (pads[i], pads[i + r])]  # type: ignore[index]
    while widths and widths[-1] == 0 and widths[-2] == 0:
        del widths[-2:]
    value = float(s.attr("value"))  # type: ignore[arg-type]
    extra = "" if value == 0.0 else f", value={literal(value)}"
    return f"F.pad({s.args[0]}, {py(tuple(widths))}{extra})"


@expr("tensor.resize")
def _resize(s: Site) -> str:
    scales = tuple(s.attr("scales"))  # type: ignore[arg-type]
    if s.attr("mode") == "linear":
        s.helpers.add("resize_linear")
        return f"resize_linear({s.args[0]}, {py(scales)})"
    out = s.args[0]
    for axis, scale in enumerate(scales):
        if scale != 1:
            out += f".repeat_interleave({scale}, dim={axis})"
    return out


@expr("tensor.reduce_mean", "tensor.reduce_max")
def _reduce(s: Site) -> str:
    method = "mean" if s.op.op.endswith("mean") else "amax"
    axes = tuple(sorted({_axis(s, a) for a in s.attr("axes")}))  # type: ignore[attr-defined]
    keep = ", keepdim=True" if s.attr("keepdims") else ""
    return f"{s.args[0]}.{method}(dim={_dims(axes)}{keep})"


# Windows --------------------------------------------------------------------------------------


def _pad_widths(pads: tuple[int, ...]) -> list[int]:
    r = len(pads) // 2
    return [p for i in reversed(range(r)) for p in (pads[i], pads[i + r])]


def _symmetric(pads: tuple[int, ...]) -> tuple[int, ...] | None:
    r = len(pads) // 2
    return pads[:r] if pads[:r] == pads[r:] else None


def _window_args(s: Site, r: int, names: tuple[str, ...]) -> list[str]:
    """`stride=...`, `dilation=...` keywords that differ from 1."""
    out = []
    for name, key in zip(("stride", "dilation"), names, strict=False):
        values = tuple(s.attr(key) or (1,) * r)  # type: ignore[arg-type]
        if any(v != 1 for v in values):
            out.append(f"{name}={_dims(values)}")
    return out


@expr("tensor.conv")
def _conv(s: Site) -> str:
    r = _rank(s) - 2
    x, pads = s.args[0], s.attr("pads")
    keywords = _window_args(s, r, ("strides", "dilations"))
    if pads == "same_upper":
        s.helpers.add("same_pad")
        kernel = tuple(s.op.operands[1].type.shape[2:])
        strides = tuple(s.attr("strides") or (1,) * r)  # type: ignore[arg-type]
        dilations = tuple(s.attr("dilations") or (1,) * r)  # type: ignore[arg-type]
        x = f"same_pad({x}, {py(kernel)}, {py(strides)}, {py(dilations)})"
    elif any(pads):  # type: ignore[arg-type]
        same = _symmetric(pads)  # type: ignore[arg-type]
        if same is not None:
            keywords.append(f"padding={_dims(same)}")
        else:
            x = f"F.pad({x}, {py(tuple(_pad_widths(pads)))})"  # type: ignore[arg-type]
    if s.attr("groups") != 1:
        keywords.append(f"groups={s.attr('groups')}")
    bias = s.optional(2, 0)
    operands = [x, s.args[1], *([bias] if bias != "None" else [])]
    return f"F.conv{r}d({', '.join(operands + keywords)})"


@expr("tensor.conv_transpose")
def _conv_transpose(s: Site) -> str:
    s.helpers.add("conv_transpose")
    r = _rank(s) - 2
    strides = tuple(s.attr("strides") or (1,) * r)  # type: ignore[arg-type]
    pads, extra = s.attr("pads"), tuple(s.attr("output_padding"))  # type: ignore[arg-type]
    args = [s.args[0], s.args[1], s.optional(2, 0), py(strides), py(pads)]
    if any(extra):
        args.append(py(extra))
    return f"conv_transpose({', '.join(args)})"


@expr("tensor.max_pool")
def _max_pool(s: Site) -> str:
    r = _rank(s) - 2
    kernel = tuple(s.attr("kernel"))  # type: ignore[arg-type]
    strides = tuple(s.attr("strides") or (1,) * r)  # type: ignore[arg-type]
    x, pads = s.args[0], s.attr("pads")
    padding = ""
    if pads == "same_upper":
        s.helpers.add("same_pad")
        x = f'same_pad({x}, {py(kernel)}, {py(strides)}, value=float("-inf"))'
    elif any(pads):  # type: ignore[arg-type]
        same = _symmetric(pads)  # type: ignore[arg-type]
        if same is not None and all(p <= k // 2 for p, k in zip(same, kernel, strict=True)):
            padding = f", padding={_dims(same)}"
        else:
            widths = py(tuple(_pad_widths(pads)))  # type: ignore[arg-type]
            x = f'F.pad({x}, {widths}, value=float("-inf"))'
    return f"F.max_pool{r}d({x}, {_dims(kernel)}, {_dims(strides)}{padding})"


@expr("tensor.avg_pool")
def _avg_pool(s: Site) -> str:
    r = _rank(s) - 2
    kernel = tuple(s.attr("kernel"))  # type: ignore[arg-type]
    strides = tuple(s.attr("strides") or (1,) * r)  # type: ignore[arg-type]
    pads, include = s.attr("pads"), bool(s.attr("count_include_pad"))
    if pads != "same_upper" and not any(pads):  # type: ignore[arg-type]
        return f"F.avg_pool{r}d({s.args[0]}, {_dims(kernel)}, {_dims(strides)})"
    same = _symmetric(pads) if pads != "same_upper" else None  # type: ignore[arg-type]
    if same is not None and all(p <= k // 2 for p, k in zip(same, kernel, strict=True)):
        return (
            f"F.avg_pool{r}d({s.args[0]}, {_dims(kernel)}, {_dims(strides)}, "
            f"padding={_dims(same)}, count_include_pad={include})"
        )
    s.helpers.add("avg_pool")
    tail = ", count_include_pad=True" if include else ""
    return f"avg_pool({s.args[0]}, {py(kernel)}, {py(strides)}, {py(pads)}{tail})"


# Recurrent ------------------------------------------------------------------------------------


@expr("tensor.lstm", "tensor.gru", "tensor.rnn")
def _recurrent(s: Site) -> str:
    name = s.op.op.split(".")[1] + "_layer"
    s.helpers.add(name)
    extra = (
        []
        if name != "rnn_layer" or s.attr("activation") == "tanh"
        else [f"nonlinearity={py(s.attr('activation'))}"]
    )
    call = f"{name}({', '.join(s.args + extra)})"
    return call if s.attr("return_sequences") else f"{call}[:, -1]"


def fan_in_bound(shape: tuple[int, ...], dim: int = 1) -> float:
    """1 / sqrt(fan_in) with torch's fan_in: dimension `dim` times the receptive field."""
    fan = shape[dim] * prod(shape[2:]) if len(shape) > dim else 1
    return round(1.0 / max(fan, 1) ** 0.5, 8)
