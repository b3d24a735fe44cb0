"""`neuralc check`'s engine: build and verify the IR once per shape-relevant HPO combination.

Discrete hyperparameters in layer arguments and repetition counts can change shapes (heads,
widths, depths), so every combination of them is built; the first failing one is named in the
diagnostic. Continuous ones (dropout rates, learning rates) stay symbolic and are range-checked
per candidate by the argument binder.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation
from neuralc.frontend import ast
from neuralc.frontend.irgen import BuiltNetwork, build_module
from neuralc.frontend.values import Trial, hpo_attr
from neuralc.ir.core import Module
from neuralc.ir.types import Attr

MAX_TRIALS = 1024


@dataclass
class CheckResult:
    module: Module
    networks: list[BuiltNetwork]
    warnings: list[Diagnostic] = field(default_factory=list)
    trials_checked: int = 1
    trials_total: int = 1


def shape_hpos(program: ast.Program) -> list[tuple[SourceLocation, tuple[Attr, ...]]]:
    """The discrete HPO expressions in layer arguments and repetition counts, in source order."""
    found: dict[SourceLocation, tuple[Attr, ...]] = {}

    def visit_expr(expr: ast.Expr) -> None:
        match expr:
            case ast.HPO():
                attr = hpo_attr(expr)
                if attr.is_discrete:
                    found.setdefault(expr.loc, attr.candidates())
            case ast.TupleExpr(items=items) | ast.ListExpr(items=items):
                for item in items:
                    visit_expr(item)
            case ast.Call(args=args):
                for arg in args:
                    visit_expr(arg.value)

    def visit_items(items: tuple[ast.LayerItem, ...]) -> None:
        for item in items:
            if isinstance(item, ast.Branch):
                visit_items(item.layers)
                continue
            for arg in item.args:
                visit_expr(arg.value)
            if item.repeat is not None:
                visit_expr(item.repeat)
            if item.body:
                visit_items(item.body)

    for macro in program.macros:
        visit_items(macro.layers)
    for net in program.networks:
        visit_items(net.layers)
    return sorted(found.items())


def trials(program: ast.Program) -> tuple[Iterator[Trial], int]:
    hpos = shape_hpos(program)
    total = 1
    for _, values in hpos:
        total *= len(values)
    locs = [loc for loc, _ in hpos]
    combos = itertools.product(*(values for _, values in hpos))
    return (dict(zip(locs, combo, strict=True)) for combo in combos), total


def check_program(program: ast.Program) -> CheckResult:
    """Build the IR for every shape-relevant HPO combination; return the first one's result."""
    from neuralc.ir.verifier import verify_module

    trial_iter, total = trials(program)
    first: CheckResult | None = None
    checked = 0
    for trial in itertools.islice(trial_iter, MAX_TRIALS):
        warnings: list[Diagnostic] = []
        try:
            module, built = build_module(program, trial, warnings)
            verify_module(module)
        except CompileError as exc:
            if trial:
                exc.diagnostics[0].notes += (f"with the HPO combination {_describe(trial)}",)
            raise
        checked += 1
        if first is None:
            first = CheckResult(module, built, warnings)
    assert first is not None
    first.trials_checked, first.trials_total = checked, total
    if total > checked:
        first.warnings.append(
            Diagnostic(
                f"only the first {checked} of {total} HPO combinations were checked",
                None,
                "warning",
            )
        )
    return first


def _describe(trial: Trial) -> str:
    return ", ".join(
        f"{value!r} (line {loc.line}, column {loc.column})" for loc, value in sorted(trial.items())
    )
