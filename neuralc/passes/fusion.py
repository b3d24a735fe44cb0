"""What the fusion passes share: a pattern is a candidate test plus a match function that either
returns a `Rewrite` or raises `NoMatch(reason)` at the first check that fails (onnxscript's
rewriter: the reasons make `--report fusion`).

    run_pattern(module, ctx, "fuse-ffn", is_candidate, match)

A `Rewrite` replaces its root op in place by one or more new ops (the last one takes over the
root's uses and its name), gives them the fused location of every op it replaced
(`fuse_locs`) and their common device, and deletes the replaced ops that nothing else uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from neuralc.ir.core import Block, Module, Network, Operation, Value, fuse_locs
from neuralc.ir.tensor import attr
from neuralc.ir.types import Attr, HPOAttr
from neuralc.passes.base import PassContext


class NoMatch(Exception):
    """A candidate failed a check; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def expect(condition: object, reason: str) -> None:
    if not condition:
        raise NoMatch(reason)


class Uses:
    """Users of every value of a network (the `return` included), by value identity."""

    def __init__(self, net: Network) -> None:
        self.users: dict[int, list[Operation]] = {}
        for op in net.walk():
            for v in op.operands:
                self.users.setdefault(id(v), []).append(op)

    def of(self, value: Value) -> list[Operation]:
        return self.users.get(id(value), [])

    def add(self, op: Operation) -> None:
        for v in op.operands:
            self.users.setdefault(id(v), []).append(op)

    def remove(self, op: Operation) -> None:
        for v in op.operands:
            users = self.users.get(id(v))
            if users is not None and op in users:
                users.remove(op)

    def only_user(self, value: Value) -> Operation:
        """The single op using `value`; NoMatch when it has other uses (fusing would have to
        keep computing it)."""
        users = self.of(value)
        expect(len(users) == 1, f"intermediate value %{value.name} has {len(users)} uses")
        return users[0]


def producer(value: Value, kinds: str | Sequence[str], reason: str) -> Operation:
    """The op defining `value`, which must be one of `kinds`."""
    op = value.owner
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    expect(isinstance(op, Operation) and op.op in kinds, reason)
    return op  # type: ignore[return-value]


def concrete_kind(op: Operation, key: str, what: str) -> str:
    value = attr(op, key)
    expect(not isinstance(value, HPOAttr), f"{what} is an open hyperparameter")
    return str(value)


def dropout_rate(op: Operation | None) -> Attr:
    return 0.0 if op is None else attr(op, "rate")


@dataclass
class Rewrite:
    """Replace `root` by `new` (in order; the last takes the root's uses); `replaced` lists every
    matched op, root included, deleted when nothing outside the match uses it."""

    root: Operation
    new: list[Operation]
    replaced: list[Operation] = field(default_factory=list)
    rule: str = ""


def _blocks(net: Network) -> Iterator[Block]:
    yield net.body
    for op in net.walk():
        yield from op.regions


class BlockEdit:
    """Pending edits of one block: rewrites are recorded, and the op list rebuilt once at the
    end (`commit`). Splicing the list per rewrite (`index`, `remove`) was linear in the block's
    length, so fusing a deep model was quadratic in its depth."""

    def __init__(self, block: Block) -> None:
        self.block = block
        # Program order: tuples, so ops a rewrite inserts sort between their root's neighbours.
        self.position: dict[int, tuple[int, ...]] = {
            id(op): (i,) for i, op in enumerate(block.ops)}
        self.expansions: dict[int, list[Operation]] = {}

    def replace(self, root: Operation, new: list[Operation]) -> None:
        base = self.position[id(root)]
        for k, op in enumerate(new):
            self.position[id(op)] = (*base, k)
            op.parent = self.block
        self.expansions[id(root)] = new
        root.parent = None

    def commit(self) -> None:
        def ops(listed: list[Operation]) -> Iterator[Operation]:
            for op in listed:
                if id(op) in self.expansions:
                    yield from ops(self.expansions[id(op)])
                elif op.parent is self.block:
                    yield op

        if self.expansions:
            self.block.ops = list(ops(self.block.ops))


def apply(uses: Uses, rw: Rewrite, edit: BlockEdit) -> None:
    block = edit.block
    assert rw.root.parent is block
    matched = {id(op): op for op in (*rw.replaced, rw.root) if op.parent is block}
    replaced = sorted(matched.values(), key=lambda op: edit.position[id(op)])
    devices = {op.device for op in replaced}
    expect(len(devices) == 1, "the ops are placed on different devices: "
           + ", ".join(sorted(str(d) for d in devices)))
    loc = fuse_locs([op.loc for op in replaced])
    for new in rw.new:
        new.loc, new.device = loc, replaced[0].device
    edit.replace(rw.root, rw.new)
    final = rw.new[-1]
    for new in rw.new:
        uses.add(new)
    root_users = uses.of(rw.root.result)
    for user in root_users:
        user.operands = [final.result if v is rw.root.result else v for v in user.operands]
    uses.users.setdefault(id(final.result), []).extend(root_users)
    uses.users.pop(id(rw.root.result), None)
    uses.remove(rw.root)
    # Delete matched ops that became dead, users before producers.
    gone = {id(rw.root)}
    for op in reversed(replaced):
        if id(op) in gone:
            continue
        users = [u for r in op.results for u in uses.of(r)]
        if all(id(u) in gone for u in users):
            op.parent = None  # dropped from the block by `commit`
            uses.remove(op)
            gone.add(id(op))


def run_pattern(module: Module, ctx: PassContext, pattern: str,
                is_candidate: Callable[[Operation], bool],
                match: Callable[[Operation, Uses], Rewrite]) -> bool:
    """Try `match` on every candidate op (program order); apply what matches, record what does
    not (`ctx.reject`) and what fired (`ctx.hit`: the pattern, and the rule when it names a
variant). Returns whether anything changed."""
    changed = False
    for net in module.networks:
        uses = Uses(net)
        for block in list(_blocks(net)):
            edit = BlockEdit(block)
            for op in list(block.ops):
                if op.parent is not block or not is_candidate(op):
                    continue
                try:
                    rewrite = match(op, uses)
                    apply(uses, rewrite, edit)
                except NoMatch as exc:
                    ctx.reject(pattern, op.name, exc.reason)
                    continue
                ctx.hit(pattern)
                if rewrite.rule and rewrite.rule != pattern:
                    ctx.hit(rewrite.rule)  # the variant, e.g. fuse-attention.cross
                changed = True  # `apply` kept `uses` up to date
            edit.commit()
    return changed


def fused_op(kind: str, root: Operation, operands: Sequence[Value],
             attrs: dict[str, Attr]) -> Operation:
    """The fused op, named as the root (whose value it takes over) and typed like it."""
    return Operation(kind, root.name, operands, [root.result.type], attrs)


def with_dropout(attrs: dict[str, Attr], rate: Attr) -> dict[str, Attr]:
    """`attrs` plus `dropout = rate` unless it is a plain 0."""
    if isinstance(rate, HPOAttr) or float(rate) != 0.0:  # type: ignore[arg-type]
        attrs["dropout"] = rate
    return attrs
