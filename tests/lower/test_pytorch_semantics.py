"""What the generated PyTorch modules compute, against independent references: torch's own
Transformer layers loaded with the same weights, causality of decoder-only stacks, Keras'
MultiHeadAttention math, activations, residual blocks and BatchNormalization at inference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Network
from neuralc.lower.pytorch import TARGET, import_artifact
from neuralc.lower.pytorch.layers import ACTIVATIONS
from neuralc.lower.target import BuildOptions
from neuralc.lower.weights import init_weights, save_weights

torch = pytest.importorskip("torch")
F = torch.nn.functional
ATOL = 1e-5


def compile_net(src: str) -> Network:
    return check_program(parse_text(src, "m.neural")).networks[0].network


def run(
    net: Network,
    tmp_path: Path,
    inputs: dict[str, np.ndarray] | np.ndarray,
    arrays: dict[str, np.ndarray] | None = None,
    seed: int = 0,
) -> np.ndarray:
    artifact = tmp_path / "m.py"
    artifact.write_bytes(TARGET.emit(net, BuildOptions("m.neural")))
    weights = tmp_path / "w.safetensors"
    save_weights(weights, arrays if arrays is not None else init_weights(net, seed))
    if not isinstance(inputs, dict):
        inputs = {net.inputs[0].name: inputs}
    return TARGET.predict(artifact, weights, inputs, "cpu")


def sub_state(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    return {
        k[len(prefix) + 1 :]: torch.from_numpy(v)
        for k, v in arrays.items()
        if k.startswith(prefix + ".")
    }


def randomized(net: Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Initial weights with every zero/one tensor perturbed, so biases and norms matter."""
    rng = np.random.default_rng(seed)
    arrays = init_weights(net, seed)
    return {
        k: (
            v + rng.standard_normal(v.shape).astype(np.float32) * 0.1
            if v.ndim and "running_var" not in k
            else v
        )
        for k, v in arrays.items()
    }


# Transformer anchors ----------------------------------------------------------------------------


def test_encoder_equals_torch_transformer_encoder_layer(tmp_path: Path) -> None:
    net = compile_net("""network E { input: (6, 16) layers:
        TransformerEncoder(num_heads=4, d_model=16, dff=32, activation="gelu") }""")
    arrays = randomized(net)
    x = np.random.default_rng(1).standard_normal((3, 6, 16)).astype(np.float32)
    y = run(net, tmp_path, x, arrays)
    ref = torch.nn.TransformerEncoderLayer(16, 4, 32, activation="gelu", batch_first=True)
    ref.load_state_dict(sub_state(arrays, "transformer_encoder"))
    ref.eval()
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, atol=ATOL)


def test_cross_attention_decoder_equals_torch_decoder_layer(tmp_path: Path) -> None:
    net = compile_net("""network S { input: (5,) layers:
        Embedding(30, 8)
        TransformerEncoder(num_heads=2, dff=16)
        TransformerDecoder(num_heads=2, dff=16) }""")
    arrays = randomized(net)
    ids = np.random.default_rng(2).integers(0, 30, (2, 5)).astype(np.int64)
    y = run(net, tmp_path, ids, arrays)
    emb = torch.nn.Embedding(30, 8)
    emb.load_state_dict(sub_state(arrays, "embedding"))
    enc = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    enc.load_state_dict(sub_state(arrays, "transformer_encoder"))
    dec = torch.nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)
    dec.load_state_dict(sub_state(arrays, "transformer_decoder"))
    for module in (emb, enc, dec):
        module.eval()
    with torch.no_grad():
        memory = enc(emb(torch.from_numpy(ids)))
        mask = torch.nn.Transformer.generate_square_subsequent_mask(5)
        expected = dec(memory, memory, tgt_mask=mask).numpy()
    np.testing.assert_allclose(y, expected, atol=ATOL)


def _gpt_block(x: torch.Tensor, w: dict[str, torch.Tensor], heads: int) -> torch.Tensor:
    """Causal self-attention -> add & norm -> FFN -> add & norm, written out by hand."""
    n, length, d = x.shape
    qkv = x @ w["self_attn.in_proj_weight"].T + w["self_attn.in_proj_bias"]
    q, k, v = (t.reshape(n, length, heads, d // heads).transpose(1, 2) for t in qkv.split(d, -1))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // heads)
    causal = torch.ones(length, length, dtype=torch.bool).triu(1)
    attn = scores.masked_fill(causal, float("-inf")).softmax(-1) @ v
    attn = attn.transpose(1, 2).reshape(n, length, d)
    attn = attn @ w["self_attn.out_proj.weight"].T + w["self_attn.out_proj.bias"]
    x = F.layer_norm(x + attn, (d,), w["norm1.weight"], w["norm1.bias"])
    ff = F.relu(x @ w["linear1.weight"].T + w["linear1.bias"])
    ff = ff @ w["linear2.weight"].T + w["linear2.bias"]
    return F.layer_norm(x + ff, (d,), w["norm2.weight"], w["norm2.bias"])


def test_decoder_only_block_is_a_causal_post_norm_block(tmp_path: Path) -> None:
    net = compile_net("""network G { input: (7, 8) layers:
        TransformerDecoder(num_heads=2, d_model=8, dff=16) * 2 }""")
    arrays = randomized(net)
    x = np.random.default_rng(3).standard_normal((2, 7, 8)).astype(np.float32)
    y = run(net, tmp_path, x, arrays)
    h = torch.from_numpy(x)
    for i in range(2):
        h = _gpt_block(h, sub_state(arrays, f"transformer_decoder.{i}"), heads=2)
    np.testing.assert_allclose(y, h.numpy(), atol=ATOL)


def test_decoder_only_stack_is_causal(tmp_path: Path) -> None:
    net = compile_net("""network G { input: (8, 8) layers:
        TransformerDecoder(num_heads=2, dff=16) * 3
        Dense(5) }""")
    arrays = randomized(net)
    x = np.random.default_rng(4).standard_normal((1, 8, 8)).astype(np.float32)
    t = 5
    changed = x.copy()
    changed[:, t] += 1.0
    both = run(net, tmp_path, np.concatenate([x, changed]), arrays)
    np.testing.assert_allclose(both[0, :t], both[1, :t], atol=ATOL)
    assert (np.abs(both[0, t:] - both[1, t:]).max(axis=-1) > 1e-4).all()


# Keras-semantics layers -----------------------------------------------------------------------


def test_multi_head_attention_follows_keras(tmp_path: Path) -> None:
    net = compile_net("""network A { input: (5, 6) layers:
        MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4) }""")
    arrays = randomized(net)
    x = np.random.default_rng(5).standard_normal((2, 5, 6)).astype(np.float32)
    y = run(net, tmp_path, x, arrays)
    w = {k.removeprefix("multi_head_attention."): v.astype(np.float64) for k, v in arrays.items()}

    def project(name: str) -> np.ndarray:
        return np.einsum("bld,dhk->blhk", x, w[f"{name}.kernel"]) + w[f"{name}.bias"]

    q, k, v = project("query") / math.sqrt(2), project("key"), project("value")
    scores = np.einsum("bqhk,bshk->bhqs", q, k)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    heads = np.einsum("bhqs,bshv->bqhv", probs, v)
    expected = np.einsum("bqhv,hvo->bqo", heads, w["attention_output.kernel"])
    expected += w["attention_output.bias"]
    np.testing.assert_allclose(y, expected, atol=ATOL)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(x)


REFERENCE: dict[str, object] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softmax": lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True),
    "log_softmax": lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True)),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1)),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
}


def test_reference_covers_every_activation() -> None:
    from neuralc.layers.spec import ACTIVATIONS as REGISTRY

    assert set(REGISTRY) <= set(ACTIVATIONS) == set(REFERENCE)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation(name: str, tmp_path: Path) -> None:
    net = compile_net(f'network A {{ input: (3, 7) layers: Activation("{name}") }}')
    x = np.random.default_rng(6).standard_normal((2, 3, 7)).astype(np.float32) * 3
    y = run(net, tmp_path, x)
    expected = REFERENCE[name](x.astype(np.float64))  # type: ignore[operator]
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)


def test_residual_adds_input_and_projects_shortcut(tmp_path: Path) -> None:
    net = compile_net("""network R { input: (4, 4, 2) layers:
        ResidualConnection { Dense(2, activation="tanh") }
        ResidualConnection {
          Conv2D(3, (1, 1), strides=(2, 2), padding="same", activation="relu")
          Conv2D(3, (1, 1), strides=(2, 2), padding="same")
        } }""")
    arrays = randomized(net)
    x = np.random.default_rng(7).standard_normal((2, 4, 4, 2)).astype(np.float32)
    y = run(net, tmp_path, x, arrays)
    w = {k: v.astype(np.float64) for k, v in arrays.items()}
    h = x + np.tanh(
        x @ w["residual_connection.dense.weight"].T + w["residual_connection.dense.bias"]
    )
    sub = h[:, ::2, ::2]  # a 1x1 convolution with stride 2 samples every other pixel

    def conv1x1(t: np.ndarray, name: str) -> np.ndarray:
        kernel = w[f"residual_connection_1.{name}.weight"][:, :, 0, 0]
        return t @ kernel.T + w[f"residual_connection_1.{name}.bias"]

    expected = conv1x1(sub, "conv2d_1") + np.maximum(conv1x1(sub, "conv2d"), 0)
    np.testing.assert_allclose(y, expected, atol=ATOL)


def test_batch_normalization_uses_running_statistics(tmp_path: Path) -> None:
    net = compile_net("""network B { input: (3, 4) layers:
        BatchNormalization(epsilon=0.01) }""")
    arrays = randomized(net)
    rng = np.random.default_rng(8)
    arrays["batch_normalization.running_mean"] = rng.standard_normal(4).astype(np.float32)
    arrays["batch_normalization.running_var"] = rng.uniform(0.5, 2, 4).astype(np.float32)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = run(net, tmp_path, x, arrays)
    w = {k.removeprefix("batch_normalization."): v for k, v in arrays.items()}
    expected = (x - w["running_mean"]) / np.sqrt(w["running_var"] + 0.01) * w["weight"] + w["bias"]
    np.testing.assert_allclose(y, expected, atol=ATOL)


def test_dense_acts_on_the_last_axis_and_flatten_is_channels_last(tmp_path: Path) -> None:
    net = compile_net("""network D { input: (2, 3, 4) layers:
        Dense(5)
        Flatten() }""")
    arrays = randomized(net)
    x = np.random.default_rng(9).standard_normal((2, 2, 3, 4)).astype(np.float32)
    y = run(net, tmp_path, x, arrays)
    expected = (x @ arrays["dense.weight"].T + arrays["dense.bias"]).reshape(2, -1)
    np.testing.assert_allclose(y, expected, atol=ATOL)


def test_same_padding_puts_the_extra_row_at_the_end(tmp_path: Path) -> None:
    # A 2x2 kernel over a 3x3 image with "same" padding pads one row/column at the bottom/right
    # (TensorFlow's rule), so the first output pixel sees the top-left 2x2 window.
    net = compile_net("""network C { input: (3, 3, 1) layers:
        Conv2D(1, (2, 2), padding="same", use_bias=false) }""")
    arrays = {"conv2d.weight": np.ones((1, 1, 2, 2), np.float32)}
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    y = run(net, tmp_path, x, arrays)[0, :, :, 0]
    image = x[0, :, :, 0]
    padded = np.pad(image, ((0, 1), (0, 1)))
    expected = np.array([[padded[i : i + 2, j : j + 2].sum() for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(y, expected)


def test_dynamic_sequence_length(tmp_path: Path) -> None:
    net = compile_net("""network V { input: (None, None, 4) layers:
        Dense(3)
        LSTM(2) }""")
    artifact = tmp_path / "m.py"
    artifact.write_bytes(TARGET.emit(net, BuildOptions("m.neural")))
    module = import_artifact(artifact)
    model = module.build_model()
    for length in (2, 9):
        x = np.zeros((1, length, 4), np.float32)
        assert module.predict(model, x).shape == (1, 2)
