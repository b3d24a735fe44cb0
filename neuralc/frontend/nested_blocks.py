"""Layers that hold layers: a repeated line or macro (`nn.repeat`) and ResidualConnection's body
(and shortcut) regions.

Separate from the network builder (`irgen`) because each of these opens a region of its own —
a block with its own arguments, name scope and way of naming the rows `neuralc check` lists —
and decides how many regions there are (one body per repeat, however many repetitions were
checked; a residual block's trailing 1×1 convolution as the shortcut projection only when the
rest changes the shape). The layers inside are emitted by the builder's `_emit_items` and
`_emit_layer`, which `NestedBlocks` leaves to its subclass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from neuralc.diagnostics import CompileError, SourceLocation, error
from neuralc.frontend import ast
from neuralc.frontend.layer_call import LayerResolver
from neuralc.frontend.values import to_attr
from neuralc.ir.core import Block, Operation, Value
from neuralc.ir.naming import SINGLE_BODY, NameScope, unrolled_name
from neuralc.layers import LayerSpec, get_layer

if TYPE_CHECKING:
    from neuralc.frontend.irgen import LayerRow


@dataclass
class EmitContext:
    """Where ops go and how they are named while emitting a sequence of layers."""

    block: Block
    scope: NameScope
    rows: list[LayerRow] | None
    row_name: Callable[[str], str]  # IR op name -> the name `check` lists
    memory: Value | None = None  # the latest TransformerEncoder output, for cross-attention
    macro_use: SourceLocation | None = None

    def with_use(self, use: SourceLocation) -> EmitContext:
        """The same place inside a macro used at `use` (the outermost use is kept)."""
        return EmitContext(self.block, self.scope, self.rows, self.row_name, self.memory,
                           self.macro_use or use)


class NestedBlocks(LayerResolver, ABC):
    """The IR builder's nested blocks; the layers inside come from the subclass."""

    # Supplied by the network builder: a sequence of layer lines, and one layer's op.
    @abstractmethod
    def _emit_items(self, items: tuple[ast.LayerItem, ...], ctx: EmitContext,
                    x: Value) -> Value:
        """Emit a sequence of layer lines into `ctx.block`; the last value."""

    @abstractmethod
    def _emit_layer(self, call: ast.LayerCall, spec: LayerSpec, ctx: EmitContext,
                    x: Value | list[Value], device: str | None,
                    fixed_name: str | None = None) -> Value:
        """Emit one layer's op; its result."""

    def _emit_repeat(
        self,
        call: ast.LayerCall,
        ctx: EmitContext,
        x: Value,
        items: tuple[ast.LayerItem, ...],
        count: int,
        device: str | None,
        base: str,
    ) -> Value:
        name = ctx.scope.fresh(base)
        single = len(items) == 1 and items[0] is call
        current_type = x.type
        body_block: Block | None = None
        for index in range(count):
            arg = Value(f"{name}.in", current_type)
            block = Block([arg])
            scope = NameScope(name, ctx.scope.taken if index == 0 else set(ctx.scope.taken))
            inner = EmitContext(
                block,
                scope,
                ctx.rows,
                lambda n, i=index: ctx.row_name(unrolled_name(n, name, i)),  # type: ignore[misc]
                ctx.memory,
                ctx.macro_use,
            )
            try:
                if single:
                    spec = self._spec(call)
                    out = self._emit_layer(
                        call, spec, inner, arg, device, fixed_name=f"{name}.{SINGLE_BODY}"
                    )
                else:
                    out = self._emit_items(items, inner.with_use(call.loc), arg)
            except CompileError as exc:
                if index > 0:
                    exc.diagnostics[0].notes += (
                        f"in repetition {index + 1} of {count} (input {current_type})",
                    )
                raise
            block.append(Operation("nn.yield", f"{name}.yield", [out], loc=call.loc))
            if index == 0:
                body_block = block
            current_type = out.type
        assert body_block is not None
        op = Operation(
            "nn.repeat", name, [x], [current_type], {"count": count}, call.loc, device, [body_block]
        )
        ctx.block.append(op)
        if _produces_memory(items, self.macros):
            ctx.memory = op.result
        return op.result

    def _residual_regions(self, call: ast.LayerCall, ctx: EmitContext, x: Value, name: str,
                          device: str | None) -> tuple[list[Block], list[Value]]:
        """Body (and optional shortcut) of `ResidualConnection { ... }`.

        A trailing 1×1 convolution is the shortcut projection when the rest of the block
        changes the shape (ResNet's downsampling blocks, as upstream's resnet.neural writes them).
        """
        items = call.body or ()
        if not items:
            raise error("ResidualConnection needs a block of layers", call.loc,
                        "write ResidualConnection { Dense(64) ... }")
        scope = NameScope(name, ctx.scope.taken)  # `name` is already qualified
        if len(items) >= 2 and _is_projection(items[-1]):
            trial = Block([Value(f"{name}.in", x.type)])
            probe = EmitContext(trial, scope.copy(), None, ctx.row_name, ctx.memory)
            try:
                out = self._emit_items(items, probe, trial.args[0])
                keeps_shape = out.type == x.type
            except CompileError:
                keeps_shape = False
            if not keeps_shape:
                body = Block([Value(f"{name}.in", x.type)])
                inner = EmitContext(body, scope, ctx.rows, ctx.row_name, ctx.memory)
                body_out = self._emit_items(items[:-1], inner, body.args[0])
                body.append(Operation("nn.yield", f"{name}.yield", [body_out], loc=call.loc))
                shortcut = Block([Value(f"{name}.shortcut_in", x.type)])
                inner_sc = EmitContext(shortcut, scope, ctx.rows, ctx.row_name, ctx.memory)
                sc_out = self._emit_items(items[-1:], inner_sc, shortcut.args[0])
                shortcut.append(Operation("nn.yield", f"{name}.shortcut_yield", [sc_out],
                                          loc=items[-1].loc))
                return [body, shortcut], [sc_out, body_out]
        body = Block([Value(f"{name}.in", x.type)])
        inner = EmitContext(body, scope, ctx.rows, ctx.row_name, ctx.memory)
        body_out = self._emit_items(items, inner, body.args[0])
        body.append(Operation("nn.yield", f"{name}.yield", [body_out], loc=call.loc))
        return [body], [x, body_out]


def _is_projection(item: ast.LayerItem) -> bool:
    if not isinstance(item, ast.LayerCall) or item.name not in ("Conv1D", "Conv2D"):
        return False
    sizes = [a.value for a in item.args if a.name == "kernel_size"]
    if not sizes:
        positional = [a.value for a in item.args if a.name is None]
        sizes = positional[1:2]
    if not sizes:
        return False
    value = to_attr(sizes[0])
    values = value if isinstance(value, tuple) else (value,)
    return all(v == 1 for v in values)


def _produces_memory(items: tuple[ast.LayerItem, ...], macros: dict[str, ast.MacroDef]) -> bool:
    last = items[-1] if items else None
    if not isinstance(last, ast.LayerCall):
        return False
    if last.name in macros:
        return _produces_memory(macros[last.name].layers, macros)
    spec = get_layer(last.name)
    return spec is not None and spec.name == "TransformerEncoder"
