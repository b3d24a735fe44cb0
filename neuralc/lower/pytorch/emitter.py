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

This module is the walk itself (`Emitter`: blocks, layers, repeats, residuals); `rolled.py`
holds what it reads off the rolled IR (instance contexts, dataflow, constructors chosen per
repetition), and `module_text.py` decides placement and assembles the file around the classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from neuralc.ir.core import Block, Network, Operation, Value, primary_loc
from neuralc.ir.naming import SINGLE_BODY
from neuralc.ir.shapes import REPEAT, YIELD
from neuralc.lower.pytorch.codegen import (
    Vars,
    camel_case,
    fill,
    format_source,
    python_name,
    statement,
)
from neuralc.lower.pytorch.layers import LayerCode, lower
from neuralc.lower.pytorch.module_text import GeneratedClass, module_text, placement, root_doc
from neuralc.lower.pytorch.rolled import (
    Ctx,
    check_same_path,
    choose,
    free_values,
    list_expr,
    module_ref,
    reads,
    relative,
    repeat_rename,
    same,
    short_name,
    value_name,
    value_uses,
)
from neuralc.lower.pytorch.runtime_text import GLOBAL_NAMES
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import LayerInstance, layer_instances

RESIDUAL = "nn.residual_connection"


class Emitter:
    """One nn-stage network's walk into `GeneratedClass`es, then into the module's text."""

    def __init__(self, network: Network, options: BuildOptions) -> None:
        self.network = network
        self.options = options
        self.instances: dict[str, LayerInstance] = {i.name: i for i in layer_instances(network)}
        self.codes: dict[str, LayerCode] = {}
        self.helpers: set[str] = set()
        self.classes: list[GeneratedClass] = []
        self.class_names: set[str] = set()
        root = python_name(network.name if network.name[:1].isupper() else camel_case(network.name))
        self.root_name = root + "Model" if root in GLOBAL_NAMES else root
        self.class_names.add(self.root_name)
        self.default_device, self.placement = placement(network, options)

    # Entry point ------------------------------------------------------------------------------

    def emit(self) -> str:
        root = GeneratedClass(self.root_name, root_doc(self.network), [])
        vars_ = Vars(set())
        args = self._input_vars(vars_)
        root.args = args
        ctx = Ctx(lambda n: n, "", None)
        body = self.network.body
        env = {id(a): v for a, v in zip(body.args, args, strict=True)}
        outs = self._block(root, [ctx], body.ops, env, vars_, indent=2, root=True)
        root.forward.append(f"        return {outs[0]}")
        self.classes.append(root)
        return module_text(
            self.network,
            self.options,
            root,
            self.classes,
            self.helpers,
            self.default_device,
            self.placement,
        )

    def _input_vars(self, vars_: Vars) -> list[str]:
        inputs = self.network.inputs
        if len(inputs) == 1:
            vars_.taken.add("x")
            vars_.x_holder = id(inputs[0])
            return ["x"]
        return [vars_.fresh(v.name) for v in inputs]

    # Blocks -----------------------------------------------------------------------------------

    def _block(
        self,
        cls: GeneratedClass,
        ctxs: list[Ctx],
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
        uses = value_uses(body, [*tail, *keep])
        last = {vid: max(at) for vid, at in uses.items()}
        var_device: dict[str, str] = {}
        pad = "    " * indent
        for k, op in enumerate(body):
            operands = [env[id(v)] for v in op.operands]
            if root and self.placement:
                device = self.placement[op.name]
                for var in dict.fromkeys(env[id(v)] for v in reads(op)):
                    if var_device.get(var) != device:
                        cls.forward.append(f'{pad}{var} = {var}.to(self.devices["{op.name}"])')
                        var_device[var] = device
            # A loop assigns its result before the iterations read the values its body uses
            # from outside, so those must not live in the variable it assigns.
            read_in_loop = op.op == REPEAT and vars_.x_holder in {id(v) for v in free_values(op)}
            # `x` carries the chain; a value also read further down gets its layer's name.
            only_next = uses.get(id(op.results[0]), set()) <= {k + 1}
            if only_next and (
                vars_.x_holder is None or (last.get(vars_.x_holder, -1) <= k and not read_in_loop)
            ):
                out = "x"
                vars_.taken.add("x")
                vars_.x_holder = id(op.results[0])
            else:
                out = vars_.fresh(short_name(op.name))
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
        self,
        cls: GeneratedClass,
        ctxs: list[Ctx],
        op: Operation,
        operands: list[str],
        out: str,
        pad: str,
    ) -> None:
        codes = [self._code(ctx.rename(op.name)) for ctx in ctxs]
        call = same(op, [c.call for c in codes], "forward code")
        ref = None
        if codes[0].module is not None:
            rel = same(
                op, [relative(ctx.rename(op.name), ctx.prefix) for ctx in ctxs], "module path"
            )
            ctor = choose(
                cls, op, [(ctx.index, c.module or "") for ctx, c in zip(ctxs, codes, strict=True)]
            )
            self._assign(cls, rel, ctor, op)
            ref = module_ref(rel)
        statement(cls.forward, pad, f"{out} = {fill(call, ref, operands)}", op)

    def _repeat(
        self,
        cls: GeneratedClass,
        ctxs: list[Ctx],
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
            Ctx(repeat_rename(ctx.rename, op.name, i), f"{ctx.rename(op.name)}.{i}", i, ctx.index)
            for ctx in ctxs
            for i in range(count)
        ]
        rel = same(op, [relative(ctx.rename(op.name), ctx.prefix) for ctx in ctxs], "module path")
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
                check_same_path(layer, ctx.rename(layer.name), ctx.prefix)
            call = same(layer, [c.call for c in codes], "forward code")
            args = [inner_env[id(v)] for v in layer.operands]
            if codes[0].module is None:
                statement(cls.forward, pad, f"for _ in range({count}):", op)
                cls.forward.append(f"{pad}    {out} = {fill(call, None, args)}")
                return
            element = list_expr(
                cls,
                layer,
                [(c.outer, c.index, codes[k].module or "") for k, c in enumerate(inner_ctxs)],
                count,
            )
            self._assign(cls, rel, element, op)
            loop = vars_.loop("layer")
            statement(cls.forward, pad, f"for {loop} in {module_ref(rel)}:", op)
            cls.forward.append(f"{pad}    {out} = {fill(call, loop, args)}")
            return
        if single:  # a repeated residual block
            inner = body_ops[0]
            sub = self._region_class(
                inner, inner_ctxs, lambda c, ctxs_: self._residual_body(c, ctxs_, inner)
            )
            for ctx in inner_ctxs:
                check_same_path(inner, ctx.rename(inner.name), ctx.prefix)
        else:
            sub = self._region_class(
                op, inner_ctxs, lambda c, ctxs_: self._repeat_body(c, ctxs_, region)
            )
        free = [inner_env[id(v)] for v in sub[1]]
        ctor = f"{sub[0].name}(index)" if sub[0].takes_index else f"{sub[0].name}()"
        var = "index" if sub[0].takes_index else "_"
        self._assign(cls, rel, f"nn.ModuleList([{ctor} for {var} in range({count})])", op)
        loop = vars_.loop("block")
        statement(cls.forward, pad, f"for {loop} in {module_ref(rel)}:", op)
        cls.forward.append(f"{pad}    {out} = {loop}({', '.join([out, *free])})")

    def _residual(
        self,
        cls: GeneratedClass,
        ctxs: list[Ctx],
        op: Operation,
        operands: list[str],
        out: str,
        env: dict[int, str],
        pad: str,
    ) -> None:
        inner_ctxs = [Ctx(ctx.rename, ctx.rename(op.name), ctx.index) for ctx in ctxs]
        sub, outer_values = self._region_class(
            op, inner_ctxs, lambda c, ctxs_: self._residual_body(c, ctxs_, op)
        )
        rel = same(op, [relative(ctx.rename(op.name), ctx.prefix) for ctx in ctxs], "module path")
        if sub.takes_index:
            cls.takes_index = True
        self._assign(cls, rel, f"{sub.name}(index)" if sub.takes_index else f"{sub.name}()", op)
        free = [env[id(v)] for v in outer_values]
        statement(cls.forward, pad, f"{out} = {module_ref(rel)}({', '.join([operands[0], *free])})", op)

    # Region classes ---------------------------------------------------------------------------

    def _region_class(
        self, op: Operation, ctxs: list[Ctx], fill: Callable[[GeneratedClass, list[Ctx]], None]
    ) -> tuple[GeneratedClass, list[Value]]:
        name = self._class_name(op.name)
        free = free_values(op)
        kind = "ResidualConnection" if op.op == RESIDUAL else "repeated block"
        loc = primary_loc(op.loc)
        where = f" ({Path(loc.file).name}:{loc.line})" if loc else ""
        cls = GeneratedClass(name, f"'{op.name}': {kind}{where}.", [], free=free)
        fill(cls, ctxs)
        self.classes.append(cls)
        return cls, free

    def _repeat_body(self, cls: GeneratedClass, ctxs: list[Ctx], region: Block) -> None:
        free = cls.free
        vars_ = Vars({"x"}, region.args[0])
        env = {id(region.args[0]): "x"}
        cls.args = ["x"]
        for value in free:
            env[id(value)] = vars_.fresh(short_name(value_name(value)))
            cls.args.append(env[id(value)])
        outs = self._block(cls, ctxs, region.ops, env, vars_, indent=2)
        cls.forward.append(f"        return {outs[0]}")

    def _residual_body(self, cls: GeneratedClass, ctxs: list[Ctx], op: Operation) -> None:
        free = cls.free
        vars_ = Vars({"inputs"})
        cls.args = ["inputs"]
        env: dict[int, str] = {}
        for value in free:
            env[id(value)] = vars_.fresh(short_name(value_name(value)))
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

    def _assign(self, cls: GeneratedClass, rel: str, expr: str, op: Operation) -> None:
        """`self.<rel> = expr` with the containers on the way: nn.Module() for named children,
        nn.ModuleList() filled in index order for numbered ones (`dense.0` after -O1 inlines
        `Dense(4) * 1`)."""
        parts = rel.split(".")
        for i in range(1, len(parts) + 1):
            path, last = ".".join(parts[:i]), i == len(parts)
            if not last and path in cls.containers:
                continue
            value = expr if last else "nn.ModuleList()" if parts[i].isdigit() else "nn.Module()"
            line = f"{module_ref(path)} = {value}"
            if parts[i - 1].isdigit():
                owner, index = ".".join(parts[: i - 1]), int(parts[i - 1])
                length = cls.lengths.get(owner, 0)
                # Empty placeholders up to `index` keep later indices right if copies come out
                # of order; they hold no weights.
                for _ in range(length, index):
                    cls.init.append(f"        {module_ref(owner)}.append(nn.Module())")
                if index >= length:
                    line = f"{module_ref(owner)}.append({value})"
                    cls.lengths[owner] = index + 1
            if last:
                statement(cls.init, "        ", line, op)
            else:
                cls.containers.add(path)
                cls.init.append(f"        {line}")


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
