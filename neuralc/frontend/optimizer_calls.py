"""Checking the optimizer and its learning-rate schedules: `optimizer: Adam(...)`, a quoted
call (`optimizer: "Adam(learning_rate=1e-4)"`), `HPO(choice(...))` over optimizers, and every
schedule nested in a `learning_rate`.

`optimizer_attr` turns the DSL's expression into a checked `CallAttr` (or an `HPOAttr` of
them): names are matched case-blind to the backend's spelling, every argument is checked
against its row of `OPTIMIZER_TABLE` / `SCHEDULE_TABLE` (`neuralc.frontend.config_rules`), and
each error points at the argument or value that causes it. Its own module because calls have
their own machinery (arguments with locations, quoted calls parsed as Python, PyTorch
spellings refused with Keras 3's name); `neuralc.frontend.config` checks the rest.
"""

from __future__ import annotations

import ast as pyast
from collections.abc import Mapping
from dataclasses import dataclass

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation, error
from neuralc.frontend import ast
from neuralc.frontend.config_rules import (
    OPTIMIZER_TABLE,
    OPTIMIZERS,
    SCHEDULE_TABLE,
    SCHEDULES,
    Parameter,
    Rule,
    check_value,
    is_number,
)
from neuralc.frontend.suggestions import suggest
from neuralc.frontend.values import Trial, hpo_attr, show, to_attr
from neuralc.ir.types import Attr, CallAttr, HPOAttr
from neuralc.lower.training import OPTIMIZER_ALIASES, SCHEDULE_ALIASES


@dataclass(frozen=True)
class _Arg:
    """One argument of an optimizer or schedule call, with where it was written."""

    name: str | None
    value: Attr | _Call
    loc: SourceLocation  # the argument (its name, when named): unknown names, duplicates
    value_loc: SourceLocation  # its value: types and ranges


@dataclass(frozen=True)
class _Call:
    name: str
    args: tuple[_Arg, ...]
    loc: SourceLocation


def _from_ast(call: ast.Call, trial: Trial | None) -> _Call:
    args = []
    for arg in call.args:
        value: Attr | _Call = (
            _from_ast(arg.value, trial)
            if isinstance(arg.value, ast.Call)
            else to_attr(arg.value, trial)
        )
        args.append(_Arg(arg.name, value, arg.loc, arg.value.loc))
    return _Call(call.name, tuple(args), call.loc)


def _from_attr(call: CallAttr, loc: SourceLocation) -> _Call:
    """A call read from a string (`optimizer: "Adam(learning_rate=1e-4)"`): every part of it is
    located at the string."""

    def value(v: Attr) -> Attr | _Call:
        return _from_attr(v, loc) if isinstance(v, CallAttr) else v

    args = [_Arg(None, value(v), loc, loc) for v in call.args]
    args += [_Arg(k, value(v), loc, loc) for k, v in call.kwargs]
    return _Call(call.name, tuple(args), loc)


def optimizer_attr(expr: ast.Expr, trial: Trial | None) -> Attr:
    if isinstance(expr, ast.HPO):
        return _optimizer_hpo(expr, trial)
    if isinstance(expr, ast.Call):
        return _check_optimizer(_from_ast(expr, trial))
    value = to_attr(expr, trial)
    if not isinstance(value, str):
        raise error(
            "optimizer must be a name or a call such as Adam(learning_rate=0.001)", expr.loc
        )
    return _check_optimizer(_from_attr(_parse_call_string(value, expr.loc), expr.loc))


def _optimizer_hpo(node: ast.HPO, trial: Trial | None) -> Attr:
    """`optimizer: HPO(choice("adam", "sgd"))`: `neuralc tune` picks one of the strings per
    trial (the loss it ranks by stays the same). Calls are written as strings because the
    tuner records and writes back each choice as a plain value."""
    attr = hpo_attr(node)
    if attr.kind != "choice" or not all(isinstance(c, str) for c in attr.args):
        raise error(
            "HPO over the optimizer must choose between optimizer names or quoted calls",
            node.loc,
            'write e.g. optimizer: HPO(choice("adam", "sgd")), or '
            'HPO(choice("Adam(learning_rate=0.001)", "SGD(0.01)"))',
        )
    checked = [
        _optimizer_choice(choice, arg.value.loc)  # type: ignore[arg-type]
        for choice, arg in zip(attr.args, node.args, strict=True)
    ]
    if trial is not None and node.loc in trial:
        chosen = trial[node.loc]
        return _as_call(_optimizer_choice(chosen, node.loc))  # type: ignore[arg-type]
    return HPOAttr("choice", tuple(checked))


def _optimizer_choice(text: str, loc: SourceLocation) -> Attr:
    """A checked choice: a bare name stays a name (`"Adam"`), a call becomes a call."""
    call = _check_optimizer(_from_attr(_parse_call_string(text, loc), loc))
    return call.name if not call.args and not call.kwargs else call


def _as_call(value: Attr) -> CallAttr:
    return value if isinstance(value, CallAttr) else CallAttr(str(value))


def _check_optimizer(call: _Call) -> CallAttr:
    name = _canonical(call.name, OPTIMIZERS, "optimizer", call.loc)
    table = {p.name: p for p in OPTIMIZER_TABLE[name]}
    positional = [a for a in call.args if a.name is None]
    if len(positional) > 1:
        first, second = positional[0], positional[1]
        raise error(
            f"{name}() takes the learning rate as its only positional argument",
            second.loc,
            f"name the others, e.g. {name}({_show(first.value)}, "
            f"{list(table)[1]}={_show(second.value)})",
        )
    args: list[Attr] = []
    kwargs: list[tuple[str, Attr]] = []
    seen: dict[str, SourceLocation] = {}
    for arg in call.args:
        key = "learning_rate" if arg.name is None else arg.name
        if key not in table:
            raise _unknown_argument(name, arg, table, OPTIMIZER_ALIASES)
        _once(name, key, arg.loc, seen)
        value = _parameter(name, table[key], arg, optimizer=True)
        if arg.name is None:
            args.append(value)
        else:
            kwargs.append((key, value))
    return CallAttr(name, tuple(args), tuple(kwargs))


def _check_schedule(call: _Call) -> CallAttr:
    name = _canonical(call.name, SCHEDULES, "learning-rate schedule", call.loc)
    params = SCHEDULE_TABLE[name]
    table = {p.name: p for p in params}
    positional = [a for a in call.args if a.name is None]
    if len(positional) > len(params):
        raise error(
            f"{name}() takes at most {len(params)} positional arguments",
            positional[len(params)].loc,
            f"write {name}({', '.join(table)})",
        )
    # Warmup's own `learning_rate` is a parameter, not an alias (as in the backend).
    aliases = {} if name == "Warmup" else SCHEDULE_ALIASES
    seen: dict[str, SourceLocation] = {}
    values: dict[str, Attr] = {}
    args: list[Attr] = []
    kwargs: list[tuple[str, Attr]] = []
    for param, arg in zip(params, positional, strict=False):
        _once(name, param.name, arg.loc, seen)
        values[param.name] = _parameter(name, param, arg, optimizer=False)
        args.append(values[param.name])
    for arg in call.args[len(positional) :]:
        key = arg.name or ""
        if key not in table:
            raise _unknown_argument(name, arg, table, aliases)
        _once(name, key, arg.loc, seen)
        values[key] = _parameter(name, table[key], arg, optimizer=False)
        kwargs.append((key, values[key]))
    missing = [p.name for p in params if p.required and p.name not in values]
    if missing:
        required = [p.name for p in params if p.required]
        raise error(
            f"{name}() needs {', '.join(missing)}", call.loc, f"write {name}({', '.join(required)})"
        )
    if name == "PiecewiseConstantDecay":
        _check_piecewise(values, call.loc)
    return CallAttr(name, tuple(args), tuple(kwargs))


def _parameter(owner: str, param: Parameter, arg: _Arg, optimizer: bool) -> Attr:
    """The checked value of one argument: a schedule becomes its checked call; an optimizer's
    numbers become floats (Keras 3's SGD rejects `momentum=1`, an int)."""
    value = arg.value
    what = f"{owner}() {param.name}"
    if isinstance(value, _Call):
        if param.rule.kind != "rate":
            raise error(f"{what} must be {param.rule.describe()}, not a call", arg.value_loc)
        return _check_schedule(value)
    if isinstance(value, HPOAttr) and any(isinstance(c, CallAttr) for c in value.args):
        # The tuner records each choice as a plain value; a schedule is not one.
        raise error(
            "an HPO cannot choose between calls",
            arg.value_loc,
            "put the HPO on the schedule's arguments, e.g. "
            "ExponentialDecay(HPO(log_range(1e-4, 1e-2)), 1000, 0.96)",
        )
    rule = Rule("number", 0, low_open=True) if param.rule.kind == "rate" else param.rule
    check_value(value, rule, what, arg.value_loc)
    if optimizer and rule.kind == "number":
        return _floats(value)
    return value


def _floats(value: Attr) -> Attr:
    if isinstance(value, HPOAttr):
        return HPOAttr(value.kind, tuple(_floats(a) for a in value.args), value.kwargs)
    return float(value) if is_number(value) else value  # type: ignore[arg-type]


def _check_piecewise(values: Mapping[str, Attr], loc: SourceLocation) -> None:
    bounds, rates = values.get("boundaries"), values.get("values")
    if not (isinstance(bounds, tuple) and isinstance(rates, tuple)):
        return
    if len(rates) != len(bounds) + 1:
        raise error(
            f"PiecewiseConstantDecay() needs one value more than boundaries: "
            f"{len(bounds)} boundaries, {len(rates)} values",
            loc,
            "write e.g. PiecewiseConstantDecay((1000, 2000), (0.1, 0.01, 0.001))",
        )
    concrete = [b for b in bounds if is_number(b)]
    if len(concrete) == len(bounds) and concrete != sorted(concrete):
        raise error("PiecewiseConstantDecay() boundaries must increase", loc)


def _once(owner: str, key: str, loc: SourceLocation, seen: dict[str, SourceLocation]) -> None:
    if key in seen:
        raise CompileError(
            Diagnostic(
                f"{owner}() gets '{key}' twice",
                loc,
                "error",
                ("give each argument once",),
                ((seen[key], "first given here"),),
            )
        )
    seen[key] = loc


def _unknown_argument(
    owner: str, arg: _Arg, table: Mapping[str, Parameter], aliases: Mapping[str, str]
) -> CompileError:
    """`Adam(lr=0.1)`: PyTorch's spellings are refused with Keras 3's name as the fix, so that
    one program has one spelling (docs/semantics.md, "Training configuration")."""
    key, value = arg.name or "", _show(arg.value)
    target = "beta_1" if key == "betas" else aliases.get(key)
    if target == "gradient_clip":  # clipnorm: Keras clips each variable; neuralc clips all
        note = (
            f"neuralc clips the global norm: write global_clipnorm={value}, or "
            f"train {{ gradient_clip: {value} }}"
        )
    elif key == "betas" and "beta_2" in table:
        pair = arg.value if isinstance(arg.value, tuple) and len(arg.value) == 2 else None
        beta_1, beta_2 = (show(b) for b in pair) if pair else ("...", "...")
        note = f"write beta_1={beta_1}, beta_2={beta_2} (Keras 3's names; 'betas' is PyTorch's)"
    elif target is not None and target in table:
        note = f"write {target}={value} (Keras 3's name; '{key}' is PyTorch's)"
    else:
        note = suggest(key, table) or ""
    listed = ", ".join(_signature(p) for p in table.values())
    return error(f"{owner}() has no argument '{key}'", arg.loc, note, f"arguments: {listed}")


def _signature(param: Parameter) -> str:
    return f"{param.name}={_show(param.default)}" if param.default is not None else param.name


def _show(value: Attr | _Call) -> str:
    return value.name + "(...)" if isinstance(value, _Call) else show(value)


def _canonical(name: str, known: tuple[str, ...], what: str, loc: SourceLocation) -> str:
    for candidate in known:
        if candidate.lower() == name.lower():
            return candidate
    hint = suggest(name, known)
    raise error(f"unknown {what} '{name}'", loc, hint or f"known: {', '.join(known)}")


def _parse_call_string(text: str, loc: SourceLocation) -> CallAttr:
    """`optimizer: "Adam(learning_rate=1e-4)"` — upstream examples quote the call."""
    try:
        node = pyast.parse(text.strip(), mode="eval").body
        if isinstance(node, pyast.Name):
            return CallAttr(node.id)
        if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name):
            return _call(node.func.id, node)
    # The text is the user's, read as Python: a value that is no literal raises ValueError (or
    # TypeError: `{1, [2]}` hashes a list), and deep nesting makes the parser or literal_eval
    # raise RecursionError or MemoryError. Each is a string neuralc cannot read, not a crash.
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        pass
    raise error(
        f"cannot read optimizer {show(text)}",
        loc,
        "write it as a call: optimizer: Adam(learning_rate=0.001)",
    )


def _call(name: str, node: pyast.Call) -> CallAttr:
    if any(k.arg is None for k in node.keywords):  # `**{...}` names no argument
        raise ValueError("keyword arguments unpacked")
    args = tuple(_literal(a) for a in node.args)
    kwargs = tuple((k.arg or "", _literal(k.value)) for k in node.keywords)
    return CallAttr(name, args, kwargs)


def _literal(node: pyast.expr) -> Attr:
    """A DSL value written as a Python literal (a number, string, true/false, None, a tuple or
    list of them), or a nested call (a schedule inside a quoted optimizer). Python-only
    literals (bytes, complex numbers, sets, dicts, `...`) raise ValueError: they are no value
    the DSL has, and a diagnostic would show them in Python's spelling."""
    if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name):
        return _call(node.func.id, node)
    if isinstance(node, pyast.Name) and node.id in ("true", "false"):
        return node.id == "true"
    if isinstance(node, pyast.Tuple | pyast.List):
        return tuple(_literal(e) for e in node.elts)
    value = pyast.literal_eval(node)
    if value is not None and not isinstance(value, bool | int | float | str):
        raise ValueError(f"not a DSL value: {type(value).__name__}")
    return value


__all__ = ["optimizer_attr"]
