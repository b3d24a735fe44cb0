"""Small IR-editing helpers the passes share: uses, replacement, erasure, attachment."""

from __future__ import annotations

from collections.abc import Mapping

from neuralc.ir.core import Block, Module, Network, Operation, Value


def replace_uses(net: Network, mapping: Mapping[Value, Value]) -> int:
    """Replace every use of a key of `mapping` (nested regions and terminators included) by its
    value; return the number of operands changed. Chains (a → b, b → c) resolve to the end."""
    if not mapping:
        return 0

    def target(value: Value) -> Value:
        seen = 0
        while value in mapping and seen < len(mapping) + 1:
            value = mapping[value]
            seen += 1
        return value

    changed = 0
    for op in net.walk():
        for i, value in enumerate(op.operands):
            new = target(value)
            if new is not value:
                op.operands[i] = new
                changed += 1
    return changed


def replace_op(net: Network, op: Operation, values: list[Value]) -> None:
    """Replace `op`'s results by `values` everywhere and erase it."""
    replace_uses(net, dict(zip(op.results, values, strict=True)))
    erase(op)


def erase(op: Operation) -> None:
    block = op.parent
    if block is not None:
        block.ops = [o for o in block.ops if o is not op]
    op.parent = None


def erase_all(ops: list[Operation]) -> None:
    """Erase many ops with one pass over each block that holds some."""
    doomed = {id(op) for op in ops}
    for block in {id(op.parent): op.parent for op in ops if op.parent is not None}.values():
        block.ops = [o for o in block.ops if id(o) not in doomed]
    for op in ops:
        op.parent = None


def use_counts(net: Network) -> dict[Value, int]:
    counts: dict[Value, int] = {}
    for op in net.walk():
        for value in op.operands:
            counts[value] = counts.get(value, 0) + 1
    return counts


def users(net: Network) -> dict[Value, list[Operation]]:
    out: dict[Value, list[Operation]] = {}
    for op in net.walk():
        for value in op.operands:
            out.setdefault(value, []).append(op)
    return out


def producer(value: Value) -> Operation | None:
    return value.owner if isinstance(value.owner, Operation) else None


def is_attached(op: Operation) -> bool:
    """Whether `op` is still in a network (not erased, nor inside an erased op)."""
    block: Block | None = op.parent
    while block is not None:
        owner = block.parent
        if isinstance(owner, Network):
            return True
        if owner is None:
            return False
        block = owner.parent
    return False


def insert_before(anchor: Operation, new: Operation) -> Operation:
    block = anchor.parent
    assert block is not None, "the anchor op is not in a block"
    return block.insert(next(i for i, o in enumerate(block.ops) if o is anchor), new)


def insert_after(anchor: Operation, new: Operation) -> Operation:
    block = anchor.parent
    assert block is not None, "the anchor op is not in a block"
    return block.insert(next(i for i, o in enumerate(block.ops) if o is anchor) + 1, new)


def networks(module: Module) -> list[Network]:
    return list(module.networks)
