"""Triton FlashAttention-2 forward: online softmax over key blocks, saving the log-sum-exp.

Loaded through :func:`neuralc.kernels.dispatch.triton_module`; never import it directly.
Scores are kept in the log2 domain (pre-multiplied by ``scale * log2(e)``) so the softmax
uses ``exp2``; the saved LSE is in the same domain and is what the backward recomputes from.
"""

from __future__ import annotations

from typing import Any

import triton
import triton.language as tl

from neuralc.kernels.dispatch import autotune

# Finite "minus infinity": keeps exp2/max arithmetic NaN-free when a whole block is masked
# (-inf - -inf would be NaN); a row whose running max is still this low saw no key at all.
NEG = tl.constexpr(-1.0e30)
EMPTY_ROW = tl.constexpr(-5.0e29)


@triton.jit
def _load_rows(
    base,
    rows,
    cols,
    stride_r,
    stride_c,
    N_ROWS,
    HEAD_DIM: tl.constexpr,
    COL_END: tl.constexpr,
    MASK_ROWS: tl.constexpr,
):
    # A [rows, cols] tile of a [L, HEAD_DIM] matrix; COL_END is the tile's last column + 1,
    # so tiles that lie inside the head dim load without a column mask.
    ptrs = base + rows[:, None] * stride_r + cols[None, :] * stride_c
    if MASK_ROWS:
        if COL_END <= HEAD_DIM:
            tile = tl.load(ptrs, mask=(rows < N_ROWS)[:, None], other=0.0)
        else:
            tile = tl.load(
                ptrs, mask=(rows < N_ROWS)[:, None] & (cols < HEAD_DIM)[None, :], other=0.0
            )
    elif COL_END <= HEAD_DIM:
        tile = tl.load(ptrs)
    else:
        tile = tl.load(ptrs, mask=(cols < HEAD_DIM)[None, :], other=0.0)
    return tile


@triton.jit
def _fwd_loop(
    acc,
    acc2,
    l_i,
    m_i,
    q,
    q2,
    k_base,
    v_base,
    kpm_base,
    lo,
    hi,
    offs_m,
    qk_scale,
    stride_kn,
    stride_kd,
    stride_vn,
    stride_vd,
    LK,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_D2: tl.constexpr,
    BLOCK_N: tl.constexpr,
    MASK: tl.constexpr,
    CAUSAL: tl.constexpr,
    HAS_KPM: tl.constexpr,
    PRECISION: tl.constexpr,
):
    # With BLOCK_D2 > 0 the head dim is split in two power-of-two column chunks
    # [0, BLOCK_D) and [BLOCK_D, BLOCK_D + BLOCK_D2), e.g. 96 = 64 + 32, instead of one
    # zero-padded 128-wide tile: a quarter fewer tensor-core flops for D=96.
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    for start_n in range(lo, hi, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        cols = start_n + offs_n
        # Unmasked blocks lie fully inside [0, LK): only a padded head dim needs a mask.
        k = _load_rows(k_base, cols, offs_d, stride_kn, stride_kd, LK, HEAD_DIM, BLOCK_D, MASK)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        if BLOCK_D2 > 0:
            offs_d2 = BLOCK_D + tl.arange(0, BLOCK_D2)
            k2 = _load_rows(
                k_base, cols, offs_d2, stride_kn, stride_kd, LK,
                HEAD_DIM, BLOCK_D + BLOCK_D2, MASK,
            )  # fmt: skip
            s = tl.dot(q2, tl.trans(k2), s, input_precision=PRECISION)
        s = s * qk_scale
        if MASK:
            valid = cols[None, :] < LK
            if CAUSAL:
                valid = valid & (offs_m[:, None] >= cols[None, :])
            if HAS_KPM:
                pad = tl.load(kpm_base + cols, mask=cols < LK, other=1)
                valid = valid & (pad == 0)[None, :]
            s = tl.where(valid, s, NEG)
        elif HAS_KPM:
            pad = tl.load(kpm_base + cols)
            s = tl.where((pad == 0)[None, :], s, NEG)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.math.exp2(s - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = _load_rows(v_base, cols, offs_d, stride_vn, stride_vd, LK, HEAD_DIM, BLOCK_D, MASK)
        p = p.to(v.dtype)
        acc = tl.dot(p, v, acc * alpha[:, None], input_precision=PRECISION)
        if BLOCK_D2 > 0:
            v2 = _load_rows(
                v_base, cols, offs_d2, stride_vn, stride_vd, LK,
                HEAD_DIM, BLOCK_D + BLOCK_D2, MASK,
            )  # fmt: skip
            acc2 = tl.dot(p, v2, acc2 * alpha[:, None], input_precision=PRECISION)
        m_i = m_new
    return acc, acc2, l_i, m_i


# Hopper-oriented.  The first entry is what runs when autotuning is off, so it must not
# spill at any head dim (checked with ptxas for sm_90a).
# On an H100 (bench/RESULTS.md) 64x64/4 warps wins at L <= 1024 and for long causal,
# 128x128/8 warps for long non-causal; the others were never best and were dropped.
FWD_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64}, num_warps=4, num_stages=4),
]


# float32 operands take twice the shared memory and registers (tf32x3 splits them again).
FWD_CONFIGS_FP32 = [triton.Config({"BLOCK_M": 64, "BLOCK_N": 32}, num_warps=4, num_stages=2)]


def _prune(configs: list[triton.Config], kwargs: dict[str, Any]) -> list[triton.Config]:
    # None of the 16-bit configurations spills at any head dim (ptxas, sm_90a).
    return FWD_CONFIGS_FP32 if kwargs["PRECISION"] != "tf32" else configs


@autotune(
    FWD_CONFIGS,
    key=["LQ", "LK", "HEAD_DIM", "CAUSAL", "HAS_KPM"],
    interpret_kwargs={"BLOCK_M": 32, "BLOCK_N": 16},
    prune=_prune,
)
@triton.jit
def attn_fwd(
    Q,
    K,
    V,
    Out,
    LSE,
    KPM,
    qk_scale,
    stride_qb,
    stride_qh,
    stride_qm,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_ob,
    stride_oh,
    stride_om,
    stride_od,
    stride_kpm,
    H,
    LQ,
    LK,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_D2: tl.constexpr,
    CAUSAL: tl.constexpr,
    HAS_KPM: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # Query blocks of one head are adjacent in launch order so they share K/V in L2.
    pid_m = tl.program_id(0)
    if CAUSAL:
        # Later query blocks see more keys: start them first to shorten the tail.
        pid_m = tl.num_programs(0) - 1 - pid_m
    pid_bh = tl.program_id(1)
    off_b = (pid_bh // H).to(tl.int64)
    off_h = (pid_bh % H).to(tl.int64)
    q_base = Q + off_b * stride_qb + off_h * stride_qh
    k_base = K + off_b * stride_kb + off_h * stride_kh
    v_base = V + off_b * stride_vb + off_h * stride_vh
    o_base = Out + off_b * stride_ob + off_h * stride_oh
    kpm_base = KPM + off_b * stride_kpm

    m0 = pid_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < LQ
    q = _load_rows(q_base, offs_m, offs_d, stride_qm, stride_qd, LQ, HEAD_DIM, BLOCK_D, True)
    if BLOCK_D2 > 0:
        offs_d2 = BLOCK_D + tl.arange(0, BLOCK_D2)
        q2 = _load_rows(
            q_base, offs_m, offs_d2, stride_qm, stride_qd, LQ, HEAD_DIM, BLOCK_D + BLOCK_D2, True
        )
        acc2 = tl.zeros([BLOCK_M, BLOCK_D2], dtype=tl.float32)
    else:
        # Placeholders, never read: the second chunk only exists when BLOCK_D2 > 0.
        q2 = q
        acc2 = tl.zeros([BLOCK_M, 16], dtype=tl.float32)

    m_i = tl.zeros([BLOCK_M], dtype=tl.float32) + NEG
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    # Keys in [0, full) need no causal or bounds mask; [full, hi) is the diagonal band
    # and/or the ragged tail, processed with masks.
    if CAUSAL:
        hi = tl.minimum(m0 + BLOCK_M, LK)
        full = (tl.minimum(m0, LK) // BLOCK_N) * BLOCK_N
    else:
        hi = LK
        full = (LK // BLOCK_N) * BLOCK_N
    acc, acc2, l_i, m_i = _fwd_loop(
        acc, acc2, l_i, m_i, q, q2, k_base, v_base, kpm_base, 0, full, offs_m, qk_scale,
        stride_kn, stride_kd, stride_vn, stride_vd, LK,
        HEAD_DIM, BLOCK_D, BLOCK_D2, BLOCK_N, False, CAUSAL, HAS_KPM, PRECISION,
    )  # fmt: skip
    acc, acc2, l_i, m_i = _fwd_loop(
        acc, acc2, l_i, m_i, q, q2, k_base, v_base, kpm_base, full, hi, offs_m, qk_scale,
        stride_kn, stride_kd, stride_vn, stride_vd, LK,
        HEAD_DIM, BLOCK_D, BLOCK_D2, BLOCK_N, True, CAUSAL, HAS_KPM, PRECISION,
    )  # fmt: skip

    # Rows that saw no key output zeros and get LSE=+inf, so the backward's
    # exp2(s - lse) is exactly zero for them.
    empty = m_i < EMPTY_ROW
    l_safe = tl.where(empty, 1.0, l_i)
    lse = tl.where(empty, float("inf"), m_i + tl.math.log2(l_safe))
    tl.store(LSE + pid_bh.to(tl.int64) * LQ + offs_m, lse, mask=row_ok)
    inv_l = tl.where(empty, 0.0, 1.0 / l_safe)
    _store_rows(o_base, acc * inv_l[:, None], offs_m, offs_d, stride_om, stride_od, LQ, HEAD_DIM)
    if BLOCK_D2 > 0:
        out2 = acc2 * inv_l[:, None]
        _store_rows(o_base, out2, offs_m, offs_d2, stride_om, stride_od, LQ, HEAD_DIM)


@triton.jit
def _store_rows(base, tile, rows, cols, stride_r, stride_c, N_ROWS, HEAD_DIM: tl.constexpr):
    mask = (rows < N_ROWS)[:, None] & (cols < HEAD_DIM)[None, :]
    ptrs = base + rows[:, None] * stride_r + cols[None, :] * stride_c
    tl.store(ptrs, tile.to(base.dtype.element_ty), mask=mask)
