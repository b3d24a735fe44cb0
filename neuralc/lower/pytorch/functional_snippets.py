"""Helper functions that generated functional (tensor/kernel-stage) PyTorch modules include when
an op needs them: creating the weights at their state_dict paths, placement, the recurrent
layers, the padded windows, and the composites of the `kernel` ops.

The composites of the `kernel` ops live in `kernel_ops.py`, in two flavours ("auto": neuralc's
fused Triton kernels on CUDA tensors; "torch": the PyTorch composite only). Either way the forward
calls them the same way, so the two builds differ only in these helpers.
"""

from __future__ import annotations

from neuralc.lower.pytorch.kernel_ops import FUSED_IMPORTS, FUSED_ONLY, KSNIPPETS
from neuralc.lower.pytorch.snippets import SNIPPETS, Snippet

FSNIPPETS: dict[str, Snippet] = {}


def _snippet(name: str, source: str, requires: tuple[str, ...] = ()) -> None:
    FSNIPPETS[name] = Snippet(name, source.strip("\n") + "\n", requires)


def functional_snippets(names: set[str], kernels: str) -> list[Snippet]:
    """The named snippets and what they require (nn-path snippets such as `same_pad` too), in
    a fixed order; the kernel composites in the flavour of `kernels` ("auto" or "torch")."""
    table = {**SNIPPETS, **FSNIPPETS, **KSNIPPETS}
    needed: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(table[name].requires)
    out = []
    for name, snippet in table.items():
        if name not in needed or (kernels == "torch" and name in FUSED_ONLY - names):
            continue
        text = (
            _composite_only(snippet.source)
            if kernels == "torch"
            else _markers_removed(snippet.source)
        )
        out.append(Snippet(snippet.name, text, snippet.requires))
    return out


def _composite_only(source: str) -> str:
    """Drop the lines between `# fused:` and `# end fused` (the CUDA kernel branch)."""
    out: list[str] = []
    skipping = False
    for line in source.splitlines():
        if line.strip() == "# fused:":
            skipping = True
        elif line.strip() == "# end fused":
            skipping = False
        elif not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


def _markers_removed(source: str) -> str:
    """The "auto" flavour: the fused branch kept, its markers removed."""
    lines = source.splitlines()
    return "\n".join(x for x in lines if x.strip() not in ("# fused:", "# end fused")) + "\n"


# Weights ------------------------------------------------------------------------------------

_snippet(
    "init_tensor",
    '''
def init_tensor(shape: tuple[int, ...], init: float | str) -> torch.Tensor:
    """A new weight: U(-init, init) for a number, else "zeros", "ones", "normal" (N(0, 1)) or
    "count" (BatchNorm's int64 num_batches_tracked)."""
    if init == "count":
        return torch.zeros((), dtype=torch.long)
    if init == "zeros":
        return torch.zeros(shape)
    if init == "ones":
        return torch.ones(shape)
    if init == "normal":
        return torch.randn(shape)
    return torch.empty(shape).uniform_(-init, init)
''',
)

_snippet(
    "add_weight",
    '''
def add_weight(model: nn.Module, key: str, value: torch.Tensor, persistent: bool = True) -> None:
    """Register `value` (a parameter, else a buffer) under the dotted `key`, creating the
    containers on the way: nn.ModuleList for numbered children (`transformer_encoder.0`),
    nn.Module otherwise. So `model.state_dict()` keys are the weight file's keys."""
    *path, name = key.split(".")
    module = model
    for i, part in enumerate(path):
        if isinstance(module, nn.ModuleList):
            while len(module) <= int(part):
                module.append(nn.Module())
            module = module[int(part)]
            continue
        if not isinstance(getattr(module, part, None), nn.Module):
            following = (path + [name])[i + 1]
            module.add_module(part, nn.ModuleList() if following.isdigit() else nn.Module())
        module = getattr(module, part)
    if isinstance(value, nn.Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value, persistent=persistent)
''',
)

_snippet(
    "move_to",
    '''
def move_to(model: nn.Module, path: str, device: torch.device) -> None:
    """Move the submodule, parameter or buffer at the dotted `path` to `device`."""
    *parent, name = path.split(".")
    owner = model.get_submodule(".".join(parent))
    child = getattr(owner, name)
    if isinstance(child, nn.Module):
        child.to(device)
    else:
        child.data = child.data.to(device)
''',
)

# Elementwise and windows --------------------------------------------------------------------

_snippet(
    "ACTIVATIONS",
    '''
# tensor.activation's kinds (Keras 3 semantics: exact gelu, hard_sigmoid = relu6(x + 3) / 6).
ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "elu": F.elu,
    "selu": F.selu,
    "silu": F.silu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "hard_sigmoid": F.hardsigmoid,
}


def activate(x: torch.Tensor, kind: str, alpha: float = 0.2) -> torch.Tensor:
    """An elementwise activation by name; leaky_relu has slope `alpha`, linear is identity."""
    if kind == "linear":
        return x
    if kind == "leaky_relu":
        return F.leaky_relu(x, alpha)
    return ACTIVATIONS[kind](x)
''',
)

_snippet(
    "causal_softmax",
    '''
def causal_softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis where query i (second-to-last axis) sees keys j <= i only
    (top-left aligned, as SDPA's is_causal)."""
    hidden = torch.ones(x.shape[-2], x.shape[-1], dtype=torch.bool, device=x.device).triu(1)
    return x.masked_fill(hidden, float("-inf")).softmax(dim=-1)
''',
)

_snippet(
    "avg_pool",
    '''
def avg_pool(
    x: torch.Tensor,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    pads: tuple[int, ...] | str,
    count_include_pad: bool = False,
) -> torch.Tensor:
    """ONNX AveragePool on a channels-first tensor with (begins, ends) `pads` or "same_upper";
    padded positions count only with `count_include_pad`."""
    ones = torch.ones_like(x[:1, :1])
    if pads == "same_upper":
        x, ones = same_pad(x, kernel, strides), same_pad(ones, kernel, strides)
    else:
        r = len(kernel)
        widths = [p for i in reversed(range(r)) for p in (pads[i], pads[i + r])]
        x, ones = F.pad(x, widths), F.pad(ones, widths)
    pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(kernel) - 1]
    total = pool(x, kernel, strides)
    return total if count_include_pad else total / pool(ones, kernel, strides)
''',
    ("same_pad",),
)

_snippet(
    "conv_transpose",
    '''
def conv_transpose(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    strides: tuple[int, ...],
    pads: tuple[int, ...] | str,
    output_padding: tuple[int, ...] = (),
) -> torch.Tensor:
    """ONNX ConvTranspose, channels first: the full transposed convolution cropped by `pads`
    (begins, ends) and extended by `output_padding` positions at the end, then the bias;
    "same_upper" gives size * stride (Keras' "same": (k - s) // 2 cropped first)."""
    r = x.dim() - 2
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[r - 1]
    y = fn(x, w, None, strides)
    for i in range(r):
        axis, k, s, d = 2 + i, w.shape[2 + i], strides[i], x.shape[2 + i]
        extra = output_padding[i] if output_padding else 0
        if pads == "same_upper":
            start, size = max(k - s, 0) // 2, d * s
        else:
            start, size = pads[i], s * (d - 1) + extra + k - pads[i] - pads[i + r]
        y = y.narrow(axis, start, min(size, y.shape[axis] - start))
        if y.shape[axis] < size:
            widths = [0, 0] * (x.dim() - 1 - axis) + [0, size - y.shape[axis]]
            y = F.pad(y, widths)
    return y if b is None else y + b.reshape(-1, *[1] * r)
''',
)

_snippet(
    "resize_linear",
    '''
def resize_linear(x: torch.Tensor, scales: tuple[int, ...]) -> torch.Tensor:
    """ONNX Resize(mode="linear") with half-pixel centers by integer `scales` per axis
    (F.interpolate with align_corners=False on the scaled axes)."""
    axes = [i for i, s in enumerate(scales) if s != 1]
    if not axes:
        return x
    last = list(range(x.dim() - len(axes), x.dim()))
    moved = x.movedim(axes, last)
    lead = moved.shape[: last[0]]
    flat = moved.reshape(1, -1, *moved.shape[last[0] :])
    mode = ("linear", "bilinear", "trilinear")[len(axes) - 1]
    factor = tuple(float(scales[i]) for i in axes)
    y = F.interpolate(flat, scale_factor=factor, mode=mode, align_corners=False)
    return y.reshape(*lead, *y.shape[2:]).movedim(last, axes)
''',
)

# Recurrent layers ---------------------------------------------------------------------------

for _name, _cls, _fn, _state in (
    ("lstm_layer", "LSTM", "torch.lstm", "(h0, h0)"),
    ("gru_layer", "GRU", "torch.gru", "h0"),
):
    _snippet(
        _name,
        f'''
def {_name}(
    x: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: torch.Tensor | None = None,
    b_hh: torch.Tensor | None = None,
) -> torch.Tensor:
    """Every step's output of a one-layer torch.nn.{_cls} (batch-first, zero initial state)."""
    h0 = x.new_zeros(1, x.shape[0], w_hh.shape[1])
    weights = [w for w in (w_ih, w_hh, b_ih, b_hh) if w is not None]
    return {_fn}(x, {_state}, weights, b_ih is not None, 1, 0.0, False, False, True)[0]
''',
    )

_snippet(
    "rnn_layer",
    '''
def rnn_layer(
    x: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: torch.Tensor | None = None,
    b_hh: torch.Tensor | None = None,
    nonlinearity: str = "tanh",
) -> torch.Tensor:
    """Every step's output of a one-layer torch.nn.RNN (batch-first, zero initial state)."""
    h0 = x.new_zeros(1, x.shape[0], w_hh.shape[1])
    weights = [w for w in (w_ih, w_hh, b_ih, b_hh) if w is not None]
    run = torch.rnn_relu if nonlinearity == "relu" else torch.rnn_tanh
    return run(x, h0, weights, b_ih is not None, 1, 0.0, False, False, True)[0]
''',
)

FUNCTIONAL_NAMES = frozenset(
    {
        *FSNIPPETS,
        *KSNIPPETS,
        "activate",
        "PARAMETERS",
        "BUFFERS",
        "DEVICES",
        "base64",
        "os",
        # The forward runs in `with kernel_autotuning(AUTOTUNE):` (`contextlib.nullcontext`
        # without neuralc): a class or variable of these names would shadow them.
        "AUTOTUNE",
        "kernel_autotuning",
        "contextlib",
        *(alias for _, alias in FUSED_IMPORTS.values()),
    }
)

# The root module's `place` when weights sit on several devices (`@@ROOT@@`: its class).
PLACE_MIXED = '''
    def place(self, device: str | None = None) -> @@ROOT@@:
        """Move each weight to its device in PLACEMENT, or everything to `device`; returns the
        model. The forward moves activations between devices (`self.devices`)."""
        if device:
            self.device = resolve_device(device, "the model")
            self.devices = dict.fromkeys(DEVICES, self.device)
            return self.to(self.device)
        self.devices = {}
        for path, placed in PLACEMENT.items():
            if placed not in self.devices:
                self.devices[placed] = resolve_device(placed, f"layer '{path}'")
            move_to(self, path, self.devices[placed])
        for name in DEVICES:
            if name not in self.devices:
                self.devices[name] = resolve_device(name, "the model")
        self.device = self.devices[DEVICE]
        return self
'''
