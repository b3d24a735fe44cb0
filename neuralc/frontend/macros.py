"""Program-level checks: macro definitions (unique, not shadowing layers, their lines valid
on their own) and unique network names."""

from __future__ import annotations

from neuralc.diagnostics import CompileError, Diagnostic, error
from neuralc.frontend import ast
from neuralc.frontend.layer_call import LayerResolver
from neuralc.layers import get_layer


def check_macros(program: ast.Program) -> None:
    """Check what can be checked of macros without an input: layer names and arguments."""
    macros = macro_table(program)
    builder = LayerResolver(macros, None)

    def visit(items: tuple[ast.LayerItem, ...]) -> None:
        for item in items:
            if isinstance(item, ast.Branch):
                visit(item.layers)
                continue
            builder._device(item)
            builder._repeat_count(item)
            if item.name not in macros:
                spec = builder._spec(item)
                builder._bind(item, spec)
                if item.body is not None and not spec.takes_body:
                    raise error(f"{spec.name} does not take a nested block", item.loc)
            if item.body:
                visit(item.body)

    for macro in program.macros:
        visit(macro.layers)


def macro_table(program: ast.Program) -> dict[str, ast.MacroDef]:
    table: dict[str, ast.MacroDef] = {}
    for macro in program.macros:
        if macro.name in table:
            raise CompileError(
                Diagnostic(
                    f"macro '{macro.name}' is defined twice",
                    macro.loc,
                    related=((table[macro.name].loc, "first definition is here"),),
                )
            )
        if get_layer(macro.name) is not None:
            raise error(
                f"macro '{macro.name}' has the name of a built-in layer",
                macro.loc,
                "rename the macro",
            )
        table[macro.name] = macro
    _check_acyclic(table)
    return table


def _macro_uses(items: tuple[ast.LayerItem, ...], table: dict[str, ast.MacroDef]
                ) -> list[ast.LayerCall]:
    """The lines of `items` (nested blocks and branches included) that use a macro."""
    uses: list[ast.LayerCall] = []
    for item in items:
        if isinstance(item, ast.Branch):
            uses += _macro_uses(item.layers, table)
            continue
        if item.name in table:
            uses.append(item)
        if item.body:
            uses += _macro_uses(item.body, table)
    return uses


def _check_acyclic(table: dict[str, ast.MacroDef]) -> None:
    """A macro that uses itself, directly or through others, would expand forever."""
    from graphlib import CycleError, TopologicalSorter

    uses = {name: _macro_uses(macro.layers, table) for name, macro in table.items()}
    try:
        TopologicalSorter({name: {c.name for c in calls} for name, calls in uses.items()}).prepare()
    except CycleError as exc:
        # graphlib lists each node before the one that uses it; reversed: A uses B uses A.
        cycle = list(reversed(exc.args[1]))
        name, user = cycle[-1], cycle[-2]
        call = next(c for c in uses[user] if c.name == name)
        what = "uses itself" if len(cycle) == 2 else "uses itself through " + " -> ".join(
            cycle[1:-1])
        raise CompileError(Diagnostic(
            f"macro '{name}' {what}",
            call.loc,
            notes=("a macro cannot contain itself; repeat a block with `* N` instead",),
            related=((table[name].loc, f"'{name}' is defined here"),),
        )) from None


def check_unique_networks(program: ast.Program) -> None:
    seen: dict[str, ast.Network] = {}
    for net in program.networks:
        if net.name in seen:
            raise CompileError(
                Diagnostic(
                    f"network '{net.name}' is defined twice",
                    net.loc,
                    notes=("give each network in a file its own name",),
                    related=((seen[net.name].loc, "first definition is here"),),
                )
            )
        seen[net.name] = net
