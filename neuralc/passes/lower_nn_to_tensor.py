"""`lower-nn-to-tensor`: every `nn` op becomes `tensor` ops (docs/dialects.md, "Lowering").

- Repeats are unrolled first (`unroll-repeat`'s own function), so every layer has its instance
  name (`transformer_encoder.3`) and its own weights; a repeat whose count is an open
  hyperparameter is a diagnostic at its line.
- Each layer op is lowered by its family's function (`neuralc.passes.lowering`); the ops it
  produces carry its location and device, names under its own, and its final value keeps its
  name. Weights become `tensor.weight() {key = "<layer>.<weight>"}` values.
- Residual ops are inlined: the body's ops, the shortcut's, then `tensor.add`.
- An nn op without a layer lowering whose suffix names a tensor op (`nn.transfer`) becomes that
  op; ops of other dialects are kept. Anything else is a diagnostic.
- An attribute that decides the lowered graph (a width, `norm_first`, an activation choice
  including softmax, ...) must be concrete; float hyperparameters (dropout rates, epsilons) stay
  open on the tensor ops.

The pass ends with a legality check that no nn op is left. It checks the kernel stage (tensor and
kernel ops), not the tensor stage: kernel ops are kept as they are, so IR that is already fused
(`opt K.nir -O2` on `--emit kernel` output) passes through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neuralc.diagnostics import error
from neuralc.ir.builder import value_names
from neuralc.ir.core import OPS, Block, Module, Network, Operation, Value, primary_loc
from neuralc.ir.printer import print_attr
from neuralc.ir.types import HPOAttr
from neuralc.layers.spec import LayerSpec
from neuralc.passes.base import Pass, PassContext, register_pass
from neuralc.passes.legality import check_legal
from neuralc.passes.lowering import LOWERINGS, Emitter, Layer
from neuralc.passes.unroll_repeat import unroll_network

RESIDUALS = ("nn.residual", "nn.residual_connection")


@register_pass
@dataclass(frozen=True)
class LowerNNToTensor(Pass):
    """Decompose every nn op into tensor ops."""

    name: ClassVar[str] = "lower-nn-to-tensor"
    description: ClassVar[str] = "decompose every nn op into tensor ops"
    min_level: ClassVar[int] = 2

    def run(self, module: Module, ctx: PassContext) -> bool:
        changed = False
        for net in module.networks:
            changed |= lower_network(net)
        check_legal(module, "kernel", ctx)
        return changed


def lower_network(net: Network) -> bool:
    """Lower `net` in place; return whether it held any nn op."""
    if not any(op.dialect == "nn" for op in net.walk()):
        return False
    for op in net.walk():
        if op.op == "nn.repeat" and isinstance(op.attrs.get("count"), HPOAttr):
            raise error(f"cannot lower the repeat '{op.name}': its count "
                        f"{print_attr(op.attrs['count'])} is an open hyperparameter",
                        primary_loc(op.loc), "lowering needs one trial's concrete values; "
                        "stop at `--emit nn` to keep the search space")
    unroll_network(net)
    em = Emitter(net, value_names(net))
    _lower_block(em, net.body, {})
    net.body.ops = []
    for op in em.ops:
        net.body.append(op)
    return True


def _specs() -> dict[str, LayerSpec]:
    if not _SPECS:
        from neuralc.layers import all_layers

        _SPECS.update({spec.op_name: spec for spec in all_layers()})
    return _SPECS


_SPECS: dict[str, LayerSpec] = {}


def _lower_block(em: Emitter, block: Block, mapping: dict[int, Value]) -> list[Value]:
    """Append the lowering of `block`'s ops; return what its terminator yields."""
    for op in block.ops:
        operands = [mapping.get(id(v), v) for v in op.operands]
        if op.op == "nn.yield":
            return operands
        if op.op == "return":
            em.append(Operation("return", op.name, operands, [], dict(op.attrs), op.loc,
                                op.device))
            return operands
        if op.op in RESIDUALS:
            results = [_lower_residual(em, op, operands, mapping)]
        elif op.op in LOWERINGS:
            layer = Layer(em, op, _specs().get(op.op), operands)
            result = LOWERINGS[op.op](layer)
            layer.rename_result(result)
            results = [result]
        elif op.dialect == "nn":
            results = _rename_dialect(em, op, operands)
        else:  # already lowered (tensor, kernel, ...): kept as it is
            op.operands = operands
            em.append(op)
            results = list(op.results)
        for old, new in zip(op.results, results, strict=True):
            mapping[id(old)] = new
    return []


def _lower_residual(em: Emitter, op: Operation, operands: list[Value],
                    mapping: dict[int, Value]) -> Value:
    """`body(x) + shortcut(x)` (shortcut: the identity without a second region)."""
    x = operands[0]
    outs: list[Value] = []
    for region in op.regions:
        mapping[id(region.args[0])] = x
        outs.append(_lower_block(em, region, mapping)[0])
    if len(outs) == 1:
        outs.append(x)
    layer = Layer(em, op, _specs().get(op.op), [x])
    total = layer.emit("tensor.add", outs, suffix="sum")
    layer.rename_result(total)
    return total


def _rename_dialect(em: Emitter, op: Operation, operands: list[Value]) -> list[Value]:
    """An nn op that is not a layer (`nn.transfer`): the tensor op of the same name."""
    target = "tensor." + op.op.split(".", 1)[1]
    if target not in OPS:
        raise error(f"cannot lower '{op.op}' (%{op.name}): no lowering and no op {target}",
                    primary_loc(op.loc), "lower-nn-to-tensor lowers the registered layers, "
                    "nn.repeat and the residual ops")
    new = Operation(target, op.name, operands, [r.type for r in op.results], dict(op.attrs),
                    op.loc, op.device)
    em.append(new)
    return list(new.results)
