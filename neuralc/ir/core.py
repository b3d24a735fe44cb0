"""Core IR structures: values, operations, blocks, networks, modules, and the op registry.

Every op is an `Operation` (generic, as in MLIR's generic form); what an op name means is its
`OpDef`: operand/region arity, whether it terminates a block, and a `verify` hook. Dialect modules
(`nn.py`, `tensor.py`, `kernel.py`) register their OpDefs at import time.

Naming: every op has a `name` unique within its network (`dense_1`, `encoder_0.attn`); its single
result prints as `%name`, further results as `%name#1`, … Layer names flow from the DSL into the
emitted modules and weight files, so names are identity, not decoration.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from neuralc.diagnostics import SourceLocation
from neuralc.ir.types import Attr, TensorType


@dataclass(frozen=True, slots=True)
class FusedLoc:
    """The locations of every op a fused or lowered op replaced (MLIR's FusedLoc)."""

    locs: tuple[SourceLocation, ...]

    @property
    def primary(self) -> SourceLocation:
        return self.locs[0]


Location: TypeAlias = SourceLocation | FusedLoc | None


def primary_loc(loc: Location) -> SourceLocation | None:
    return loc.primary if isinstance(loc, FusedLoc) else loc


def fuse_locs(locs: Sequence[Location]) -> Location:
    flat: list[SourceLocation] = []
    for loc in locs:
        for one in loc.locs if isinstance(loc, FusedLoc) else (loc,):
            if one is not None and one not in flat:
                flat.append(one)
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else FusedLoc(tuple(flat))


class Value:
    """An SSA value: an op result or a block argument."""

    __slots__ = ("name", "type", "owner", "index")

    def __init__(
        self, name: str, type: TensorType, owner: Operation | Block | None = None, index: int = 0
    ) -> None:
        self.name = name
        self.type = type
        self.owner = owner
        self.index = index

    def __repr__(self) -> str:
        return f"Value(%{self.name}: {self.type})"


class Operation:
    __slots__ = ("op", "name", "operands", "results", "attrs", "loc", "device", "regions", "parent",
                 "__weakref__")

    def __init__(
        self,
        op: str,
        name: str,
        operands: Sequence[Value] = (),
        result_types: Sequence[TensorType] = (),
        attrs: dict[str, Attr] | None = None,
        loc: Location = None,
        device: str | None = None,
        regions: Sequence[Block] = (),
    ) -> None:
        self.op = op
        self.name = name
        self.operands: list[Value] = list(operands)
        self.results: list[Value] = [
            Value(name if i == 0 else f"{name}#{i}", t, self, i) for i, t in enumerate(result_types)
        ]
        self.attrs: dict[str, Attr] = dict(attrs or {})
        self.loc = loc
        self.device = device
        self.regions: list[Block] = list(regions)
        self.parent: Block | None = None
        for region in self.regions:
            region.parent = self

    @property
    def dialect(self) -> str:
        return self.op.split(".", 1)[0] if "." in self.op else "builtin"

    @property
    def result(self) -> Value:
        if len(self.results) != 1:
            raise ValueError(f"{self.op} '{self.name}' has {len(self.results)} results")
        return self.results[0]

    @property
    def opdef(self) -> OpDef | None:
        return OPS.get(self.op)

    def walk(self) -> Iterator[Operation]:
        """This op and every op nested in its regions, in program order."""
        yield self
        for region in self.regions:
            yield from region.walk()

    def __repr__(self) -> str:
        return f"Operation({self.op} %{self.name})"


class Block:
    """A list of ops with arguments; the body of a network or of a region-holding op."""

    __slots__ = ("args", "ops", "parent", "__weakref__")

    def __init__(self, args: Sequence[Value] = (), ops: Sequence[Operation] = ()) -> None:
        self.args: list[Value] = list(args)
        for i, arg in enumerate(self.args):
            arg.owner, arg.index = self, i
        self.ops: list[Operation] = []
        self.parent: Operation | Network | None = None
        for op in ops:
            self.append(op)

    def append(self, op: Operation) -> Operation:
        op.parent = self
        self.ops.append(op)
        return op

    def insert(self, index: int, op: Operation) -> Operation:
        op.parent = self
        self.ops.insert(index, op)
        return op

    def walk(self) -> Iterator[Operation]:
        for op in self.ops:
            yield from op.walk()

    @property
    def terminator(self) -> Operation | None:
        return self.ops[-1] if self.ops and _is_terminator(self.ops[-1]) else None


@dataclass
class Network:
    """A DSL network: named inputs (the body's block arguments), a body ending in `return`,
    and its training/execution configuration as attributes."""

    name: str
    body: Block
    attrs: dict[str, Attr] = field(default_factory=dict)
    loc: Location = None

    def __post_init__(self) -> None:
        self.body.parent = self

    @property
    def inputs(self) -> list[Value]:
        return self.body.args

    @property
    def outputs(self) -> list[Value]:
        term = self.body.terminator
        return list(term.operands) if term is not None else []

    def walk(self) -> Iterator[Operation]:
        return self.body.walk()

    def ops_by_name(self) -> dict[str, Operation]:
        return {op.name: op for op in self.walk()}


@dataclass
class Module:
    networks: list[Network] = field(default_factory=list)
    attrs: dict[str, Attr] = field(default_factory=dict)

    def network(self, name: str | None = None) -> Network:
        if name is None:
            return self.networks[0]
        for net in self.networks:
            if net.name == name:
                return net
        raise KeyError(name)


# Where an op (or a network, keyed by its body block) was read from IR text: the parser records
# it and the verifier's diagnostics point there, in the `.nir` file the user can open, rather
# than only at the op's `loc` in a DSL file. A side table rather than a field of Operation so
# that the printed IR, the constructor and the ops passes build stay as they are; weak so that it
# never keeps IR alive.
_TEXT_LOCS: weakref.WeakKeyDictionary[Operation | Block, SourceLocation] = (
    weakref.WeakKeyDictionary()
)


def set_text_loc(item: Operation | Network, loc: SourceLocation) -> None:
    """Record that `item` was parsed from IR text at `loc`."""
    _TEXT_LOCS[item.body if isinstance(item, Network) else item] = loc


def text_loc(item: Operation | Network) -> SourceLocation | None:
    """Where `item` was parsed from IR text, or None when it was built in code."""
    return _TEXT_LOCS.get(item.body if isinstance(item, Network) else item)


class VerifyError(Exception):
    """The IR breaks an op's contract. Carries the op (or, for a finding about a network itself,
    the network) so the report can point at it."""

    def __init__(
        self,
        message: str,
        op: Operation | None = None,
        *,
        severity: str = "error",
        detail: str | None = None,
        network: Network | None = None,
    ) -> None:
        super().__init__(message)
        self.op = op
        self.network = network
        # "error" or "warning": the verifier reports legal-but-suspicious IR (unused values,
        # missing locations) as warnings, which never make verification fail.
        self.severity = severity
        # The problem without the "%op (dialect.op) at loc:" prefix, for diagnostics that render
        # the location themselves.
        self.detail = message if detail is None else detail


@dataclass(frozen=True)
class OpDef:
    """What an op name means. `verify` raises VerifyError; `None` operand/result counts mean
    variadic."""

    name: str
    doc: str = ""
    num_operands: int | None = None
    num_results: int | None = 1
    num_regions: int = 0
    # When set, the op takes from `num_regions` up to `max_regions` regions (nn.residual's
    # optional shortcut); when None, exactly `num_regions`.
    max_regions: int | None = None
    terminator: bool = False
    verify: Callable[[Operation], None] | None = None
    # What generic passes may assume (`neuralc.passes.traits`): "side_effects" (never removed),
    # "random" (never merged: dropout), "weights" (owns parameters: never merged, kept by dce).
    # Ops are side-effect free and deterministic unless a trait says otherwise.
    traits: frozenset[str] = frozenset()


OPS: dict[str, OpDef] = {}


def register_op(opdef: OpDef) -> OpDef:
    if opdef.name in OPS and OPS[opdef.name] != opdef:
        raise ValueError(f"op {opdef.name} registered twice")
    OPS[opdef.name] = opdef
    return opdef


def _is_terminator(op: Operation) -> bool:
    opdef = OPS.get(op.op)
    return bool(opdef and opdef.terminator)


# The builtin terminator of a network body.
register_op(
    OpDef("return", "Returns the network's outputs.", num_operands=None, num_results=0,
          terminator=True)
)
