"""Tensor types and attribute values of the IR.

A tensor type prints as `f32[N,512,768]`: dtype, then the shape. A dimension is an int or a
symbol (an identifier): `N` is the batch, other symbols are dynamic dimensions that the user left
as None. Two equal symbols in one network are the same size at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

Dim: TypeAlias = int | str
BATCH = "N"

# Integers in the IR (sizes, attribute values, locations) are signed 64-bit, as in every backend
# the IR lowers to: a larger one cannot be emitted, and numpy raises OverflowError on it.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


DTYPES = ("f64", "f32", "f16", "bf16", "i64", "i32", "i8", "bool")
FLOAT_DTYPES = ("f64", "f32", "f16", "bf16")
HPO_KINDS = ("choice", "range", "log_range")
# The name numpy, PyTorch, Keras and ONNX tooling use for each IR dtype.
FRAMEWORK_DTYPES = {
    "f64": "float64",
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "i64": "int64",
    "i32": "int32",
    "i8": "int8",
    "bool": "bool",
}


@dataclass(frozen=True, slots=True)
class TensorType:
    shape: tuple[Dim, ...]
    dtype: str = "f32"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}")

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def with_shape(self, shape: tuple[Dim, ...]) -> TensorType:
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(self.shape, dtype)

    @property
    def feature_shape(self) -> tuple[Dim, ...]:
        """The shape without the leading batch dimension (what the DSL and `--json` show)."""
        return self.shape[1:] if self.shape and self.shape[0] == BATCH else self.shape


@dataclass(frozen=True, slots=True)
class HPOAttr:
    """A hyperparameter left open in the IR: `hpo.choice(8, 12)`, `hpo.range(0.1, 0.3, step=0.05)`."""

    kind: str
    args: tuple[Attr, ...]
    kwargs: tuple[tuple[str, Attr], ...] = ()

    def candidates(self) -> tuple[Attr, ...]:
        """The values the search may take: every one of a choice or an integer range (the
        tuner draws integers, log-spaced or not, anywhere in [lo, hi]); for a float range with a
        step its grid; for a continuous range its end points."""
        if self.kind == "choice":
            return self.args
        lo, hi = self.args[0], self.args[1]
        step = dict(self.kwargs).get("step")
        if self.is_discrete:
            stride = 1 if self.kind == "log_range" or step is None else step
            return tuple(range(lo, hi + 1, stride)[:MAX_CANDIDATES])  # type: ignore[arg-type]
        if self.kind == "range" and isinstance(step, int | float) and step > 0:
            values: list[Attr] = []
            count = int(round((float(hi) - float(lo)) / float(step))) + 1  # type: ignore[arg-type]
            for i in range(min(count, MAX_CANDIDATES)):
                v = lo + i * step  # type: ignore[operator]
                if v > hi + 1e-12:  # type: ignore[operator]
                    break
                values.append(round(v, 12) if isinstance(v, float) else v)
            return tuple(values)
        return (lo, hi)

    def size(self) -> int:
        """How many values a discrete hyperparameter has (`candidates()` stops at
        MAX_CANDIDATES); for a continuous one, how many `candidates()` checking tries."""
        if self.kind == "choice":
            return len(self.args)
        if not self.is_discrete:
            return len(self.candidates())
        lo, hi = self.args[0], self.args[1]
        step = dict(self.kwargs).get("step")
        stride = 1 if self.kind == "log_range" or step is None else step
        # The count of range(lo, hi + 1, stride), by arithmetic: len() of a range raises
        # OverflowError past sys.maxsize values, which int64 bounds reach (-9e18 to 9e18).
        return max(0, (hi - lo) // stride + 1)  # type: ignore[operator]

    @property
    def is_discrete(self) -> bool:
        """Whether checking may enumerate it: choices and integer ranges (log-spaced too)."""
        if self.kind == "choice":
            return True
        step = dict(self.kwargs).get("step", 1)
        return all(isinstance(a, int) and not isinstance(a, bool) for a in (*self.args, step))


# Enumerating an integer range stops here (a search space this wide is not checked value by
# value anyway: see neuralc.frontend.check).
MAX_CANDIDATES = 10_000


@dataclass(frozen=True, slots=True)
class CallAttr:
    """A call used as a value: optimizers and learning-rate schedules."""

    name: str
    args: tuple[Attr, ...] = ()
    kwargs: tuple[tuple[str, Attr], ...] = ()


# Attribute values: plain Python scalars, tuples, and the two structured kinds above. Dict-valued
# attributes (train settings) map str to Attr.
Attr: TypeAlias = (
    int | float | str | bool | None | tuple["Attr", ...] | HPOAttr | CallAttr | dict[str, "Attr"]
)
