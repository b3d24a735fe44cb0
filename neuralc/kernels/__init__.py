"""Fused Triton kernels for the Neural DSL runtime, with PyTorch fallbacks.

``attention``, ``ffn`` and ``add_layer_norm`` run Triton kernels on CUDA tensors, the same
kernels in Triton's CPU interpreter when ``TRITON_INTERPRET=1`` is set at call time, and the
plain PyTorch composites (``*_reference``, also used by ``--kernels torch``) otherwise.

Importing this package costs only ``torch``; Triton is imported on the first kernel launch.
"""

from neuralc.kernels.attention import attention
from neuralc.kernels.composite import (
    add_layer_norm_reference,
    attention_reference,
    ffn_reference,
)
from neuralc.kernels.dispatch import autotuning, interpret_enabled, poisoned_outputs, use_triton
from neuralc.kernels.ffn import ffn
from neuralc.kernels.layer_norm import add_layer_norm

__all__ = [
    "add_layer_norm",
    "add_layer_norm_reference",
    "attention",
    "attention_reference",
    "autotuning",
    "ffn",
    "ffn_reference",
    "interpret_enabled",
    "poisoned_outputs",
    "use_triton",
]
