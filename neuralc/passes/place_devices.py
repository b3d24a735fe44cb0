"""`place-devices`: give every op a device and insert transfers where devices change.

An op's device is, in order: the `device` option (build's `--device`, overriding the model),
its own `@` device, the enclosing op's, the network's `execution { device: ... }`, else none
(the host). `gpu` is spelled `cuda`. Ops are placed in every dialect, nested ones included, so
devices survive lowering and fusion (and show in `--emit kernel` output).

`auto` splits the ops placed on it across `PassContext.devices` (`--devices cuda:0,cuda:1`) as
contiguous pipeline stages balancing compute (`balance=flops`, the default: each op's
parameters applied at every position of its output, plus 4·L²·d for attention) or parameters
(`balance=params`: the layer registry's `count_params`, or the sizes of the `tensor.weight`
values an op reads); each top-level op goes to the stage its cumulative midpoint falls in; operand-less ops (weights, constants) follow
their first user. A repeat that is still rolled is one op, so unroll first (-O2) to split a
stack. Without a device list, `auto` uses the CUDA devices of `available_devices`, else stays on
the host with a warning.

With `available_devices` known, a placement on a missing device is a diagnostic at the layer:
`layer 'dense' is placed on cuda:1 but only cpu, cuda:0 are available`.

Transfers (`insert-transfers`, default true): for each value used on another device than its
producer's, one `nn.transfer` (among nn ops; `tensor.transfer` otherwise) right after the
producer, named `%<value>.to_<device>` and shared by all users on that device. Network inputs
are on the network's device; region arguments on their op's; `return` takes values where they
are. Running the pass again changes nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from math import prod

from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.ir import common_ops  # noqa: F401 - registers the transfer ops
from neuralc.ir.builder import value_names
from neuralc.ir.core import Block, Module, Network, Operation, Value, primary_loc
from neuralc.ir.naming import NameScope
from neuralc.ir.shapes import concrete_attrs
from neuralc.passes.base import Pass, PassContext, option, register_pass
from neuralc.passes.rewrite import producer
from neuralc.passes.traits import layer_spec

TRANSFERS = ("nn.transfer", "tensor.transfer")
VALID = ("cpu", "cuda", "gpu", "auto")


def normalize(device: str | None) -> str | None:
    if device is None:
        return None
    return "cuda" + device[3:] if device.startswith("gpu") else device


def canonical(device: str | None) -> str:
    """The physical device: no device is the host, `cuda` is `cuda:0`."""
    return "cpu" if device in (None, "cpu") else "cuda:0" if device == "cuda" else str(device)


def same_device(a: str | None, b: str | None) -> bool:
    return canonical(a) == canonical(b)


def valid_device(device: str) -> bool:
    return device in VALID or (device.startswith("cuda:") and device[5:].isdigit())


def is_available(device: str, available: tuple[str, ...]) -> bool:
    if device == "cpu" or device in available:
        return True
    if device == "cuda":
        return any(d.startswith("cuda") for d in available)
    return device == "cuda:0" and "cuda" in available


def parse_devices(text: str, flag: str = "--devices") -> tuple[str, ...]:
    """`--devices cuda:0,cuda:1` as device names (`gpu` spelled `cuda`). An empty entry or a
    device listed twice is an error: `auto` would otherwise split a stack onto one device twice
    (or silently drop the typo)."""
    devices: list[str] = []
    for entry in text.split(","):
        device = entry.strip()
        if not device:
            raise CompileError(Diagnostic(
                f"empty device in {flag} \"{text}\"", None, "error",
                ('separate devices with single commas, e.g. "cuda:0,cuda:1"',)))
        if device == "auto" or not valid_device(device):
            raise CompileError(Diagnostic(
                f'invalid device "{device}" in {flag}', None, "error",
                ('list devices such as "cuda:0,cuda:1" (or "cpu", "cuda", "gpu")',)))
        devices.append(normalize(device) or device)
    check_device_list(tuple(devices), flag)
    return tuple(devices)


def check_device_list(devices: tuple[str, ...], flag: str = "--devices") -> None:
    """Raise a diagnostic for a device listed twice (`cuda` and `cuda:0` are one device)."""
    seen: dict[str, str] = {}
    for device in devices:
        physical = canonical(device)
        if physical in seen:
            same = (f"'{seen[physical]}' and '{device}' are the same device"
                    if seen[physical] != device else f"'{device}' is listed twice")
            raise CompileError(Diagnostic(
                f"{flag} lists {physical} more than once: {same}", None, "error",
                ("list each device once, e.g. --devices cuda:0,cuda:1",)))
        seen[physical] = device


def network_device(net: Network) -> str | None:
    execution = net.attrs.get("execution")
    device = execution.get("device") if isinstance(execution, dict) else None
    return normalize(device) if isinstance(device, str) else None


def op_params(op: Operation) -> int:
    """Parameters of `op` and its regions (rolled repeats counted once per iteration)."""
    total = 0
    spec = layer_spec(op)
    if spec is not None and not op.regions:
        with contextlib.suppress(Exception):  # an unknown size weighs nothing
            total += spec.count_params(concrete_attrs(op), [v.type for v in op.operands])
    for value in op.operands:
        source = producer(value)
        if source is not None and source.op == "tensor.weight":
            shape = value.type.shape
            total += prod(d for d in shape if isinstance(d, int))
    inner = sum(op_params(o) for region in op.regions for o in region.ops)
    count = op.attrs.get("count") if op.op == "nn.repeat" else 1
    return total + inner * (count if isinstance(count, int) else 1)


ATTENTION_OPS = ("nn.transformer_encoder", "nn.transformer_decoder", "nn.multi_head_attention",
                 "kernel.attention")


def op_flops(op: Operation) -> int:
    """Floating-point operations per sample, estimated: 2 × parameters × output positions (the
    dims between batch and channels: a convolution's pixels, a sequence's tokens), plus the
    attention scores and weighted sum (4·L²·d) of attention layers."""
    params = op_params(op)
    if not op.results:
        return 2 * params
    shape = op.results[0].type.shape
    positions = prod(d for d in shape[1:-1] if isinstance(d, int)) or 1
    flops = 2 * params * positions
    if op.op in ATTENTION_OPS and len(shape) == 3 and all(isinstance(d, int) for d in shape[1:]):
        length, width = shape[1], shape[2]
        flops += 4 * length * length * width  # type: ignore[operator]
    return flops


@dataclass
class _Placer:
    net: Network
    ctx: PassContext
    override: str | None
    balance: str = "flops"
    errors: list[Diagnostic] = field(default_factory=list)
    changed: bool = False
    reported: set[int] = field(default_factory=set)

    def set(self, op: Operation, device: str | None) -> None:
        if op.device != device:
            op.device = device
            self.changed = True

    def assign(self, block: Block, inherited: str | None) -> None:
        for op in block.ops:
            if op.op in TRANSFERS:
                self.set(op, normalize(op.attrs.get("to")))  # type: ignore[arg-type]
                continue
            if op.opdef is not None and op.opdef.terminator:
                continue
            device = self.override or normalize(op.device) or inherited
            self.set(op, device)
            for region in op.regions:
                self.assign(region, device)

    def split_auto(self) -> None:
        auto = [op for op in self.net.walk() if op.device == "auto"]
        if not auto:
            return
        devices = list(self.ctx.devices) or [
            d for d in (self.ctx.available_devices or ()) if d.startswith("cuda")]
        if not devices:
            self.ctx.warn(Diagnostic(
                f"network '{self.net.name}' is placed on 'auto' but no devices are listed; "
                "it runs on the host", primary_loc(self.net.loc), "warning",
                ("list devices with --devices cuda:0,cuda:1",)))
            for op in auto:
                self.set(op, None)
            return
        top = [op for op in self.net.body.ops if op.device == "auto"]
        staged = [op for op in top if op.operands]
        cost = op_flops if self.balance == "flops" else op_params
        weights = [cost(op) for op in staged]
        total = sum(weights)
        if total == 0:
            weights, total = [1] * len(staged), len(staged)
        cumulative = 0.0
        for op, weight in zip(staged, weights, strict=True):
            index = min(len(devices) - 1, int((cumulative + weight / 2) * len(devices) / total))
            cumulative += weight
            self._place_tree(op, devices[index])
        first_user = self._first_users()
        for op in top:
            if not op.operands:
                user = first_user.get(id(op))
                self._place_tree(op, user.device if user is not None else devices[0])
        for op in self.net.walk():  # nested ops of non-auto ops that said `auto` themselves
            if op.device == "auto":
                self.set(op, devices[0])

    def _place_tree(self, op: Operation, device: str | None) -> None:
        for inner in op.walk():
            if inner.op in TRANSFERS or (inner.opdef is not None and inner.opdef.terminator):
                continue
            if inner is op or inner.device == "auto":
                self.set(inner, device)

    def _first_users(self) -> dict[int, Operation]:
        users: dict[int, Operation] = {}
        for op in self.net.walk():
            for value in op.operands:
                source = producer(value)
                if source is not None and op.device not in ("auto", None):
                    users.setdefault(id(source), op)
        return users

    def check_available(self) -> None:
        available = self.ctx.available_devices
        if available is None:
            return
        shown = ", ".join(available) or "none"
        if self.override and not is_available(self.override, available):
            self.errors.append(Diagnostic(
                f"--device {self.override} is not available: only {shown} are", None, "error",
                ("use --device cpu",)))
            return
        for op in self.net.walk():
            device = op.device
            if device is None or is_available(device, available) or self._parent_reported(op):
                continue
            self.reported.add(id(op))
            what = "layer" if op.dialect == "nn" else "op"
            self.errors.append(Diagnostic(
                f"{what} '{op.name}' is placed on {device} but only {shown} are available",
                primary_loc(op.loc), "error", ("use --device cpu" + (
                    f", or move it to {_alternative(available)}" if _alternative(available)
                    else ""),)))

    def _parent_reported(self, op: Operation) -> bool:
        block = op.parent
        while block is not None and isinstance(block.parent, Operation):
            if id(block.parent) in self.reported:
                return True
            block = block.parent.parent
        return False

    # -- transfers --------------------------------------------------------------------------

    def insert_transfers(self, input_device: str | None) -> None:
        names = NameScope(taken=value_names(self.net))
        made: dict[tuple[int, str], Value] = {}
        for op in list(self.net.walk()):
            if op.op in TRANSFERS or op.op == "return":
                continue
            owner = op.parent.parent if op.parent is not None else None
            is_term = op.opdef is not None and op.opdef.terminator
            want = owner.device if is_term and isinstance(owner, Operation) else op.device
            for i, value in enumerate(op.operands):
                have = self._value_device(value, input_device)
                if same_device(have, want):
                    continue
                target = want if want is not None else "cpu"
                key = (id(value), canonical(target))
                if key not in made:
                    made[key] = self._transfer(value, target, op, names)
                op.operands[i] = made[key]

    def _value_device(self, value: Value, input_device: str | None) -> str | None:
        owner = value.owner
        if isinstance(owner, Operation):
            return owner.device
        if isinstance(owner, Block) and isinstance(owner.parent, Operation):
            return owner.parent.device
        return input_device

    def _transfer(self, value: Value, device: str, user: Operation, names: NameScope) -> Value:
        kind = "nn.transfer" if user.dialect == "nn" else "tensor.transfer"
        name = names.fresh(f"{value.name}.to_{device.replace(':', '_')}")
        op = Operation(kind, name, [value], [value.type], {"to": device}, user.loc, device)
        owner = value.owner
        if isinstance(owner, Operation):
            block = owner.parent
            assert block is not None
            block.insert(next(i for i, o in enumerate(block.ops) if o is owner) + 1, op)
        else:
            assert isinstance(owner, Block)
            owner.insert(0, op)
        self.changed = True
        return op.result


def _alternative(available: tuple[str, ...]) -> str:
    return ", ".join(d for d in available if d != "cpu")


@register_pass
@dataclass(frozen=True)
class PlaceDevices(Pass):
    """Assign devices to every op; insert transfers where they change."""

    name = "place-devices"
    description = "give every op a device (@, execution { }, auto) and insert transfers"
    min_level = 0
    device: str | None = None  # place everything here (build's --device)
    insert_transfers: bool = True
    balance: str = option("flops", choices=("flops", "params"))  # how `auto` balances stages

    def run(self, module: Module, ctx: PassContext) -> bool:
        check_device_list(ctx.devices)  # `auto` would put two stages on one device
        override = normalize(self.device)
        if override is not None and not valid_device(override):
            raise CompileError(Diagnostic(
                f'invalid device "{self.device}"', None, "error",
                ('valid devices are "cpu", "cuda", "cuda:N", "gpu" and "auto"',)))
        changed = False
        errors: list[Diagnostic] = []
        for net in module.networks:
            default = network_device(net)
            placer = _Placer(net, ctx, override, self.balance)
            placer.assign(net.body, default)
            placer.split_auto()
            placer.check_available()
            errors += placer.errors
            if self.insert_transfers and not placer.errors:
                input_device = override or default
                if input_device == "auto":
                    input_device = next((op.device for op in net.walk()
                                         if op.device is not None), None)
                placer.insert_transfers(input_device)
            changed |= placer.changed
        if errors:
            raise CompileError(errors)
        return changed
