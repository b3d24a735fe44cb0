"""`neuralc check`'s engine: build and verify the IR once per shape-relevant HPO combination.

Discrete hyperparameters in layer arguments and repetition counts can change shapes (heads,
widths, depths), so every combination of them is built while the product has at most
MAX_TRIALS (1,024) combinations. Continuous ones (dropout rates, learning rates) stay symbolic:
the argument binder checks their candidates (a range's end points, a stepped range's grid).

An integer range offers at most its first MAX_CANDIDATES (10,000) values to checking (the
tuner still draws from all of it). Past MAX_TRIALS (six 4-way choices and a 2-way one already
make 8,192; one integer range of 2,000 values does too) the product is replaced by a covering
set: every offered value of every hyperparameter at least once (as many rows as the widest one
has values, even past MAX_TRIALS), then, up to MAX_TRIALS rows, as many value *pairs* as fit
(the usual conflict, heads against width, is between two). A warning says how many combinations
and pairs were checked. A conflict among three or more values, between values never checked
together, or with a value past a range's first MAX_CANDIDATES can then go unchecked; `neuralc
tune` reports such a trial as failed with its diagnostic.

When a combination fails, its diagnostic names it only if the error depends on it: another of
the next MAX_NOTE_PROBES (16) combinations builds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation
from neuralc.frontend import ast
from neuralc.frontend.irgen import BuiltNetwork, build_module
from neuralc.frontend.values import Trial, hpo_attr
from neuralc.ir.core import Module
from neuralc.ir.types import MAX_CANDIDATES, Attr, HPOAttr

MAX_TRIALS = 1024
# How many other combinations a failing check builds to decide whether the error depends on the
# HPO combination (see _another_builds).
MAX_NOTE_PROBES = 16


@dataclass
class CheckResult:
    module: Module
    networks: list[BuiltNetwork]
    warnings: list[Diagnostic] = field(default_factory=list)
    trials_checked: int = 1
    trials_total: int = 1


def shape_hpos(program: ast.Program) -> list[tuple[SourceLocation, tuple[Attr, ...]]]:
    """The discrete HPO expressions in layer arguments and repetition counts, in source order,
    with the values checking tries (an integer range past MAX_CANDIDATES values: its first)."""
    return [(loc, attr.candidates()) for loc, attr in _shape_hpo_attrs(program)]


def _shape_hpo_attrs(program: ast.Program) -> list[tuple[SourceLocation, HPOAttr]]:
    found: dict[SourceLocation, HPOAttr] = {}

    def visit_expr(expr: ast.Expr) -> None:
        match expr:
            case ast.HPO():
                attr = hpo_attr(expr)
                if attr.is_discrete:
                    found.setdefault(expr.loc, attr)
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


@dataclass
class TrialPlan:
    trials: Iterator[Trial]
    total: int  # combinations in the product
    exhaustive: bool
    pairs_total: int = 0  # covering plans: value pairs of two hyperparameters ...
    pairs_covered: int = 0  # ... and how many of them the plan's trials contain
    every_value: bool = True  # False when a range has more values than MAX_CANDIDATES


def trials(program: ast.Program) -> TrialPlan:
    attrs = _shape_hpo_attrs(program)
    hpos = [(loc, attr.candidates()) for loc, attr in attrs]
    total = 1
    for _, attr in attrs:
        total *= attr.size()  # the tuner's space, even where checking tries fewer values
    locs = [loc for loc, _ in hpos]

    def as_trials(combos: Iterable[tuple[Attr, ...]]) -> Iterator[Trial]:
        return (dict(zip(locs, combo, strict=True)) for combo in combos)

    if total <= MAX_TRIALS:  # then no range was cut at MAX_CANDIDATES either
        return TrialPlan(as_trials(itertools.product(*(v for _, v in hpos))), total, True)
    sizes = [len(values) for _, values in hpos]
    rows, pairs_total, pairs_covered = covering_rows(sizes, MAX_TRIALS)
    combos = (tuple(hpos[k][1][i] for k, i in enumerate(row)) for row in rows)
    every_value = all(
        attr.size() == len(values) for (_, attr), (_, values) in zip(attrs, hpos, strict=True)
    )
    return TrialPlan(as_trials(combos), total, False, pairs_total, pairs_covered, every_value)


def covering_rows(sizes: list[int], budget: int) -> tuple[list[tuple[int, ...]], int, int]:
    """Index combinations over parameters with `sizes` values each: first every value of every
    parameter at least once (max(sizes) rows, whatever the budget), then, while rows are fewer
    than `budget`, one row per still-uncovered value pair, the other parameters taking their
    least-used values. Deterministic. Returns the rows, the number of value pairs and how many
    the rows cover."""
    n = len(sizes)
    rows: list[tuple[int, ...]] = []
    covered: set[tuple[int, int, int, int]] = set()
    used = [[0] * size for size in sizes]

    def add(row: tuple[int, ...]) -> None:
        rows.append(row)
        for k, i in enumerate(row):
            used[k][i] += 1
        covered.update((a, row[a], b, row[b]) for a in range(n) for b in range(a + 1, n))

    # Rotating offsets so that the first rows already pair different values.
    for r in range(max(sizes)):
        add(tuple((r + k * (r // size)) % size for k, size in enumerate(sizes)))
    pairs_total = sum(sizes[a] * sizes[b] for a in range(n) for b in range(a + 1, n))
    pending = (
        (a, i, b, j)
        for a in range(n)
        for b in range(a + 1, n)
        for i in range(sizes[a])
        for j in range(sizes[b])
    )
    for a, i, b, j in pending:
        if len(rows) >= budget:
            break
        if (a, i, b, j) in covered:
            continue
        row = [min(range(size), key=used[k].__getitem__) for k, size in enumerate(sizes)]
        row[a], row[b] = i, j
        add(tuple(row))
    return rows, pairs_total, len(covered)


def check_program(program: ast.Program) -> CheckResult:
    """Build the IR for every shape-relevant HPO combination; return the first one's result."""
    from neuralc.ir.verifier import verify_module

    plan = trials(program)
    first: CheckResult | None = None
    checked = 0
    for trial in plan.trials:
        warnings: list[Diagnostic] = []
        try:
            module, built = build_module(program, trial, warnings)
            verify_module(module)
        except CompileError as exc:
            if trial and (checked or _another_builds(program, plan.trials)):
                exc.diagnostics[0].notes += (f"with the HPO combination {_describe(trial)}",)
            raise
        checked += 1
        if first is None:
            first = CheckResult(module, built, warnings)
    assert first is not None
    first.trials_checked, first.trials_total = checked, plan.total
    if not plan.exhaustive:
        pairs = (
            f", and {plan.pairs_covered:,} of {plan.pairs_total:,} pairs of values"
            if plan.pairs_total
            else ""
        )
        every = (
            "every value of each hyperparameter"
            if plan.every_value
            else f"the first {MAX_CANDIDATES:,} values of each hyperparameter"
        )
        first.warnings.append(
            Diagnostic(
                f"{checked:,} of {plan.total:,} HPO combinations were checked: {every}{pairs}",
                None,
                "warning",
                (_unchecked(plan) + " can remain; `neuralc tune` reports such a trial as failed",),
            )
        )
    return first


def _unchecked(plan: TrialPlan) -> str:
    if not plan.every_value:
        return f"a conflict with a value past the first {MAX_CANDIDATES:,} of a range"
    if plan.pairs_covered < plan.pairs_total:
        return "a conflict between values never checked together"
    return "a conflict among three or more values at once"


def _another_builds(program: ast.Program, others: Iterator[Trial]) -> bool:
    """Whether the error of the first combination depends on the hyperparameters (one of the
    next MAX_NOTE_PROBES combinations builds): only then does naming the combination help."""
    from neuralc.ir.verifier import verify_module

    # A bounded sample: the note is a hint, and trying every other combination (up to
    # MAX_CANDIDATES of them when a wide range comes first) only to decide it made a failing
    # check rebuild the network thousands of times before reporting.
    for trial in itertools.islice(others, MAX_NOTE_PROBES):
        try:
            module, _ = build_module(program, trial, [])
            verify_module(module)
        except CompileError:
            continue
        return True
    return False


def _describe(trial: Trial) -> str:
    return ", ".join(
        f"{value!r} (line {loc.line}, column {loc.column})" for loc, value in sorted(trial.items())
    )
