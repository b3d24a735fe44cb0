"""Well-formedness of the pieces an op is made of: tensor types, attribute values, locations.

Separate from the verifier's walk over a network (`verifier`) because these checks look at one
value in isolation, with no notion of ops, blocks or visibility: each returns why the piece is
malformed (as a message fragment) or None, and the verifier attaches the op and place.
"""

from __future__ import annotations

import re

from neuralc.diagnostics import SourceLocation
from neuralc.ir.core import FusedLoc, Location
from neuralc.ir.printer import quote
from neuralc.ir.types import (
    DTYPES,
    HPO_KINDS,
    INT64_MAX,
    Attr,
    CallAttr,
    HPOAttr,
    TensorType,
    fits_int64,
)

SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def type_problem(type_: object) -> str | None:
    if not isinstance(type_, TensorType):
        return f"{type_!r} is not a TensorType"
    if type_.dtype not in DTYPES:
        return f"unknown dtype {type_.dtype!r}"
    if not isinstance(type_.shape, tuple):
        return f"the shape {type_.shape!r} is not a tuple"
    for dim in type_.shape:
        if isinstance(dim, bool) or not isinstance(dim, int | str):
            return f"dimension {dim!r} is neither an int nor a symbol"
        if isinstance(dim, int) and dim < 1:
            # The frontend never makes an empty dimension, and the backends' shape checks treat
            # a 0-sized weight or feature axis as an error, so the IR has none either.
            return f"dimension {dim} is {'zero' if dim == 0 else 'negative'}: sizes are at least 1"
        if isinstance(dim, int) and not fits_int64(dim):
            return f"dimension {_short(dim)} does not fit in a 64-bit integer"
        if isinstance(dim, str) and not SYMBOL.fullmatch(dim):
            return f"dimension {dim!r} is not a symbol (an identifier like N)"
    return None


def attr_problem(value: Attr) -> str | None:
    """Why `value` cannot be an attribute value (the printer could not print it), or None."""
    if value is None or isinstance(value, bool | int | float | str):
        return None
    if isinstance(value, tuple):
        return _first(attr_problem(v) for v in value)
    if isinstance(value, dict):
        if any(not isinstance(k, str) for k in value):
            return f"dict keys must be strings: {list(value)!r}"
        return _first(attr_problem(v) for v in value.values())
    if isinstance(value, HPOAttr | CallAttr):
        what = f"hpo.{value.kind}" if isinstance(value, HPOAttr) else f"call {value.name!r}"
        if not isinstance(value.args, tuple) or not isinstance(value.kwargs, tuple):
            return f"{what}: args and kwargs must be tuples"
        if any(not (isinstance(kw, tuple) and len(kw) == 2 and isinstance(kw[0], str))
               for kw in value.kwargs):
            return f"{what}: kwargs must be (name, value) pairs"
        if isinstance(value, HPOAttr):
            if value.kind not in HPO_KINDS:
                return f"unknown HPO kind {value.kind!r} (one of {', '.join(HPO_KINDS)})"
            if value.kind == "choice" and not value.args:
                return "hpo.choice needs at least one candidate"
            if value.kind != "choice" and (len(value.args) != 2 or not all(
                    isinstance(a, int | float) and not isinstance(a, bool) for a in value.args)):
                return f"hpo.{value.kind} needs two numeric bounds"
        elif not isinstance(value.name, str) or not value.name:
            return "a call attribute needs a name"
        return _first(attr_problem(v) for v in (*value.args, *(v for _, v in value.kwargs)))
    return f"a {type(value).__name__} is not an attribute value"


def int_range_problem(value: Attr) -> str | None:
    """Why an (otherwise well-formed) attribute value holds an integer outside the int64 range
    (no backend can hold it: numpy raises OverflowError), or None."""
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return None
    if isinstance(value, int):
        return None if fits_int64(value) else \
            f"the integer {_short(value)} does not fit in a 64-bit integer"
    items: tuple = ()
    if isinstance(value, tuple):
        items = value
    elif isinstance(value, dict):
        items = tuple(value.values())
    elif isinstance(value, HPOAttr | CallAttr):
        items = (*value.args, *(v for _, v in value.kwargs))
    return _first(int_range_problem(v) for v in items)


def loc_problem(loc: Location) -> str | None:
    locs = loc.locs if isinstance(loc, FusedLoc) else (loc,)
    if isinstance(loc, FusedLoc) and not locs:
        return "an empty fused location"
    for one in locs:
        if not (isinstance(one, SourceLocation) and isinstance(one.file, str)
                and _is_int(one.line) and _is_int(one.column)):
            return f"{one!r} is not a source location"
        if not all(1 <= n <= INT64_MAX for n in (one.line, one.column)):
            return (f"loc({quote(one.file)}:{_short(one.line)}:{_short(one.column)}): line and "
                    "column numbers start at 1")
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: int) -> str:
    """An int for a message; a huge one by its size (str() refuses ints past 4300 digits)."""
    return str(value) if value.bit_length() <= 128 else f"({value.bit_length()}-bit integer)"


def _first(items: object) -> str | None:
    return next((p for p in items if p is not None), None)  # type: ignore[attr-defined]
