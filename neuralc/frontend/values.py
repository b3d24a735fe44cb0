"""AST expressions → IR attribute values.

HPO expressions become `HPOAttr`, unless the current trial fixes them, in which case the chosen
value stands in their place. A trial is keyed by the HPO node's source location: one `HPO(...)`
written once is one hyperparameter, even when a macro uses it several times.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from neuralc.diagnostics import SourceLocation, error
from neuralc.frontend import ast
from neuralc.ir.types import HPO_KINDS, INT64_MAX, Attr, CallAttr, HPOAttr, fits_int64

Trial = Mapping[SourceLocation, Attr]


def to_attr(expr: ast.Expr, trial: Trial | None = None) -> Attr:
    match expr:
        case ast.Literal(value=value):
            return value
        case ast.Name(name=name):
            return name
        case ast.TupleExpr(items=items) | ast.ListExpr(items=items):
            return tuple(to_attr(item, trial) for item in items)
        case ast.Call(name=name, args=args):
            positional = tuple(to_attr(a.value, trial) for a in args if a.name is None)
            named = tuple((a.name, to_attr(a.value, trial)) for a in args if a.name is not None)
            return CallAttr(name, positional, named)
        case ast.HPO(loc=loc):
            if trial is not None and loc in trial:
                return trial[loc]
            return hpo_attr(expr)  # type: ignore[arg-type]
    raise TypeError(f"not an expression: {expr!r}")


def hpo_attr(node: ast.HPO) -> HPOAttr:
    """Check an HPO expression's form and convert it."""
    if node.kind not in HPO_KINDS:
        raise error(
            f"unknown HPO search space '{node.kind}'",
            node.loc,
            "use choice(a, b, ...), range(lo, hi, step=s) or log_range(lo, hi)",
        )
    args = tuple(to_attr(a.value) for a in node.args if a.name is None)
    kwargs = tuple((a.name, to_attr(a.value)) for a in node.args if a.name is not None)
    for name, _ in kwargs:
        if node.kind != "range" or name != "step":
            raise error(f"HPO {node.kind}() takes no argument '{name}'", node.loc)
    if any(isinstance(a, HPOAttr) for a in args):
        raise error("HPO expressions cannot be nested", node.loc)
    if node.kind == "choice":
        if not args:
            raise error("HPO choice() needs at least one value", node.loc)
    else:
        if len(args) != 2 or not all(_is_number(a) for a in args):
            raise error(f"HPO {node.kind}() takes two numbers: (low, high)", node.loc)
        lo, hi = args
        if lo > hi:  # type: ignore[operator]
            raise error(f"HPO {node.kind}() has low {lo} above high {hi}", node.loc)
        if node.kind == "log_range" and lo <= 0:  # type: ignore[operator]
            raise error("HPO log_range() needs a positive low end", node.loc)
        step = dict(kwargs).get("step")
        if step is not None and (not _is_number(step) or step <= 0):  # type: ignore[operator]
            raise error("HPO range() step must be a positive number", node.loc)
        for bound in (*args, *(() if step is None else (step,))):
            if isinstance(bound, int) and not fits_int64(bound):
                raise error(f"HPO {node.kind}() bound {show(bound)} does not fit in a 64-bit "
                            "integer", node.loc, f"integers are at most 2**63 - 1 = {INT64_MAX:,}")
    return HPOAttr(node.kind, args, kwargs)


def _is_number(value: Attr) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def expr_loc(expr: ast.Expr) -> SourceLocation:
    return expr.loc


def show(value: Attr) -> str:
    """`value` as the user would write it in the DSL, for diagnostics: `true`, `"x"`, `(28, 1)`,
    `HPO(choice(28, 32))`, `Adam(learning_rate=0.1)`. A message quoting Python's repr
    (`True`, `'x'`, `HPOAttr(kind=...)`) would show the user a language they never wrote."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "None"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(show(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, HPOAttr):
        return f"HPO({value.kind}({_show_args(value.args, value.kwargs)}))"
    if isinstance(value, CallAttr):
        return f"{value.name}({_show_args(value.args, value.kwargs)})"
    if isinstance(value, dict):
        return "{ " + " ".join(f"{k}: {show(v)}" for k, v in value.items()) + " }"
    return str(value)


def _show_args(args: tuple[Attr, ...], kwargs: tuple[tuple[str, Attr], ...]) -> str:
    return ", ".join([*(show(a) for a in args), *(f"{k}={show(v)}" for k, v in kwargs)])
