"""Fused residual add + LayerNorm against a float64 reference."""

from __future__ import annotations

import importlib

import pytest
import torch
from kernel_testing import TOL, assert_close, leaves, requires_cuda

from neuralc.kernels import add_layer_norm, add_layer_norm_reference, poisoned_outputs

ln_module = importlib.import_module("neuralc.kernels.layer_norm")


def make(
    shape: tuple[int, ...], dtype: torch.dtype, *, affine: bool, device: str = "cpu"
) -> list[torch.Tensor | None]:
    n = shape[-1]

    def param(*s: int, shift: float = 0.0) -> torch.Tensor:
        return (torch.randn(*s, device=device) + shift).to(dtype).requires_grad_()

    x = param(*shape, shift=0.5)  # a non-zero mean exercises the centring
    res = param(*shape)
    weight = param(n, shift=1.0) if affine else None
    bias = param(n) if affine else None
    return [x, res, weight, bias]


def check(tensors: list[torch.Tensor | None], eps: float, tol: float, seed: int) -> None:
    x, res, weight, bias = tensors
    assert x is not None and res is not None
    with poisoned_outputs():
        y = add_layer_norm(x, res, weight, bias, eps)
        grad = torch.randn_like(y)
        y.backward(grad)
    ref_in = leaves(*tensors)
    rx, rres, rw, rb = ref_in
    assert rx is not None and rres is not None
    ref = add_layer_norm_reference(rx, rres, rw, rb, eps)
    ref.backward(grad.double())
    assert_close(y, ref, tol, "y", seed)
    for name, t, r in zip(("dx", "dresidual", "dweight", "dbias"), tensors, ref_in, strict=True):
        if t is not None:
            assert r is not None
            assert_close(t.grad, r.grad, tol, name, seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize(
    ("shape", "affine"),
    [
        pytest.param((5, 7, 100), True, id="ragged-width"),
        pytest.param((33, 64), True, id="pow2-width"),
        pytest.param((4, 768), False, id="wide-no-affine"),
    ],
)
def test_add_layer_norm_interpreter(
    shape: tuple[int, ...], affine: bool, dtype: torch.dtype, seed: int
) -> None:
    check(make(shape, dtype, affine=affine), 1e-5, TOL[dtype], seed)


def test_add_layer_norm_eps_and_inference(seed: int) -> None:
    x, res, w, b = make((6, 48), torch.float32, affine=True)
    with torch.no_grad(), poisoned_outputs():
        y = add_layer_norm(x, res, w, b, eps=0.5)
    ref = add_layer_norm_reference(*leaves(x, res, w, b), eps=0.5)
    assert_close(y, ref, TOL[torch.float32], "y", seed)


def test_add_layer_norm_fallback(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(ln_module, "triton_module", lambda name: 1 / 0)
    check(make((3, 4, 50), torch.float32, affine=True), 1e-5, 1e-5, seed)


def test_add_layer_norm_float64_gradcheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ln_module, "triton_module", lambda name: 1 / 0)
    tensors = make((3, 10), torch.float64, affine=True)
    assert torch.autograd.gradcheck(add_layer_norm, tuple(tensors), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.gpu
@requires_cuda
def test_add_layer_norm_cuda(dtype: torch.dtype, seed: int) -> None:
    check(make((3, 301, 768), dtype, affine=True, device="cuda"), 1e-5, TOL[dtype], seed)
