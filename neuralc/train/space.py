"""The search space of a program: every `HPO(...)` expression, wherever it stands (layer
arguments, repetition counts, macros, loss/optimizer/schedule arguments, train and execution
settings), as one `Hyperparameter` keyed by the HPO node's source location, and the writer that
puts chosen values back into the source text.

One `HPO(...)` written once is one hyperparameter, even when a macro uses it several times
(the same rule as `neuralc.frontend.values`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from neuralc.diagnostics import SourceLocation, error
from neuralc.frontend import ast
from neuralc.frontend.values import hpo_attr
from neuralc.ir.types import Attr, HPOAttr

_PLAIN = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class Hyperparameter:
    loc: SourceLocation
    name: str  # unique in the program: `Dense.units@4:11`
    attr: HPOAttr

    @property
    def step(self) -> Any:
        return dict(self.attr.kwargs).get("step")

    @property
    def integer(self) -> bool:
        values = (*self.attr.args, *(() if self.step is None else (self.step,)))
        return all(isinstance(v, int) and not isinstance(v, bool) for v in values)

    def grid_values(self) -> list[Attr]:
        """The values grid search enumerates: choices, stepped ranges, integer ranges."""
        if self.attr.kind == "choice" or (
            self.attr.kind == "range" and (self.step is not None or self.integer)
        ):
            return [_clean(v) for v in self.attr.candidates()]
        raise error(
            f"grid search cannot enumerate HPO({self.attr.kind}(...))",
            self.loc,
            'give range() a step, use choice(...), or search_method: "bayesian"',
        )

    def suggest(self, trial: Any, grid: bool = False) -> Attr:
        """Ask an Optuna trial for this hyperparameter's value."""
        kind, args = self.attr.kind, self.attr.args
        if grid or kind == "choice":
            values = self.grid_values() if grid else list(args)
            if all(isinstance(v, _PLAIN) for v in values):
                return trial.suggest_categorical(self.name, values)
            shown = [_literal(v) for v in values]  # tuples: chosen by their source text
            return values[shown.index(trial.suggest_categorical(self.name, shown))]
        lo, hi = args[0], args[1]
        if kind == "log_range":
            if self.integer:
                return trial.suggest_int(self.name, lo, hi, log=True)
            return trial.suggest_float(self.name, float(lo), float(hi), log=True)
        if self.integer:
            return trial.suggest_int(self.name, lo, hi, step=self.step or 1)
        value = trial.suggest_float(self.name, float(lo), float(hi), step=self.step)
        return value if self.step is None else _clean(value)

    def from_param(self, value: Any) -> Attr:
        """The value of an Optuna param (as stored in a study) for this hyperparameter."""
        if self.attr.kind == "choice" and not all(isinstance(v, _PLAIN) for v in self.attr.args):
            shown = [_literal(v) for v in self.attr.args]
            return self.attr.args[shown.index(value)] if value in shown else value
        if self.attr.kind == "log_range" or (self.attr.kind == "range" and self.step is None):
            return value  # the value the trial trained with (`suggest` does not clean it)
        return _clean(value)


def _clean(value: Any) -> Any:
    """Floats from stepped ranges without binary noise (0.15000000000000002 → 0.15): 12
    significant digits, so that tiny steps (`step=1e-14`) keep their value."""
    return float(f"{value:.12g}") if isinstance(value, float) and math.isfinite(value) else value


def collect(program: ast.Program) -> list[Hyperparameter]:
    """Every HPO expression of the program, in source order."""
    found: dict[SourceLocation, tuple[str, ast.HPO]] = {}

    def expr(node: ast.Expr, where: str) -> None:
        match node:
            case ast.HPO():
                found.setdefault(node.loc, (where, node))
            case ast.TupleExpr(items=items) | ast.ListExpr(items=items):
                for item in items:
                    expr(item, where)
            case ast.Call(name=name, args=args):
                for i, arg in enumerate(args):
                    expr(arg.value, f"{where}.{name}.{arg.name or i}")

    def items(layers: tuple[ast.LayerItem, ...]) -> None:
        for item in layers:
            if isinstance(item, ast.Branch):
                items(item.layers)
                continue
            for i, arg in enumerate(item.args):
                expr(arg.value, f"{item.name}.{arg.name or i}")
            if item.repeat is not None:
                expr(item.repeat, f"{item.name}*")
            if item.body:
                items(item.body)

    for macro in program.macros:
        items(macro.layers)
    for net in program.networks:
        items(net.layers)
        for key in ("loss", "optimizer", "metrics"):
            value = getattr(net, key)
            if value is not None:
                expr(value, key)
        for block in net.blocks:
            for setting in block.settings:
                expr(setting.value, f"{block.keyword}.{setting.key}")
        for setting in net.settings:
            expr(setting.value, setting.key)
    out = []
    for loc, (where, node) in sorted(found.items()):
        out.append(Hyperparameter(loc, f"{where}@{loc.line}:{loc.column}", hpo_attr(node)))
    return out


# The resolved source ---------------------------------------------------------------------


def _literal(value: Attr) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "None"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else json.dumps(str(value))
    if isinstance(value, int | str):
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(f"cannot write {value!r} as a DSL literal")


def hpo_end(text: str, start: int) -> int:
    """The offset just past the `HPO(...)` expression starting at `start`: its parentheses are
    balanced, skipping strings and `#` comments."""
    i = text.index("(", start)
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            i += 1
            while i < len(text) and text[i] != ch:
                i += 2 if text[i] == "\\" else 1
        elif ch == "#":
            newline = text.find("\n", i)
            i = len(text) - 1 if newline < 0 else newline
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced HPO expression at offset {start}")


def resolve_source(program: ast.Program, values: dict[SourceLocation, Attr]) -> str:
    """The program's source with each HPO expression in `values` replaced by its value."""
    text = program.source
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    spans = []
    for loc, value in values.items():
        start = starts[loc.line - 1] + loc.column - 1
        if not text.startswith("HPO", start):
            raise ValueError(f"no HPO expression at {loc}")
        spans.append((start, hpo_end(text, start), _literal(value)))
    for start, end, literal in sorted(spans, reverse=True):
        text = text[:start] + literal + text[end:]
    return text
