"""`fuse-attention`: the tensor graph of multi-head attention becomes one `kernel.attention`.

Candidates are the `tensor.softmax` ops. The pattern is what `lower-nn-to-tensor` emits for
torch's MultiheadAttention and Keras' MultiHeadAttention (neuralc/passes/lowering/attention.py):

    self:  qkv = linear(x, w_in, b_in); q, k, v = slice(qkv, -1, ...) in that order
    cross: q = linear(x, slice(w_in, 0, 0, H*dk), slice(b_in, ...));
           kv = linear(memory, slice(w_in, 0, H*dk, end), ...); k, v = slice(kv, -1, ...)
    probs = softmax(mul(matmul(heads(q, (0, 2, 1, 3)), heads(k, (0, 2, 3, 1))), scale))
    out = linear(reshape(transpose(matmul(probs [dropout], heads(v, (0, 2, 1, 3))),
                                   (0, 2, 1, 3)), (0, 0, H*dv)), w_out, b_out)

where heads(t, perm) = transpose(reshape(t, (0, 0, H, d)), perm). Every intermediate value must
have no other use; the first check that fails is the rejection reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neuralc.ir.core import Module, Operation, Value
from neuralc.ir.tensor import attr
from neuralc.ir.types import Attr
from neuralc.passes.base import Pass, PassContext, register_pass
from neuralc.passes.fusion import (
    NoMatch,
    Rewrite,
    Uses,
    dropout_rate,
    expect,
    fused_op,
    producer,
    run_pattern,
    with_dropout,
)

PATTERN = "fuse-attention"
NOT_SCALED = "softmax input is not a scaled matmul of projected q and k"


def _heads(t: Value, perm: tuple[int, ...], uses: Uses, what: str,
           matched: list[Operation]) -> tuple[Value, int, int]:
    """`t = transpose(reshape(src, (0, 0, H, d)), perm)` → (src, H, d)."""
    reason = (f"{what} is not split into heads (reshape (0, 0, H, d), then transpose "
              f"{perm})")
    tr = producer(t, "tensor.transpose", reason)
    expect(tuple(attr(tr, "perm")) == perm, reason)  # type: ignore[arg-type]
    rs = producer(tr.operands[0], "tensor.reshape", reason)
    shape = tuple(attr(rs, "shape"))  # type: ignore[arg-type]
    expect(len(shape) == 4 and shape[:2] == (0, 0) and min(shape[2:]) > 0
           and rs.operands[0].type.rank == 3, reason)
    uses.only_user(tr.result)
    uses.only_user(rs.result)
    matched += [tr, rs]
    return rs.operands[0], shape[2], shape[3]


def _slice(v: Value, axis: int, start: int, end: int) -> Operation | None:
    op = v.owner
    if isinstance(op, Operation) and op.op == "tensor.slice" and \
            (attr(op, "axis"), attr(op, "start"), attr(op, "end")) == (axis, start, end):
        return op
    return None


def _projections(q: Value, k: Value, v: Value, h: int, dk: int, dv: int, uses: Uses,
                 matched: list[Operation]) -> tuple[Value, Value | None, Value, Value]:
    """(x, memory or None, w_in, b_in) of the q/k/v projections."""
    qk, total = h * dk, h * (2 * dk + dv)
    q_op = q.owner
    if isinstance(q_op, Operation) and q_op.op == "tensor.slice":  # self attention
        reason = "q, k and v are not slices [q | k | v] of one packed projection"
        q_s, k_s = _slice(q, -1, 0, qk), _slice(k, -1, qk, 2 * qk)
        v_s = _slice(v, -1, 2 * qk, total)
        expect(q_s and k_s and v_s, reason)
        src = q_s.operands[0]  # type: ignore[union-attr]
        expect(all(s.operands[0] is src for s in (k_s, v_s)), reason)  # type: ignore[union-attr]
        proj = producer(src, "tensor.linear", reason)
        expect(len(proj.operands) == 3 and proj.operands[1].type.shape[0] == total, reason)
        expect(len(uses.of(src)) == 3, f"intermediate value %{src.name} has other uses")
        for s in (q_s, k_s, v_s):
            uses.only_user(s.result)  # type: ignore[union-attr]
        matched += [q_s, k_s, v_s, proj]  # type: ignore[list-item]
        return proj.operands[0], None, proj.operands[1], proj.operands[2]
    reason = ("q is not a projection of x by the first rows of w_in, and k, v slices of a "
              "projection of the memory by the rest")
    q_op = producer(q, "tensor.linear", reason)
    k_s, v_s = _slice(k, -1, 0, qk), _slice(v, -1, qk, qk + h * dv)
    expect(len(q_op.operands) == 3 and k_s and v_s, reason)
    src = k_s.operands[0]  # type: ignore[union-attr]
    expect(v_s.operands[0] is src and len(uses.of(src)) == 2, reason)  # type: ignore[union-attr]
    kv_op = producer(src, "tensor.linear", reason)
    expect(len(kv_op.operands) == 3, reason)
    packed: list[Value] = []
    for index in (1, 2):  # the weight, then the bias
        part = _slice(q_op.operands[index], 0, 0, qk)
        rest = _slice(kv_op.operands[index], 0, qk, total)
        expect(part and rest and part.operands[0] is rest.operands[0], reason)  # type: ignore
        packed.append(part.operands[0])  # type: ignore[union-attr]
        matched += [part, rest]  # type: ignore[list-item]
    expect(packed[0].type.shape[0] == total, reason)
    uses.only_user(q)
    for s in (k_s, v_s):
        uses.only_user(s.result)  # type: ignore[union-attr]
    matched += [q_op, k_s, v_s, kv_op]  # type: ignore[list-item]
    return q_op.operands[0], kv_op.operands[0], packed[0], packed[1]


def match(softmax: Operation, uses: Uses) -> Rewrite:
    x = softmax.operands[0]
    expect(attr(softmax, "axis") in (-1, x.type.rank - 1), "softmax is not over the last axis")
    mul = producer(x, "tensor.mul", NOT_SCALED)
    matched: list[Operation] = [softmax, mul]
    scores_op = factor = None
    for a, b in (mul.operands, reversed(mul.operands)):
        if isinstance(a.owner, Operation) and a.owner.op == "tensor.matmul" and \
                isinstance(b.owner, Operation) and b.owner.op == "tensor.constant":
            scores_op, factor = a.owner, b.owner
    expect(scores_op is not None and factor is not None, NOT_SCALED)
    value = attr(factor, "value")  # type: ignore[arg-type]
    expect(factor.result.type.rank == 0 and isinstance(value, int | float)  # type: ignore
           and not isinstance(value, bool), "the attention scale is not a scalar constant")
    uses.only_user(mul.result)
    uses.only_user(scores_op.result)  # type: ignore[union-attr]
    matched += [scores_op, factor]  # type: ignore[list-item]  (the factor if nothing shares it)
    q, h, dk = _heads(scores_op.operands[0], (0, 2, 1, 3), uses, "q", matched)  # type: ignore
    k, h_k, dk_k = _heads(scores_op.operands[1], (0, 2, 3, 1), uses, "k", matched)  # type: ignore
    expect((h_k, dk_k) == (h, dk), "q and k are split into different heads")
    probs, drop = softmax.result, None
    user = uses.only_user(probs)
    if user.op == "tensor.dropout":
        drop, probs = user, user.result
        matched.append(drop)
        user = uses.only_user(probs)
    expect(user.op == "tensor.matmul" and user.operands[0] is probs,
           "the attention probabilities do not feed a matmul with v")
    context = user
    matched.append(context)
    v, h_v, dv = _heads(context.operands[1], (0, 2, 1, 3), uses, "v", matched)
    expect(h_v == h, "v is split into a different number of heads")
    root = _merge(context, h, dv, uses, matched)
    x_in, memory, w_in, b_in = _projections(q, k, v, h, dk, dv, uses, matched)
    causal = bool(attr(softmax, "causal"))
    expect(not (causal and memory is not None), "a causal cross attention has no kernel")
    operands = [x_in, *([memory] if memory is not None else []), w_in, b_in,
                root.operands[1], root.operands[2]]
    attrs: dict[str, Attr] = {"num_heads": h, "key_dim": dk, "value_dim": dv,
                              "scale": float(value), "kind": "self" if memory is None  # type: ignore
                              else "cross", "causal": causal}
    new = fused_op("kernel.attention", root, operands, with_dropout(attrs, dropout_rate(drop)))
    return Rewrite(root, [new], matched + [root], f"{PATTERN}.{attrs['kind']}")


def _merge(context: Operation, h: int, dv: int, uses: Uses,
           matched: list[Operation]) -> Operation:
    """context → transpose (0, 2, 1, 3) → reshape (0, 0, H*dv) → linear(w_out, b_out)."""
    reason = (f"the attention context is not merged (transpose (0, 2, 1, 3), reshape "
              f"(0, 0, {h * dv})) and projected by a biased linear")
    tr = uses.only_user(context.result)
    expect(tr.op == "tensor.transpose" and tuple(attr(tr, "perm")) == (0, 2, 1, 3),  # type: ignore
           reason)
    rs = uses.only_user(tr.result)
    expect(rs.op == "tensor.reshape" and tuple(attr(rs, "shape")) == (0, 0, h * dv),  # type: ignore
           reason)
    out = uses.only_user(rs.result)
    expect(out.op == "tensor.linear" and len(out.operands) == 3 and out.operands[0] is rs.result,
           reason)
    matched += [tr, rs]
    return out


@register_pass
@dataclass(frozen=True)
class FuseAttention(Pass):
    """Fuse multi-head attention (projections, SDPA, output projection) into kernel.attention."""

    name: ClassVar[str] = PATTERN
    description: ClassVar[str] = "QKV projections + attention + output projection → " \
                                 "kernel.attention"
    min_level: ClassVar[int] = 2

    def run(self, module: Module, ctx: PassContext) -> bool:
        return run_pattern(module, ctx, PATTERN, lambda op: op.op == "tensor.softmax", match)


__all__ = ["FuseAttention", "NoMatch", "match"]
