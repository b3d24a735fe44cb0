"""Dimension arithmetic shared by the shape rules, including the symbolic-dimension policy.

A dimension is an int or a symbol (an identifier such as `N` or `s0`). The policy:

* A dimension a layer does not change keeps its symbol (`Dense` on `f32[N,s0,512]` gives
  `f32[N,s0,units]`).
* A dimension computed from a symbol becomes a new symbol whose name is derived deterministically
  from the input symbol and the arithmetic, so equal names still mean equal sizes and the IR text
  form stays `identifier-or-int`:

  | computation | name |
  | --- | --- |
  | window `k` (incl. dilation), stride `s`, padding valid: `(d - k)//s + 1` | `d_w{k}s{s}` |
  | padding same, stride `s > 1`: `ceil(d / s)` | `d_c{s}` |
  | transposed window `k`, stride `s`, valid: `d*s + max(k - s, 0)` | `d_t{k}s{s}` |
  | multiplication by `m` (upsampling, same-padded transposed conv) | `d_x{m}` |
  | addition of `p` (zero padding) | `d_p{p}` |
  | product of symbols and ints (Flatten, Reshape's -1) | `a_x_b_x12` (`_d{q}` when divided) |
  | sum of dims (Concatenate) | `a_plus_b` (`a_p4` for a symbol plus 4) |

  Stride-1 same padding and 1-wide valid windows return the input symbol unchanged.
* Layers that size weights from a dimension (Dense's input features, a convolution's input
  channels, ...) need it to be an int; a symbol there is a ShapeError.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from math import prod

from neuralc.ir.types import Dim, TensorType
from neuralc.layers.spec import ShapeError


def fmt_shape(dims: Sequence[Dim]) -> str:
    """`(100,)`, `(28, 28, 1)`: how the DSL writes a shape without the batch."""
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def require_rank(layer: str, t: TensorType, ranks: Sequence[int], what: str) -> None:
    """Check the rank (batch included); `what` describes the expected layout for the message."""
    if t.rank not in ranks:
        raise ShapeError(f"{layer} expects {what}, but its input is {t}")


def require_sequence(layer: str, t: TensorType, width: str) -> None:
    """Rank 3, `(N, L, width)`; a rank-2 input most often lost its length to the batch."""
    if t.rank == 3:
        return
    note = None
    if t.rank == 2:
        note = (f"{layer} needs (length, {width}) per example; if a leading None in `input:` was "
                f"meant as the length, write `input: (None, None, {t.shape[-1]})` (a leading None "
                "is the batch)")
    raise ShapeError(f"{layer} expects a sequence of shape (length, {width}), but its input is "
                     f"{t}", note=note)


def require_float(layer: str, t: TensorType) -> None:
    if not t.is_float:
        raise ShapeError(
            f"{layer} expects float features, but its input is {t} (integer ids)",
            note="integer token ids go through an Embedding first",
        )


def static_dim(layer: str, t: TensorType, axis: int, role: str) -> int:
    """A dimension that sizes weights; symbols are rejected because the weights need a size."""
    d = t.shape[axis]
    if isinstance(d, str):
        raise ShapeError(
            f"{layer} needs a known {role}, but it is the dynamic dimension {d} in {t}",
            note="give that dimension a size in `input:` (only sequence lengths may be None)",
        )
    return d


def window(d: Dim, k: int, s: int, padding: str) -> Dim:
    """Output length of a sliding window (conv/pool) over length `d`, Keras arithmetic."""
    if isinstance(d, str):
        if padding == "same":
            return d if s == 1 else f"{d}_c{s}"
        return d if k == 1 and s == 1 else f"{d}_w{k}s{s}"
    if padding == "same":
        return -(-d // s)
    return (d - k) // s + 1 if d >= k else 0


def transposed(d: Dim, k: int, s: int, padding: str) -> Dim:
    """Output length of a transposed convolution (Keras arithmetic, no output_padding)."""
    if isinstance(d, str):
        if padding == "same":
            return d if s == 1 else f"{d}_x{s}"
        return f"{d}_t{k}s{s}"
    # Keras' deconv_output_length: a window shorter than the stride leaves gaps, not overlap.
    return d * s if padding == "same" else d * s + max(k - s, 0)


def scaled(d: Dim, m: int) -> Dim:
    if isinstance(d, str):
        return d if m == 1 else f"{d}_x{m}"
    return d * m


def padded(d: Dim, p: int) -> Dim:
    if isinstance(d, str):
        return d if p == 0 else f"{d}_p{p}"
    return d + p


def split(dims: Sequence[Dim]) -> tuple[int, list[str]]:
    """(product of the int dims, the symbols in order)."""
    return prod(d for d in dims if isinstance(d, int)), [d for d in dims if isinstance(d, str)]


def product(dims: Sequence[Dim], divisor: int = 1) -> Dim:
    """prod(dims) / divisor, as an int when static, else a derived symbol."""
    coef, syms = split(dims)
    if not syms:
        return coef // divisor
    ratio = Fraction(coef, divisor)
    name = "_x_".join(syms)
    if ratio.numerator != 1:
        name += f"_x{ratio.numerator}"
    if ratio.denominator != 1:
        name += f"_d{ratio.denominator}"
    return name


def total(dims: Sequence[Dim]) -> Dim:
    """Sum of dims (Concatenate's axis)."""
    ints = sum(d for d in dims if isinstance(d, int))
    syms = [d for d in dims if isinstance(d, str)]
    if not syms:
        return ints
    name = "_plus_".join(syms)
    return name if ints == 0 else f"{name}_p{ints}"
