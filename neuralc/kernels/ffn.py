"""Fused position-wise feed-forward block: ``act(x @ w1.T + b1) @ w2.T + b2 (+ residual)``.

Forward: two Triton GEMMs with fused epilogues (bias + activation, then bias + residual).
Backward: the input-side GEMM ``dy @ w2`` runs in Triton with the activation derivative
fused into its epilogue; weight gradients and ``dx`` use ``torch.mm`` (cuBLAS on GPU), and
bias gradients are column sums.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from neuralc.kernels.composite import ACTIVATIONS, ffn_reference
from neuralc.kernels.dispatch import new_output, triton_module, use_triton

_CODES = {"none": 0, "relu": 1, "gelu": 2}


def ffn(
    x: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor | None,
    *,
    activation: str = "relu",
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """``act(x @ w1.T + b1) @ w2.T + b2``, plus ``residual`` when given.

    ``x``: ``[..., d_model]``; ``w1``: ``[d_ff, d_model]``, ``w2``: ``[d_out, d_ff]``
    (``nn.Linear`` layout); biases may be ``None``.  ``activation`` is ``"relu"`` or
    ``"gelu"`` (exact erf form).  All floating tensors share one dtype (float32, float16 or
    bfloat16); accumulation is float32.  Falls back to
    :func:`neuralc.kernels.composite.ffn_reference` off CUDA unless ``TRITON_INTERPRET=1``.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
    tensors = [t for t in (x, w1, b1, w2, b2, residual) if t is not None]
    out_shape = (*x.shape[:-1], w2.shape[0])
    if (
        not use_triton(*tensors)
        or any(t.dtype != x.dtype for t in tensors)
        or x.numel() == 0
        # The fused epilogue adds a residual of exactly the output's shape; broadcasting
        # residuals take the composite.
        or (residual is not None and tuple(residual.shape) != out_shape)
    ):
        return ffn_reference(x, w1, b1, w2, b2, activation=activation, residual=residual)
    if w1.shape[1] != x.shape[-1] or w2.shape[1] != w1.shape[0]:
        raise ValueError(
            f"ffn shapes: x {tuple(x.shape)}, w1 {tuple(w1.shape)}, w2 {tuple(w2.shape)}"
        )
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        out: torch.Tensor = _FFNFn.apply(x, w1, b1, w2, b2, residual, activation)
        return out
    return ffn_forward(x, w1, b1, w2, b2, activation=activation, residual=residual)[0]


def ffn_forward(
    x: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor | None,
    *,
    activation: str,
    residual: torch.Tensor | None,
    keep_pre: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Both GEMMs; returns ``(y, x as 2-D, hidden, pre-activation or None)``."""
    x2 = x.reshape(-1, x.shape[-1])
    res2 = None if residual is None else residual.reshape(-1, w2.shape[0])
    store_pre = keep_pre and activation == "gelu"
    h, pre = gemm(x2, w1.t(), bias=b1, activation=activation, store_pre=store_pre)
    y, _ = gemm(h, w2.t(), bias=b2, residual=res2)
    return y.reshape(*x.shape[:-1], w2.shape[0]), x2, h, pre


def gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    activation: str = "none",
    residual: torch.Tensor | None = None,
    grad_activation: str = "none",
    aux: torch.Tensor | None = None,
    store_pre: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``epilogue(a @ b)`` for 2-D ``a [M, K]`` and ``b [K, N]`` (any strides).

    Returns ``(c, pre)`` where ``pre`` is the pre-activation (only with ``store_pre``).
    ``grad_activation`` multiplies by the derivative of that activation evaluated from
    ``aux`` (the relu output, or the gelu input).
    """
    mod = triton_module("_gemm_triton")
    m, k = a.shape
    n = b.shape[1]
    c = new_output((m, n), a.dtype, a.device)
    pre = new_output((m, n), a.dtype, a.device) if store_pre else None
    res = c if residual is None else residual
    aux_t = c if aux is None else aux
    pre_t = c if pre is None else pre

    def grid(meta: dict[str, Any]) -> tuple[int]:
        return (-(-m // meta["BLOCK_M"]) * -(-n // meta["BLOCK_N"]),)

    mod.gemm_epilogue[grid](
        a, b, c, c if bias is None else bias, res, aux_t, pre_t,
        m, n, k,
        *a.stride(), *b.stride(), *c.stride(), *res.stride(), *aux_t.stride(), *pre_t.stride(),
        HAS_BIAS=bias is not None,
        ACTIVATION=_CODES[activation],
        STORE_PRE=store_pre,
        GRAD_ACT=_CODES[grad_activation],
        HAS_RES=residual is not None,
        # Near-float32 accuracy on tensor cores for float32 inputs (ignored for 16-bit).
        PRECISION="tf32x3" if a.dtype == torch.float32 else "tf32",
    )  # fmt: skip
    return c, pre


class _FFNFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: torch.Tensor,
        w1: torch.Tensor,
        b1: torch.Tensor | None,
        w2: torch.Tensor,
        b2: torch.Tensor | None,
        residual: torch.Tensor | None,
        activation: str,
    ) -> torch.Tensor:
        # GELU's derivative needs its input; relu's can be read off its output.
        y, x2, h, pre = ffn_forward(
            x, w1, b1, w2, b2, activation=activation, residual=residual, keep_pre=True
        )
        ctx.save_for_backward(x2, w1, w2, h, pre)
        ctx.activation = activation  # type: ignore[attr-defined]
        ctx.has_b1 = b1 is not None  # type: ignore[attr-defined]
        ctx.has_b2 = b2 is not None  # type: ignore[attr-defined]
        ctx.has_residual = residual is not None  # type: ignore[attr-defined]
        ctx.x_shape = x.shape  # type: ignore[attr-defined]
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x2, w1, w2, h, pre = ctx.saved_tensors
        dy2 = dy.reshape(-1, w2.shape[0])
        aux = h if ctx.activation == "relu" else pre
        # dz = (dy @ w2) * act'(z), fused; w2 [d_out, d_ff] is already the [K, N] operand.
        dz, _ = gemm(dy2, w2, grad_activation=ctx.activation, aux=aux)
        dw2 = torch.mm(dy2.t(), h)
        dw1 = torch.mm(dz.t(), x2)
        dx = torch.mm(dz, w1).reshape(ctx.x_shape)
        db1 = dz.sum(0) if ctx.has_b1 else None
        db2 = dy2.sum(0) if ctx.has_b2 else None
        dres = dy if ctx.has_residual else None
        return dx, dw1, db1, dw2, db2, dres, None
