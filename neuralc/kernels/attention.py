"""Fused multi-head attention: public entry point, autograd wiring and kernel launches.

The Triton kernels live in ``_attention_fwd_triton`` / ``_attention_bwd_triton`` and are
loaded lazily through :mod:`neuralc.kernels.dispatch`, so importing this module costs only
``torch``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from neuralc.kernels.composite import _check_attention_shapes, attention_reference
from neuralc.kernels.dispatch import interpret_enabled, new_output, triton_module, use_triton

LOG2E = 1.4426950408889634
MAX_HEAD_DIM = 128


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    scale: float | None = None,
    key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax attention ``softmax(q @ k^T * scale) @ v`` over ``[B, H, L, D]`` tensors.

    ``k``/``v`` may be longer or shorter than ``q`` (cross-attention).  Inputs are float32,
    float16 or bfloat16 (all three the same dtype); softmax and accumulation run in float32.
    Head dims up to 128 run in Triton (non powers of two, e.g. 96, use a masked
    power-of-two tile).

    * ``scale``: defaults to ``1 / sqrt(D)``.
    * ``causal``: top-left aligned like ``torch`` SDPA ``is_causal=True``: query ``i`` sees
      keys ``j <= i``, also when ``Lq != Lk``.
    * ``key_padding_mask``: bool ``[B, Lk]``, ``True`` = padded key, ignored by every query
      (the ``nn.MultiheadAttention`` convention).  A query that sees no key at all gets a
      zero output row and zero gradient (SDPA would give NaN).

    CUDA tensors run the Triton kernels; with ``TRITON_INTERPRET=1`` set at call time the
    same kernels run in Triton's CPU interpreter; anything else uses
    :func:`neuralc.kernels.composite.attention_reference`.
    """
    _check_attention_shapes(q, k, v, key_padding_mask)
    if (
        not use_triton(q, k, v)
        or not (q.dtype == k.dtype == v.dtype)
        or q.shape[-1] > MAX_HEAD_DIM
        or min(q.shape[2], k.shape[2]) == 0
    ):
        return attention_reference(
            q, k, v, causal=causal, scale=scale, key_padding_mask=key_padding_mask
        )
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        out: torch.Tensor = _AttentionFn.apply(q, k, v, key_padding_mask, bool(causal), scale)
        return out
    # Inference skips the autograd.Function: its bookkeeping is a visible share of the host
    # time of a launch-bound forward.
    kpm = _padding_mask_arg(key_padding_mask, q.device)
    return attention_forward(q, k, v, kpm, causal=causal, scale=scale)[0]


class _AttentionFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_padding_mask: torch.Tensor | None,
        causal: bool,
        scale: float,
    ) -> torch.Tensor:
        kpm = _padding_mask_arg(key_padding_mask, q.device)
        o, lse = attention_forward(q, k, v, kpm, causal=causal, scale=scale)
        ctx.save_for_backward(q, k, v, o, lse, kpm)
        ctx.causal = causal  # type: ignore[attr-defined]
        ctx.scale = scale  # type: ignore[attr-defined]
        return o

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, do: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, o, lse, kpm = ctx.saved_tensors
        dq, dk, dv = attention_backward(
            do, q, k, v, o, lse, kpm, causal=ctx.causal, scale=ctx.scale
        )
        return dq, dk, dv, None, None, None


def _padding_mask_arg(
    key_padding_mask: torch.Tensor | None, device: torch.device
) -> torch.Tensor | None:
    # int8 rather than bool: a byte per key on every Triton version, no i1 pointer quirks.
    if key_padding_mask is None:
        return None
    return key_padding_mask.to(device=device, dtype=torch.int8).contiguous()


def _block_d(head_dim: int) -> int:
    # tl.dot needs power-of-two tiles of at least 16; extra columns are masked off.
    return max(16, 1 << (head_dim - 1).bit_length())


def _split_d(head_dim: int) -> tuple[int, int]:
    """Column chunks (BLOCK_D, BLOCK_D2) for the forward kernel; BLOCK_D2 = 0 means one chunk.

    Two power-of-two chunks beat one padded tile when they cover fewer columns, e.g.
    96 -> 64 + 32 instead of 128.
    """
    padded = _block_d(head_dim)
    first = padded // 2
    if head_dim <= 16 or first >= head_dim:
        return padded, 0
    second = _block_d(head_dim - first)
    return (first, second) if first + second < padded else (padded, 0)


def _precision(dtype: torch.dtype) -> str:
    # float32 inputs promise float32 results: plain TF32 would lose ~3 decimal digits, while
    # "tf32x3" (split operands, three TF32 products) stays near float32 accuracy on tensor
    # cores, unlike "ieee", which spills registers badly at attention tile sizes.  The
    # setting is ignored for 16-bit inputs.
    return "tf32x3" if dtype == torch.float32 else "tf32"


def attention_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kpm: torch.Tensor | None,
    *,
    causal: bool,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the forward kernel; returns ``(o, lse)`` with ``lse`` in log2 units, [B, H, Lq].

    ``kpm`` is the int8 padding mask from ``_padding_mask_arg`` (or ``None``).
    """
    mod = triton_module("_attention_fwd_triton")
    b, h, lq, d = q.shape
    lk = k.shape[2]
    o = new_output((b, h, lq, d), q.dtype, q.device)
    lse = new_output((b, h, lq), torch.float32, q.device)
    block_d, block_d2 = _split_d(d)

    def grid(meta: dict[str, Any]) -> tuple[int, int]:
        return (-(-lq // meta["BLOCK_M"]), b * h)

    mod.attn_fwd[grid](
        q, k, v, o, lse, q if kpm is None else kpm,
        scale * LOG2E,
        *q.stride(), *k.stride(), *v.stride(), *o.stride(),
        0 if kpm is None else kpm.stride(0),
        h, lq, lk,
        HEAD_DIM=d, BLOCK_D=block_d, BLOCK_D2=block_d2, CAUSAL=causal, HAS_KPM=kpm is not None,
        PRECISION=_precision(q.dtype),
    )  # fmt: skip
    return o, lse


def attention_backward(
    do: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    kpm: torch.Tensor | None,
    *,
    causal: bool,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the backward kernels; returns ``(dq, dk, dv)``."""
    mod = triton_module("_attention_bwd_triton")
    b, h, lq, d = q.shape
    lk = k.shape[2]
    block_d = _block_d(d)
    delta_block = 16 if interpret_enabled() else 64
    delta = new_output((b, h, lq), torch.float32, q.device)
    mod.attn_bwd_delta[(-(-lq // delta_block), b * h)](
        o, do, delta, *o.stride(), *do.stride(), h, lq,
        HEAD_DIM=d, BLOCK_D=block_d, BLOCK_M=delta_block,
    )  # fmt: skip

    dq = new_output(q.shape, q.dtype, q.device)
    dk = new_output(k.shape, k.dtype, k.device)
    dv = new_output(v.shape, v.dtype, v.device)
    kpm_arg = q if kpm is None else kpm
    kpm_stride = 0 if kpm is None else kpm.stride(0)
    flags: dict[str, Any] = {
        "HEAD_DIM": d,
        "BLOCK_D": block_d,
        "CAUSAL": causal,
        "HAS_KPM": kpm is not None,
        "PRECISION": _precision(q.dtype),
    }

    def grid_kv(meta: dict[str, Any]) -> tuple[int, int]:
        return (-(-lk // meta["BLOCK_N"]), b * h)

    def grid_q(meta: dict[str, Any]) -> tuple[int, int]:
        return (-(-lq // meta["BLOCK_M"]), b * h)

    mod.attn_bwd_dkdv[grid_kv](
        q, k, v, do, lse, delta, dk, dv, kpm_arg, scale, scale * LOG2E,
        *q.stride(), *k.stride(), *v.stride(), *do.stride(), *dk.stride(), *dv.stride(),
        kpm_stride, h, lq, lk, **flags,
    )  # fmt: skip
    mod.attn_bwd_dq[grid_q](
        q, k, v, do, lse, delta, dq, kpm_arg, scale, scale * LOG2E,
        *q.stride(), *k.stride(), *v.stride(), *do.stride(), *dq.stride(),
        kpm_stride, h, lq, lk, **flags,
    )  # fmt: skip
    return dq, dk, dv
