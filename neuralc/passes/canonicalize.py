"""`canonicalize`: named local rewrites, tinygrad-style tables of rules, run to a fixpoint.

A rule is a function `(op, ctx) -> bool` that rewrites at `op` (through `ctx`, a `Rewriter`)
and returns whether it did; `Rule` pairs it with a name and the op names it looks at. Tables are
tuples that concatenate (`RULES = NN_RULES + TENSOR_RULES`); each firing counts as a hit
`canonicalize.<rule>` in `PassContext.hits` (`--report fusion` lists them).

nn rules:
- `empty-repeat`: an `nn.repeat` whose body only yields its arguments is its operands.
- `inline-single-repeat`: `nn.repeat {count = 1}` becomes its body, named as unrolling would
  (`enc.0`), so weight names do not change.
- `drop-linear-activation`: `nn.activation {activation = "linear"}` is its input.
- `drop-zero-dropout`: `nn.dropout`/`tensor.dropout` with `rate = 0.0` is its input.
- `flatten-rank2`: `nn.flatten` of a rank-2 value is its input.
- `identity-reshape`: a reshape (nn or tensor) whose result type is its operand's.
- `reshape-chain`: `reshape(reshape(x))` (nn or tensor) reads `x` when the outer reshape still
  infers its type from it.
tensor rules:
- `double-transpose`: `tensor.transpose {perm = q}` of `tensor.transpose {perm = p}` is one
  transpose with `perm[i] = p[q[i]]`, or the input when that is the identity.
- `identity-transpose`: `tensor.transpose {perm = (0, 1, ...)}` is its input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from neuralc.ir.core import Block, Module, Network, Operation, Value, VerifyError
from neuralc.ir.types import HPOAttr
from neuralc.layers.spec import ShapeError
from neuralc.passes.base import Pass, PassContext, option, pipeline_error, register_pass
from neuralc.passes.rewrite import is_attached, producer


class Rewriter:
    """What a rule may use: the network being rewritten, the pass context, and edits that keep
    the network's use lists current. Rules change operands only through it, so `unused` and
    `replace` cost the uses involved, not a walk of the network (which made a deep model's
    canonicalization quadratic). Erased ops leave their block at the end of each sweep
    (`compact`); a rule that reads a block's op list compacts that block first."""

    def __init__(self, network: Network, ctx: PassContext) -> None:
        self.network = network
        self.ctx = ctx
        self.users: dict[int, list[Operation]] = {}
        self.dirty: dict[int, Block] = {}
        self.track(list(network.body.ops))

    def track(self, ops: list[Operation]) -> None:
        """Record the uses of new ops (and of the ops nested in them)."""
        for op in ops:
            for inner in op.walk():
                for v in inner.operands:
                    self.users.setdefault(id(v), []).append(inner)

    def _untrack(self, op: Operation) -> None:
        for inner in op.walk():
            for v in inner.operands:
                users = self.users.get(id(v), [])
                if inner in users:
                    users.remove(inner)

    def set_operand(self, op: Operation, index: int, value: Value) -> None:
        users = self.users.get(id(op.operands[index]), [])
        if op in users:
            users.remove(op)
        op.operands[index] = value
        self.users.setdefault(id(value), []).append(op)

    def replace(self, op: Operation, values: list[Value]) -> None:
        """Replace `op`'s results by `values` everywhere and erase it."""
        for old, new in zip(op.results, values, strict=True):
            for user in self.users.pop(id(old), []):
                user.operands = [new if v is old else v for v in user.operands]
                self.users.setdefault(id(new), []).append(user)
        self.erase(op)

    def erase(self, op: Operation) -> None:
        self._untrack(op)
        block = op.parent
        if block is not None:
            self.dirty[id(block)] = block
        op.parent = None

    def unused(self, op: Operation) -> bool:
        return all(not self.users.get(id(v)) for v in op.results)

    def compact(self, block: Block | None = None) -> None:
        """Drop erased ops from `block` (default: every block edited)."""
        blocks = [block] if block is not None else list(self.dirty.values())
        for b in blocks:
            if self.dirty.pop(id(b), None) is not None:
                b.ops = [o for o in b.ops if o.parent is b]


RuleFn = Callable[[Operation, Rewriter], bool]


@dataclass(frozen=True)
class Rule:
    name: str
    ops: tuple[str, ...]  # the op names the rule looks at
    fn: RuleFn


# -- nn rules -----------------------------------------------------------------------------------


def inline_single_repeat(op: Operation, ctx: Rewriter) -> bool:
    if op.attrs.get("count") != 1 or isinstance(op.attrs.get("count"), bool):
        return False
    from neuralc.passes.unroll_repeat import expand_repeat

    copies, outputs = expand_repeat(op)
    block = op.parent
    assert block is not None
    ctx.compact(block)
    index = next(i for i, o in enumerate(block.ops) if o is op)
    for offset, copy in enumerate(copies):
        block.insert(index + offset, copy)
    ctx.track(copies)
    ctx.replace(op, outputs)
    return True


def empty_repeat(op: Operation, ctx: Rewriter) -> bool:
    """A repeat whose body yields its arguments unchanged (what is left of `Dropout(0.3) * 2`
    after remove-dropout) is its operands."""
    body = op.regions[0] if op.regions else None
    if body is not None:
        ctx.compact(body)
    if body is None or len(body.ops) != 1 or body.ops[0].operands != body.args:
        return False
    if [v.type for v in op.operands] != [r.type for r in op.results]:
        return False
    ctx.replace(op, list(op.operands))
    return True


def _identity(op: Operation, ctx: Rewriter) -> bool:
    if len(op.operands) != 1 or len(op.results) != 1:
        return False
    if op.operands[0].type != op.results[0].type:
        return False
    ctx.replace(op, [op.operands[0]])
    return True


def drop_linear_activation(op: Operation, ctx: Rewriter) -> bool:
    return op.attrs.get("activation", "linear") in ("linear", None) and _identity(op, ctx)


def drop_zero_dropout(op: Operation, ctx: Rewriter) -> bool:
    rate = op.attrs.get("rate")
    if isinstance(rate, HPOAttr | bool) or not isinstance(rate, int | float):
        return False
    return rate == 0 and _identity(op, ctx)


def flatten_rank2(op: Operation, ctx: Rewriter) -> bool:
    return bool(op.operands) and op.operands[0].type.rank == 2 and _identity(op, ctx)


def identity_reshape(op: Operation, ctx: Rewriter) -> bool:
    return _identity(op, ctx)


def reshape_chain(op: Operation, ctx: Rewriter) -> bool:
    """Reshapes keep the row-major element order, so a reshape of a reshape is the outer one
    applied to the first input, as long as it still infers the same type (checked with the op's
    own verify hook: a `0` entry of `tensor.reshape` or a derived symbol may differ)."""
    inner = producer(op.operands[0]) if len(op.operands) == 1 else None
    if inner is None or inner.op != op.op or len(inner.operands) != 1:
        return False
    if any(isinstance(v, HPOAttr) for v in op.attrs.values()) or op.opdef is None:
        return False
    middle = op.operands[0]
    ctx.set_operand(op, 0, inner.operands[0])
    try:
        if op.opdef.verify is not None:
            op.opdef.verify(op)
    except (VerifyError, ShapeError, ValueError, TypeError, KeyError):
        ctx.set_operand(op, 0, middle)  # the shorter chain types differently: keep the long one
        return False
    if ctx.unused(inner):
        ctx.erase(inner)
    return True


def _rewire(op: Operation, inner: Operation, source: Value, ctx: Rewriter) -> None:
    ctx.set_operand(op, 0, source)
    if ctx.unused(inner):
        ctx.erase(inner)


# -- tensor rules -------------------------------------------------------------------------------


def _perm(op: Operation) -> tuple[int, ...] | None:
    perm = op.attrs.get("perm")
    if not isinstance(perm, tuple) or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in perm):
        return None
    return perm  # type: ignore[return-value]


def identity_transpose(op: Operation, ctx: Rewriter) -> bool:
    perm = _perm(op)
    return perm is not None and perm == tuple(range(len(perm))) and _identity(op, ctx)


def double_transpose(op: Operation, ctx: Rewriter) -> bool:
    inner = producer(op.operands[0]) if len(op.operands) == 1 else None
    if inner is None or inner.op != "tensor.transpose" or len(inner.operands) != 1:
        return False
    outer_perm, inner_perm = _perm(op), _perm(inner)
    if outer_perm is None or inner_perm is None or len(outer_perm) != len(inner_perm):
        return False
    composed = tuple(inner_perm[i] for i in outer_perm)
    source = inner.operands[0]
    if composed == tuple(range(len(composed))):
        ctx.replace(op, [source])
        if ctx.unused(inner):
            ctx.erase(inner)
        return True
    op.attrs["perm"] = composed
    _rewire(op, inner, source, ctx)
    return True


NN_RULES: tuple[Rule, ...] = (
    Rule("empty-repeat", ("nn.repeat",), empty_repeat),
    Rule("inline-single-repeat", ("nn.repeat",), inline_single_repeat),
    Rule("drop-linear-activation", ("nn.activation",), drop_linear_activation),
    Rule("drop-zero-dropout", ("nn.dropout", "tensor.dropout"), drop_zero_dropout),
    Rule("flatten-rank2", ("nn.flatten",), flatten_rank2),
    Rule("identity-reshape", ("nn.reshape", "tensor.reshape"), identity_reshape),
    Rule("reshape-chain", ("nn.reshape",), reshape_chain),
)
TENSOR_RULES: tuple[Rule, ...] = (
    Rule("identity-transpose", ("tensor.transpose",), identity_transpose),
    Rule("double-transpose", ("tensor.transpose",), double_transpose),
    Rule("reshape-chain", ("tensor.reshape",), reshape_chain),
)
RULES: tuple[Rule, ...] = NN_RULES + TENSOR_RULES


def rule_table(rules: tuple[Rule, ...]) -> dict[str, list[Rule]]:
    table: dict[str, list[Rule]] = {}
    for rule in rules:
        for name in rule.ops:
            table.setdefault(name, []).append(rule)
    return table


def apply_rules(module: Module, ctx: PassContext, rules: tuple[Rule, ...], pass_name: str,
                max_iterations: int) -> bool:
    """Apply `rules` everywhere until none fires; an error names the rules still firing after
    `max_iterations` sweeps."""
    table = rule_table(rules)
    changed = False
    for net in module.networks:
        rw = Rewriter(net, ctx)
        fired: dict[str, int] = {}  # bound even when max_iterations < 1 (a direct call)
        for _ in range(max_iterations):
            fired = {}
            for op in list(net.walk()):
                if op.op not in table or not is_attached(op):
                    continue
                for rule in table[op.op]:
                    if rule.fn(op, rw):
                        ctx.hit(f"{pass_name}.{rule.name}")
                        fired[rule.name] = fired.get(rule.name, 0) + 1
                        break
            rw.compact()
            if not fired:
                break
            changed = True
        else:
            from neuralc.passes.manager import fixpoint_error

            raise fixpoint_error(f"pass '{pass_name}'", max_iterations, [pass_name],
                                 {f"{pass_name}.{k}": v for k, v in fired.items()})
    return changed


@register_pass
@dataclass(frozen=True)
class Canonicalize(Pass):
    """Local simplifications on every dialect (rule table above)."""

    name = "canonicalize"
    description = "local simplifications: identities, single repeats, transpose/reshape chains"
    min_level = 1
    max_iterations: int = option(10, minimum=1)
    disable: str = ""  # comma-separated rule names to leave out

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = self.disabled_rules() - {r.name for r in RULES}
        if unknown:  # checked when the pipeline is built, before any pass runs
            raise pipeline_error(f"canonicalize has no rule '{sorted(unknown)[0]}'",
                                 # reshape-chain is in both tables: list each name once
                                 "rules: " + ", ".join(dict.fromkeys(r.name for r in RULES)))

    def disabled_rules(self) -> set[str]:
        return {r.strip() for r in self.disable.split(",") if r.strip()}

    def run(self, module: Module, ctx: PassContext) -> bool:
        off = self.disabled_rules()
        rules = tuple(r for r in RULES if r.name not in off)
        return apply_rules(module, ctx, rules, self.name, self.max_iterations)
