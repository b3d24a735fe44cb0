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

The wording of messages (a value as the DSL writes it, the signature, what a valid value looks
like) is `param_text`; this module decides what is accepted and how it is normalized.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from neuralc.diagnostics import did_you_mean
from neuralc.ir.types import INT64_MAX, CallAttr, HPOAttr, fits_int64
from neuralc.layers.param_text import (
    expected,
    expected_kind,
    format_value,
    num,
    signature,
    type_note,
)
from neuralc.layers.spec import ACTIVATIONS, LayerSpec, Param, is_int, is_number


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


# Normalization --------------------------------------------------------------------------------


_NUMERIC_KINDS = ("int", "float", "ints", "shape", "any")


def _normalize_arg(spec: LayerSpec, param: Param, value: Any, index: int | None) -> Any:
    # Before anything converts it: float() of a huge int raises OverflowError, and the IR (and
    # every backend) holds 64-bit integers. HPO bounds and steps count too, not only the
    # candidates that checking enumerates. (Other kinds reject any int by its type.)
    if param.kind in _NUMERIC_KINDS and (big := _oversized_int(value)) is not None:
        shown = str(big) if big.bit_length() <= 128 else f"a {big.bit_length()}-bit integer"
        raise BindError(f"{spec.name} {param.name} must fit in a 64-bit integer, got {shown}",
                        index, f"{expected(param)} (integers are at most 2**63 - 1 = "
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
        bounds = tuple(float(a) if is_number(a) else a for a in value.args)
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
        if not is_int(value):
            raise _type_error(what, param, value, index, ctx)
        result: Any = value
        _check_range(what, param, value, index, ctx)
    elif kind == "float":
        if not is_number(value):
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
    if is_int(value):
        items: tuple = (value,) * rank
    elif isinstance(value, tuple) and len(value) == rank and all(is_int(v) for v in value):
        items = value
    else:
        raise _type_error(what, param, value, index, ctx)
    for item in items:
        _check_range(what, param, item, index, ctx)
    return items


def _normalize_shape(what: str, param: Param, value: Any, index: int | None, ctx: str) -> tuple:
    items = (value,) if is_int(value) else value
    if not isinstance(items, tuple) or not items or not all(is_int(v) for v in items):
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


def _check_range(what: str, param: Param, value: float, index: int | None, ctx: str) -> None:
    if param.in_bounds(value):
        return
    lo, hi = param.minimum, param.maximum
    if lo is not None and hi is not None:
        left = "(" if param.minimum_exclusive else "["
        right = ")" if param.maximum_exclusive else "]"
        bound = f"in {left}{num(lo)}, {num(hi)}{right}"
    elif lo is not None:
        bound = f"{'>' if param.minimum_exclusive else '>='} {num(lo)}"
    else:
        bound = f"{'<' if param.maximum_exclusive else '<='} {num(hi)}"
    raise BindError(f"{what} must be {bound}, got {num(value)}{ctx}", index, expected(param))


def _type_error(what: str, param: Param, value: Any, index: int | None, ctx: str) -> BindError:
    return BindError(f"{what} must be {expected_kind(param)}, got {format_value(value)}{ctx}",
                     index, type_note(param, value))


def _oversized_int(value: Any) -> int | None:
    """The first int in `value` (tuples and HPO arguments included) outside the int64 range."""
    if is_int(value):
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
