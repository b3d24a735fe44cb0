"""Triton GEMM ``C = A @ B`` with a fused epilogue, used by the FFN.

Loaded through :func:`neuralc.kernels.dispatch.triton_module`; never import it directly.
Epilogue, in order: ``+ bias[N]``; optionally store the pre-activation (needed by the GELU
backward); activation (relu / exact-erf gelu); or, for the backward, multiplication by the
activation derivative evaluated on an auxiliary tensor; ``+ residual[M, N]``.
"""

from __future__ import annotations

from typing import Any

import triton
import triton.language as tl

from neuralc.kernels.dispatch import autotune

# Activation codes, shared with neuralc.kernels.ffn._CODES (constexpr ints, not strings, so
# the epilogue branches fold at compile time on every Triton version).
ACT_NONE = tl.constexpr(0)
ACT_RELU = tl.constexpr(1)
ACT_GELU = tl.constexpr(2)

SQRT1_2 = tl.constexpr(0.7071067811865476)
INV_SQRT_2PI = tl.constexpr(0.3989422804014327)


def _config(bm: int, bn: int, bk: int, warps: int, stages: int) -> triton.Config:
    return triton.Config(
        {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
        num_warps=warps,
        num_stages=stages,
    )


# Hopper-oriented: wide tiles with 8 warps keep the wgmma pipes busy, 3-4 stages hide
# global latency within the 227 KB of shared memory.  The first entry (used when autotuning
# is off) does not spill with any epilogue.
GEMM_CONFIGS = [
    _config(128, 128, 64, 8, 4),
    _config(128, 256, 64, 8, 3),
    _config(128, 256, 64, 8, 4),
    _config(256, 128, 64, 8, 4),
]
# float32 operands: half the K depth per stage for the same shared memory.
GEMM_CONFIGS_FP32 = [_config(64, 64, 32, 4, 3), _config(128, 64, 32, 8, 3)]


def _prune(configs: list[triton.Config], kwargs: dict[str, Any]) -> list[triton.Config]:
    return GEMM_CONFIGS_FP32 if kwargs["PRECISION"] != "tf32" else configs


@autotune(
    GEMM_CONFIGS,
    key=["M", "N", "K", "ACTIVATION", "GRAD_ACT", "HAS_RES", "STORE_PRE"],
    interpret_kwargs={"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 16, "GROUP_M": 2},
    prune=_prune,
)
@triton.heuristics({"EVEN_K": lambda args: args["K"] % args["BLOCK_K"] == 0})
@triton.jit
def gemm_epilogue(
    A, B, C, BIAS, RES, AUX, PRE,
    M, N, K,
    stride_am, stride_ak,
    stride_bk, stride_bn,
    stride_cm, stride_cn,
    stride_rm, stride_rn,
    stride_xm, stride_xn,
    stride_pm, stride_pn,
    HAS_BIAS: tl.constexpr,
    ACTIVATION: tl.constexpr,
    STORE_PRE: tl.constexpr,
    GRAD_ACT: tl.constexpr,
    HAS_RES: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
    EVEN_K: tl.constexpr,
):  # fmt: skip
    # Grouped ordering: GROUP_M row-tiles share each column-tile of B while it is in L2.
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * num_n
    first_m = (pid // per_group) * GROUP_M
    group_size = tl.minimum(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_size
    pid_n = (pid % per_group) // group_size

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # Wrapping out-of-range rows/cols onto valid ones keeps the main-loop loads unmasked;
    # the duplicates are discarded by the masked store.
    rows = offs_m % M
    cols = offs_n % N
    a_ptrs = A + rows[:, None].to(tl.int64) * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = B + offs_k[:, None] * stride_bk + cols[None, :].to(tl.int64) * stride_bn
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            k_left = K - k * BLOCK_K
            a = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
            b = tl.load(b_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    mask = (offs_m < M)[:, None] & (offs_n < N)[None, :]
    m64 = offs_m[:, None].to(tl.int64)
    n64 = offs_n[None, :].to(tl.int64)
    if HAS_BIAS:
        acc += tl.load(BIAS + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)[None, :]
    if STORE_PRE:
        tl.store(PRE + m64 * stride_pm + n64 * stride_pn, acc.to(PRE.dtype.element_ty), mask=mask)
    if ACTIVATION == ACT_RELU:
        acc = tl.maximum(acc, 0.0)
    elif ACTIVATION == ACT_GELU:
        acc = 0.5 * acc * (1.0 + tl.math.erf(acc * SQRT1_2))
    if GRAD_ACT != ACT_NONE:
        aux = tl.load(AUX + m64 * stride_xm + n64 * stride_xn, mask=mask, other=0.0)
        aux = aux.to(tl.float32)
        if GRAD_ACT == ACT_RELU:
            # aux is the relu *output*: positive exactly where the input was.
            acc = tl.where(aux > 0.0, acc, 0.0)
        else:
            # aux is the gelu *input* z: d/dz [z * Phi(z)] = Phi(z) + z * phi(z).
            cdf = 0.5 * (1.0 + tl.math.erf(aux * SQRT1_2))
            pdf = tl.exp(-0.5 * aux * aux) * INV_SQRT_2PI
            acc = acc * (cdf + aux * pdf)
    if HAS_RES:
        acc += tl.load(RES + m64 * stride_rm + n64 * stride_rn, mask=mask, other=0.0).to(tl.float32)
    tl.store(C + m64 * stride_cm + n64 * stride_cn, acc.to(C.dtype.element_ty), mask=mask)
