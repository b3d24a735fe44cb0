"""AST → `nn` IR: macro expansion, argument binding, repetition, residual blocks, branches,
devices and shape inference, with a diagnostic at the user's source line for every failure.

The builder works on one HPO *trial* at a time: discrete hyperparameters that may change shapes
are fixed by the trial, the others stay `HPOAttr`s in the IR. `neuralc.frontend.check` runs it
once per combination.

Nested blocks (repetition, residual regions) are `nested_blocks`; one layer line in isolation
(registry lookup, binding, shape inference) is `layer_call`; this module composes them into
networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neuralc.diagnostics import Diagnostic, SourceLocation, did_you_mean, error
from neuralc.frontend import ast
from neuralc.frontend.config import network_attrs
from neuralc.frontend.inputs import network_inputs
from neuralc.frontend.layer_call import concrete
from neuralc.frontend.macros import check_unique_networks, macro_table
from neuralc.frontend.nested_blocks import EmitContext, NestedBlocks
from neuralc.frontend.values import Trial
from neuralc.ir.core import Block, Module, Network, Operation, Value
from neuralc.ir.naming import NameScope
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


class _NetworkBuilder(NestedBlocks):
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
        ctx = EmitContext(body, NameScope(taken={a.name for a in body.args}), rows, lambda n: n)
        if len(body.args) == 1 and not any(isinstance(i, ast.Branch) for i in net.layers):
            out = self._emit_items(net.layers, ctx, body.args[0])
        else:
            out = self._emit_branches(net, ctx)
        body.append(Operation("return", "return", [out]))
        network = Network(net.name, body, attrs, net.loc)
        return BuiltNetwork(network, rows)

    # Sequences and branches -------------------------------------------------------------------

    def _emit_branches(self, net: ast.Network, ctx: EmitContext) -> Value:
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

    def _emit_items(self, items: tuple[ast.LayerItem, ...], ctx: EmitContext, x: Value) -> Value:
        for item in items:
            if isinstance(item, ast.Branch):
                raise error(
                    "named branches are only allowed at the top of a network's layers", item.loc
                )
            x = self._emit_call(item, ctx, x)
        return x

    # One layer line ---------------------------------------------------------------------------

    def _emit_call(self, call: ast.LayerCall, ctx: EmitContext, x: Value | list[Value]) -> Value:
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
                return self._emit_items(items, ctx.with_use(call.loc), _single(x, call))
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

    def _emit_layer(
        self,
        call: ast.LayerCall,
        spec: LayerSpec,
        ctx: EmitContext,
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


def _execution_device(attrs: dict) -> str | None:
    execution = attrs.get("execution")
    return execution.get("device") if isinstance(execution, dict) else None
