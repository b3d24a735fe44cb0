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
at it (`None` when no argument is at fault, e.g. a missing required parameter).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from neuralc.diagnostics import did_you_mean
from neuralc.ir.types import CallAttr, HPOAttr
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
            raise BindError(f"parameter '{param.name}' given twice{spelled}", index)
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


def _normalize_arg(spec: LayerSpec, param: Param, value: Any, index: int | None) -> Any:
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
        raise BindError(
            f"{what} must be one of {', '.join(format_value(c) for c in param.choices)}, "
            f"got {format_value(result)}{ctx}", index,
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
                        f"{format_value(items)}{ctx}", index)
    if items.count(-1) > 1:
        raise BindError(f"{what} may contain -1 only once, got {format_value(items)}{ctx}", index,
                        "-1 stands for the one dimension inferred from the others")
    return items


def _check_range(what: str, param: Param, value: float, index: int | None, ctx: str) -> None:
    lo, hi = param.minimum, param.maximum
    too_low = lo is not None and (value <= lo if param.minimum_exclusive else value < lo)
    too_high = hi is not None and (value >= hi if param.maximum_exclusive else value > hi)
    if not (too_low or too_high):
        return
    if lo is not None and hi is not None:
        left = "(" if param.minimum_exclusive else "["
        right = ")" if param.maximum_exclusive else "]"
        bound = f"in {left}{_num(lo)}, {_num(hi)}{right}"
    elif lo is not None:
        bound = f"{'>' if param.minimum_exclusive else '>='} {_num(lo)}"
    else:
        bound = f"{'<' if param.maximum_exclusive else '<='} {_num(hi)}"
    raise BindError(f"{what} must be {bound}, got {_num(value)}{ctx}", index)


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
    note = None
    if param.kind == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
        note = f"write {value.lower()} without quotes"
    elif param.kind in ("int", "float") and isinstance(value, str):
        note = "numbers are written without quotes"
    return BindError(f"{what} must be {expected}, got {format_value(value)}{ctx}", index, note)


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
