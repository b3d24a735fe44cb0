"""Triton FlashAttention-2 backward, recomputing probabilities from the saved LSE.

Loaded through :func:`neuralc.kernels.dispatch.triton_module`; never import it directly.
Three launches: ``delta = rowsum(dO * O)``, then one kernel that owns a key block and sweeps
the queries (dK, dV), and one that owns a query block and sweeps the keys (dQ).  Splitting
dQ from dK/dV recomputes the scores once more but avoids atomics, so results are
deterministic and no output needs zero-initialisation.
"""

from __future__ import annotations

from typing import Any

import triton
import triton.language as tl

from neuralc.kernels.dispatch import autotune, launcher


@launcher
@triton.jit
def attn_bwd_delta(
    Out,
    DO,
    DELTA,
    stride_ob,
    stride_oh,
    stride_om,
    stride_od,
    stride_dob,
    stride_doh,
    stride_dom,
    stride_dod,
    H,
    LQ,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    pid_bh = tl.program_id(1)
    off_b = (pid_bh // H).to(tl.int64)
    off_h = (pid_bh % H).to(tl.int64)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m < LQ)[:, None] & (offs_d < HEAD_DIM)[None, :]
    o = tl.load(
        Out + off_b * stride_ob + off_h * stride_oh
        + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od,
        mask=mask, other=0.0,
    )  # fmt: skip
    do = tl.load(
        DO + off_b * stride_dob + off_h * stride_doh
        + offs_m[:, None] * stride_dom + offs_d[None, :] * stride_dod,
        mask=mask, other=0.0,
    )  # fmt: skip
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), axis=1)
    tl.store(DELTA + pid_bh.to(tl.int64) * LQ + offs_m, delta, mask=offs_m < LQ)


@triton.jit
def _dkdv_loop(
    dk,
    dv,
    k,
    v,
    key_ok,
    q_base,
    do_base,
    lse_base,
    delta_base,
    lo,
    hi,
    offs_n,
    offs_d,
    qk_scale,
    stride_qm,
    stride_qd,
    stride_dom,
    stride_dod,
    LQ,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr,
    MASK: tl.constexpr,
    CAUSAL: tl.constexpr,
    HAS_KPM: tl.constexpr,
    PRECISION: tl.constexpr,
):
    d_ok = offs_d < HEAD_DIM
    for start_m in range(lo, hi, BLOCK_M):
        start_m = tl.multiple_of(start_m, BLOCK_M)
        rows = start_m + tl.arange(0, BLOCK_M)
        q_ptrs = q_base + rows[:, None] * stride_qm + offs_d[None, :] * stride_qd
        do_ptrs = do_base + rows[:, None] * stride_dom + offs_d[None, :] * stride_dod
        if MASK:
            row_ok = rows < LQ
            qd_ok = row_ok[:, None] & d_ok[None, :]
            q = tl.load(q_ptrs, mask=qd_ok, other=0.0)
            # +inf LSE makes the recomputed probabilities of out-of-range rows exactly zero.
            lse = tl.load(lse_base + rows, mask=row_ok, other=float("inf"))
            do = tl.load(do_ptrs, mask=qd_ok, other=0.0)
            delta = tl.load(delta_base + rows, mask=row_ok, other=0.0)
        else:
            if HEAD_DIM == BLOCK_D:
                q = tl.load(q_ptrs)
                do = tl.load(do_ptrs)
            else:
                q = tl.load(q_ptrs, mask=d_ok[None, :], other=0.0)
                do = tl.load(do_ptrs, mask=d_ok[None, :], other=0.0)
            lse = tl.load(lse_base + rows)
            delta = tl.load(delta_base + rows)
        # Transposed problem (keys on rows) so dK and dV accumulate without transposes.
        s_t = tl.dot(k, tl.trans(q), input_precision=PRECISION) * qk_scale
        p_t = tl.math.exp2(s_t - lse[None, :])
        if MASK:
            valid = rows[None, :] < LQ
            if CAUSAL:
                valid = valid & (rows[None, :] >= offs_n[:, None])
            if HAS_KPM:
                valid = valid & key_ok[:, None]
            p_t = tl.where(valid, p_t, 0.0)
        elif HAS_KPM:
            p_t = tl.where(key_ok[:, None], p_t, 0.0)
        dv = tl.dot(p_t.to(do.dtype), do, dv, input_precision=PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)
        ds_t = p_t * (dp_t - delta[None, :])
        dk = tl.dot(ds_t.to(q.dtype), q, dk, input_precision=PRECISION)
    return dk, dv


# dK and dV accumulate in registers for the whole sweep, so wide heads want short query
# steps; the first entry (used when autotuning is off) does not spill at any head dim.
DKDV_CONFIGS = [
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 128}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128}, num_warps=8, num_stages=2),
    triton.Config({"BLOCK_M": 16, "BLOCK_N": 128}, num_warps=8, num_stages=3),
]


DKDV_CONFIGS_FP32 = [triton.Config({"BLOCK_M": 32, "BLOCK_N": 64}, num_warps=8, num_stages=2)]


def _prune_dkdv(configs: list[triton.Config], kwargs: dict[str, Any]) -> list[triton.Config]:
    if kwargs["PRECISION"] != "tf32":
        return DKDV_CONFIGS_FP32
    wide = kwargs["BLOCK_D"] > 64
    return [c for c in configs if not (wide and c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] > 4096)]


@autotune(
    DKDV_CONFIGS,
    key=["LQ", "LK", "HEAD_DIM", "CAUSAL", "HAS_KPM"],
    interpret_kwargs={"BLOCK_M": 16, "BLOCK_N": 32},
    prune=_prune_dkdv,
)
@triton.jit
def attn_bwd_dkdv(
    Q, K, V, DO, LSE, DELTA, DK, DV, KPM,
    sm_scale, qk_scale,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_dob, stride_doh, stride_dom, stride_dod,
    stride_dkb, stride_dkh, stride_dkn, stride_dkd,
    stride_dvb, stride_dvh, stride_dvn, stride_dvd,
    stride_kpm,
    H, LQ, LK,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    CAUSAL: tl.constexpr,
    HAS_KPM: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):  # fmt: skip
    # Under causal masking early key blocks have the most work; the natural order already
    # launches them first.
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    off_b = (pid_bh // H).to(tl.int64)
    off_h = (pid_bh % H).to(tl.int64)
    n0 = pid_n * BLOCK_N
    offs_n = n0 + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    kv_ok = (offs_n < LK)[:, None] & (offs_d < HEAD_DIM)[None, :]
    k = tl.load(
        K + off_b * stride_kb + off_h * stride_kh
        + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd,
        mask=kv_ok, other=0.0,
    )  # fmt: skip
    v = tl.load(
        V + off_b * stride_vb + off_h * stride_vh
        + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd,
        mask=kv_ok, other=0.0,
    )  # fmt: skip
    if HAS_KPM:
        key_ok = tl.load(KPM + off_b * stride_kpm + offs_n, mask=offs_n < LK, other=1) == 0
    else:
        key_ok = offs_n < LK
    q_base = Q + off_b * stride_qb + off_h * stride_qh
    do_base = DO + off_b * stride_dob + off_h * stride_doh
    lse_base = LSE + pid_bh.to(tl.int64) * LQ
    delta_base = DELTA + pid_bh.to(tl.int64) * LQ

    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    # Query blocks in [lo, band) straddle the causal diagonal, [band, full) are entirely
    # below it and in range (no mask), [full, LQ) is the ragged tail.
    q_floor = (LQ // BLOCK_M) * BLOCK_M
    if CAUSAL:
        lo = (n0 // BLOCK_M) * BLOCK_M
        band = tl.minimum(tl.cdiv(n0 + BLOCK_N, BLOCK_M), tl.cdiv(LQ, BLOCK_M)) * BLOCK_M
    else:
        lo = 0
        band = 0
    full = tl.maximum(band, q_floor)
    dk, dv = _dkdv_loop(
        dk, dv, k, v, key_ok, q_base, do_base, lse_base, delta_base, lo, band, offs_n, offs_d,
        qk_scale, stride_qm, stride_qd, stride_dom, stride_dod, LQ,
        HEAD_DIM, BLOCK_D, BLOCK_M, True, CAUSAL, HAS_KPM, PRECISION,
    )  # fmt: skip
    dk, dv = _dkdv_loop(
        dk, dv, k, v, key_ok, q_base, do_base, lse_base, delta_base, band, full, offs_n,
        offs_d, qk_scale, stride_qm, stride_qd, stride_dom, stride_dod, LQ,
        HEAD_DIM, BLOCK_D, BLOCK_M, False, CAUSAL, HAS_KPM, PRECISION,
    )  # fmt: skip
    dk, dv = _dkdv_loop(
        dk, dv, k, v, key_ok, q_base, do_base, lse_base, delta_base, full, LQ, offs_n,
        offs_d, qk_scale, stride_qm, stride_qd, stride_dom, stride_dod, LQ,
        HEAD_DIM, BLOCK_D, BLOCK_M, True, CAUSAL, HAS_KPM, PRECISION,
    )  # fmt: skip
    dk = dk * sm_scale
    tl.store(
        DK + off_b * stride_dkb + off_h * stride_dkh
        + offs_n[:, None] * stride_dkn + offs_d[None, :] * stride_dkd,
        dk.to(DK.dtype.element_ty), mask=kv_ok,
    )  # fmt: skip
    tl.store(
        DV + off_b * stride_dvb + off_h * stride_dvh
        + offs_n[:, None] * stride_dvn + offs_d[None, :] * stride_dvd,
        dv.to(DV.dtype.element_ty), mask=kv_ok,
    )  # fmt: skip


@triton.jit
def _dq_loop(
    dq,
    q,
    do,
    lse,
    delta,
    k_base,
    v_base,
    kpm_base,
    lo,
    hi,
    offs_m,
    offs_d,
    qk_scale,
    stride_kn,
    stride_kd,
    stride_vn,
    stride_vd,
    LK,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    MASK: tl.constexpr,
    CAUSAL: tl.constexpr,
    HAS_KPM: tl.constexpr,
    PRECISION: tl.constexpr,
):
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        cols = start_n + tl.arange(0, BLOCK_N)
        k_ptrs = k_base + cols[:, None] * stride_kn + offs_d[None, :] * stride_kd
        v_ptrs = v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd
        if MASK:
            kv_ok = (cols[:, None] < LK) & d_ok[None, :]
            k = tl.load(k_ptrs, mask=kv_ok, other=0.0)
            v = tl.load(v_ptrs, mask=kv_ok, other=0.0)
        elif HEAD_DIM == BLOCK_D:
            k = tl.load(k_ptrs)
            v = tl.load(v_ptrs)
        else:
            k = tl.load(k_ptrs, mask=d_ok[None, :], other=0.0)
            v = tl.load(v_ptrs, mask=d_ok[None, :], other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
        p = tl.math.exp2(s - lse[:, None])
        if MASK:
            valid = cols[None, :] < LK
            if CAUSAL:
                valid = valid & (offs_m[:, None] >= cols[None, :])
            if HAS_KPM:
                pad = tl.load(kpm_base + cols, mask=cols < LK, other=1)
                valid = valid & (pad == 0)[None, :]
            p = tl.where(valid, p, 0.0)
        elif HAS_KPM:
            pad = tl.load(kpm_base + cols)
            p = tl.where((pad == 0)[None, :], p, 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(k.dtype), k, dq, input_precision=PRECISION)
    return dq


DQ_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64}, num_warps=8, num_stages=4),
]


DQ_CONFIGS_FP32 = [triton.Config({"BLOCK_M": 64, "BLOCK_N": 32}, num_warps=8, num_stages=2)]


def _prune_dq(configs: list[triton.Config], kwargs: dict[str, Any]) -> list[triton.Config]:
    if kwargs["PRECISION"] != "tf32":
        return DQ_CONFIGS_FP32
    wide = kwargs["BLOCK_D"] > 64
    return [c for c in configs if not (wide and c.kwargs["BLOCK_M"] == 128 and c.num_warps == 4)]


@autotune(
    DQ_CONFIGS,
    key=["LQ", "LK", "HEAD_DIM", "CAUSAL", "HAS_KPM"],
    interpret_kwargs={"BLOCK_M": 32, "BLOCK_N": 16},
    prune=_prune_dq,
)
@triton.jit
def attn_bwd_dq(
    Q, K, V, DO, LSE, DELTA, DQ, KPM,
    sm_scale, qk_scale,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_dob, stride_doh, stride_dom, stride_dod,
    stride_dqb, stride_dqh, stride_dqm, stride_dqd,
    stride_kpm,
    H, LQ, LK,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    CAUSAL: tl.constexpr,
    HAS_KPM: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    if CAUSAL:
        pid_m = tl.num_programs(0) - 1 - pid_m
    pid_bh = tl.program_id(1)
    off_b = (pid_bh // H).to(tl.int64)
    off_h = (pid_bh % H).to(tl.int64)
    m0 = pid_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < LQ
    qd_ok = row_ok[:, None] & (offs_d < HEAD_DIM)[None, :]
    q = tl.load(
        Q + off_b * stride_qb + off_h * stride_qh
        + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd,
        mask=qd_ok, other=0.0,
    )  # fmt: skip
    do = tl.load(
        DO + off_b * stride_dob + off_h * stride_doh
        + offs_m[:, None] * stride_dom + offs_d[None, :] * stride_dod,
        mask=qd_ok, other=0.0,
    )  # fmt: skip
    lse = tl.load(LSE + pid_bh.to(tl.int64) * LQ + offs_m, mask=row_ok, other=float("inf"))
    delta = tl.load(DELTA + pid_bh.to(tl.int64) * LQ + offs_m, mask=row_ok, other=0.0)
    k_base = K + off_b * stride_kb + off_h * stride_kh
    v_base = V + off_b * stride_vb + off_h * stride_vh
    kpm_base = KPM + off_b * stride_kpm

    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    if CAUSAL:
        hi = tl.minimum(m0 + BLOCK_M, LK)
        full = (tl.minimum(m0, LK) // BLOCK_N) * BLOCK_N
    else:
        hi = LK
        full = (LK // BLOCK_N) * BLOCK_N
    dq = _dq_loop(
        dq, q, do, lse, delta, k_base, v_base, kpm_base, 0, full, offs_m, offs_d, qk_scale,
        stride_kn, stride_kd, stride_vn, stride_vd, LK,
        HEAD_DIM, BLOCK_D, BLOCK_N, False, CAUSAL, HAS_KPM, PRECISION,
    )  # fmt: skip
    dq = _dq_loop(
        dq, q, do, lse, delta, k_base, v_base, kpm_base, full, hi, offs_m, offs_d, qk_scale,
        stride_kn, stride_kd, stride_vn, stride_vd, LK,
        HEAD_DIM, BLOCK_D, BLOCK_N, True, CAUSAL, HAS_KPM, PRECISION,
    )  # fmt: skip
    dq = dq * sm_scale
    tl.store(
        DQ + off_b * stride_dqb + off_h * stride_dqh
        + offs_m[:, None] * stride_dqm + offs_d[None, :] * stride_dqd,
        dq.to(DQ.dtype.element_ty), mask=qd_ok,
    )  # fmt: skip
