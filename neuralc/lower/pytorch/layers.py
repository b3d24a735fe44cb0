"""One PyTorch lowering per registry layer, registered into `LayerSpec.lowerings["pytorch"]`.

A lowering turns one layer instance (concrete attributes and input types) into `LayerCode`: the
expression that constructs its submodule (`nn.Linear(784, 128)`), or none for a layer without
state, and the forward expression (`F.relu({m}({x}))`) with `{m}` standing for the submodule and
`{x}`, `{x1}`, … for the input variables (`{xs}`: all of them, comma-separated). The forward
expression must not depend on the input's shape, since one expression serves every repetition of
a repeated layer; the constructor may (a repeat's first copy can see a different width).

Submodules are the PyTorch modules whose state_dict names the registry's weights use, so
`state_dict()` keys equal the weight-file keys: nn.Linear, nn.Conv*d (channels-last subclasses),
nn.Embedding, nn.BatchNorm*d, nn.LayerNorm, nn.TransformerEncoderLayer / DecoderLayer, nn.LSTM…
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from neuralc.diagnostics import CompileError, error
from neuralc.lower.pytorch.codegen import quote
from neuralc.lower.weights import LayerInstance

# Keras 3's activations, as torch expressions over `{}`.
ACTIVATIONS: dict[str, str] = {
    "linear": "{}",
    "relu": "F.relu({})",
    "gelu": "F.gelu({})",  # exact (erf), as keras.activations.gelu(approximate=False)
    "tanh": "torch.tanh({})",
    "sigmoid": "torch.sigmoid({})",
    "softmax": "F.softmax({}, dim=-1)",
    "log_softmax": "F.log_softmax({}, dim=-1)",
    "elu": "F.elu({})",
    "selu": "F.selu({})",
    "leaky_relu": "F.leaky_relu({}, 0.2)",  # keras.activations.leaky_relu(negative_slope=0.2)
    "swish": "F.silu({})",
    "silu": "F.silu({})",
    "softplus": "F.softplus({})",
    "softsign": "F.softsign({})",
    "hard_sigmoid": "F.hardsigmoid({})",  # Keras 3: relu6(x + 3) / 6
}


@dataclass(frozen=True)
class LayerCode:
    module: str | None  # constructor expression of the submodule, or None
    call: str  # forward expression: {m} the submodule, {x} / {x1} / {xs} the inputs
    helpers: tuple[str, ...] = ()  # snippets (neuralc.lower.pytorch.snippets) it needs


Lowering = Callable[[LayerInstance], LayerCode]
LOWERINGS: dict[str, Lowering] = {}


def lowering(*names: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        for name in names:
            LOWERINGS[name] = fn
        return fn

    return register


def lower(inst: LayerInstance) -> LayerCode:
    fn = inst.spec.lowerings.get("pytorch") or LOWERINGS.get(inst.spec.name)
    if fn is None:
        raise unsupported(inst, f"the PyTorch backend has no lowering for {inst.spec.name}")
    return fn(inst)


def register_lowerings() -> None:
    """Attach every lowering to its registry entry (`spec.lowerings["pytorch"]`)."""
    from neuralc.layers import get_layer

    for name, fn in LOWERINGS.items():
        spec = get_layer(name)
        if spec is not None:
            spec.lowerings.setdefault("pytorch", fn)


def unsupported(inst: LayerInstance, message: str, note: str = "") -> CompileError:
    return error(f"layer '{inst.name}': {message}", inst.loc, note)


def activate(inst: LayerInstance, expr: str, key: str = "activation") -> str:
    name = inst.attrs.get(key) or "linear"
    if name not in ACTIVATIONS:
        raise unsupported(
            inst,
            f"activation '{name}' is not supported by the PyTorch backend",
            "supported: " + ", ".join(ACTIVATIONS),
        )
    return ACTIVATIONS[name].format(expr)


def py(value: object) -> str:
    """A Python literal for an attribute value."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, tuple):
        items = ", ".join(py(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)


def _features(inst: LayerInstance, index: int = 0) -> int:
    width = inst.inputs[index].shape[-1]
    if not isinstance(width, int):
        raise unsupported(inst, f"its input {inst.inputs[index]} has a dynamic last dimension")
    return width


def _args(*positional: object, **keywords: object) -> str:
    parts = [py(v) for v in positional]
    parts += [f"{k}={py(v)}" for k, v in keywords.items()]
    return ", ".join(parts)


# Core -----------------------------------------------------------------------------------------


@lowering("Dense", "Output")
def _dense(inst: LayerInstance) -> LayerCode:
    a = inst.attrs
    extra = {} if a["use_bias"] else {"bias": False}
    return LayerCode(
        f"nn.Linear({_args(_features(inst), a['units'], **extra)})", activate(inst, "{m}({x})")
    )


@lowering("Dropout")
def _dropout(inst: LayerInstance) -> LayerCode:
    return LayerCode(f"nn.Dropout({py(float(inst.attrs['rate']))})", "{m}({x})")


@lowering("Activation")
def _activation(inst: LayerInstance) -> LayerCode:
    return LayerCode(None, activate(inst, "{x}"))


@lowering("Flatten")
def _flatten(inst: LayerInstance) -> LayerCode:
    # Channels-last throughout, so this flattens in Keras' (H, W, C) order.
    return LayerCode(None, "{x}.flatten(1)")


@lowering("Reshape")
def _reshape(inst: LayerInstance) -> LayerCode:
    dims = ", ".join(str(int(d)) for d in inst.attrs["target_shape"])
    return LayerCode(None, "{x}.reshape({x}.shape[0], " + dims + ")")


@lowering("Embedding")
def _embedding(inst: LayerInstance) -> LayerCode:
    a = inst.attrs
    return LayerCode(f"nn.Embedding({_args(a['input_dim'], a['output_dim'])})", "{m}({x})")


# Convolutions ---------------------------------------------------------------------------------


def _one(values: tuple[int, ...]) -> object:
    return values[0] if len(values) == 1 else values


@lowering("Conv1D", "Conv2D")
def _conv(inst: LayerInstance) -> LayerCode:
    a = inst.attrs
    rank = len(a["kernel_size"])
    cls = "Conv1dNLC" if rank == 1 else "Conv2dNHWC"
    keywords: dict[str, object] = {}
    if any(s != 1 for s in a["strides"]):
        keywords["stride"] = _one(a["strides"])
    if a["padding"] != "valid":
        keywords["padding"] = a["padding"]
    dilation = a.get("dilation_rate") or (1,) * rank
    if any(d != 1 for d in dilation):
        keywords["dilation"] = _one(dilation)
    if not a["use_bias"]:
        keywords["bias"] = False
    ctor = f"{cls}({_args(_features(inst), a['filters'], _one(a['kernel_size']), **keywords)})"
    return LayerCode(ctor, activate(inst, "{m}({x})"), (cls,))


@lowering("Conv2DTranspose")
def _conv_transpose(inst: LayerInstance) -> LayerCode:
    a = inst.attrs
    keywords: dict[str, object] = {}
    if any(s != 1 for s in a["strides"]):
        keywords["stride"] = a["strides"]
    if a["padding"] != "valid":
        keywords["padding"] = a["padding"]
    if not a["use_bias"]:
        keywords["bias"] = False
    ctor = (
        f"ConvTranspose2dNHWC({_args(_features(inst), a['filters'], a['kernel_size'], **keywords)})"
    )
    return LayerCode(ctor, activate(inst, "{m}({x})"), ("ConvTranspose2dNHWC",))


# Pooling and resampling -----------------------------------------------------------------------


@lowering("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
def _pool(inst: LayerInstance) -> LayerCode:
    a = inst.attrs
    pool = a["pool_size"]
    strides = a["strides"] if a["strides"] is not None else pool
    fn = "max_pool" if inst.spec.name.startswith("Max") else "average_pool"
    return LayerCode(None, f"{fn}({{x}}, {py(pool)}, {py(strides)}, {py(a['padding'])})", (fn,))


@lowering(
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D"
)
def _global_pool(inst: LayerInstance) -> LayerCode:
    axes = "1" if inst.spec.name.endswith("1D") else "(1, 2)"
    fn = "mean" if "Average" in inst.spec.name else "amax"
    keep = ", keepdim=True" if inst.attrs["keepdims"] else ""
    return LayerCode(None, f"{{x}}.{fn}(dim={axes}{keep})")


@lowering("UpSampling2D")
def _upsampling(inst: LayerInstance) -> LayerCode:
    sh, sw = inst.attrs["size"]
    if inst.attrs["interpolation"] == "bilinear":
        return LayerCode(None, f"upsample_bilinear({{x}}, {py((sh, sw))})", ("upsample_bilinear",))
    return LayerCode(
        None, "{x}" + f".repeat_interleave({sh}, dim=1).repeat_interleave({sw}, dim=2)"
    )


@lowering("ZeroPadding2D")
def _zero_padding(inst: LayerInstance) -> LayerCode:
    ph, pw = inst.attrs["padding"]
    return LayerCode(None, f"F.pad({{x}}, (0, 0, {pw}, {pw}, {ph}, {ph}))")


# Normalization --------------------------------------------------------------------------------

_BATCH_NORM = {2: "nn.BatchNorm1d", 3: "nn.BatchNorm1d", 4: "nn.BatchNorm2d", 5: "nn.BatchNorm3d"}


@lowering("BatchNormalization")
def _batch_norm(inst: LayerInstance) -> LayerCode:
    a = inst.attrs
    c = _features(inst)
    eps, momentum = float(a["epsilon"]), round(1.0 - float(a["momentum"]), 12)
    rank = inst.inputs[0].rank
    if a["center"] != a["scale"] or rank not in _BATCH_NORM:
        ctor = (
            f"BatchNorm({c}, eps={py(eps)}, momentum={py(momentum)}, "
            f"center={a['center']}, scale={a['scale']})"
        )
        return LayerCode(ctor, "{m}({x})", ("BatchNorm",))
    affine = "" if a["scale"] else ", affine=False"
    ctor = f"{_BATCH_NORM[rank]}({c}, eps={py(eps)}, momentum={py(momentum)}{affine})"
    if rank == 2:
        return LayerCode(ctor, "{m}({x})")
    # torch normalizes axis 1; the data is channels-last.
    return LayerCode(ctor, "{m}({x}.movedim(-1, 1)).movedim(1, -1)")


@lowering("LayerNormalization")
def _layer_norm(inst: LayerInstance) -> LayerCode:
    a = inst.attrs
    c, eps = _features(inst), float(a["epsilon"])
    if a["center"] and not a["scale"]:
        return LayerCode(f"LayerNormBias({c}, eps={py(eps)})", "{m}({x})", ("LayerNormBias",))
    extra = ""
    if not a["scale"]:
        extra = ", elementwise_affine=False"
    elif not a["center"]:
        extra = ", bias=False"
    return LayerCode(f"nn.LayerNorm({c}, eps={py(eps)}{extra})", "{m}({x})")


# Attention ------------------------------------------------------------------------------------


@lowering("MultiHeadAttention")
def _mha(inst: LayerInstance) -> LayerCode:
    a = inst.attrs
    d = _features(inst)
    value_dim = a["value_dim"] if a["value_dim"] is not None else a["key_dim"]
    out = tuple(a["output_shape"]) if a["output_shape"] is not None else (d,)
    keywords: dict[str, object] = {}
    if a["dropout"]:
        keywords["dropout"] = float(a["dropout"])
    if not a["use_bias"]:
        keywords["use_bias"] = False
    ctor = (
        f"KerasMultiHeadAttention({_args(d, a['num_heads'], a['key_dim'], value_dim, out)}"
        + (f", {_args(**keywords)}" if keywords else "")
        + ")"
    )
    return LayerCode(ctor, "{m}({x})", ("KerasMultiHeadAttention",))


def _transformer_args(inst: LayerInstance) -> str:
    a = inst.attrs
    d = _features(inst)
    if a["activation"] not in ("relu", "gelu"):
        raise unsupported(
            inst,
            f"activation '{a['activation']}' is not supported in a Transformer layer",
            'use "relu" or "gelu"',
        )
    return _args(
        d_model=d,
        nhead=a["num_heads"],
        dim_feedforward=a["dff"],
        dropout=float(a["dropout_rate"]),
        activation=a["activation"],
        layer_norm_eps=float(a["layer_norm_eps"]),
        batch_first=True,
        norm_first=bool(a["norm_first"]),
    )


@lowering("TransformerEncoder")
def _encoder(inst: LayerInstance) -> LayerCode:
    return LayerCode(f"nn.TransformerEncoderLayer({_transformer_args(inst)})", "{m}({x})")


@lowering("TransformerDecoder")
def _decoder(inst: LayerInstance) -> LayerCode:
    if inst.attrs.get("cross_attention"):
        if len(inst.inputs) != 2:
            raise unsupported(
                inst, "a cross-attending decoder needs the encoder's output as its second input"
            )
        return LayerCode(
            f"nn.TransformerDecoderLayer({_transformer_args(inst)})",
            "{m}({x}, {x1}, tgt_mask=causal_mask({x}), tgt_is_causal=True)",
            ("causal_mask",),
        )
    # A GPT block: the encoder layer's computation and weights under a causal mask.
    return LayerCode(
        f"nn.TransformerEncoderLayer({_transformer_args(inst)})",
        "{m}({x}, src_mask=causal_mask({x}), is_causal=True)",
        ("causal_mask",),
    )


# Recurrent ------------------------------------------------------------------------------------

_RNN = {"LSTM": "nn.LSTM", "GRU": "nn.GRU", "SimpleRNN": "nn.RNN"}


@lowering("LSTM", "GRU", "SimpleRNN")
def _rnn(inst: LayerInstance) -> LayerCode:
    a = inst.attrs
    keywords: dict[str, object] = {}
    if inst.spec.name == "SimpleRNN" and a["activation"] != "tanh":
        keywords["nonlinearity"] = a["activation"]
    if not a["use_bias"]:
        keywords["bias"] = False
    keywords["batch_first"] = True
    ctor = f"{_RNN[inst.spec.name]}({_args(_features(inst), a['units'], **keywords)})"
    x = "{x}"
    if a["dropout"]:
        # Keras drops inputs while training (one mask per sequence; here per element).
        x = f"F.dropout({{x}}, {py(float(a['dropout']))}, self.training)"
    call = f"{{m}}({x})[0]" + ("" if a["return_sequences"] else "[:, -1]")
    return LayerCode(ctor, call)


# Merges ---------------------------------------------------------------------------------------


@lowering("Add")
def _add(inst: LayerInstance) -> LayerCode:
    return LayerCode(None, " + ".join(f"{{x{i}}}" for i in range(len(inst.inputs))))


@lowering("Concatenate")
def _concatenate(inst: LayerInstance) -> LayerCode:
    return LayerCode(None, f"torch.cat([{{xs}}], dim={int(inst.attrs['axis'])})")
