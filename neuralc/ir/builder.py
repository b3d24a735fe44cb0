"""Constructing IR in code: unique names, an insertion block, terminators.

    net, b = new_network("MLP", {"input": TensorType(("N", 784))})
    h = b.op("nn.dense", [net.inputs[0]], [TensorType(("N", 128))], base="Dense",
             attrs={"units": 128, "activation": "relu", "use_bias": True}, loc=loc)
    b.ret(h.result)

Names come from `neuralc.ir.naming.NameScope` (`dense`, `dense_1`, ...), seeded with every name
already in the network, so passes that add ops keep names unique.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from neuralc.ir.core import Block, Location, Network, Operation, Value
from neuralc.ir.naming import NameScope
from neuralc.ir.types import Attr, TensorType


def value_names(net: Network) -> set[str]:
    """Every value name of a network (inputs, op results, region arguments)."""
    names = {v.name for v in net.inputs}
    for op in net.walk():
        names.update(v.name for v in op.results)
        for region in op.regions:
            names.update(v.name for v in region.args)
    return names


class Builder:
    """Appends ops to `block`, naming them uniquely."""

    def __init__(self, block: Block, names: NameScope | None = None) -> None:
        self.block = block
        self.names = names if names is not None else NameScope()

    @classmethod
    def for_network(cls, net: Network) -> Builder:
        """A builder appending to `net`'s body (move it with `at`)."""
        return cls(net.body, NameScope(taken=value_names(net)))

    def name(self, base: str) -> str:
        """A fresh name: `base` itself if free, else `base_1`, `base_2`, ..."""
        return self.names.fresh(base)

    def claim(self, name: str) -> str:
        """Reserve an exact name; raises ValueError if it is taken."""
        if name in self.names.taken:
            raise ValueError(f"name %{name} is already used in this network")
        self.names.taken.add(name)
        return name

    def op(
        self,
        op: str,
        operands: Sequence[Value] = (),
        result_types: Sequence[TensorType] = (),
        *,
        name: str | None = None,
        base: str | None = None,
        attrs: Mapping[str, Attr] | None = None,
        loc: Location = None,
        device: str | None = None,
        regions: Sequence[Block] = (),
    ) -> Operation:
        """Append an op. It is named `name` exactly, or freshly from `base` (default: the op's
        name without its dialect); ops without results are named after the op."""
        if name is not None:
            name = self.claim(name)
        elif result_types:
            name = self.name(base or op.rsplit(".", 1)[-1])
        else:
            name = op
        new = Operation(op, name, operands, result_types, dict(attrs or {}), loc, device,
                        regions)
        for extra in new.results[1:]:
            self.names.taken.add(extra.name)
        return self.block.append(new)

    def region(self, arg_types: Sequence[TensorType], base: str) -> Block:
        """A detached block whose arguments are named freshly from `base` (`enc.in`)."""
        return Block([Value(self.name(base), t) for t in arg_types])

    @contextmanager
    def at(self, block: Block) -> Iterator[Builder]:
        """Append to `block` inside the `with`, e.g. to fill a region."""
        saved, self.block = self.block, block
        try:
            yield self
        finally:
            self.block = saved

    def ret(self, *values: Value, loc: Location = None) -> Operation:
        return self.op("return", values, loc=loc)

    def yield_(self, *values: Value, loc: Location = None) -> Operation:
        return self.op("nn.yield", values, loc=loc)


def new_network(
    name: str,
    inputs: Mapping[str, TensorType],
    attrs: Mapping[str, Attr] | None = None,
    loc: Location = None,
) -> tuple[Network, Builder]:
    """An empty network with named inputs, and a builder appending to its body."""
    builder = Builder(Block())
    args = [Value(builder.claim(arg), t) for arg, t in inputs.items()]
    body = Block(args)
    builder.block = body
    return Network(name, body, dict(attrs or {}), loc), builder
