"""Fused FFN (two GEMMs with epilogues) against a float64 reference."""

from __future__ import annotations

import importlib

import pytest
import torch
from kernel_testing import TOL, assert_close, leaves, requires_cuda

from neuralc.kernels import ffn, ffn_reference, poisoned_outputs

ffn_module = importlib.import_module("neuralc.kernels.ffn")


def make(
    lead: tuple[int, ...],
    d_model: int,
    d_ff: int,
    d_out: int,
    dtype: torch.dtype,
    *,
    bias: bool,
    residual: bool,
    device: str = "cpu",
) -> list[torch.Tensor | None]:
    def param(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, device=device) * scale).to(dtype).requires_grad_()

    x = param(*lead, d_model)
    w1 = param(d_ff, d_model, scale=d_model**-0.5)
    w2 = param(d_out, d_ff, scale=d_ff**-0.5)
    b1 = param(d_ff) if bias else None
    b2 = param(d_out) if bias else None
    res = param(*lead, d_out) if residual else None
    return [x, w1, b1, w2, b2, res]


def check(tensors: list[torch.Tensor | None], activation: str, tol: float, seed: int) -> None:
    x, w1, b1, w2, b2, res = tensors
    with poisoned_outputs():
        y = ffn(x, w1, b1, w2, b2, activation=activation, residual=res)
        grad = torch.randn_like(y)
        y.backward(grad)
    ref_in = leaves(*tensors)
    rx, rw1, rb1, rw2, rb2, rres = ref_in
    ref = ffn_reference(rx, rw1, rb1, rw2, rb2, activation=activation, residual=rres)
    ref.backward(grad.double())
    assert_close(y, ref, tol, "y", seed)
    names = ("dx", "dw1", "db1", "dw2", "db2", "dresidual")
    for name, t, r in zip(names, tensors, ref_in, strict=True):
        if t is not None:
            assert r is not None
            assert_close(t.grad, r.grad, tol, name, seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize(
    ("lead", "d_model", "d_ff", "d_out", "bias", "residual"),
    [
        pytest.param((2, 23), 40, 72, 40, True, True, id="ragged-K-residual"),
        pytest.param((37,), 48, 80, 24, True, False, id="even-K-narrow-out"),
        pytest.param((3, 5, 7), 32, 64, 32, False, True, id="no-bias"),
    ],
)
def test_ffn_interpreter(
    lead: tuple[int, ...],
    d_model: int,
    d_ff: int,
    d_out: int,
    bias: bool,
    residual: bool,
    activation: str,
    dtype: torch.dtype,
    seed: int,
) -> None:
    tensors = make(lead, d_model, d_ff, d_out, dtype, bias=bias, residual=residual)
    check(tensors, activation, TOL[dtype], seed)


def test_ffn_inference_mode_matches(seed: int) -> None:
    x, w1, b1, w2, b2, res = make((9,), 32, 48, 32, torch.float32, bias=True, residual=True)
    with torch.no_grad(), poisoned_outputs():
        y = ffn(x, w1, b1, w2, b2, activation="gelu", residual=res)
    ref = ffn_reference(*leaves(x, w1, b1, w2, b2), activation="gelu", residual=res.double())
    assert_close(y, ref, TOL[torch.float32], "y", seed)


def test_ffn_directional_derivative(seed: int) -> None:
    tensors = make((13,), 32, 48, 32, torch.float32, bias=True, residual=True)
    present = [t for t in tensors if t is not None]
    dirs = [torch.randn_like(t) for t in present]

    def f(ts: list[torch.Tensor]) -> torch.Tensor:
        x, w1, b1, w2, b2, res = ts
        return ffn(x, w1, b1, w2, b2, activation="gelu", residual=res)

    y = f(present)
    weights = torch.randn_like(y)
    (y * weights).double().sum().backward()
    analytic = sum((t.grad * u).sum() for t, u in zip(present, dirs, strict=True))
    eps = 1e-3  # truncation ~eps^2 (3-linear terms), float32 round-off ~1e-7/eps
    with torch.no_grad():
        f_plus = (
            (f([t + eps * u for t, u in zip(present, dirs, strict=True)]) * weights).double().sum()
        )
        f_minus = (
            (f([t - eps * u for t, u in zip(present, dirs, strict=True)]) * weights).double().sum()
        )
    numeric = (f_plus - f_minus) / (2 * eps)
    assert abs(analytic - numeric) <= 2e-3 * max(1.0, abs(numeric)), (analytic, numeric, seed)


def test_ffn_fallback_without_interpreter(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(ffn_module, "triton_module", lambda name: 1 / 0)
    tensors = make((2, 11), 24, 40, 24, torch.float32, bias=True, residual=True)
    check(tensors, "relu", 1e-5, seed)


def test_ffn_float64_gradcheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ffn_module, "triton_module", lambda name: 1 / 0)
    x, w1, b1, w2, b2, _ = make((4,), 6, 10, 6, torch.float64, bias=True, residual=False)
    assert torch.autograd.gradcheck(
        lambda *t: ffn(*t, activation="gelu"), (x, w1, b1, w2, b2), eps=1e-6, atol=1e-5
    )


def test_ffn_broadcast_residual_uses_composite(seed: int) -> None:
    x, w1, b1, w2, b2, _ = make((5, 3), 16, 32, 16, torch.float32, bias=True, residual=False)
    res = torch.randn(16)
    y = ffn(x, w1, b1, w2, b2, residual=res)
    ref = ffn_reference(*leaves(x, w1, b1, w2, b2), residual=res.double())
    assert_close(y, ref, TOL[torch.float32], "y", seed)


def test_ffn_rejects_unknown_activation() -> None:
    x, w1, b1, w2, b2, _ = make((4,), 16, 16, 16, torch.float32, bias=True, residual=False)
    with pytest.raises(ValueError, match="activation"):
        ffn(x, w1, b1, w2, b2, activation="swish")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.gpu
@requires_cuda
def test_ffn_cuda(activation: str, dtype: torch.dtype, seed: int) -> None:
    tensors = make((3, 77), 96, 200, 96, dtype, bias=True, residual=True, device="cuda")
    check(tensors, activation, TOL[dtype], seed)
