"""Weight blocks shared by several families, named and laid out as PyTorch's state_dict.

Initializer names (read by the weight initializer in `neuralc.lower`):
  "kaiming_uniform"  torch's Linear/Conv default, kaiming_uniform(a=sqrt(5)): U(±1/sqrt(fan_in))
  "linear_bias"      torch's Linear/Conv bias: U(±1/sqrt(fan_in))
  "xavier_uniform"   U(±sqrt(6/(fan_in+fan_out))) (torch MultiheadAttention in_proj)
  "glorot_uniform"   the same distribution under Keras' name and Keras' fan computation
  "rnn_uniform"      torch RNN/LSTM/GRU: U(±1/sqrt(hidden)), `fan_in` holds hidden
  "normal"           N(0, 1) (torch Embedding)
  "zeros", "ones"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neuralc.ir.types import TensorType
from neuralc.layers.param_text import format_value
from neuralc.layers.spec import WeightSpec

# (args as written in the DSL, input types): a worked example per layer for docs/layers.md and
# the registry's own smoke tests.
Example = tuple[list[tuple[str | None, Any]], list[TensorType]]


def f32(*dims: int | str) -> TensorType:
    return TensorType(("N", *dims), "f32")


def i64(*dims: int | str) -> TensorType:
    return TensorType(("N", *dims), "i64")


def linear(prefix: str, out_f: int, in_f: int, bias: bool = True) -> dict[str, WeightSpec]:
    """nn.Linear(in_f, out_f): `weight` [out, in], `bias` [out]."""
    out = {f"{prefix}weight": WeightSpec((out_f, in_f), "kaiming_uniform", fan_in=in_f,
                                         fan_out=out_f)}
    if bias:
        out[f"{prefix}bias"] = WeightSpec((out_f,), "linear_bias", fan_in=in_f)
    return out


def norm(prefix: str, d: int, scale: bool = True, center: bool = True) -> dict[str, WeightSpec]:
    """nn.LayerNorm(d) / the affine part of nn.BatchNorm: `weight` (gamma), `bias` (beta)."""
    out: dict[str, WeightSpec] = {}
    if scale:
        out[f"{prefix}weight"] = WeightSpec((d,), "ones")
    if center:
        out[f"{prefix}bias"] = WeightSpec((d,), "zeros")
    return out


def torch_mha(prefix: str, d: int) -> dict[str, WeightSpec]:
    """nn.MultiheadAttention(d, heads) with packed q/k/v: in_proj [3d, d], out_proj [d, d].

    torch re-initializes in_proj with xavier_uniform and zeroes both biases; out_proj.weight keeps
    nn.Linear's default.
    """
    return {
        f"{prefix}in_proj_weight": WeightSpec((3 * d, d), "xavier_uniform", fan_in=d,
                                              fan_out=3 * d),
        f"{prefix}in_proj_bias": WeightSpec((3 * d,), "zeros"),
        f"{prefix}out_proj.weight": WeightSpec((d, d), "kaiming_uniform", fan_in=d, fan_out=d),
        f"{prefix}out_proj.bias": WeightSpec((d,), "zeros"),
    }


def dsl_call(name: str, args: Sequence[tuple[str | None, Any]]) -> str:
    """`Dense(128, activation="relu")`: an example call as the DSL writes it."""
    parts = [format_value(v) if k is None else f"{k}={format_value(v)}" for k, v in args]
    return f"{name}({', '.join(parts)})"
