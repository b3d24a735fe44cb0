"""The `kernel` ops in PyTorch: one call per op of a helper the module includes (`attention`,
`feed_forward`, `add_layer_norm`; `kernel.bias_act` is inline), and those helpers' source.

With `BuildOptions.kernels == "auto"` a helper runs neuralc's fused Triton kernel on CUDA tensors
(imported as `fused_*`, None without neuralc, so the module stays standalone) and the PyTorch
composite elsewhere: SDPA for attention, F.linear/F.layer_norm for the others. With "torch" the
lines between `# fused:` and `# end fused` are left out. The kernels have no dropout: in training
with a dropout rate the composite runs.
"""

from __future__ import annotations

from neuralc.lower.pytorch.snippets import Snippet
from neuralc.lower.pytorch.tensor_ops import Site, activation, expr, literal, py

KSNIPPETS: dict[str, Snippet] = {}


def _snippet(name: str, source: str, requires: tuple[str, ...] = ()) -> None:
    KSNIPPETS[name] = Snippet(name, source.strip("\n") + "\n", requires)


# Expressions --------------------------------------------------------------------------------------


def _training_keywords(s: Site) -> list[str]:
    rate = float(s.attr("dropout"))  # type: ignore[arg-type]
    return [f"dropout={literal(rate)}", f"training={s.training}"] if rate else []


@expr("kernel.attention")
def _attention(s: Site) -> str:
    s.helpers.add("attention")
    cross = s.attr("kind") == "cross"
    x = s.args[0]
    memory = s.args[1] if cross else x
    w_in, b_in, w_out, b_out = s.args[1 + cross :]
    b_in = "None" if s.splat(2 + cross) == 0 else b_in
    b_out = "None" if s.splat(4 + cross) == 0 else b_out
    key_dim, value_dim = int(s.attr("key_dim")), int(s.attr("value_dim"))  # type: ignore[call-overload]
    scale = float(s.attr("scale"))  # type: ignore[arg-type]
    keywords = [f"num_heads={s.attr('num_heads')}", f"key_dim={key_dim}"]
    if value_dim != key_dim:
        keywords.append(f"value_dim={value_dim}")
    if abs(scale - key_dim**-0.5) > 1e-12 * scale:
        keywords.append(f"scale={literal(scale)}")
    if s.attr("causal"):
        keywords.append("causal=True")
    keywords += _training_keywords(s)
    return f"attention({', '.join([x, memory, w_in, b_in, w_out, b_out, *keywords])})"


@expr("kernel.ffn")
def _ffn(s: Site) -> str:
    s.helpers.add("feed_forward")
    args = [s.args[0], s.args[1], s.optional(2, 0), s.args[3], s.optional(4, 0)]
    args.append(f"activation={py(str(s.attr('activation')))}")
    if s.attr("activation") == "leaky_relu":
        args.append(f"alpha={literal(s.attr('alpha'))}")
    args += _training_keywords(s)
    return f"feed_forward({', '.join(args)})"


@expr("kernel.add_layernorm")
def _add_layernorm(s: Site) -> str:
    s.helpers.add("add_layer_norm")
    eps = literal(float(s.attr("eps")))  # type: ignore[arg-type]
    args = [s.args[0], s.args[1], s.optional(2, 1), s.optional(3, 0), f"eps={eps}"]
    return f"add_layer_norm({', '.join(args + _training_keywords(s))})"


@expr("kernel.bias_act")
def _bias_act(s: Site) -> str:
    return activation(s.attr("activation"), f"{s.args[0]} + {s.args[1]}", s.attr("alpha"))


# Composites --------------------------------------------------------------------------

_snippet(
    "autocast_args",
    '''
def autocast_args(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """The tensors in CUDA autocast's dtype while it is on (a fused kernel takes one dtype)."""
    if not torch.is_autocast_enabled("cuda"):
        return tensors
    dtype = torch.get_autocast_dtype("cuda")
    return tuple(None if t is None else t.to(dtype) for t in tensors)
''',
)

_snippet(
    "attention",
    '''
def attention(
    x: torch.Tensor,
    memory: torch.Tensor,
    w_in: torch.Tensor,
    b_in: torch.Tensor | None,
    w_out: torch.Tensor,
    b_out: torch.Tensor | None,
    num_heads: int,
    key_dim: int,
    value_dim: int | None = None,
    scale: float | None = None,
    causal: bool = False,
    dropout: float = 0.0,
    training: bool = False,
) -> torch.Tensor:
    """torch.nn.MultiheadAttention (batch-first): q, k, v project `x`, `memory`, `memory` by the
    row blocks of `w_in`/`b_in` (value_dim defaults to key_dim); per head softmax(q k^T * scale)
    v (scale defaults to 1 / sqrt(key_dim)), where query i sees keys j <= i when `causal`; the
    heads are concatenated and projected by `w_out`/`b_out`."""
    value_dim = value_dim or key_dim
    qk, vd = num_heads * key_dim, num_heads * value_dim
    if memory is x:
        q, k, v = F.linear(x, w_in, b_in).split([qk, qk, vd], dim=-1)
    else:
        q = F.linear(x, w_in[:qk], None if b_in is None else b_in[:qk])
        kv = F.linear(memory, w_in[qk:], None if b_in is None else b_in[qk:])
        k, v = kv.split([qk, vd], dim=-1)
    q = q.unflatten(-1, (num_heads, key_dim)).transpose(1, 2)
    k = k.unflatten(-1, (num_heads, key_dim)).transpose(1, 2)
    v = v.unflatten(-1, (num_heads, value_dim)).transpose(1, 2)
    p = dropout if training else 0.0
    # fused:
    if fused_attention is not None and q.is_cuda and p == 0.0 and key_dim == value_dim:
        context = fused_attention(q, k, v, causal=causal, scale=scale)
        return F.linear(context.transpose(1, 2).flatten(2), w_out, b_out)
    # end fused
    context = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal, scale=scale)
    return F.linear(context.transpose(1, 2).flatten(2), w_out, b_out)
''',
)

_snippet(
    "feed_forward",
    '''
def feed_forward(
    x: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor | None,
    activation: str,
    alpha: float = 0.2,
    dropout: float = 0.0,
    training: bool = False,
) -> torch.Tensor:
    """linear(dropout(act(linear(x, w1, b1))), w2, b2) with nn.Linear weight layouts."""
    # fused:
    fusable = activation in ("relu", "gelu") and not (training and dropout)
    if fused_ffn is not None and x.is_cuda and fusable:
        return fused_ffn(*autocast_args(x, w1, b1, w2, b2), activation=activation)
    # end fused
    h = activate(F.linear(x, w1, b1), activation, alpha)
    if dropout:
        h = F.dropout(h, dropout, training)
    return F.linear(h, w2, b2)
''',
    ("ACTIVATIONS", "autocast_args"),
)

_snippet(
    "add_layer_norm",
    '''
def add_layer_norm(
    x: torch.Tensor,
    residual: torch.Tensor,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    eps: float,
    dropout: float = 0.0,
    training: bool = False,
) -> torch.Tensor:
    """layer_norm(dropout(x) + residual) over the last axis, scaled by gamma, shifted by beta."""
    if dropout and training:
        x = F.dropout(x, dropout, training)
    # fused:
    if fused_add_layer_norm is not None and x.is_cuda and not (training and dropout):
        return fused_add_layer_norm(*autocast_args(x, residual, gamma, beta), eps)
    # end fused
    return F.layer_norm(x + residual, x.shape[-1:], gamma, beta, eps)
''',
    ("autocast_args",),
)

# Helpers only the fused branches use.
FUSED_ONLY = frozenset({"autocast_args"})

# The kernels each composite may call (imported only with kernels="auto").
FUSED_IMPORTS = {
    "attention": ("attention", "fused_attention"),
    "feed_forward": ("ffn", "fused_ffn"),
    "add_layer_norm": ("add_layer_norm", "fused_add_layer_norm"),
}
