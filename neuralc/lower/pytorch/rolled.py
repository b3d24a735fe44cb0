"""What the nn-stage PyTorch emitter reads off the rolled IR.

The emitter (`emitter.py`) walks the rolled `nn` IR once, but a layer inside `nn.repeat` stands
for several run-time instances. This module holds the facts that walk needs: `Ctx`, one place a
generated class is instantiated (how rolled names map to instance names there); names relative
to an enclosing block's module path; the check that a layer's code agrees across repetitions,
and the constructor expression chosen by `index` where it does not (`choose`, `list_expr`); and
the dataflow of a block (the values an op reads, those its regions take from outside, and where
each value is used).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from neuralc.diagnostics import error
from neuralc.ir.core import Operation, Value, primary_loc
from neuralc.ir.naming import unrolled_name
from neuralc.lower.pytorch.codegen import conditional
from neuralc.lower.pytorch.module_text import GeneratedClass


@dataclass(frozen=True)
class Ctx:
    """One place a generated class (or the root module) is instantiated."""

    rename: Callable[[str], str]  # rolled op name -> instance name
    prefix: str  # the instance's module path ("" for the root)
    index: int | None  # iteration of the innermost enclosing repeat
    outer: int | None = None  # iteration of the repeat enclosing that one


def repeat_rename(outer: Callable[[str], str], repeat: str, index: int) -> Callable[[str], str]:
    return lambda name: outer(unrolled_name(name, repeat, index))


def relative(name: str, prefix: str) -> str:
    if not prefix:
        return name
    if not name.startswith(prefix + "."):
        raise RuntimeError(f"layer {name!r} is not inside its block {prefix!r}")
    return name[len(prefix) + 1 :]


def module_ref(rel: str) -> str:
    """`self.block[0].conv2d` for the module path `block.0.conv2d`: an unrolled or inlined repeat
    names its copies with numbers, which are nn.ModuleList indices (as `add_weight` builds them),
    not attributes, so the state_dict keys stay the weight file's keys."""
    return "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rel.split("."))


def check_same_path(op: Operation, name: str, element: str) -> None:
    if name != element:
        raise RuntimeError(f"repeated layer {op.name!r} is named {name!r}, expected {element!r}")


def same(op: Operation, values: list[str], what: str) -> str:
    if len(set(values)) != 1:
        raise error(
            f"layer '{op.name}': its {what} differs between repetitions "
            f"({values[0]!r} vs {next(v for v in values if v != values[0])!r}); "
            "the PyTorch backend cannot express it",
            primary_loc(op.loc),
        )
    return values[0]


def short_name(op_name: str) -> str:
    return op_name.split(".")[-1] if not op_name.split(".")[-1].isdigit() else op_name


def value_name(value: Value) -> str:
    return value.name.split("#")[0]


def reads(op: Operation) -> list[Value]:
    """Values an op reads: its operands and whatever its regions use from outside."""
    return [*op.operands, *free_values(op)]


def free_values(op: Operation) -> list[Value]:
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


def value_uses(ops: list[Operation], tail: list[Value]) -> dict[int, set[int]]:
    """Where each value is read: op indices, `len(ops)` for the block's result."""
    uses: dict[int, set[int]] = {}
    for k, op in enumerate(ops):
        for v in reads(op):
            uses.setdefault(id(v), set()).add(k)
    for v in tail:
        uses.setdefault(id(v), set()).add(len(ops))
    return uses


def choose(cls: GeneratedClass, op: Operation, options: list[tuple[int | None, str]]) -> str:
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

def list_expr(
    cls: GeneratedClass,
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
