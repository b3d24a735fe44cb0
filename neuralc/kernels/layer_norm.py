"""Fused residual add + LayerNorm: ``layer_norm(x + residual)`` over the last dimension."""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from neuralc.kernels.composite import add_layer_norm_reference
from neuralc.kernels.dispatch import interpret_enabled, new_output, triton_module, use_triton

# A row must fit in registers; wider rows use the composite.
MAX_TRITON_WIDTH = 16384


def add_layer_norm(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``layer_norm(x + residual, weight, bias, eps)`` over the last dim, in one pass.

    ``x`` and ``residual`` have the same shape ``[..., N]``; ``weight``/``bias`` are ``[N]``
    or ``None``.  Statistics are computed in float32 whatever the input dtype.  Gradients
    flow to all four tensors (``x`` and ``residual`` receive the same gradient).
    """
    tensors = [t for t in (x, residual, weight, bias) if t is not None]
    n = x.shape[-1]
    if (
        not use_triton(*tensors)
        or any(t.dtype != x.dtype for t in tensors)
        or residual.shape != x.shape
        or not 0 < n <= MAX_TRITON_WIDTH
        or x.numel() == 0
    ):
        return add_layer_norm_reference(x, residual, weight, bias, eps)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        out: torch.Tensor = _AddLayerNormFn.apply(x, residual, weight, bias, float(eps))
        return out
    return add_layer_norm_forward(x, residual, weight, bias, float(eps))[0]


def _rows(t: torch.Tensor) -> torch.Tensor:
    # Kernels index rows by a single stride and need unit stride along the normalised dim.
    t2 = t.reshape(-1, t.shape[-1])
    return t2 if t2.stride(-1) == 1 else t2.contiguous()


def _block(n: int) -> int:
    return 1 << max(n - 1, 1).bit_length()


def _num_warps(block_n: int) -> int:
    # About 8 elements per thread keeps the row in registers without spilling.
    return min(16, max(1, block_n // 256))


def add_layer_norm_forward(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the forward kernel; returns ``(y, mean, rstd)`` (statistics in float32)."""
    mod = triton_module("_layer_norm_triton")
    x2, r2 = _rows(x), _rows(residual)
    m, n = x2.shape
    y = new_output((m, n), x.dtype, x.device)
    mean = new_output((m,), torch.float32, x.device)
    rstd = new_output((m,), torch.float32, x.device)
    block_n = _block(n)
    rows = 1 if block_n >= 1024 or interpret_enabled() else 4
    mod.add_ln_fwd[(-(-m // rows),)](
        x2, r2, x2 if weight is None else weight, x2 if bias is None else bias,
        y, mean, rstd, m, n, x2.stride(0), r2.stride(0), y.stride(0), eps,
        HAS_W=weight is not None, HAS_B=bias is not None, ROWS=rows, BLOCK_N=block_n,
        num_warps=_num_warps(block_n),
    )  # fmt: skip
    return y.reshape(x.shape), mean, rstd


class _AddLayerNormFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: torch.Tensor,
        residual: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        eps: float,
    ) -> torch.Tensor:
        y, mean, rstd = add_layer_norm_forward(x, residual, weight, bias, eps)
        ctx.save_for_backward(x, residual, weight, mean, rstd)
        ctx.has_bias = bias is not None  # type: ignore[attr-defined]
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, residual, weight, mean, rstd = ctx.saved_tensors
        dx, dw, db = add_layer_norm_backward(dy, x, residual, weight, mean, rstd, ctx.has_bias)
        return dx, dx, dw, db, None


def add_layer_norm_backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor | None,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    has_bias: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Launch the backward kernel; returns ``(d(x + residual), dweight, dbias)``."""
    mod = triton_module("_layer_norm_triton")
    x2, r2, dy2 = _rows(x), _rows(residual), _rows(dy)
    m, n = x2.shape
    block_n = _block(n)
    if x.is_cuda and not interpret_enabled():
        programs = torch.cuda.get_device_properties(x.device).multi_processor_count * 4
    else:
        programs = 3  # several programs with several rows each, even on tiny test inputs
    programs = max(1, min(programs, m))
    rows_per_program = -(-m // programs)
    programs = -(-m // rows_per_program)
    dx = new_output((m, n), x.dtype, x.device)
    dw_part = new_output((programs, n), torch.float32, x.device) if weight is not None else None
    db_part = new_output((programs, n), torch.float32, x.device) if has_bias else None
    mod.add_ln_bwd[(programs,)](
        x2, r2, x2 if weight is None else weight, dy2, dx, mean, rstd,
        mean if dw_part is None else dw_part, mean if db_part is None else db_part,
        m, n, x2.stride(0), r2.stride(0), dy2.stride(0), dx.stride(0), rows_per_program,
        HAS_W=weight is not None, HAS_B=has_bias, BLOCK_N=block_n,
        num_warps=_num_warps(block_n),
    )  # fmt: skip
    dw = None if dw_part is None else dw_part.sum(0).to(weight.dtype)
    db = None if db_part is None else db_part.sum(0).to(x.dtype)
    return dx.reshape(x.shape), dw, db
