"""Fused attention: Triton forward and backward against a float64 reference.

Non-GPU tests run the Triton code in the CPU interpreter (see conftest.py); shapes are small
and deliberately ragged (lengths not multiples of the tiles, D=96, Lq != Lk).
"""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from kernel_testing import TOL, assert_close, leaves, requires_cuda

import neuralc.kernels as nk
from neuralc.kernels import attention, attention_reference, poisoned_outputs

# The package re-exports the function `attention`, which shadows the submodule attribute.
attention_module = importlib.import_module("neuralc.kernels.attention")
REPO = Path(__file__).resolve().parents[2]


def reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    scale: float | None,
    kpm: torch.Tensor | None,
) -> torch.Tensor:
    """Explicit float64 softmax attention with the documented conventions."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-1, -2)) * scale
    lq, lk = s.shape[-2:]
    allowed = torch.ones(lq, lk, dtype=torch.bool, device=q.device)
    if causal:
        allowed = allowed.tril()  # top-left aligned: query i sees keys j <= i
    allowed = allowed.expand(q.shape[0], 1, lq, lk)
    if kpm is not None:
        allowed = allowed & ~kpm[:, None, None, :]
    s = s.masked_fill(~allowed, float("-inf"))
    empty = ~allowed.any(-1, keepdim=True)
    p = torch.softmax(s.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    return p @ v


def make_inputs(
    b: int, h: int, lq: int, lk: int, d: int, dtype: torch.dtype, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q = torch.randn(b, h, lq, d, dtype=dtype, device=device)
    k = torch.randn(b, h, lk, d, dtype=dtype, device=device)
    v = torch.randn(b, h, lk, d, dtype=dtype, device=device)
    return q.requires_grad_(), k.requires_grad_(), v.requires_grad_()


def padding_mask(b: int, lk: int, device: str = "cpu") -> torch.Tensor:
    kpm = torch.rand(b, lk, device=device) < 0.3
    kpm[:, 0] = False  # keep at least one visible key so no row is empty here
    return kpm


def check(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    kpm: torch.Tensor | None,
    scale: float | None,
    tol: float,
    seed: int,
) -> None:
    with poisoned_outputs():
        out = attention(q, k, v, causal=causal, scale=scale, key_padding_mask=kpm)
        grad = torch.randn_like(out)
        out.backward(grad)
    rq, rk, rv = leaves(q, k, v)
    ref = reference(rq, rk, rv, causal, scale, kpm)
    ref.backward(grad.double())
    assert_close(out, ref, tol, "out", seed)
    assert_close(q.grad, rq.grad, tol, "dq", seed)
    assert_close(k.grad, rk.grad, tol, "dk", seed)
    assert_close(v.grad, rv.grad, tol, "dv", seed)


CASES = [
    # b, h, lq, lk, d, causal, padded
    pytest.param(2, 2, 70, 70, 64, False, False, id="self-64"),
    pytest.param(1, 2, 37, 53, 96, True, False, id="causal-cross-short-q-96"),
    pytest.param(2, 1, 53, 37, 16, True, True, id="causal-cross-long-q-16-pad"),
    pytest.param(2, 2, 45, 70, 96, False, True, id="cross-96-pad"),
    pytest.param(1, 1, 70, 70, 64, True, False, id="causal-64"),
    pytest.param(1, 2, 33, 47, 40, True, True, id="causal-cross-40-pad"),  # 32 + masked 16
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize(("b", "h", "lq", "lk", "d", "causal", "padded"), CASES)
def test_attention_interpreter(
    b: int,
    h: int,
    lq: int,
    lk: int,
    d: int,
    causal: bool,
    padded: bool,
    dtype: torch.dtype,
    seed: int,
) -> None:
    q, k, v = make_inputs(b, h, lq, lk, d, dtype)
    kpm = padding_mask(b, lk) if padded else None
    check(q, k, v, causal=causal, kpm=kpm, scale=None, tol=TOL[dtype], seed=seed)


def test_strided_inputs_and_custom_scale(seed: int) -> None:
    # [B, L, H, D] storage viewed as [B, H, L, D]: the kernels take arbitrary strides.
    base = [torch.randn(2, 41, 2, 64) for _ in range(3)]
    q, k, v = (t.transpose(1, 2).requires_grad_() for t in base)
    check(q, k, v, causal=True, kpm=None, scale=0.3, tol=TOL[torch.float32], seed=seed)


def test_fully_masked_rows_are_zero(seed: int) -> None:
    q, k, v = make_inputs(2, 2, 29, 35, 16, torch.float32)
    kpm = torch.zeros(2, 35, dtype=torch.bool)
    kpm[0] = True  # batch 0: every key padded
    kpm[1, :5] = True  # batch 1, causal: queries 0..4 see only padded keys
    check(q, k, v, causal=True, kpm=kpm, scale=None, tol=TOL[torch.float32], seed=seed)
    out = attention(q, k, v, causal=True, key_padding_mask=kpm)
    assert out[0].abs().max() == 0 and out[1, :, :5].abs().max() == 0
    ref = attention_reference(q, k, v, causal=True, key_padding_mask=kpm)
    assert torch.equal(ref[0], torch.zeros_like(ref[0]))


def test_directional_derivative(seed: int) -> None:
    # gradcheck-style: <grad, u> against a central finite difference along a random u.
    q, k, v = make_inputs(1, 2, 19, 23, 16, torch.float32)
    kpm = padding_mask(1, 23)
    dirs = [torch.randn_like(t) for t in (q, k, v)]
    out = attention(q, k, v, causal=True, key_padding_mask=kpm)
    weights = torch.randn_like(out)
    (out * weights).double().sum().backward()
    analytic = sum((t.grad * u).sum() for t, u in zip((q, k, v), dirs, strict=True))
    eps = 1e-3  # truncation ~eps^2 (3-linear terms), float32 round-off ~1e-7/eps
    with torch.no_grad():
        plus = [t + eps * u for t, u in zip((q, k, v), dirs, strict=True)]
        minus = [t - eps * u for t, u in zip((q, k, v), dirs, strict=True)]
        f_plus = (attention(*plus, causal=True, key_padding_mask=kpm) * weights).double().sum()
        f_minus = (attention(*minus, causal=True, key_padding_mask=kpm) * weights).double().sum()
    numeric = (f_plus - f_minus) / (2 * eps)
    assert abs(analytic - numeric) <= 2e-3 * max(1.0, abs(numeric)), (analytic, numeric, seed)


def test_inference_skips_autograd_function(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    # Under no_grad the kernel launches directly (no autograd.Function bookkeeping) and
    # computes the same values as the differentiable path.
    q, k, v = make_inputs(2, 2, 21, 30, 96, torch.float32)
    kpm = padding_mask(2, 30)
    with_grad = attention(q, k, v, key_padding_mask=kpm).detach()

    def no_apply(*args: object) -> None:
        raise AssertionError("autograd.Function used for an inference call")

    monkeypatch.setattr(attention_module._AttentionFn, "apply", no_apply)
    with torch.no_grad(), poisoned_outputs():
        inference = attention(q, k, v, key_padding_mask=kpm)
    assert not inference.requires_grad
    assert torch.equal(inference, with_grad)
    ref = reference(*(t.detach().double() for t in (q, k, v)), False, None, kpm)
    assert_close(inference, ref, TOL[torch.float32], "inference out", seed)


def test_fallback_without_interpreter(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)

    def no_triton(name: str) -> None:
        raise AssertionError(f"Triton module {name} loaded on the fallback path")

    monkeypatch.setattr(attention_module, "triton_module", no_triton)
    q, k, v = make_inputs(2, 2, 21, 30, 32, torch.float32)
    kpm = padding_mask(2, 30)
    check(q, k, v, causal=True, kpm=kpm, scale=None, tol=1e-5, seed=seed)


def test_float64_uses_composite_even_when_interpreting(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(attention_module, "triton_module", lambda name: 1 / 0)
    q, k, v = make_inputs(1, 1, 9, 12, 16, torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b, c: attention(a, b, c, causal=True), (q, k, v), eps=1e-6, atol=1e-5
    )


def test_public_api() -> None:
    for name in ("attention", "ffn", "add_layer_norm", "attention_reference"):
        assert name in nk.__all__ and callable(getattr(nk, name))


def test_shape_errors() -> None:
    q = torch.randn(1, 2, 5, 16)
    with pytest.raises(ValueError):
        attention(q, torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8))
    with pytest.raises(ValueError):
        attention(q, q, q, key_padding_mask=torch.zeros(1, 4, dtype=torch.bool))


GPU_CASES = [
    pytest.param(2, 3, 77, 77, 96, False, True, id="96-pad"),
    pytest.param(1, 2, 100, 61, 64, True, False, id="causal-cross-64"),
    pytest.param(2, 2, 130, 130, 128, True, True, id="causal-128-pad"),
]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize(("b", "h", "lq", "lk", "d", "causal", "padded"), GPU_CASES)
@pytest.mark.gpu
@requires_cuda
def test_attention_cuda(
    b: int,
    h: int,
    lq: int,
    lk: int,
    d: int,
    causal: bool,
    padded: bool,
    dtype: torch.dtype,
    seed: int,
) -> None:
    q, k, v = make_inputs(b, h, lq, lk, d, dtype, device="cuda")
    kpm = padding_mask(b, lk, device="cuda") if padded else None
    check(q, k, v, causal=causal, kpm=kpm, scale=None, tol=TOL[dtype], seed=seed)


FP32_SCRIPT = """
import torch, sys
from neuralc.kernels import attention
torch.manual_seed(int(sys.argv[1]))
q, k, v = (torch.randn(1, 2, 45, 64, device="cuda", requires_grad=True) for _ in range(3))
o = attention(q, k, v, causal=True)
g = torch.randn_like(o)
o.backward(g)
ref_in = [t.detach().double().requires_grad_() for t in (q, k, v)]
mask = torch.ones(45, 45, dtype=torch.bool, device="cuda").tril()
s = (ref_in[0] @ ref_in[1].transpose(-1, -2)) / 8.0
ref = torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ ref_in[2]
ref.backward(g.double())
for a, r in zip((o, q.grad, k.grad, v.grad), (ref, *(t.grad for t in ref_in))):
    err = ((a.double() - r).abs().max() / r.abs().max()).item()
    assert err <= 1e-4, err
print("ok")
"""


@pytest.mark.gpu
@requires_cuda
def test_attention_cuda_fp32(seed: int) -> None:
    # In a child process: float32 uses its own tile configurations, and a faulting kernel
    # would otherwise poison this worker's CUDA context for every later test.
    env = {**os.environ, "PYTHONPATH": str(REPO), "NEURALC_TRITON_AUTOTUNE": "0"}
    env.pop("TRITON_INTERPRET", None)
    result = subprocess.run(
        [sys.executable, "-c", FP32_SCRIPT, str(seed)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
