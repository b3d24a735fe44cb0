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
    return table


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
