"""Helper functions and classes that generated PyTorch modules include when a layer needs them.

Each snippet is plain source text (it is copied into the generated file, which imports nothing
from neuralc) plus the snippets it calls. The emitter adds a snippet only when some layer uses
it, in a fixed order, so generated files stay short and stable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Snippet:
    name: str
    source: str
    requires: tuple[str, ...] = ()


SNIPPETS: dict[str, Snippet] = {}


def _snippet(name: str, source: str, requires: tuple[str, ...] = ()) -> None:
    SNIPPETS[name] = Snippet(name, source.strip("\n") + "\n", requires)


def with_dependencies(names: set[str]) -> list[Snippet]:
    """The named snippets and everything they require, in definition order."""
    needed: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(SNIPPETS[name].requires)
    return [snippet for name, snippet in SNIPPETS.items() if name in needed]


_snippet(
    "same_pad",
    '''
def same_pad(
    x: torch.Tensor,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...] | None = None,
    value: float = 0.0,
) -> torch.Tensor:
    """Pad the trailing spatial axes of a channels-first tensor as Keras' padding="same" does:
    the output has ceil(size / stride) positions and an odd extra row or column of padding goes
    at the end (bottom/right)."""
    pads: list[int] = []
    for axis in reversed(range(len(kernel_size))):
        size = x.shape[x.dim() - len(kernel_size) + axis]
        window = (dilation[axis] if dilation else 1) * (kernel_size[axis] - 1) + 1
        out = -(-size // stride[axis])
        total = max((out - 1) * stride[axis] + window - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)
''',
)

_snippet(
    "Conv1dNLC",
    '''
class Conv1dNLC(nn.Conv1d):
    """nn.Conv1d on channels-last input (N, L, C), with Keras' "valid"/"same" padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: str = "valid",
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, dilation=dilation, bias=bias)
        self.same = padding == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 1)
        if self.same:
            x = same_pad(x, self.kernel_size, self.stride, self.dilation)
        return super().forward(x).permute(0, 2, 1)
''',
    ("same_pad",),
)

_snippet(
    "Conv2dNHWC",
    '''
class Conv2dNHWC(nn.Conv2d):
    """nn.Conv2d on channels-last input (N, H, W, C), with Keras' "valid"/"same" padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        padding: str = "valid",
        dilation: tuple[int, int] = (1, 1),
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, dilation=dilation, bias=bias)
        self.same = padding == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        if self.same:
            x = same_pad(x, self.kernel_size, self.stride, self.dilation)
        return super().forward(x).permute(0, 2, 3, 1)
''',
    ("same_pad",),
)

_snippet(
    "ConvTranspose2dNHWC",
    '''
class ConvTranspose2dNHWC(nn.ConvTranspose2d):
    """nn.ConvTranspose2d on channels-last input (N, H, W, C) with Keras' output sizes:
    "valid" gives (size - 1) * stride + max(kernel, stride), "same" gives size * stride. The
    full transposed convolution is cropped as TensorFlow crops it (or extended with zeros at the
    end when the kernel is smaller than the stride), then the bias is added everywhere."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        padding: str = "valid",
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, bias=bias)
        self.same = padding == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(x.permute(0, 3, 1, 2), self.weight, None, self.stride)
        for axis in (2, 3):
            k, s = self.kernel_size[axis - 2], self.stride[axis - 2]
            d = x.shape[axis - 1]
            size = d * s if self.same else (d - 1) * s + max(k, s)
            start = max(k - s, 0) // 2 if self.same else 0
            y = y.narrow(axis, start, min(size, y.shape[axis] - start))
            if y.shape[axis] < size:
                pads = [0, 0, 0, 0]
                pads[2 * (3 - axis) + 1] = size - y.shape[axis]
                y = F.pad(y, pads)
        if self.bias is not None:
            y = y + self.bias[:, None, None]
        return y.permute(0, 2, 3, 1)
''',
)

_snippet(
    "max_pool",
    '''
def max_pool(
    x: torch.Tensor, pool_size: tuple[int, ...], strides: tuple[int, ...], padding: str
) -> torch.Tensor:
    """Keras max pooling over the spatial axes of a channels-last tensor."""
    x = x.movedim(-1, 1)
    if padding == "same":
        x = same_pad(x, pool_size, strides, value=float("-inf"))
    pool = F.max_pool1d if len(pool_size) == 1 else F.max_pool2d
    return pool(x, pool_size, strides).movedim(1, -1)
''',
    ("same_pad",),
)

_snippet(
    "average_pool",
    '''
def average_pool(
    x: torch.Tensor, pool_size: tuple[int, ...], strides: tuple[int, ...], padding: str
) -> torch.Tensor:
    """Keras average pooling over the spatial axes of a channels-last tensor; with "same"
    padding the padded positions do not count in the average."""
    x = x.movedim(-1, 1)
    pool = F.avg_pool1d if len(pool_size) == 1 else F.avg_pool2d
    if padding != "same":
        return pool(x, pool_size, strides).movedim(1, -1)
    total = pool(same_pad(x, pool_size, strides), pool_size, strides)
    ones = torch.ones_like(x[:1, :1])
    count = pool(same_pad(ones, pool_size, strides), pool_size, strides)
    return (total / count).movedim(1, -1)
''',
    ("same_pad",),
)

_snippet(
    "upsample_bilinear",
    '''
def upsample_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Keras UpSampling2D(interpolation="bilinear") on a channels-last image (half-pixel
    centers, as tf.image.resize)."""
    y = F.interpolate(x.permute(0, 3, 1, 2), scale_factor=size, mode="bilinear", align_corners=False)
    return y.permute(0, 2, 3, 1)
''',
)

_snippet(
    "BatchNorm",
    '''
class BatchNorm(nn.Module):
    """Keras BatchNormalization over the last (channel) axis, with torch's parameter names;
    used when only one of `center`/`scale` is on (nn.BatchNorm*d has both or neither)."""

    def __init__(
        self, num_features: int, eps: float, momentum: float, center: bool, scale: bool
    ) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features)) if scale else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if center else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches_tracked += 1
        flat = x.reshape(-1, x.shape[-1])
        y = F.batch_norm(
            flat,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )
        return y.reshape(x.shape)
''',
)

_snippet(
    "LayerNormBias",
    '''
class LayerNormBias(nn.Module):
    """Keras LayerNormalization(center=True, scale=False): normalize the last axis, add a bias."""

    def __init__(self, num_features: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], None, self.bias, self.eps)
''',
)

_snippet(
    "EinsumDense",
    '''
class EinsumDense(nn.Module):
    """The kernel and bias of one projection of keras.layers.MultiHeadAttention."""

    def __init__(self, kernel_shape: tuple[int, ...], bias_shape: tuple[int, ...] | None) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(kernel_shape))
        self.bias = nn.Parameter(torch.zeros(bias_shape)) if bias_shape is not None else None
        receptive = math.prod(kernel_shape[:-2])
        fan_in, fan_out = kernel_shape[-2] * receptive, kernel_shape[-1] * receptive
        bound = math.sqrt(6.0 / (fan_in + fan_out))  # Keras' glorot_uniform
        nn.init.uniform_(self.kernel, -bound, bound)
''',
)

_snippet(
    "KerasMultiHeadAttention",
    '''
class KerasMultiHeadAttention(nn.Module):
    """keras.layers.MultiHeadAttention used as self-attention (query = key = value = x), with
    Keras' parameter layout: `query.kernel` [d, heads, key_dim], `query.bias` [heads, key_dim],
    likewise `key` and `value`, `attention_output.kernel` [heads, value_dim, *out]."""

    def __init__(
        self,
        d: int,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        output_shape: tuple[int, ...],
        dropout: float = 0.0,
        use_bias: bool = True,
    ) -> None:
        super().__init__()
        self.key_dim = key_dim
        self.output_shape = output_shape
        self.query = EinsumDense((d, num_heads, key_dim), (num_heads, key_dim) if use_bias else None)
        self.key = EinsumDense((d, num_heads, key_dim), (num_heads, key_dim) if use_bias else None)
        self.value = EinsumDense((d, num_heads, value_dim), (num_heads, value_dim) if use_bias else None)
        self.attention_output = EinsumDense(
            (num_heads, value_dim, *output_shape), output_shape if use_bias else None
        )
        self.dropout = nn.Dropout(dropout)

    def project(self, x: torch.Tensor, dense: EinsumDense) -> torch.Tensor:
        y = torch.einsum("bld,dhk->blhk", x, dense.kernel)
        return y if dense.bias is None else y + dense.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query = self.project(x, self.query) / math.sqrt(self.key_dim)
        key = self.project(x, self.key)
        value = self.project(x, self.value)
        scores = torch.einsum("bqhk,bshk->bhqs", query, key)
        weights = self.dropout(scores.softmax(dim=-1))
        heads = torch.einsum("bhqs,bshv->bqhv", weights, value)
        out = self.attention_output
        kernel = out.kernel.reshape(out.kernel.shape[0], out.kernel.shape[1], -1)
        y = torch.einsum("bqhv,hvo->bqo", heads, kernel)
        if out.bias is not None:
            y = y + out.bias.reshape(-1)
        return y.reshape(*y.shape[:2], *self.output_shape)
''',
    ("EinsumDense",),
)

_snippet(
    "causal_mask",
    '''
def causal_mask(x: torch.Tensor) -> torch.Tensor:
    """An additive attention mask over the sequence axis of `x`: position i sees positions <= i."""
    return nn.Transformer.generate_square_subsequent_mask(x.shape[1], device=x.device, dtype=x.dtype)
''',
)
