"""`nn` IR → one readable, standalone PyTorch module.

The generated file holds an `nn.Module` named after the network, whose submodules are named after
the DSL layers (so `state_dict()` keys are the weight-file keys), one forward statement per layer
with a `# model.neural:LINE` comment, and:

* repeated layers (`nn.repeat`) as an `nn.ModuleList` built in a comprehension and applied in a
  `for` loop — a repeated macro becomes a small class for its body; when a repetition's first
  copy sees a different input width its constructor is chosen by `index`;
* residual blocks as a small class computing `shortcut + body(inputs)`;
* the helper functions and classes the layers need (`snippets.py`), only when used;
* `load_weights`, `build_model`, `predict` and a `__main__` (`--weights`, `--input`, `-o`).

The emitter walks the rolled IR; per-copy facts (input widths, instance names) come from
`neuralc.lower.weights.layer_instances`, the same walk that names the weight file, so the two
cannot disagree. Placement: layers keep their `@ device`; when they differ, the forward moves
activations at each device boundary; `BuildOptions.device` or `build_model(device=...)` puts
everything on one device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neuralc import __version__
from neuralc.diagnostics import error
from neuralc.ir.core import Block, Network, Operation, Value, primary_loc
from neuralc.ir.naming import SINGLE_BODY, unrolled_name
from neuralc.ir.shapes import REPEAT, YIELD
from neuralc.lower.pytorch.codegen import (
    Vars,
    camel_case,
    conditional,
    docstring,
    fill,
    format_source,
    imports,
    merge_imports,
    python_name,
    quote,
    runtime_with_training,
    statement,
    tensor_text,
    torch_dtype,
)
from neuralc.lower.pytorch.layers import LayerCode, lower
from neuralc.lower.pytorch.snippets import (
    GLOBAL_NAMES,
    PLACE_MIXED,
    PLACE_SIMPLE,
    RUNTIME,
    with_dependencies,
)
from neuralc.lower.target import BuildOptions
from neuralc.lower.training import training_imports
from neuralc.lower.weights import LayerInstance, layer_instances

RESIDUAL = "nn.residual_connection"


@dataclass(frozen=True)
class _Ctx:
    """One place a generated class (or the root module) is instantiated."""

    rename: Callable[[str], str]  # rolled op name -> instance name
    prefix: str  # the instance's module path ("" for the root)
    index: int | None  # iteration of the innermost enclosing repeat
    outer: int | None = None  # iteration of the repeat enclosing that one


@dataclass
class _Class:
    name: str
    doc: str
    args: list[str]  # forward's parameters after self
    init: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    takes_index: bool = False
    containers: set[str] = field(default_factory=set)  # intermediate nn.Module() attributes
    free: list[Value] = field(default_factory=list)  # outer values the forward receives


class Emitter:
    def __init__(self, network: Network, options: BuildOptions) -> None:
        self.network = network
        self.options = options
        self.instances: dict[str, LayerInstance] = {i.name: i for i in layer_instances(network)}
        self.codes: dict[str, LayerCode] = {}
        self.helpers: set[str] = set()
        self.classes: list[_Class] = []
        self.class_names: set[str] = set()
        root = python_name(network.name if network.name[:1].isupper() else camel_case(network.name))
        self.root_name = root + "Model" if root in GLOBAL_NAMES else root
        self.class_names.add(self.root_name)
        self.default_device, self.placement = self._placement()

    # Entry point ------------------------------------------------------------------------------

    def emit(self) -> str:
        root = _Class(self.root_name, self._root_doc(), [])
        vars_ = Vars(set())
        args = self._input_vars(vars_)
        root.args = args
        ctx = _Ctx(lambda n: n, "", None)
        body = self.network.body
        env = {id(a): v for a, v in zip(body.args, args, strict=True)}
        outs = self._block(root, [ctx], body.ops, env, vars_, indent=2, root=True)
        root.forward.append(f"        return {outs[0]}")
        self.classes.append(root)
        return self._module_text(root)

    # Placement --------------------------------------------------------------------------------

    def _placement(self) -> tuple[str, dict[str, str]]:
        """The default device, and each top-level op's device when they differ."""
        if self.options.device:
            return self.options.device, {}
        execution = self.network.attrs.get("execution")
        default = execution.get("device") if isinstance(execution, dict) else None
        default = default if isinstance(default, str) else "cpu"
        devices: dict[str, str] = {}
        for op in self.network.body.ops:
            if op.op == "return":
                continue
            devices[op.name] = op.device or default
            for inner in op.walk():
                if inner is not op and inner.device and inner.device != devices[op.name]:
                    raise error(
                        f"layer '{inner.name}' is placed on {inner.device} inside "
                        f"'{op.name}', which runs on {devices[op.name]}; the PyTorch backend "
                        "places repeated and residual blocks as a whole",
                        primary_loc(inner.loc),
                        f"put the placement on the block's line, or build with --device "
                        f"{inner.device}",
                    )
        if len(set(devices.values())) <= 1:
            return (next(iter(devices.values())) if devices else default), {}
        return default, devices

    # Blocks -----------------------------------------------------------------------------------

    def _block(
        self,
        cls: _Class,
        ctxs: list[_Ctx],
        ops: Sequence[Operation],
        env: dict[int, str],
        vars_: Vars,
        indent: int,
        root: bool = False,
        keep: Sequence[Value] = (),
    ) -> list[str]:
        """Emit `ops` (a block's ops, terminator included) into `cls`; return the variables
        holding the terminator's operands. `keep`: values still needed after the block."""
        body = [op for op in ops if op.op not in (YIELD, "return")]
        terminator = next((op for op in ops if op.op in (YIELD, "return")), None)
        tail = list(terminator.operands) if terminator is not None else []
        uses = _uses(body, [*tail, *keep])
        last = {vid: max(at) for vid, at in uses.items()}
        var_device: dict[str, str] = {}
        pad = "    " * indent
        for k, op in enumerate(body):
            operands = [env[id(v)] for v in op.operands]
            if root and self.placement:
                device = self.placement[op.name]
                for var in dict.fromkeys(env[id(v)] for v in _reads(op)):
                    if var_device.get(var) != device:
                        cls.forward.append(f'{pad}{var} = {var}.to(self.devices["{op.name}"])')
                        var_device[var] = device
            # A loop assigns its result before the iterations read the values its body uses
            # from outside, so those must not live in the variable it assigns.
            read_in_loop = op.op == REPEAT and vars_.x_holder in {id(v) for v in _free_values(op)}
            # `x` carries the chain; a value also read further down gets its layer's name.
            only_next = uses.get(id(op.results[0]), set()) <= {k + 1}
            if only_next and (
                vars_.x_holder is None or (last.get(vars_.x_holder, -1) <= k and not read_in_loop)
            ):
                out = "x"
                vars_.taken.add("x")
                vars_.x_holder = id(op.results[0])
            else:
                out = vars_.fresh(_short_name(op.name))
            env[id(op.results[0])] = out
            if op.op == REPEAT:
                self._repeat(cls, ctxs, op, operands, out, env, vars_, pad)
            elif op.op == RESIDUAL:
                self._residual(cls, ctxs, op, operands, out, env, pad)
            else:
                self._layer(cls, ctxs, op, operands, out, pad)
            if root and self.placement:
                var_device[out] = self.placement[op.name]
        return [env[id(v)] for v in tail]

    def _layer(
        self, cls: _Class, ctxs: list[_Ctx], op: Operation, operands: list[str], out: str, pad: str
    ) -> None:
        codes = [self._code(ctx.rename(op.name)) for ctx in ctxs]
        call = _same(op, [c.call for c in codes], "forward code")
        ref = None
        if codes[0].module is not None:
            rel = _same(
                op, [_relative(ctx.rename(op.name), ctx.prefix) for ctx in ctxs], "module path"
            )
            ctor = self._choose(
                cls, op, [(ctx.index, c.module or "") for ctx, c in zip(ctxs, codes, strict=True)]
            )
            self._assign(cls, rel, ctor, op)
            ref = f"self.{rel}"
        statement(cls.forward, pad, f"{out} = {fill(call, ref, operands)}", op)

    def _repeat(
        self,
        cls: _Class,
        ctxs: list[_Ctx],
        op: Operation,
        operands: list[str],
        out: str,
        env: dict[int, str],
        vars_: Vars,
        pad: str,
    ) -> None:
        count = int(op.attrs["count"])  # type: ignore[call-overload]
        region = op.regions[0]
        inner_ctxs = [
            _Ctx(_repeat_rename(ctx.rename, op.name, i), f"{ctx.rename(op.name)}.{i}", i, ctx.index)
            for ctx in ctxs
            for i in range(count)
        ]
        rel = _same(op, [_relative(ctx.rename(op.name), ctx.prefix) for ctx in ctxs], "module path")
        body_ops = [o for o in region.ops if o.op != YIELD]
        single = len(body_ops) == 1 and body_ops[0].name == f"{op.name}.{SINGLE_BODY}"
        inner_env = dict(env)
        for arg in region.args:
            inner_env[id(arg)] = out
        if out != operands[0]:
            cls.forward.append(f"{pad}{out} = {operands[0]}")
        if single and body_ops[0].op not in (REPEAT, RESIDUAL):
            layer = body_ops[0]
            codes = [self._code(ctx.rename(layer.name)) for ctx in inner_ctxs]
            for ctx in inner_ctxs:
                _check_same_path(layer, ctx.rename(layer.name), ctx.prefix)
            call = _same(layer, [c.call for c in codes], "forward code")
            args = [inner_env[id(v)] for v in layer.operands]
            if codes[0].module is None:
                statement(cls.forward, pad, f"for _ in range({count}):", op)
                cls.forward.append(f"{pad}    {out} = {fill(call, None, args)}")
                return
            element = self._list_expr(
                cls,
                layer,
                [(c.outer, c.index, codes[k].module or "") for k, c in enumerate(inner_ctxs)],
                count,
            )
            self._assign(cls, rel, element, op)
            loop = vars_.loop("layer")
            statement(cls.forward, pad, f"for {loop} in self.{rel}:", op)
            cls.forward.append(f"{pad}    {out} = {fill(call, loop, args)}")
            return
        if single:  # a repeated residual block
            inner = body_ops[0]
            sub = self._region_class(
                inner, inner_ctxs, lambda c, ctxs_: self._residual_body(c, ctxs_, inner)
            )
            for ctx in inner_ctxs:
                _check_same_path(inner, ctx.rename(inner.name), ctx.prefix)
        else:
            sub = self._region_class(
                op, inner_ctxs, lambda c, ctxs_: self._repeat_body(c, ctxs_, region)
            )
        free = [inner_env[id(v)] for v in sub[1]]
        ctor = f"{sub[0].name}(index)" if sub[0].takes_index else f"{sub[0].name}()"
        var = "index" if sub[0].takes_index else "_"
        self._assign(cls, rel, f"nn.ModuleList([{ctor} for {var} in range({count})])", op)
        loop = vars_.loop("block")
        statement(cls.forward, pad, f"for {loop} in self.{rel}:", op)
        cls.forward.append(f"{pad}    {out} = {loop}({', '.join([out, *free])})")

    def _residual(
        self,
        cls: _Class,
        ctxs: list[_Ctx],
        op: Operation,
        operands: list[str],
        out: str,
        env: dict[int, str],
        pad: str,
    ) -> None:
        inner_ctxs = [_Ctx(ctx.rename, ctx.rename(op.name), ctx.index) for ctx in ctxs]
        sub, free_values = self._region_class(
            op, inner_ctxs, lambda c, ctxs_: self._residual_body(c, ctxs_, op)
        )
        rel = _same(op, [_relative(ctx.rename(op.name), ctx.prefix) for ctx in ctxs], "module path")
        if sub.takes_index:
            cls.takes_index = True
        self._assign(cls, rel, f"{sub.name}(index)" if sub.takes_index else f"{sub.name}()", op)
        free = [env[id(v)] for v in free_values]
        statement(cls.forward, pad, f"{out} = self.{rel}({', '.join([operands[0], *free])})", op)

    # Region classes ---------------------------------------------------------------------------

    def _region_class(
        self, op: Operation, ctxs: list[_Ctx], fill: Callable[[_Class, list[_Ctx]], None]
    ) -> tuple[_Class, list[Value]]:
        name = self._class_name(op.name)
        free = _free_values(op)
        kind = "ResidualConnection" if op.op == RESIDUAL else "repeated block"
        loc = primary_loc(op.loc)
        where = f" ({Path(loc.file).name}:{loc.line})" if loc else ""
        cls = _Class(name, f"'{op.name}': {kind}{where}.", [], free=free)
        fill(cls, ctxs)
        self.classes.append(cls)
        return cls, free

    def _repeat_body(self, cls: _Class, ctxs: list[_Ctx], region: Block) -> None:
        free = cls.free
        vars_ = Vars({"x"}, region.args[0])
        env = {id(region.args[0]): "x"}
        cls.args = ["x"]
        for value in free:
            env[id(value)] = vars_.fresh(_short_name(_value_name(value)))
            cls.args.append(env[id(value)])
        outs = self._block(cls, ctxs, region.ops, env, vars_, indent=2)
        cls.forward.append(f"        return {outs[0]}")

    def _residual_body(self, cls: _Class, ctxs: list[_Ctx], op: Operation) -> None:
        free = cls.free
        vars_ = Vars({"inputs"})
        cls.args = ["inputs"]
        env: dict[int, str] = {}
        for value in free:
            env[id(value)] = vars_.fresh(_short_name(_value_name(value)))
            cls.args.append(env[id(value)])
        body = op.regions[0]
        env[id(body.args[0])] = "inputs"
        body_out = self._block(cls, ctxs, body.ops, env, vars_, indent=2)[0]
        shortcut = "inputs"
        if len(op.regions) > 1:
            region = op.regions[1]
            env[id(region.args[0])] = "inputs"
            # The body's output must survive the shortcut's statements.
            body_value = body.terminator.operands[0] if body.terminator else None
            keep = [body_value] if body_value is not None else []
            shortcut = self._block(cls, ctxs, region.ops, env, vars_, indent=2, keep=keep)[0]
        cls.forward.append(f"        return {shortcut} + {body_out}")

    def _class_name(self, op_name: str) -> str:
        base = camel_case(op_name.removesuffix(f".{SINGLE_BODY}"))
        name, n = base, 1
        while name in self.class_names or name in GLOBAL_NAMES:
            n += 1
            name = f"{base}{n}"
        self.class_names.add(name)
        return name

    # Constructors -----------------------------------------------------------------------------

    def _code(self, instance_name: str) -> LayerCode:
        if instance_name not in self.codes:
            inst = self.instances.get(instance_name)
            if inst is None:
                raise RuntimeError(f"no layer instance named {instance_name!r}")
            code = lower(inst)
            self.helpers.update(code.helpers)
            self.codes[instance_name] = code
        return self.codes[instance_name]

    def _choose(self, cls: _Class, op: Operation, options: list[tuple[int | None, str]]) -> str:
        """One constructor expression, conditional on `index` when repetitions differ."""
        by_index: dict[int | None, str] = {}
        for index, expr in options:
            if by_index.setdefault(index, expr) != expr:
                raise error(
                    f"layer '{op.name}' differs between copies of an enclosing repeated "
                    "block in a way the PyTorch backend cannot express",
                    primary_loc(op.loc),
                )
        if len(set(by_index.values())) == 1:
            return options[0][1]
        cls.takes_index = True
        return conditional(by_index)

    def _list_expr(
        self,
        cls: _Class,
        op: Operation,
        options: list[tuple[int | None, int | None, str]],
        count: int,
    ) -> str:
        """`nn.ModuleList([...])` of a repeated layer's copies: one expression, or one chosen by
        the copy's index (and, inside a repeated block, by the block's `index`)."""
        if len({expr for _, _, expr in options}) == 1:
            return f"nn.ModuleList([{options[0][2]} for _ in range({count})])"
        by_inner: dict[int | None, str] = {}
        if all(by_inner.setdefault(j, expr) == expr for _, j, expr in options):
            return f"nn.ModuleList([{conditional(by_inner)} for index in range({count})])"
        by_pair: dict[tuple[int, int], str] = {}
        for outer, j, expr in options:
            if outer is None or by_pair.setdefault((outer, int(j or 0)), expr) != expr:
                raise error(
                    f"layer '{op.name}' differs between copies of an enclosing repeated "
                    "block in a way the PyTorch backend cannot express",
                    primary_loc(op.loc),
                )
        cls.takes_index = True
        return f"nn.ModuleList([{conditional(by_pair, 'j')} for j in range({count})])"

    def _assign(self, cls: _Class, rel: str, expr: str, op: Operation) -> None:
        parts = rel.split(".")
        for i in range(1, len(parts)):
            container = ".".join(parts[:i])
            if container not in cls.containers:
                cls.containers.add(container)
                cls.init.append(f"        self.{container} = nn.Module()")
        statement(cls.init, "        ", f"self.{rel} = {expr}", op)

    # Module text ------------------------------------------------------------------------------

    def _input_vars(self, vars_: Vars) -> list[str]:
        inputs = self.network.inputs
        if len(inputs) == 1:
            vars_.taken.add("x")
            vars_.x_holder = id(inputs[0])
            return ["x"]
        return [vars_.fresh(v.name) for v in inputs]

    def _root_doc(self) -> str:
        ins = ", ".join(f"{v.name}: {tensor_text(v.type)}" for v in self.network.inputs)
        outs = ", ".join(tensor_text(v.type) for v in self.network.outputs)
        loc = primary_loc(self.network.loc)
        where = f" ({Path(loc.file).name}:{loc.line})" if loc else ""
        return f"Network '{self.network.name}'{where}: ({ins}) -> {outs}."

    def _module_text(self, root: _Class) -> str:
        source = Path(self.options.source_path).name
        net = self.network
        lines: list[str] = [
            f'"""{net.name}: generated by neuralc {__version__} from {source}. Do not edit.',
            "",
            "Inputs and outputs are batch-first and channels-last (Keras layouts):",
        ]
        for v in net.inputs:
            lines.append(f"  input '{v.name}': {tensor_text(v.type)}")
        for v in net.outputs:
            lines.append(f"  output: {tensor_text(v.type)}")
        lines += [
            "The state_dict keys are the keys of neuralc's safetensors weight file "
            "(`neuralc init`).",
            "",
            f"Run: python {Path(source).stem}.py --weights W.safetensors --input X.npy -o Y.npy",
            '"""',
            "",
            "@@IMPORTS@@",
            "",
        ]
        names = ", ".join(f'"{v.name}"' for v in net.inputs)
        dtypes = ", ".join(f'"{v.name}": torch.{torch_dtype(v.type)}' for v in net.inputs)
        lines.append(
            f"INPUT_NAMES = ({names},)" if len(net.inputs) == 1 else f"INPUT_NAMES = ({names})"
        )
        lines.append(f"INPUT_DTYPES = {{{dtypes}}}")
        lines.append(f"DEVICE = {quote(self.default_device)}")
        if self.placement:
            lines.append("# Each top-level layer's device (the forward moves data between them).")
            lines.append("PLACEMENT: dict[str, str] = {")
            lines += [f"    {quote(k)}: {quote(v)}," for k, v in self.placement.items()]
            lines.append("}")
        lines.append(f"SEED = {int(self.options.seed)}")
        lines.append("")
        lines.append("")
        for snippet in with_dependencies(self.helpers):
            lines.append(snippet.source)
            lines.append("")
        for cls in self.classes:
            lines += self._class_text(cls, root=cls is root)
            lines.append("")
        lines.append(runtime_with_training(RUNTIME.replace("@@ROOT@@", root.name), self.network))
        text = "\n".join(lines)
        return text.replace("@@IMPORTS@@",
                            merge_imports(imports(text), training_imports("pytorch")))

    def _class_text(self, cls: _Class, root: bool) -> list[str]:
        args = ", ".join(f"{a}: torch.Tensor" for a in cls.args)
        init_args = ", index: int" if cls.takes_index else ""
        out = [
            f"class {cls.name}(nn.Module):",
            *docstring(cls.doc, "    "),
            "",
            f"    def __init__(self{init_args}) -> None:",
            "        super().__init__()",
        ]
        out += cls.init
        if root:
            if self.placement:
                out.append("        self.devices: dict[str, torch.device] = {}")
            out.append('        self.device = torch.device("cpu")')
        out += ["", f"    def forward(self, {args}) -> torch.Tensor:"]
        out += cls.forward
        if root:
            method = PLACE_MIXED if self.placement else PLACE_SIMPLE
            out += [""] + method.replace("@@ROOT@@", cls.name).splitlines()
        return out


def _repeat_rename(outer: Callable[[str], str], repeat: str, index: int) -> Callable[[str], str]:
    return lambda name: outer(unrolled_name(name, repeat, index))


def _relative(name: str, prefix: str) -> str:
    if not prefix:
        return name
    if not name.startswith(prefix + "."):
        raise RuntimeError(f"layer {name!r} is not inside its block {prefix!r}")
    return name[len(prefix) + 1 :]


def _check_same_path(op: Operation, name: str, element: str) -> None:
    if name != element:
        raise RuntimeError(f"repeated layer {op.name!r} is named {name!r}, expected {element!r}")


def _same(op: Operation, values: list[str], what: str) -> str:
    if len(set(values)) != 1:
        raise error(
            f"layer '{op.name}': its {what} differs between repetitions "
            f"({values[0]!r} vs {next(v for v in values if v != values[0])!r}); "
            "the PyTorch backend cannot express it",
            primary_loc(op.loc),
        )
    return values[0]


def _short_name(op_name: str) -> str:
    return op_name.split(".")[-1] if not op_name.split(".")[-1].isdigit() else op_name


def _value_name(value: Value) -> str:
    return value.name.split("#")[0]


def _reads(op: Operation) -> list[Value]:
    """Values an op reads: its operands and whatever its regions use from outside."""
    return [*op.operands, *_free_values(op)]


def _free_values(op: Operation) -> list[Value]:
    """Values that `op`'s regions (at any depth) use but do not define, in order of use."""
    defined: set[int] = set()
    for inner in op.walk():
        for region in inner.regions:
            defined.update(id(v) for v in region.args)
        if inner is not op:
            defined.update(id(v) for v in inner.results)
    free: dict[int, Value] = {}
    for inner in op.walk():
        if inner is op:
            continue
        for v in inner.operands:
            if id(v) not in defined:
                free.setdefault(id(v), v)
    return list(free.values())


def _uses(ops: list[Operation], tail: list[Value]) -> dict[int, set[int]]:
    """Where each value is read: op indices, `len(ops)` for the block's result."""
    uses: dict[int, set[int]] = {}
    for k, op in enumerate(ops):
        for v in _reads(op):
            uses.setdefault(id(v), set()).add(k)
    for v in tail:
        uses.setdefault(id(v), set()).add(len(ops))
    return uses


def emit_source(network: Network, options: BuildOptions) -> str:
    """The formatted PyTorch module for `network`: per layer for the `nn` stage, one functional
    call per op for the tensor and kernel stages (`functional.py`)."""
    from neuralc.lower.pytorch.functional import emit_functional, is_functional

    if is_functional(network):
        return emit_functional(network, options)
    return format_source(Emitter(without_transfers(network), options).emit())


def without_transfers(network: Network) -> Network:
    """`network` without its `nn.transfer` ops (a copy when it has any): the nn path moves data
    at the boundaries between layers' devices itself."""
    if not any(op.op == "nn.transfer" for op in network.walk()):
        return network
    from neuralc.ir.parser import parse_module
    from neuralc.ir.printer import print_network
    from neuralc.passes.rewrite import replace_op

    copy = parse_module("module {\n" + print_network(network, 1) + "\n}\n").networks[0]
    for op in [op for op in copy.walk() if op.op == "nn.transfer"]:
        replace_op(copy, op, [op.operands[0]])
    return copy
