"""`constant-fold`: evaluate ops whose operands are all constants, up to a bounded size.

A constant is `tensor.constant` (`neuralc.ir.tensor`): no operands, a static type, and `value`,
- a single number: every element (a splat; the only form of a rank-0 constant, `f32[]`),
- nested tuples in row-major order, `((1.0, 2.0), (3.0, 4.0))` for `f32[2,2]`,
- or a string, the base64 of the raw little-endian bytes in row-major order, for large data
  (written only when the dialect's verifier accepts it).

    %c = tensor.constant {value = ((1.0, 2.0), (3.0, 4.0))} -> f32[2,2] loc(...)

Folded here (numpy only): `tensor.add`, `tensor.sub`, `tensor.mul`, `tensor.div` (numpy
broadcasting), `tensor.neg`, `tensor.reshape` (to the result type), `tensor.transpose`
(attribute `perm`). The folded op becomes a `tensor.constant` in place (same name, location and
device). Left alone: results of more than `max-elements` elements, bf16 (numpy has none),
non-static shapes, results over `inline-limit` elements when base64 is not accepted, and anything
numpy cannot evaluate exactly as the emitted code would: an integer `tensor.div` whose quotient
is not exact (division by zero included: numpy would warn and give garbage, and truncating,
flooring and true division disagree) or does not fit the result type (INT_MIN / -1, which numpy
would wrap with an overflow warning), a float result cast to an integer type that is not finite,
and a constant whose value does not fit its type. A result whose elements are all equal (bit for
bit, so NaN splats stay splats and -0.0 stays apart from 0.0) is written as a splat. Constants
left unused are dce's.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from typing import Any

from neuralc.ir.core import Module, Operation
from neuralc.ir.types import Attr, TensorType
from neuralc.passes.base import Pass, PassContext, option, register_pass
from neuralc.passes.rewrite import producer

CONSTANT = "tensor.constant"
INLINE_LIMIT = 4096
NUMPY_DTYPES = {"f64": "float64", "f32": "float32", "f16": "float16", "i64": "int64",
                "i32": "int32", "i8": "int8", "bool": "bool"}
INTEGER_DTYPES = ("i64", "i32", "i8")


def static_shape(t: TensorType) -> tuple[int, ...] | None:
    if all(isinstance(d, int) and not isinstance(d, bool) for d in t.shape):
        return t.shape  # type: ignore[return-value]
    return None


def decode_constant(op: Operation) -> Any:
    """The numpy array of a `tensor.constant`, or None when it cannot be read."""
    import numpy as np

    t = op.results[0].type
    shape, dtype = static_shape(t), NUMPY_DTYPES.get(t.dtype)
    if shape is None or dtype is None:
        return None
    value = op.attrs.get("value")
    try:
        if isinstance(value, str):
            data = np.frombuffer(base64.b64decode(value), dtype=np.dtype(dtype).newbyteorder("<"))
            return data.astype(dtype).reshape(shape)
        array = np.array(value, dtype=dtype)
        if array.ndim == 0:
            return np.full(shape, array, dtype=dtype)
        return array.reshape(shape) if array.size == prod(shape) else None
    except (ValueError, TypeError, OverflowError):  # OverflowError: 2**70 as i64
        return None


def encode_constant(array: Any, inline_limit: int = INLINE_LIMIT,
                    base64_ok: bool = True) -> Attr | None:
    """A numpy array as a `value` attribute: a splat when every element is equal, tuples up
    to `inline_limit` elements, else base64 (None when that is not allowed)."""
    import numpy as np

    flat = np.ascontiguousarray(array.reshape(-1))
    if array.ndim == 0:
        return array.item()  # type: ignore[no-any-return]
    # Bit-for-bit equality: `==` says NaN != NaN (nan*nan would expand into a tuple) and
    # -0.0 == 0.0 (a splat would lose the sign).
    raw = flat.view(np.uint8).reshape(flat.size, -1)
    if flat.size > 0 and bool((raw == raw[0]).all()):
        return flat[0].item()  # type: ignore[no-any-return]
    if array.size <= inline_limit:
        return _tuples(array.tolist())
    if not base64_ok:
        return None
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return base64.b64encode(data).decode("ascii")


def accepts_base64() -> bool:
    """Whether the registered `tensor.constant` verifies a base64 `value`."""
    from neuralc.ir.core import OPS, VerifyError

    opdef = OPS.get(CONSTANT)
    if opdef is None or opdef.verify is None:
        return True
    probe = Operation(CONSTANT, "probe", [], [TensorType((2,), "f32")],
                      {"value": base64.b64encode(bytes(8)).decode("ascii")})
    try:
        opdef.verify(probe)
    except (VerifyError, TypeError, ValueError):
        return False
    return True


def _tuples(value: Any) -> Attr:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value  # type: ignore[no-any-return]


def _binary(fn_name: str) -> Callable[[Operation, list[Any]], Any]:
    def fold(op: Operation, args: list[Any]) -> Any:
        import numpy as np

        if len(args) != 2:
            return None
        with np.errstate(all="ignore"):
            return getattr(np, fn_name)(args[0], args[1])

    return fold


def _neg(op: Operation, args: list[Any]) -> Any:
    return -args[0] if len(args) == 1 else None


def _reshape(op: Operation, args: list[Any]) -> Any:
    shape = static_shape(op.results[0].type)
    if shape is None or args[0].size != prod(shape):
        return None
    return args[0].reshape(shape)


def _transpose(op: Operation, args: list[Any]) -> Any:
    perm = op.attrs.get("perm")
    if not isinstance(perm, tuple) or sorted(perm) != list(range(args[0].ndim)):  # type: ignore[type-var]
        return None
    return args[0].transpose(perm)


def _div(op: Operation, args: list[Any]) -> Any:
    import numpy as np

    if len(args) != 2:
        return None
    dtype = op.results[0].type.dtype
    if dtype in INTEGER_DTYPES:
        num, den = np.broadcast_arrays(args[0].astype("int64"), args[1].astype("int64"))
        # INT64_MIN // -1 overflows int64 itself (numpy warns and wraps to INT64_MIN), so it is
        # refused before dividing; like division by zero, the emitted op keeps its own meaning.
        if (den == 0).any() or ((num == np.iinfo("int64").min) & (den == -1)).any():
            return None
        # Only exact quotients: the emitters spell it `/` (true division), numpy's integer
        # division floors and C truncates, and they all agree only when the remainder is 0.
        if (num % den != 0).any():
            return None
        quotient = num // den
        # A quotient past the result type (INT32_MIN / -1 as i32) would wrap on the cast.
        info = np.iinfo(NUMPY_DTYPES[dtype])
        if ((quotient < info.min) | (quotient > info.max)).any():
            return None
        return quotient
    with np.errstate(all="ignore"):
        return np.divide(args[0], args[1])


FOLDERS: dict[str, Callable[[Operation, list[Any]], Any]] = {
    "tensor.add": _binary("add"),
    "tensor.sub": _binary("subtract"),
    "tensor.mul": _binary("multiply"),
    "tensor.div": _div,
    "tensor.neg": _neg,
    "tensor.reshape": lambda op, args: _reshape(op, args[:1]) if args else None,
    "tensor.transpose": _transpose,
}


def _castable(result: Any, dtype: str) -> bool:
    """Whether `result` converts to the numpy `dtype` without numpy's undefined cast (a float
    NaN, infinity or out-of-range value to an integer type gives INT_MIN and a RuntimeWarning).
    """
    import numpy as np

    if not np.issubdtype(np.dtype(dtype), np.integer) or not np.issubdtype(
            result.dtype, np.floating):
        return True
    info = np.iinfo(dtype)
    with np.errstate(all="ignore"):
        fits = np.isfinite(result) & (result >= info.min) & (result < -float(info.min))
    return bool(fits.all())


def fold_op(op: Operation, max_elements: int, inline_limit: int = INLINE_LIMIT,
            base64_ok: bool = True) -> bool:
    """Fold one op whose operands are all constants, in place; whether it did."""
    if op.op not in FOLDERS or len(op.results) != 1 or not op.operands or op.regions:
        return False
    t = op.results[0].type
    shape, dtype = static_shape(t), NUMPY_DTYPES.get(t.dtype)
    if shape is None or dtype is None or prod(shape) > max_elements:
        return False
    args = []
    for value in op.operands:
        source = producer(value)
        if source is None or source.op != CONSTANT:
            return False
        array = decode_constant(source)
        if array is None or array.size > max_elements:
            return False
        args.append(array)
    result = FOLDERS[op.op](op, args)
    if result is None or tuple(result.shape) != shape or not _castable(result, dtype):
        return False
    import numpy as np

    with np.errstate(all="ignore"):  # int overflow wraps, as the emitted integer ops do
        value = encode_constant(result.astype(dtype), inline_limit, base64_ok)
    if value is None:
        return False
    op.op = CONSTANT
    op.operands = []
    op.attrs = {"value": value}
    return True


@register_pass
@dataclass(frozen=True)
class ConstantFold(Pass):
    """Evaluate ops on constants (numpy), bounded by `max-elements`."""

    name = "constant-fold"
    description = "evaluate ops whose operands are constants (add, mul, reshape, transpose, ...)"
    min_level = 1
    max_elements: int = option(1_000_000, minimum=1)
    inline_limit: int = option(INLINE_LIMIT, minimum=0)

    def run(self, module: Module, ctx: PassContext) -> bool:
        changed = False
        base64_ok: bool | None = None
        for net in module.networks:
            if not any(op.op == CONSTANT for op in net.walk()):
                continue  # nothing to fold, and numpy stays unimported
            if base64_ok is None:
                base64_ok = accepts_base64()
            for op in net.walk():  # program order: a folded result feeds the next fold
                folded = op.op
                if fold_op(op, self.max_elements, self.inline_limit, base64_ok):
                    ctx.hit(f"constant-fold.{folded}")
                    changed = True
        return changed
