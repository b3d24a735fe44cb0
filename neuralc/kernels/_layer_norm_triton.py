"""Triton residual-add + LayerNorm over the last dimension, forward and backward.

Loaded through :func:`neuralc.kernels.dispatch.triton_module`; never import it directly.
A whole row lives in registers (``BLOCK_N >= N``), so statistics take one pass over memory.
The forward saves only per-row mean and 1/std; the backward re-reads ``x`` and ``residual``
instead of a stored sum, trading one extra read for a write and its memory.
"""

from __future__ import annotations

import triton
import triton.language as tl

from neuralc.kernels.dispatch import launcher


@launcher
@triton.jit
def add_ln_fwd(
    X, R, W, B, Y, MEAN, RSTD,
    M, N,
    stride_x, stride_r, stride_y,
    eps,
    HAS_W: tl.constexpr,
    HAS_B: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
):  # fmt: skip
    cols = tl.arange(0, BLOCK_N)
    col_ok = cols < N
    if HAS_W:
        w = tl.load(W + cols, mask=col_ok, other=0.0).to(tl.float32)
    if HAS_B:
        b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)
    # Several short rows per program amortise the weight loads and launch overhead.
    for i in range(ROWS):
        row = tl.program_id(0) * ROWS + i
        if row < M:
            r64 = tl.cast(row, tl.int64)
            s = tl.load(X + r64 * stride_x + cols, mask=col_ok, other=0.0).to(tl.float32)
            s += tl.load(R + r64 * stride_r + cols, mask=col_ok, other=0.0).to(tl.float32)
            mean = tl.sum(s, axis=0) / N
            centered = tl.where(col_ok, s - mean, 0.0)
            var = tl.sum(centered * centered, axis=0) / N
            rstd = 1.0 / tl.sqrt(var + eps)
            y = centered * rstd
            if HAS_W:
                y = y * w
            if HAS_B:
                y = y + b
            tl.store(Y + r64 * stride_y + cols, y.to(Y.dtype.element_ty), mask=col_ok)
            tl.store(MEAN + row, mean)
            tl.store(RSTD + row, rstd)


@launcher
@triton.jit
def add_ln_bwd(
    X, R, W, DY, DX, MEAN, RSTD, DW_PART, DB_PART,
    M, N,
    stride_x, stride_r, stride_dy, stride_dx,
    rows_per_program,
    HAS_W: tl.constexpr,
    HAS_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
):  # fmt: skip
    # Each program owns a contiguous slab of rows and writes its partial dW/dB row; the host
    # sums the partials.  Deterministic, and no buffer needs zero-initialisation.
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_N)
    col_ok = cols < N
    if HAS_W:
        w = tl.load(W + cols, mask=col_ok, other=0.0).to(tl.float32)
    dw = tl.zeros([BLOCK_N], dtype=tl.float32)
    db = tl.zeros([BLOCK_N], dtype=tl.float32)
    first = pid * rows_per_program
    last = tl.minimum(first + rows_per_program, M)
    for row in range(first, last):
        r64 = tl.cast(row, tl.int64)
        s = tl.load(X + r64 * stride_x + cols, mask=col_ok, other=0.0).to(tl.float32)
        s += tl.load(R + r64 * stride_r + cols, mask=col_ok, other=0.0).to(tl.float32)
        dy = tl.load(DY + r64 * stride_dy + cols, mask=col_ok, other=0.0).to(tl.float32)
        mean = tl.load(MEAN + row)
        rstd = tl.load(RSTD + row)
        xhat = tl.where(col_ok, (s - mean) * rstd, 0.0)
        wdy = dy
        if HAS_W:
            wdy = wdy * w
        c1 = tl.sum(xhat * wdy, axis=0) / N
        c2 = tl.sum(wdy, axis=0) / N
        dx = (wdy - (xhat * c1 + c2)) * rstd
        tl.store(DX + r64 * stride_dx + cols, dx.to(DX.dtype.element_ty), mask=col_ok)
        dw += dy * xhat
        db += dy
    if HAS_W:
        tl.store(DW_PART + pid * N + cols, dw, mask=col_ok)
    if HAS_B:
        tl.store(DB_PART + pid * N + cols, db, mask=col_ok)
