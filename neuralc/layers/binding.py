"""DSL arguments → a layer's normalized attribute dict, and the same checks for the IR verifier.

`bind(spec, args)` takes the arguments as written (positional ones as `(None, value)`, named ones
as `(name, value)`, values already converted to attribute values) and returns every parameter of
the spec, in the spec's order, under its canonical name:

* defaults are filled in, aliases resolved (`ff_dim=` → `dff`);
* ints become floats for float parameters, a single int becomes a tuple of the parameter's rank
  for window-like parameters (`3` → `(3, 3)`), activation names are lower-cased and `None` becomes
  `"linear"` (one spelling per meaning keeps the IR and the emitters simple);
* an `HPOAttr` stays an `HPOAttr` (the builder substitutes concrete values per trial), but every
  candidate is checked, and a `choice`'s candidates are normalized.

Errors are `BindError`s carrying the index of the offending argument so the diagnostic can point
at it (`None` when no argument is at fault, e.g. a missing required parameter), and a note with
the fix where there is an obvious one ("units (output features) takes a positive integer, e.g.
10"). Integers must fit in an int64, as everywhere in the IR.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from neuralc.diagnostics import did_you_mean
from neuralc.ir.types import INT64_MAX, CallAttr, HPOAttr, fits_int64
from neuralc.layers.spec import ACTIVATIONS, LayerSpec, Param


class BindError(Exception):
    """A layer call whose arguments do not fit the layer's parameters."""

    def __init__(
        self, message: str, arg_index: int | None = None, note: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.arg_index = arg_index
        self.note = note


def bind(spec: LayerSpec, args: Sequence[tuple[str | None, Any]]) -> dict[str, Any]:
    given: dict[str, tuple[int, Any]] = {}
    seen_named = False
    for index, (name, value) in enumerate(args):
        if name is None:
            if seen_named:
                raise BindError(
                    "positional argument after a named argument", index,
                    "write all positional arguments first, or name this one",
                )
            position = len(given)
            if position >= len(spec.params):
                raise BindError(
                    f"{spec.name} takes at most {len(spec.params)} positional argument"
                    f"{'' if len(spec.params) == 1 else 's'}, got {_count_positional(args)}",
                    index, f"signature: {signature(spec)}",
                )
            param = spec.params[position]
        else:
            seen_named = True
            found = spec.param(name)
            if found is None:
                raise BindError(
                    f"{spec.name} has no parameter '{name}'", index, _unknown_note(spec, name)
                )
            param = found
        if param.name in given:
            spelled = "" if name in (None, param.name) else f" (as '{name}')"
            first = given[param.name][0]
            how = "as a positional argument" if args[first][0] is None else \
                f"as '{args[first][0]}'"
            raise BindError(f"parameter '{param.name}' given twice{spelled}", index,
                            f"'{param.name}' is already given {how} (argument {first + 1}); "
                            "remove one of the two")
        given[param.name] = (index, value)

    attrs: dict[str, Any] = {}
    for param in spec.params:
        if param.name in given:
            index, value = given[param.name]
            attrs[param.name] = _normalize_arg(spec, param, value, index)
        elif param.required:
            raise BindError(
                f"{spec.name} requires the parameter '{param.name}'", None,
                f"signature: {signature(spec)}",
            )
        else:
            attrs[param.name] = param.default
    return attrs


def validate_attrs(spec: LayerSpec, attrs: Mapping[str, Any]) -> None:
    """The IR verifier's check: every parameter present, no stranger, values normalized."""
    for key in attrs:
        if spec.param(key) is None or spec.param(key).name != key:  # type: ignore[union-attr]
            raise BindError(f"{spec.name} has no attribute '{key}'", None, _unknown_note(spec, key))
    for param in spec.params:
        if param.name not in attrs:
            raise BindError(f"{spec.name} is missing the attribute '{param.name}'")
        value = attrs[param.name]
        normalized = _normalize_arg(spec, param, value, None)
        if normalized != value or type(normalized) is not type(value):
            raise BindError(
                f"{spec.name} attribute '{param.name}' is not normalized: {value!r} "
                f"(expected {normalized!r})"
            )


def normalize(spec: LayerSpec, name: str, value: Any) -> Any:
    """Normalize one value for parameter `name` (e.g. a concrete HPO candidate)."""
    param = spec.param(name)
    if param is None:
        raise BindError(f"{spec.name} has no parameter '{name}'", None, _unknown_note(spec, name))
    return _normalize_arg(spec, param, value, None)


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


# Normalization --------------------------------------------------------------------------------


_NUMERIC_KINDS = ("int", "float", "ints", "shape", "any")


def _normalize_arg(spec: LayerSpec, param: Param, value: Any, index: int | None) -> Any:
    # Before anything converts it: float() of a huge int raises OverflowError, and the IR (and
    # every backend) holds 64-bit integers. HPO bounds and steps count too, not only the
    # candidates that checking enumerates. (Other kinds reject any int by its type.)
    if param.kind in _NUMERIC_KINDS and (big := _oversized_int(value)) is not None:
        shown = str(big) if big.bit_length() <= 128 else f"a {big.bit_length()}-bit integer"
        raise BindError(f"{spec.name} {param.name} must fit in a 64-bit integer, got {shown}",
                        index, f"{_expected(param)} (integers are at most 2**63 - 1 = "
                        f"{INT64_MAX:,})")
    if isinstance(value, HPOAttr):
        return _normalize_hpo(spec, param, value, index)
    return _normalize(spec, param, value, index, "")


def _normalize_hpo(spec: LayerSpec, param: Param, value: HPOAttr, index: int | None) -> HPOAttr:
    candidates = value.candidates()
    normalized = tuple(
        _normalize(spec, param, c, index, " (an HPO candidate)") for c in candidates
    )
    if value.kind == "choice":
        return HPOAttr("choice", normalized, value.kwargs)
    if param.kind == "float":
        # Ranges keep their bounds, as floats, so the IR prints one spelling.
        bounds = tuple(float(a) if _is_number(a) else a for a in value.args)
        return HPOAttr(value.kind, bounds, value.kwargs)
    return value


def _normalize(spec: LayerSpec, param: Param, value: Any, index: int | None, ctx: str) -> Any:
    what = f"{spec.name} {param.name}"
    if value is None and param.default is None:
        return None  # an explicit None where None is the default (strides=None: as Keras)
    if isinstance(value, CallAttr) and param.kind != "any":
        raise _type_error(what, param, value, index, ctx)
    kind = param.kind
    if kind == "int":
        if not _is_int(value):
            raise _type_error(what, param, value, index, ctx)
        result: Any = value
        _check_range(what, param, value, index, ctx)
    elif kind == "float":
        if not _is_number(value):
            raise _type_error(what, param, value, index, ctx)
        result = float(value)
        _check_range(what, param, result, index, ctx)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(what, param, value, index, ctx)
        result = value
    elif kind == "str":
        if not isinstance(value, str):
            raise _type_error(what, param, value, index, ctx)
        result = value.lower() if param.choices else value
    elif kind == "activation":
        if value is None:
            value = "linear"
        if not isinstance(value, str):
            raise _type_error(what, param, value, index, ctx)
        result = value.lower()
        if result not in ACTIVATIONS:
            hint = did_you_mean(result, ACTIVATIONS)
            raise BindError(f"{what}: unknown activation '{value}'{ctx}", index,
                            hint or "activations: " + ", ".join(ACTIVATIONS))
    elif kind == "ints":
        result = _normalize_ints(what, param, value, index, ctx)
    elif kind == "shape":
        result = _normalize_shape(what, param, value, index, ctx)
    else:
        result = value
    if param.choices is not None and result not in param.choices:
        hint = did_you_mean(result, [c for c in param.choices if isinstance(c, str)]) \
            if isinstance(result, str) else None
        raise BindError(
            f"{what} must be one of {', '.join(format_value(c) for c in param.choices)}, "
            f"got {format_value(result)}{ctx}", index, hint,
        )
    return result


def _normalize_ints(what: str, param: Param, value: Any, index: int | None, ctx: str) -> tuple:
    rank = param.rank or 1
    if _is_int(value):
        items: tuple = (value,) * rank
    elif isinstance(value, tuple) and len(value) == rank and all(_is_int(v) for v in value):
        items = value
    else:
        raise _type_error(what, param, value, index, ctx)
    for item in items:
        _check_range(what, param, item, index, ctx)
    return items


def _normalize_shape(what: str, param: Param, value: Any, index: int | None, ctx: str) -> tuple:
    items = (value,) if _is_int(value) else value
    if not isinstance(items, tuple) or not items or not all(_is_int(v) for v in items):
        raise _type_error(what, param, value, index, ctx)
    if any(v == 0 or v < -1 for v in items):
        raise BindError(f"{what} entries must be positive (or -1 once), got "
                        f"{format_value(items)}{ctx}", index,
                        "write sizes without the batch, e.g. (7, 7, 64), or -1 for the one "
                        "dimension inferred from the others, e.g. (-1, 64)")
    if items.count(-1) > 1:
        raise BindError(f"{what} may contain -1 only once, got {format_value(items)}{ctx}", index,
                        "-1 stands for the one dimension inferred from the others")
    return items


def _in_range(param: Param, value: float) -> bool:
    lo, hi = param.minimum, param.maximum
    too_low = lo is not None and (value <= lo if param.minimum_exclusive else value < lo)
    too_high = hi is not None and (value >= hi if param.maximum_exclusive else value > hi)
    return not (too_low or too_high)


def _check_range(what: str, param: Param, value: float, index: int | None, ctx: str) -> None:
    if _in_range(param, value):
        return
    lo, hi = param.minimum, param.maximum
    if lo is not None and hi is not None:
        left = "(" if param.minimum_exclusive else "["
        right = ")" if param.maximum_exclusive else "]"
        bound = f"in {left}{_num(lo)}, {_num(hi)}{right}"
    elif lo is not None:
        bound = f"{'>' if param.minimum_exclusive else '>='} {_num(lo)}"
    else:
        bound = f"{'<' if param.maximum_exclusive else '<='} {_num(hi)}"
    raise BindError(f"{what} must be {bound}, got {_num(value)}{ctx}", index, _expected(param))


_KIND_WORDS = {
    "int": "an int", "float": "a number", "bool": "true or false", "str": "a string",
    "activation": "an activation name", "shape": "a tuple of ints", "any": "a value",
}


def _type_error(what: str, param: Param, value: Any, index: int | None, ctx: str) -> BindError:
    if param.kind == "ints":
        rank = param.rank or 1
        expected = "an int" if rank == 1 else f"an int or a tuple of {rank} ints"
    else:
        expected = _KIND_WORDS[param.kind]
    return BindError(f"{what} must be {expected}, got {format_value(value)}{ctx}", index,
                     _type_note(param, value))


def _type_note(param: Param, value: Any) -> str | None:
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
        return _expected(param)
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


def _expected(param: Param) -> str:
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
        kind, fallback = f"a number in {left}{_num(lo)}, {_num(hi)}{right}", (lo + hi) / 2
    elif lo is not None:
        kind, fallback = f"a number {'>' if param.minimum_exclusive else '>='} {_num(lo)}", lo + 1
    elif hi is not None:
        kind, fallback = f"a number {'<' if param.maximum_exclusive else '<='} {_num(hi)}", hi - 1
    else:
        kind, fallback = "a number", 1.0
    return kind, format_value(_example(param, fallback))


def _example(param: Param, fallback: Any) -> Any:
    """The parameter's default when it is a valid number (the first entry of a window-like
    default), else `fallback`."""
    default = param.default
    if isinstance(default, tuple) and default and param.kind == "ints":
        default = default[0]
    return default if _is_number(default) and _in_range(param, default) else fallback


def _oversized_int(value: Any) -> int | None:
    """The first int in `value` (tuples and HPO arguments included) outside the int64 range."""
    if _is_int(value):
        return None if fits_int64(value) else value
    items: tuple = ()
    if isinstance(value, tuple):
        items = value
    elif isinstance(value, HPOAttr | CallAttr):
        items = (*value.args, *(v for _, v in value.kwargs))
    return next((big for v in items if (big := _oversized_int(v)) is not None), None)


def _unknown_note(spec: LayerSpec, name: str) -> str:
    names = [n for p in spec.params for n in (p.name, *p.aliases)]
    if not names:
        return f"{spec.name} takes no parameters"
    return did_you_mean(name, names) or "parameters: " + ", ".join(p.name for p in spec.params)


def _count_positional(args: Sequence[tuple[str | None, Any]]) -> int:
    return sum(1 for name, _ in args if name is None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _num(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
