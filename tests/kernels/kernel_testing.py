"""Helpers for the kernel tests (imported by the test modules of this directory).

Error metric: ``rel_err(a, ref) = max|a - ref| / max|ref|`` over the whole tensor, with
``ref`` computed in float64 from the same (already rounded) inputs.  Tolerances: 1e-4 for
float32, 2e-3 for float16, 1.6e-2 for bfloat16 (GPU only: the interpreter's bfloat16
arithmetic is not faithful).
"""

from __future__ import annotations

import pytest
import torch

TOL = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def rel_err(actual: torch.Tensor, ref: torch.Tensor) -> float:
    """``max|actual - ref| / max|ref|`` in float64 (0 when both are all zero)."""
    diff = (actual.detach().double() - ref.detach().double()).abs().max().item()
    scale = ref.detach().double().abs().max().item()
    if scale == 0.0:
        return diff
    return diff / scale


def assert_close(actual: torch.Tensor, ref: torch.Tensor, tol: float, what: str, seed: int) -> None:
    assert actual.shape == ref.shape, f"{what}: shape {actual.shape} != {ref.shape}"
    assert torch.isfinite(actual).all(), f"{what}: non-finite values (seed {seed})"
    err = rel_err(actual, ref)
    assert err <= tol, f"{what}: relative error {err:.3e} > {tol:.1e} (seed {seed})"


def leaves(*tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Detached float64 copies requiring grad, for the reference computation."""
    return [None if t is None else t.detach().double().requires_grad_() for t in tensors]
