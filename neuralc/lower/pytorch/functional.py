"""`tensor` / `kernel`-stage IR → one readable, standalone functional PyTorch module.

The `nn` path (`emitter.py`) builds a module per layer; after `lower-nn-to-tensor` (-O2, or
`--emit tensor`) there are no layers left, only ops on values, so this emitter writes:

* an `nn.Module` named after the network whose parameters and buffers are the `tensor.weight`
  ops, registered at their keys' dotted paths (`self.transformer_encoder[0].self_attn
  .in_proj_weight`), so `state_dict()` keys are the weight file's keys; BatchNorm's
  `num_batches_tracked`, which no op reads, is added beside each `running_mean`;
* a `forward` that is one statement per op, named after the op's value and commented with
  the source lines it came from (`# model.neural:4`; fused ops list all of theirs);
* the helpers the ops need (`functional_snippets.py`), the kernel composites calling
  neuralc's fused Triton kernels on CUDA tensors when `BuildOptions.kernels` is "auto";
* the same `build_model`, `load_weights`, `predict` and `__main__` as the nn path.

Placement: every op has a device after `place-devices`; a model on one device is placed as a
whole, otherwise each weight goes to its op's device (PLACEMENT) and `tensor.transfer` ops move
activations (`self.devices`). `precision = "bf16"` (-O3 on CUDA) wraps the forward in CUDA
autocast.

This module decides the statements, weights and placement; the weight tables are
`functional_weights.py`, and the file around them (docstring, imports, constants, the class and
the runtime functions) is written by `functional_text.py`.
"""

from __future__ import annotations

from neuralc.diagnostics import error
from neuralc.ir.core import Network, Operation, primary_loc
from neuralc.lower.pytorch.codegen import (
    RESERVED,
    Vars,
    camel_case,
    format_source,
    python_name,
    quote,
    source_statement,
)
from neuralc.lower.pytorch.functional_snippets import FUNCTIONAL_NAMES
from neuralc.lower.pytorch.functional_text import FunctionalModule, module_text
from neuralc.lower.pytorch.functional_weights import (
    constant_value,
    owner,
    placement_groups,
    weight_table,
)
from neuralc.lower.pytorch.runtime_text import GLOBAL_NAMES
from neuralc.lower.pytorch.tensor_ops import Site, expression, literal, splat_value
from neuralc.lower.target import BuildOptions

TRANSFER = "tensor.transfer"
ELEMENTWISE = ("tensor.add", "tensor.sub", "tensor.mul", "tensor.div")


def is_functional(network: Network) -> bool:
    """Whether `network` is at the tensor or kernel stage (this emitter's input)."""
    return any(op.dialect in ("tensor", "kernel") for op in network.walk())


def canonical(device: str | None) -> str:
    """One name per physical device: none is the host, `cuda` and `gpu` are `cuda:0`."""
    if device in (None, "cpu"):
        return "cpu"
    if device in ("cuda", "gpu"):
        return "cuda:0"
    return "cuda" + device[3:] if device.startswith("gpu") else device  # type: ignore[union-attr]


class FunctionalEmitter:
    def __init__(self, network: Network, options: BuildOptions) -> None:
        self.network = network
        self.options = options
        self.ops = [op for op in network.body.ops if op.op != "return"]
        for op in self.ops:
            if op.regions:
                raise error(
                    f"'{op.name}' ({op.op}) has regions; the tensor and kernel stages have none",
                    primary_loc(op.loc),
                )
        self.users: dict[int, list[Operation]] = {}
        for op in network.walk():
            for v in op.operands:
                self.users.setdefault(id(v), []).append(op)
        root = python_name(network.name if network.name[:1].isupper() else camel_case(network.name))
        self.root = root + "Model" if root in GLOBAL_NAMES | FUNCTIONAL_NAMES else root
        self.helpers: set[str] = set()
        self.weights = [op for op in self.ops if op.op == "tensor.weight"]
        self.default, self.mixed, self.single = self._placement()

    # Placement ------------------------------------------------------------------------------

    def _placement(self) -> tuple[str, bool, str]:
        """(the input device, whether ops sit on several devices, the one device if not)."""
        if self.options.device:
            return self.options.device, False, self.options.device
        execution = self.network.attrs.get("execution")
        default = execution.get("device") if isinstance(execution, dict) else None
        default = default if isinstance(default, str) else "cpu"
        raw = [op.device or default for op in self.ops]
        devices = {canonical(d) for d in raw}
        if len(devices) <= 1:
            return default, False, raw[0] if raw else default
        return canonical(default), True, ""

    def device_of(self, op: Operation) -> str:
        execution = self.network.attrs.get("execution")
        default = execution.get("device") if isinstance(execution, dict) else None
        return canonical(op.device or (default if isinstance(default, str) else None))

    # Weights --------------------------------------------------------------------------------

    def weight_table(self) -> tuple[dict[str, tuple], dict[str, tuple]]:
        return weight_table(self.ops)

    def reference(self, key: str) -> str:
        """`self.transformer_encoder[0].self_attn.in_proj_weight` for a dotted key."""
        out = "self"
        for part in key.split("."):
            if part.isdigit():
                out += f"[{part}]"
            elif part.isidentifier() and part not in RESERVED:
                out += f".{part}"
            else:
                return (
                    f"self.get_submodule({quote(key.rsplit('.', 1)[0])}).{part}"
                    if (key.rsplit(".", 1)[-1].isidentifier())
                    else f"getattr(self, {quote(key)})"
                )
        return out

    # Forward --------------------------------------------------------------------------------

    def forward(self) -> tuple[list[str], list[str], dict[int, Operation]]:
        """(the forward's argument names, its body lines, the constants it reads by id)."""
        vars_ = Vars(set(FUNCTIONAL_NAMES))
        inputs = self.network.inputs
        if len(inputs) == 1:
            vars_.taken.add("x")
            args = ["x"]
        else:
            args = [vars_.fresh(v.name) for v in inputs]
        env: dict[int, str] = {id(v): a for v, a in zip(inputs, args, strict=True)}
        where: dict[int, str] = {id(v): canonical(self.default) for v in inputs}
        constants: dict[int, Operation] = {}
        lines: list[str] = []
        for op in self.ops:
            if op.op == "tensor.weight":
                env[id(op.result)] = self.reference(str(op.attrs["key"]))
                where[id(op.result)] = self.device_of(op)
                continue
            if op.op == "tensor.constant":
                env[id(op.result)] = self._constant(op, constants)
                where[id(op.result)] = self.device_of(op)
                continue
            device = canonical(str(op.attrs["to"])) if op.op == TRANSFER else self.device_of(op)
            operands = [
                env[id(v)] if op.op == TRANSFER else self._moved(env[id(v)], where[id(v)], device)
                for v in op.operands
            ]
            if op.op == TRANSFER:
                if not self.mixed:
                    env[id(op.result)] = env[id(op.operands[0])]
                    where[id(op.result)] = device
                    continue
                text = f'{operands[0]}.to(self.devices["{device}"])'
                operands = [text]
            else:
                site = Site(op, operands)
                text = expression(site)
                self.helpers |= site.helpers
            if text == operands[0] and op.op != TRANSFER:  # `linear` activation: an alias
                env[id(op.result)] = operands[0]
                where[id(op.result)] = where[id(op.operands[0])]
                continue
            var = vars_.fresh(op.result.name)
            env[id(op.result)] = var
            where[id(op.result)] = device
            source_statement(lines, f"{var} = {text}", op)
        outputs = [env[id(v)] for v in self.network.outputs]
        lines.append(f"return {outputs[0]}")
        return args, lines, constants

    def _moved(self, text: str, at: str, device: str) -> str:
        if not self.mixed or at == device:
            return text
        return f'{text}.to(self.devices["{device}"])'

    def _constant(self, op: Operation, constants: dict[int, Operation]) -> str:
        """A scalar splat read by elementwise ops inline; anything else a buffer, created only
        when some expression reads it (norms skip a splat gamma 1.0 / beta 0.0)."""
        value = splat_value(op.result)
        users = self.users.get(id(op.result), [])
        if (
            value is not None
            and op.result.type.rank == 0
            and users
            and all(u.op in ELEMENTWISE for u in users)
        ):
            return literal(float(value) if op.result.type.is_float else value)
        constants[id(op.result)] = op
        return f"@@CONST{id(op.result)}@@"

    # Constants, then the module -------------------------------------------------------------

    def emit(self) -> str:
        args, body, constants = self.forward()
        params, buffers = self.weight_table()
        text = "\n".join(body)
        init = [
            "for key, (shape, init) in PARAMETERS.items():",
            "    add_weight(self, key, nn.Parameter(init_tensor(shape, init)))",
        ]
        if buffers:
            init += [
                "for key, (shape, init) in BUFFERS.items():",
                "    add_weight(self, key, init_tensor(shape, init))",
            ]
        if not params:
            init = init[2:]
        self.helpers |= {"init_tensor", "add_weight"} if (params or buffers) else set()
        taken = set(params) | set(buffers)
        prefixes = {k.rsplit(".", i)[0] for k in taken for i in range(1, k.count(".") + 1)}
        devices = {}
        for key in [*params, *buffers]:
            op = owner(key, self.ops)
            devices[key] = self.device_of(op) if op is not None else canonical(self.default)
        for vid, op in constants.items():
            marker = f"@@CONST{vid}@@"
            if marker not in text:
                continue
            key = op.result.name
            if (
                key in taken
                or key in prefixes
                or any(k.startswith(key + ".") for k in taken)
                or not all(p.isidentifier() for p in key.split("."))
            ):
                key = "constants." + python_name(op.result.name)
            taken.add(key)
            devices[key] = self.device_of(op)
            init.append(f"add_weight(self, {quote(key)}, {constant_value(op)}, persistent=False)")
            self.helpers.add("add_weight")
            text = text.replace(marker, self.reference(key))
        groups = placement_groups(devices) if self.mixed else {}
        if groups:
            self.helpers.add("move_to")
        return module_text(FunctionalModule(
            self.network, self.options, self.root, self.helpers, args, text.splitlines(), init,
            params, buffers, device=self.default if self.mixed else self.single,
            home=canonical(self.default), groups=groups,
        ))


def emit_functional(network: Network, options: BuildOptions) -> str:
    """The formatted functional PyTorch module for a tensor/kernel-stage `network`."""
    return format_source(FunctionalEmitter(network, options).emit())
