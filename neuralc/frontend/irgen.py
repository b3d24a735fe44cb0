"""AST → `nn` IR: macro expansion, argument binding, repetition, residual blocks, branches,
devices and shape inference, with a diagnostic at the user's source line for every failure.

The builder works on one HPO *trial* at a time: discrete hyperparameters that may change shapes
are fixed by the trial, the others stay `HPOAttr`s in the IR. `neuralc.frontend.check` runs it
once per combination.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation, did_you_mean, error
from neuralc.frontend import ast
from neuralc.frontend.config import network_attrs
from neuralc.frontend.inputs import network_inputs
from neuralc.frontend.layer_call import LayerResolver, concrete
from neuralc.frontend.macros import check_unique_networks, macro_table
from neuralc.frontend.values import Trial, to_attr
from neuralc.ir.core import Block, Module, Network, Operation, Value
from neuralc.ir.naming import SINGLE_BODY, NameScope, unrolled_name
from neuralc.ir.types import TensorType
from neuralc.layers import LayerSpec, get_layer


@dataclass(frozen=True)
class LayerRow:
    """One layer instance as `neuralc check` lists it (repetitions unrolled)."""

    name: str
    layer: str
    output_type: TensorType
    params: int
    device: str | None
    loc: SourceLocation


@dataclass
class BuiltNetwork:
    network: Network
    rows: list[LayerRow] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(row.params for row in self.rows)


@dataclass
class _Ctx:
    """Where ops go and how they are named while emitting a sequence of layers."""

    block: Block
    scope: NameScope
    rows: list[LayerRow] | None
    row_name: Callable[[str], str]  # IR op name -> the name `check` lists
    memory: Value | None = None  # the latest TransformerEncoder output, for cross-attention
    macro_use: SourceLocation | None = None


def build_module(
    program: ast.Program, trial: Trial | None = None, warnings: list[Diagnostic] | None = None
) -> tuple[Module, list[BuiltNetwork]]:
    warnings = warnings if warnings is not None else []
    macros = macro_table(program)
    check_unique_networks(program)
    built = [
        _NetworkBuilder(program, macros, trial, warnings).build(net) for net in program.networks
    ]
    return Module([b.network for b in built]), built


class _NetworkBuilder(LayerResolver):
    def __init__(
        self,
        program: ast.Program,
        macros: dict[str, ast.MacroDef],
        trial: Trial | None,
        warnings: list[Diagnostic],
    ) -> None:
        super().__init__(macros, trial)
        self.program = program
        self.warnings = warnings

    def build(self, net: ast.Network) -> BuiltNetwork:
        if not net.inputs:
            raise error(
                f"network '{net.name}' has no input",
                net.loc,
                "add a line such as input: (28, 28, 1)",
            )
        if not net.layers:
            raise error(
                f"network '{net.name}' has no layers",
                net.layers_loc or net.loc,
                "add a layers: section",
            )
        attrs = network_attrs(net, self.trial, self.warnings)
        self.default_device = _execution_device(attrs)
        self.producers: dict[Value, tuple[LayerSpec, Value]] = {}
        self.network_inputs, self.batch_none = network_inputs(net, self.macros, self.warnings)
        body = Block(self.network_inputs)
        rows: list[LayerRow] = []
        ctx = _Ctx(body, NameScope(taken={a.name for a in body.args}), rows, lambda n: n)
        if len(body.args) == 1 and not any(isinstance(i, ast.Branch) for i in net.layers):
            out = self._emit_items(net.layers, ctx, body.args[0])
        else:
            out = self._emit_branches(net, ctx)
        body.append(Operation("return", "return", [out]))
        network = Network(net.name, body, attrs, net.loc)
        return BuiltNetwork(network, rows)

    # Inputs -----------------------------------------------------------------------------------

    # Sequences and branches -------------------------------------------------------------------

    def _emit_branches(self, net: ast.Network, ctx: _Ctx) -> Value:
        inputs = {v.name: v for v in ctx.block.args}
        pending: list[Value] = []
        current: Value | None = None
        used: set[str] = set()
        for item in net.layers:
            if isinstance(item, ast.Branch):
                if item.input_name not in inputs:
                    hint = did_you_mean(item.input_name, inputs)
                    raise error(
                        f"branch '{item.input_name}' names no input of network '{net.name}'",
                        item.loc,
                        hint or "inputs: " + ", ".join(inputs),
                    )
                used.add(item.input_name)
                pending.append(self._emit_items(item.layers, ctx, inputs[item.input_name]))
                continue
            spec = get_layer(item.name)
            if pending:
                if spec is None or spec.arity is not None:
                    raise error(
                        f"'{item.name}' follows named branches but does not merge them",
                        item.loc,
                        "merge the branches first, e.g. with Concatenate()",
                    )
                current = self._emit_call(item, ctx, pending)
                pending = []
            elif current is None:
                raise error(
                    "a network with several inputs must start with named branches",
                    item.loc,
                    "write e.g. image: { Conv2D(...) } for each input",
                )
            else:
                current = self._emit_call(item, ctx, current)
        for name in inputs:
            if name not in used and len(inputs) > 1:
                raise error(f"input '{name}' is not used by any branch", net.loc)
        if pending:
            if len(pending) > 1:
                raise error(
                    "the network ends with unmerged branches",
                    net.layers[-1].loc,
                    "add a merge layer such as Concatenate()",
                )
            current = pending[0]
        assert current is not None
        return current

    def _emit_items(self, items: tuple[ast.LayerItem, ...], ctx: _Ctx, x: Value) -> Value:
        for item in items:
            if isinstance(item, ast.Branch):
                raise error(
                    "named branches are only allowed at the top of a network's layers", item.loc
                )
            x = self._emit_call(item, ctx, x)
        return x

    # One layer line ---------------------------------------------------------------------------

    def _emit_call(self, call: ast.LayerCall, ctx: _Ctx, x: Value | list[Value]) -> Value:
        device = self._device(call)
        count = self._repeat_count(call)
        if call.name in self.macros:
            macro = self.macros[call.name]
            if call.args:
                raise error(f"macro '{call.name}' takes no arguments", call.args[0].loc)
            if call.body is not None:
                raise error(f"macro '{call.name}' takes no nested block", call.loc)
            items = macro.layers
            if count is None:
                return self._emit_items(items, _with_use(ctx, call.loc), _single(x, call))
            return self._emit_repeat(
                call, ctx, _single(x, call), items, count, device, base=call.name
            )
        spec = self._spec(call)
        if count is not None:
            if spec.arity is None:
                raise error(
                    f"{spec.name} merges several inputs and cannot be repeated",
                    call.repeat.loc if call.repeat else call.loc,
                )
            return self._emit_repeat(
                call, ctx, _single(x, call), (call,), count, device, base=spec.name
            )
        return self._emit_layer(call, spec, ctx, x, device)

    def _emit_repeat(
        self,
        call: ast.LayerCall,
        ctx: _Ctx,
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
            inner = _Ctx(
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
                    out = self._emit_items(items, _with_use(inner, call.loc), arg)
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

    def _emit_layer(
        self,
        call: ast.LayerCall,
        spec: LayerSpec,
        ctx: _Ctx,
        x: Value | list[Value],
        device: str | None,
        fixed_name: str | None = None,
    ) -> Value:
        attrs = self._bind(call, spec)
        inputs = x if isinstance(x, list) else [x]
        if spec.arity is not None and len(inputs) != spec.arity:
            raise error(f"{spec.name} takes {spec.arity} input(s), got {len(inputs)}", call.loc)
        if spec.arity is None and len(inputs) < 2:
            raise error(
                f"{spec.name} merges several inputs but receives one",
                call.loc,
                "put it after named branches, e.g. image: { ... } metadata: { ... }",
            )
        name = (
            ctx.scope.exact(fixed_name.removeprefix(ctx.scope.prefix + "."))
            if fixed_name
            else ctx.scope.fresh(spec.name)
        )
        regions: list[Block] = []
        operands = list(inputs)
        if spec.takes_body:
            regions, inputs = self._residual_regions(call, ctx, inputs[0], name, device)
        elif call.body is not None:
            raise error(
                f"{spec.name} does not take a nested block",
                call.loc,
                "only ResidualConnection { ... } holds layers; write the inner layers "
                "on their own lines",
            )
        if spec.name == "TransformerDecoder":
            attrs["cross_attention"] = self._cross_attends(call, spec, attrs, ctx.memory)
            if attrs["cross_attention"] and ctx.memory is not None:
                inputs = [*inputs, ctx.memory]
        self._check_follows(call, spec, inputs)
        result_type = self._infer(call, spec, attrs, inputs)
        if spec.name == "TransformerDecoder":
            operands = inputs
        op = Operation(
            spec.op_name, name, operands, [result_type], attrs, call.loc, device, regions
        )
        ctx.block.append(op)
        if ctx.rows is not None:
            params = 0 if regions else spec.count_params(concrete(attrs), [v.type for v in inputs])
            ctx.rows.append(
                LayerRow(
                    ctx.row_name(name),
                    spec.name,
                    result_type,
                    params,
                    device or self.default_device,
                    call.loc,
                )
            )
        if spec.name == "TransformerEncoder":
            ctx.memory = op.result
        if inputs:
            self.producers[op.result] = (spec, inputs[0])
        return op.result

    def _residual_regions(self, call: ast.LayerCall, ctx: _Ctx, x: Value, name: str,
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
            probe = _Ctx(trial, scope.copy(), None, ctx.row_name, ctx.memory)
            try:
                out = self._emit_items(items, probe, trial.args[0])
                keeps_shape = out.type == x.type
            except CompileError:
                keeps_shape = False
            if not keeps_shape:
                body = Block([Value(f"{name}.in", x.type)])
                inner = _Ctx(body, scope, ctx.rows, ctx.row_name, ctx.memory)
                body_out = self._emit_items(items[:-1], inner, body.args[0])
                body.append(Operation("nn.yield", f"{name}.yield", [body_out], loc=call.loc))
                shortcut = Block([Value(f"{name}.shortcut_in", x.type)])
                inner_sc = _Ctx(shortcut, scope, ctx.rows, ctx.row_name, ctx.memory)
                sc_out = self._emit_items(items[-1:], inner_sc, shortcut.args[0])
                shortcut.append(Operation("nn.yield", f"{name}.shortcut_yield", [sc_out],
                                          loc=items[-1].loc))
                return [body, shortcut], [sc_out, body_out]
        body = Block([Value(f"{name}.in", x.type)])
        inner = _Ctx(body, scope, ctx.rows, ctx.row_name, ctx.memory)
        body_out = self._emit_items(items, inner, body.args[0])
        body.append(Operation("nn.yield", f"{name}.yield", [body_out], loc=call.loc))
        return [body], [x, body_out]

    # Pieces -----------------------------------------------------------------------------------


def _single(x: Value | list[Value], call: ast.LayerCall) -> Value:
    if isinstance(x, list):
        if len(x) != 1:
            raise error(
                f"'{call.name}' cannot take several branches as input",
                call.loc,
                "merge the branches first, e.g. with Concatenate()",
            )
        return x[0]
    return x


def _with_use(ctx: _Ctx, use: SourceLocation) -> _Ctx:
    return _Ctx(ctx.block, ctx.scope, ctx.rows, ctx.row_name, ctx.memory, ctx.macro_use or use)


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


def _execution_device(attrs: dict) -> str | None:
    execution = attrs.get("execution")
    return execution.get("device") if isinstance(execution, dict) else None
