"""Layer parameters and values in words, for diagnostics and docs: a value as the DSL writes it,
a layer's signature, what a valid value of a parameter looks like (with an example), and the fix
for a value of the wrong kind.

Separate from argument binding (`binding`) because it decides nothing: binding judges a value,
this module only phrases the verdict, and the docs generator and the layer families' examples
use the same spellings without binding anything.
"""

from __future__ import annotations

from typing import Any

from neuralc.ir.types import CallAttr, HPOAttr, fits_int64
from neuralc.layers.spec import LayerSpec, Param, is_number


def signature(spec: LayerSpec) -> str:
    """`Dense(units, activation="linear", use_bias=true)`: the parameters in positional order."""
    parts = [p.name if p.required else f"{p.name}={format_value(p.default)}" for p in spec.params]
    return f"{spec.name}({', '.join(parts)})"


def format_value(value: Any) -> str:
    """A value as the DSL writes it."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        inner = ", ".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, CallAttr):
        args = [format_value(a) for a in value.args]
        args += [f"{k}={format_value(v)}" for k, v in value.kwargs]
        return f"{value.name}({', '.join(args)})"
    if isinstance(value, HPOAttr):
        args = [format_value(a) for a in value.args]
        args += [f"{k}={format_value(v)}" for k, v in value.kwargs]
        return f"HPO({value.kind}({', '.join(args)}))"
    return repr(value)


def num(value: float) -> str:
    """A bound or value for a message: `3`, not `3.0`, for an integral float."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


_KIND_WORDS = {
    "int": "an int", "float": "a number", "bool": "true or false", "str": "a string",
    "activation": "an activation name", "shape": "a tuple of ints", "any": "a value",
}


def expected_kind(param: Param) -> str:
    """The kind of value `param` takes, in words: "an int", "an int or a tuple of 2 ints"."""
    if param.kind == "ints":
        rank = param.rank or 1
        return "an int" if rank == 1 else f"an int or a tuple of {rank} ints"
    return _KIND_WORDS[param.kind]


def type_note(param: Param, value: Any) -> str | None:
    """The fix for a value of the wrong kind, from what was written."""
    if param.kind == "bool":
        if value in ("true", "false"):
            # Bare true/false are booleans already, so this one was quoted.
            return f"write {value} without quotes"
        if isinstance(value, str) and value.lower() in ("true", "false"):
            # `TRUE` (bare or quoted) or `"True"`: the spelling is the problem, not quotes.
            return f"{value} is not a boolean: write {value.lower()}"
        return "write true or false"
    if param.kind in ("int", "float", "ints") and isinstance(value, str):
        return "numbers are written without quotes"
    if param.kind in ("int", "ints") and isinstance(value, float) and value.is_integer() \
            and fits_int64(int(value)):
        return f"write {int(value)}, without a decimal point"
    if param.kind in ("int", "float", "ints"):
        return expected(param)
    if param.kind == "shape" and isinstance(value, tuple) and \
            any(isinstance(v, str) for v in value):
        return "numbers are written without quotes"
    if param.kind == "activation":
        return 'write an activation name in quotes, e.g. "relu"'
    if param.kind == "str" and param.choices:
        return "write one of " + ", ".join(format_value(c) for c in param.choices)
    if param.kind == "shape":
        return "write a tuple of sizes without the batch, e.g. (7, 7, 64)"
    return None


def expected(param: Param) -> str:
    """What a valid value of a numeric `param` looks like, with an example: "units (output
    features) takes a positive integer, e.g. 10"."""
    if param.kind in ("int", "ints"):
        kind, example = _expected_int(param)
    elif param.kind == "float":
        kind, example = _expected_float(param)
    elif param.kind == "shape":
        kind, example = "a tuple of sizes without the batch", "(7, 7, 64)"
    else:
        kind, example = "a value", format_value(param.default)
    # The doc says what the parameter means; one with parentheses of its own would nest.
    about = f" ({param.doc})" if param.doc and "(" not in param.doc else ""
    return f"{param.name}{about} takes {kind}, e.g. {example}"


def _expected_int(param: Param) -> tuple[str, str]:
    # Integer bounds: an exclusive bound moves to the next integer inside.
    lo = hi = None
    if param.minimum is not None:
        lo = int(param.minimum) + 1 if param.minimum_exclusive else int(param.minimum)
    if param.maximum is not None:
        hi = int(param.maximum) - 1 if param.maximum_exclusive else int(param.maximum)
    if lo in (0, 1) and hi is None:
        kind = "a positive integer" if lo == 1 else "a non-negative integer"
    elif lo is not None and hi is not None:
        kind = f"an integer in [{lo}, {hi}]"
    else:
        kind = "an integer" + (f" >= {lo}" if lo is not None else "") + \
            (f" <= {hi}" if hi is not None else "")
    # Windows and strides are small; a layer's size, 10 (Dense(10)).
    example = _example(param, 3 if param.kind == "ints" else 10)
    if lo is not None:
        example = max(example, lo)
    if hi is not None:
        example = min(example, hi)
    rank = param.rank or 1
    if param.kind == "ints" and rank > 1:
        return (f"{kind} or a tuple of {rank}",
                f"{format_value(example)} or {format_value((example,) * rank)}")
    return kind, format_value(example)


def _expected_float(param: Param) -> tuple[str, str]:
    lo, hi = param.minimum, param.maximum
    if lo is not None and hi is not None:
        left = "(" if param.minimum_exclusive else "["
        right = ")" if param.maximum_exclusive else "]"
        kind, fallback = f"a number in {left}{num(lo)}, {num(hi)}{right}", (lo + hi) / 2
    elif lo is not None:
        kind, fallback = f"a number {'>' if param.minimum_exclusive else '>='} {num(lo)}", lo + 1
    elif hi is not None:
        kind, fallback = f"a number {'<' if param.maximum_exclusive else '<='} {num(hi)}", hi - 1
    else:
        kind, fallback = "a number", 1.0
    return kind, format_value(_example(param, fallback))


def _example(param: Param, fallback: Any) -> Any:
    """The parameter's default when it is a valid number (the first entry of a window-like
    default), else `fallback`."""
    default = param.default
    if isinstance(default, tuple) and default and param.kind == "ints":
        default = default[0]
    return default if is_number(default) and param.in_bounds(default) else fallback
