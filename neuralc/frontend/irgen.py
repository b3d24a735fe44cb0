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
from neuralc.frontend.config import check_device, network_attrs
from neuralc.frontend.values import Trial, to_attr
from neuralc.ir.core import Block, Module, Network, Operation, Value
from neuralc.ir.naming import SINGLE_BODY, NameScope, unrolled_name
from neuralc.ir.types import BATCH, HPOAttr, TensorType
from neuralc.layers import LayerSpec, ShapeError, all_layers, get_layer
from neuralc.layers.binding import BindError, bind
from neuralc.layers.families.compose import check_follows

MAX_REPEAT = 10_000


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
    macros = _macro_table(program)
    _check_unique_networks(program)
    built = [
        _NetworkBuilder(program, macros, trial, warnings).build(net) for net in program.networks
    ]
    return Module([b.network for b in built]), built


def check_macros(program: ast.Program) -> None:
    """Check what can be checked of macros without an input: layer names and arguments."""
    macros = _macro_table(program)
    builder = _NetworkBuilder(program, macros, None, [])

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


def _macro_table(program: ast.Program) -> dict[str, ast.MacroDef]:
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


def _check_unique_networks(program: ast.Program) -> None:
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


class _NetworkBuilder:
    def __init__(
        self,
        program: ast.Program,
        macros: dict[str, ast.MacroDef],
        trial: Trial | None,
        warnings: list[Diagnostic],
    ) -> None:
        self.program = program
        self.macros = macros
        self.trial = trial
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
        self.batch_none: SourceLocation | None = None
        self.producers: dict[Value, tuple[LayerSpec, Value]] = {}
        self.network_inputs = self._inputs(net)
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

    def _inputs(self, net: ast.Network) -> list[Value]:
        values: list[Value] = []
        symbols = iter(f"s{i}" for i in range(1_000))
        names: set[str] = set()
        for spec in net.inputs:
            name = spec.name or "input"
            if name in names:
                raise error(f"input '{name}' is declared twice", spec.loc)
            names.add(name)
            dims = [to_attr(d) for d in spec.shape.items]
            if dims and dims[0] is None and len(dims) > 1:
                dims = dims[1:]
                self.batch_none = spec.shape.items[0].loc
                self.warnings.append(
                    Diagnostic(
                        "the leading None is the batch dimension; it is dropped from the input shape",
                        spec.shape.items[0].loc,
                        "note",
                    )
                )
            shape: list[int | str] = [BATCH]
            for dim, node in zip(dims, spec.shape.items[-len(dims) :] if dims else (), strict=True):
                if dim is None:
                    shape.append(next(symbols))
                elif isinstance(dim, int) and not isinstance(dim, bool) and dim > 0:
                    shape.append(dim)
                else:
                    raise error(
                        f"input dimension must be a positive integer or None, got {dim!r}", node.loc
                    )
            if len(shape) == 1:
                raise error("input shape is empty", spec.loc, "write e.g. input: (784,)")
            dtype = (
                "i64" if self._starts_with_embedding(net, spec.name) and len(shape) == 2 else "f32"
            )
            values.append(Value(name, TensorType(tuple(shape), dtype)))
        return values

    def _starts_with_embedding(self, net: ast.Network, input_name: str | None) -> bool:
        items: tuple[ast.LayerItem, ...] = net.layers
        if input_name is not None:
            branch = next(
                (b for b in net.layers if isinstance(b, ast.Branch) and b.input_name == input_name),
                None,
            )
            items = branch.layers if branch else ()
        while items:
            first = items[0]
            if not isinstance(first, ast.LayerCall):
                return False
            if first.name in self.macros:
                items = self.macros[first.name].layers
                continue
            spec = get_layer(first.name)
            return spec is not None and spec.name == "Embedding"
        return False

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
        if spec.name == "TransformerDecoder" and ctx.memory is not None:
            attrs["cross_attention"] = True
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
            params = 0 if regions else spec.count_params(_concrete(attrs), [v.type for v in inputs])
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

    def _check_follows(self, call: ast.LayerCall, spec: LayerSpec,
                       inputs: list[Value]) -> None:
        """Cross-layer rules of the registry (e.g. no Conv2D on Dense's per-pixel output)."""
        chain: list[tuple[LayerSpec, TensorType]] = []
        value: Value | None = inputs[0] if len(inputs) == 1 else None
        while value is not None and value in self.producers:
            producer_spec, producer_input = self.producers[value]
            chain.append((producer_spec, producer_input.type))
            value = producer_input
        try:
            check_follows(spec, chain)
        except ShapeError as exc:
            raise error(_prefixed(spec.name, exc.message), call.loc, exc.note or "") from None

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

    def _spec(self, call: ast.LayerCall) -> LayerSpec:
        spec = get_layer(call.name)
        if spec is None:
            names = [s.name for s in all_layers()] + list(self.macros)
            hint = did_you_mean(call.name, names)
            raise error(
                f"unknown layer '{call.name}'",
                call.loc,
                hint or "see docs/layers.md for the layers neuralc knows",
            )
        return spec

    def _bind(self, call: ast.LayerCall, spec: LayerSpec) -> dict:
        for arg in call.args:
            if isinstance(arg.value, ast.Name) and arg.value.name == "...":
                # The guide abbreviates `TransformerEncoder(...) @ "cuda:0"`.
                raise error(f"{spec.name}(...) leaves its arguments out", arg.loc,
                            "write the layer's arguments, e.g. "
                            + _example_call(spec))
        args = [(a.name, to_attr(a.value, self.trial)) for a in call.args]
        try:
            return dict(bind(spec, args))
        except BindError as exc:
            loc = call.args[exc.arg_index].loc if exc.arg_index is not None else call.loc
            raise error(_prefixed(spec.name, exc.message), loc, exc.note or "") from None

    def _infer(
        self, call: ast.LayerCall, spec: LayerSpec, attrs: dict, operands: list[Value]
    ) -> TensorType:
        try:
            return spec.infer(_concrete(attrs), [v.type for v in operands])
        except ShapeError as exc:
            loc = call.loc
            if exc.param is not None:
                param = spec.param(exc.param)
                names = {exc.param, *(param.aliases if param else ())}
                for arg in call.args:
                    if arg.name in names:
                        loc = arg.loc
            notes = [exc.note or ""]
            if self.batch_none is not None and any(v in self.network_inputs for v in operands):
                notes.append(
                    f"the leading None of the input (line {self.batch_none.line}) was "
                    "read as the batch dimension; for a dynamic length write another "
                    "None after it, e.g. input: (None, None, 512)"
                )
            raise error(_prefixed(spec.name, exc.message), loc, *notes) from None

    def _device(self, call: ast.LayerCall) -> str | None:
        if call.device is None:
            return None
        return check_device(call.device.value, call.device.loc)

    def _repeat_count(self, call: ast.LayerCall) -> int | None:
        if call.repeat is None:
            return None
        value = to_attr(call.repeat, self.trial)
        if isinstance(value, HPOAttr):
            value = value.candidates()[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise error(f"repetition count must be an integer, got {value!r}", call.repeat.loc)
        if value < 1:
            raise error(
                f"repetition count must be at least 1, got {value}",
                call.repeat.loc,
                "remove the layer instead of repeating it zero times" if value == 0 else "",
            )
        if value > MAX_REPEAT:
            raise error(
                f"repetition count {value} exceeds the limit of {MAX_REPEAT}", call.repeat.loc
            )
        return value


def _concrete(attrs: dict) -> dict:
    """Open hyperparameters at their first candidate: enough for shapes and counts."""
    return {k: (v.candidates()[0] if isinstance(v, HPOAttr) else v) for k, v in attrs.items()}


def _example_call(spec: LayerSpec) -> str:
    required = [p.name for p in spec.params if p.required]
    return f"{spec.name}({', '.join(f'{name}=...' for name in required)})"


def _prefixed(layer: str, message: str) -> str:
    return message if message.startswith(layer) else f"{layer}: {message}"


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
