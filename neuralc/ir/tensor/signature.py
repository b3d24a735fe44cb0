"""The machinery of the shape-inferred dialects (`tensor`, `kernel`): attribute kinds, op
signatures, registration (`define`), type inference (`infer_type`) and shape helpers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from neuralc.ir.core import OpDef, Operation, VerifyError, register_op
from neuralc.ir.types import Attr, Dim, HPOAttr, TensorType
from neuralc.layers.families import dims

# Elementwise activations of `tensor.activation` (and the kernels' `activation` attribute).
ACTIVATION_KINDS = ("linear", "relu", "gelu", "tanh", "sigmoid", "elu", "selu", "leaky_relu",
                    "silu", "softplus", "softsign", "hard_sigmoid")

# -- attribute kinds: (description, predicate) -------------------------------------------------

Kind = tuple[str, Callable[[Attr], bool]]


def is_int(v: Attr) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Attr) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _hpo_of(pred: Callable[[Attr], bool]) -> Callable[[Attr], bool]:
    return lambda v: pred(v) or (isinstance(v, HPOAttr) and bool(v.candidates())
                                 and all(pred(c) for c in v.candidates()))


INT: Kind = ("an int", is_int)
FLOAT: Kind = ("a number", is_num)
FLOAT_HPO: Kind = ("a number (HPO ok)", _hpo_of(is_num))
BOOL: Kind = ("a bool", lambda v: isinstance(v, bool))
STR: Kind = ("a string", lambda v: isinstance(v, str) and bool(v))
INTS: Kind = ("a tuple of ints", lambda v: isinstance(v, tuple) and all(is_int(x) for x in v))
PADS: Kind = ('a tuple of ints or "same_upper"',
              lambda v: v == "same_upper" or INTS[1](v))
ACT: Kind = (f"one of {', '.join(ACTIVATION_KINDS)} (HPO ok)",
             _hpo_of(lambda v: v in ACTIVATION_KINDS))
ANY: Kind = ("any value", lambda v: True)
REQUIRED = object()

Infer = Callable[[dict[str, Attr], list[TensorType], TensorType | None], TensorType]


@dataclass(frozen=True)
class Signature:
    """Operand count range (max None: variadic), attributes (kind, default or REQUIRED), and
    the shape rule."""

    operands: tuple[int, int | None]
    attrs: dict[str, tuple[Kind, object]]
    infer: Infer


SIGNATURES: dict[str, Signature] = {}


def define(name: str, doc: str, operands: int | tuple[int, int | None],
           attrs: dict[str, tuple[Kind, object]], infer: Infer,
           traits: set[str] | None = None) -> None:
    """Register an op of this shape-inferred kind (also used by `neuralc.ir.kernel`); `traits`
    as `OpDef.traits` ("weights", "random", "side_effects")."""
    lo, hi = (operands, operands) if isinstance(operands, int) else operands
    sig = Signature((lo, hi), attrs, infer)
    SIGNATURES[name] = sig

    def verify(op: Operation) -> None:
        declared = op.results[0].type if len(op.results) == 1 else None
        inferred = infer_type(name, [v.type for v in op.operands], op.attrs, declared)
        if declared is not None and inferred != declared:
            raise VerifyError(f"result type {declared} does not match the type inferred from "
                              f"its operands and attributes, {inferred}", op)

    register_op(OpDef(name, doc.strip("\n"), num_operands=lo if lo == hi else None,
                      num_results=1, verify=verify, traits=frozenset(traits or ())))


def check_attrs(name: str, attrs: dict[str, Attr]) -> dict[str, Attr]:
    """The attributes with defaults filled in; VerifyError on unknown, missing or ill-kinded."""
    spec = SIGNATURES[name].attrs
    for key in attrs:
        if key not in spec:
            allowed = ", ".join(spec) or "none"
            raise VerifyError(f"unexpected attribute '{key}' (allowed: {allowed})")
    full: dict[str, Attr] = {}
    for key, ((what, pred), default) in spec.items():
        if key not in attrs:
            if default is REQUIRED:
                raise VerifyError(f"missing attribute '{key}' ({what})")
            full[key] = default  # type: ignore[assignment]
        elif not pred(attrs[key]):
            raise VerifyError(f"attribute '{key}' must be {what}, got {attrs[key]!r}")
        else:
            full[key] = attrs[key]
    return full


def infer_type(name: str, operand_types: Sequence[TensorType], attrs: dict[str, Attr],
               declared: TensorType | None = None) -> TensorType:
    """The result type of op `name`; raises VerifyError (without an op) when ill-typed."""
    sig = SIGNATURES[name]
    lo, hi = sig.operands
    n = len(operand_types)
    if n < lo or (hi is not None and n > hi):
        want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
        raise VerifyError(f"takes {want} operand(s), got {n}")
    return sig.infer(check_attrs(name, attrs), list(operand_types), declared)


def attr(op: Operation, key: str) -> Attr:
    """An attribute of a tensor/kernel op, or its documented default."""
    if key in op.attrs:
        return op.attrs[key]
    default = SIGNATURES[op.op].attrs[key][1]
    if default is REQUIRED:
        raise KeyError(f"{op.op} has no attribute '{key}'")
    return default  # type: ignore[return-value]


# -- shape helpers ----------------------------------------------------------------------------


def fail(message: str) -> VerifyError:
    return VerifyError(message)


def rank_at_least(t: TensorType, n: int, what: str) -> None:
    if t.rank < n:
        raise fail(f"{what} must have rank >= {n}, got {t}")


def same_dtype(types: Sequence[TensorType]) -> None:
    if len({t.dtype for t in types}) > 1:
        raise fail("operand dtypes differ: " + ", ".join(str(t) for t in types))


def norm_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise fail(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def broadcast(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """numpy broadcasting; a symbol only matches itself (or 1)."""
    out: list[Dim] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise fail(f"shapes [{_dims(a)}] and [{_dims(b)}] do not broadcast")
    return tuple(reversed(out))


def _dims(shape: Sequence[Dim]) -> str:
    return ",".join(str(d) for d in shape)


def expect_shape(t: TensorType, shape: tuple[Dim, ...], what: str) -> None:
    if t.shape != shape:
        raise fail(f"{what} must have shape [{_dims(shape)}], got {t}")


def static(d: Dim, what: str) -> int:
    if not isinstance(d, int):
        raise fail(f"{what} must be static, got the symbol {d}")
    return d


def spatial_out(d: Dim, k_eff: int, s: int, pads: object, axis: int, rank: int) -> Dim:
    """One window axis (conv/pool): explicit (begin..., end...) pads or "same_upper"."""
    if pads == "same_upper":
        return dims.window(d, k_eff, s, "same")
    pb, pe = pads[axis], pads[axis + rank]  # type: ignore[index]
    if isinstance(d, str):
        return dims.window(d if pb + pe == 0 else dims.padded(d, pb + pe), k_eff, s, "valid")
    if d + pb + pe < k_eff:
        raise fail(f"window {k_eff} does not fit the padded size {d + pb + pe}")
    return (d + pb + pe - k_eff) // s + 1


def window_attrs(a: dict[str, Attr], rank: int, kernel: Sequence[int]) -> None:
    for key in ("strides", "dilations", "kernel"):
        if key in a and a[key] != () and len(a[key]) != rank:  # type: ignore[arg-type]
            raise fail(f"'{key}' needs {rank} entries, got {a[key]}")
    if a["pads"] != "same_upper" and len(a["pads"]) != 2 * rank:  # type: ignore[arg-type]
        raise fail(f"'pads' needs {2 * rank} entries (begins, then ends), got {a['pads']}")
    if any(k < 1 for k in kernel):
        raise fail(f"window sizes must be >= 1, got {tuple(kernel)}")


def ones(a: Attr, rank: int) -> tuple[int, ...]:
    return a if a else (1,) * rank  # type: ignore[return-value]


