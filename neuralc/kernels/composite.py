"""Plain PyTorch versions of the fused kernels.

They define the semantics the Triton kernels must match, serve as the fallback for tensors
the Triton path does not handle, and are what the PyTorch code generator emits with
``--kernels torch``.  Differentiable through ordinary autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS: tuple[str, ...] = ("relu", "gelu")


def attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    scale: float | None = None,
    key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention on ``[B, H, L, D]`` tensors.

    Conventions (shared with :func:`neuralc.kernels.attention`):

    * ``scale`` defaults to ``1 / sqrt(D)``.
    * ``causal`` is top-left aligned, like ``torch`` SDPA's ``is_causal``: query ``i`` sees
      keys ``j <= i`` even when ``Lq != Lk``.
    * ``key_padding_mask`` is bool ``[B, Lk]`` with ``True`` marking a *padded* key that no
      query may attend to (the ``nn.MultiheadAttention`` convention).
    * A query row that can see no key at all (every visible key padded) yields zeros and
      passes no gradient, instead of SDPA's NaN.
    """
    _check_attention_shapes(q, k, v, key_padding_mask)
    if key_padding_mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    lq, lk = q.shape[-2], k.shape[-2]
    allowed = ~key_padding_mask.to(torch.bool)[:, None, None, :]
    if causal:
        allowed = allowed & torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril()
    empty = ~allowed.any(dim=-1, keepdim=True)
    # Let empty rows attend everywhere so SDPA stays finite, then zero them: their gradient
    # through the masked_fill is zero, matching the kernel.
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | empty, scale=scale)
    return out.masked_fill(empty, 0.0)


def _check_attention_shapes(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor | None
) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError("attention expects q, k, v of shape [B, H, L, D]")
    if k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"incompatible attention shapes q={tuple(q.shape)} k={tuple(k.shape)} "
            f"v={tuple(v.shape)}"
        )
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (
        k.shape[0],
        k.shape[2],
    ):
        raise ValueError(
            f"key_padding_mask must be [B, Lk] = {(k.shape[0], k.shape[2])}, "
            f"got {tuple(key_padding_mask.shape)}"
        )


def activation_reference(x: torch.Tensor, activation: str) -> torch.Tensor:
    """The FFN activations; ``gelu`` is the exact erf form (PyTorch's default)."""
    if activation == "relu":
        return F.relu(x)
    if activation == "gelu":
        return F.gelu(x)
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def ffn_reference(
    x: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor | None,
    *,
    activation: str = "relu",
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """``act(x @ w1.T + b1) @ w2.T + b2 (+ residual)`` with ``nn.Linear`` weight layout."""
    y = F.linear(activation_reference(F.linear(x, w1, b1), activation), w2, b2)
    return y if residual is None else y + residual


def add_layer_norm_reference(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``layer_norm(x + residual)`` over the last dimension."""
    s = x + residual
    return F.layer_norm(s, (s.shape[-1],), weight, bias, eps)
