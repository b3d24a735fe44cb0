"""The framework-neutral weight file: names, initial values, safetensors I/O, mismatch checks."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from neuralc.diagnostics import CompileError
from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Module, Network
from neuralc.ir.printer import print_module
from neuralc.layers import WeightSpec
from neuralc.lower.weights import (
    check_weights,
    init_array,
    init_weights,
    layer_instances,
    load_checked_weights,
    load_weights,
    network_weight_specs,
    save_weights,
    weight_owners,
)
from neuralc.passes.unroll_repeat import unroll_network


def compile_net(src: str) -> Network:
    return check_program(parse_text(src, "m.neural")).networks[0].network


MLP = """
define Block {
  Dense(16, activation="relu")
  Dropout(0.1)
}
network Mlp {
  input: (8,)
  layers:
    Dense(16)
    Block * 2
    ResidualConnection {
      Dense(16)
      LayerNormalization()
    }
    Dense(4) * 2
    Output(3, activation="softmax")
}
"""

SEQ2SEQ = """
network Seq {
  input: (5,)
  layers:
    Embedding(input_dim=30, output_dim=8)
    TransformerEncoder(num_heads=2, d_model=8, dff=16) * 2
    TransformerDecoder(num_heads=2, d_model=8, dff=16) * 2
    Dense(30, activation="softmax")
}
"""

MIXED = """
network Mixed {
  input: (6, 6, 2)
  layers:
    Conv2D(4, (3, 3), padding="same")
    BatchNormalization()
    MaxPooling2D((2, 2))
    Reshape((9, 4))
    LSTM(5, return_sequences=true)
    MultiHeadAttention(num_heads=2, key_dim=3)
    GRU(3)
    Output(2)
}
"""


def test_keys_are_unrolled_instance_names() -> None:
    keys = list(network_weight_specs(compile_net(MLP)))
    assert keys == [
        "dense.weight", "dense.bias",
        "block.0.dense.weight", "block.0.dense.bias",
        "block.1.dense.weight", "block.1.dense.bias",
        "residual_connection.dense.weight", "residual_connection.dense.bias",
        "residual_connection.layer_normalization.weight",
        "residual_connection.layer_normalization.bias",
        "dense_1.0.weight", "dense_1.0.bias", "dense_1.1.weight", "dense_1.1.bias",
        "output.weight", "output.bias",
    ]  # fmt: skip


def test_repeated_layer_shapes_follow_each_copy() -> None:
    specs = network_weight_specs(compile_net(MLP))
    assert specs["dense_1.0.weight"].shape == (4, 16)  # the first copy sees 16 features
    assert specs["dense_1.1.weight"].shape == (4, 4)


@pytest.mark.parametrize("src", [MLP, SEQ2SEQ, MIXED])
def test_specs_equal_those_of_the_unrolled_network(src: str) -> None:
    rolled = compile_net(src)
    unrolled = compile_net(src)
    while unroll_network(unrolled):
        pass
    expected = {k: v.shape for k, v in network_weight_specs(unrolled).items()}
    assert {k: v.shape for k, v in network_weight_specs(rolled).items()} == expected


@pytest.mark.parametrize("src", [MLP, SEQ2SEQ, MIXED])
def test_trainable_sizes_equal_the_checked_parameter_count(src: str) -> None:
    built = check_program(parse_text(src, "m.neural")).networks[0]
    specs = network_weight_specs(built.network)
    assert sum(s.size for s in specs.values() if s.trainable) == built.params


def test_walk_does_not_mutate_the_network() -> None:
    net = compile_net(SEQ2SEQ)
    before = print_module(Module([net]))
    network_weight_specs(net)
    init_weights(net, 0)
    layer_instances(net)
    assert print_module(Module([net])) == before


def test_cross_attention_weights_and_owners() -> None:
    net = compile_net(SEQ2SEQ)
    specs = network_weight_specs(net)
    assert "transformer_decoder.1.multihead_attn.in_proj_weight" in specs
    assert "transformer_decoder.1.norm3.weight" in specs
    owner = weight_owners(net)["transformer_encoder.1.linear1.weight"]
    assert owner.spec.name == "TransformerEncoder" and owner.name == "transformer_encoder.1"
    assert owner.loc is not None and owner.loc.line == 6


# Initial values -------------------------------------------------------------------------------


def test_deterministic_per_seed() -> None:
    net = compile_net(MIXED)
    a, b, c = init_weights(net, 7), init_weights(net, 7), init_weights(net, 8)
    assert list(a) == list(network_weight_specs(net))
    for key in a:
        assert a[key].dtype == np.float32
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["conv2d.weight"], c["conv2d.weight"])


def test_adding_a_layer_keeps_the_other_weights() -> None:
    small = init_weights(compile_net(MLP), 3)
    bigger_src = MLP.replace("    Dense(16)\n", "    Dense(16)\n    Dense(16)\n", 1)
    bigger = init_weights(compile_net(bigger_src), 3)
    assert "dense_2.0.weight" in bigger  # names shifted only where the counter moved
    for key in (
        "dense.weight",
        "block.0.dense.weight",
        "residual_connection.dense.bias",
        "output.weight",
    ):
        np.testing.assert_array_equal(small[key], bigger[key])


def test_bounds_match_pytorch_defaults() -> None:
    import torch

    net = compile_net(MIXED)
    w = init_weights(net, 0)
    fan_in = 2 * 3 * 3
    bound = 1 / math.sqrt(fan_in)
    torch_conv = torch.nn.Conv2d(2, 4, 3)
    for ours, theirs in (
        (w["conv2d.weight"], torch_conv.weight),
        (w["conv2d.bias"], torch_conv.bias),
    ):
        assert np.abs(ours).max() <= bound
        assert float(theirs.detach().abs().max()) <= bound
    # BatchNorm and LayerNorm-like tensors are constants.
    np.testing.assert_array_equal(w["batch_normalization.weight"], np.ones(4, np.float32))
    np.testing.assert_array_equal(w["batch_normalization.running_var"], np.ones(4, np.float32))
    np.testing.assert_array_equal(
        w["batch_normalization.num_batches_tracked"], np.zeros((), np.float32)
    )
    # torch RNNs: U(±1/sqrt(hidden)).
    assert np.abs(w["lstm.weight_hh_l0"]).max() <= 1 / math.sqrt(5)
    assert np.abs(w["gru.bias_ih_l0"]).max() <= 1 / math.sqrt(3)
    # Keras' glorot_uniform with Keras' fans for the MHA kernels: [d, H, k] has fans (H*d, k*d).
    d, h, k = 5, 2, 3
    assert np.abs(w["multi_head_attention.query.kernel"]).max() <= math.sqrt(6 / (h * d + k * d))
    np.testing.assert_array_equal(w["multi_head_attention.query.bias"], np.zeros((h, k)))


def _large(spec: WeightSpec, seed: int = 0) -> np.ndarray:
    return init_array(spec, seed, "probe")


def test_distributions_match_pytorch() -> None:
    import torch

    linear = torch.nn.Linear(256, 512)
    ours = _large(WeightSpec((512, 256), "kaiming_uniform", fan_in=256, fan_out=512))
    bound = 1 / 16
    assert np.abs(ours).max() <= bound and np.abs(ours).max() > 0.99 * bound
    assert float(linear.weight.detach().abs().max()) <= bound
    assert abs(float(ours.std()) - float(linear.weight.detach().std())) < 2e-3
    bias = _large(WeightSpec((4096,), "linear_bias", fan_in=256))
    assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0.99 * bound
    mha = torch.nn.MultiheadAttention(64, 4)
    xavier = _large(WeightSpec((192, 64), "xavier_uniform", fan_in=64, fan_out=192))
    assert abs(float(xavier.std()) - float(mha.in_proj_weight.detach().std())) < 3e-3
    normal = _large(WeightSpec((100_000,), "normal"))
    assert abs(float(normal.mean())) < 0.02 and abs(float(normal.std()) - 1) < 0.02
    with pytest.raises(ValueError, match="unknown initializer"):
        _large(WeightSpec((2,), "orthogonal"))


# Files ----------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    net = compile_net(MIXED)
    arrays = init_weights(net, 1)
    path = tmp_path / "w.safetensors"
    save_weights(path, arrays)
    loaded = load_checked_weights(net, path)
    assert set(loaded) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_save_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(path, {"a": np.ones(3, np.float32)})
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever safetensors raises
        save_weights(path, {"a": np.ones(3, np.float32), "b": np.array(["no"], dtype=object)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
    fresh = tmp_path / "new.safetensors"
    with pytest.raises(Exception):  # noqa: B017
        save_weights(fresh, {"b": np.array(["no"], dtype=object)})
    assert not fresh.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CompileError, match="does not exist"):
        load_weights(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CompileError, match="cannot read weights file"):
        load_weights(bad)


def test_mismatch_diagnostics_name_keys_and_lines() -> None:
    net = compile_net(MLP)
    arrays = init_weights(net, 0)
    del arrays["output.bias"]
    arrays["dense_1.1.weight"] = np.zeros((4, 5), np.float32)
    arrays["extra.weight"] = np.zeros(2, np.float32)
    arrays["dense.bias"] = arrays["dense.bias"].astype(np.float64)
    with pytest.raises(CompileError) as info:
        check_weights(net, arrays, "w.safetensors")
    by_message = {d.message: d for d in info.value.diagnostics}
    missing = next(d for m, d in by_message.items() if "'output.bias'" in m)
    assert "missing from w.safetensors" in missing.message
    assert missing.loc is not None and missing.loc.line == 16
    shape = next(d for m, d in by_message.items() if "'dense_1.1.weight'" in m)
    assert "(4, 5)" in shape.message and "(4, 4)" in shape.message
    assert shape.loc is not None and shape.loc.line == 15
    dtype = next(d for m, d in by_message.items() if "'dense.bias'" in m)
    assert "float64" in dtype.message
    extra = next(d for m, d in by_message.items() if "extra.weight" in m)
    assert "does not have" in extra.message


def test_integer_step_counter_is_accepted() -> None:
    net = compile_net(MIXED)
    arrays = init_weights(net, 0)
    arrays["batch_normalization.num_batches_tracked"] = np.array(5, dtype=np.int64)
    check_weights(net, arrays)


def test_negative_seed_is_rejected() -> None:
    with pytest.raises(ValueError):
        init_weights(compile_net(MLP), -1)


def test_save_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "w.safetensors"
    save_weights(path, {"x": np.zeros(2, np.float32)})
    assert path.is_file() and not any(p.name.endswith(".tmp") for p in path.parent.iterdir())
    assert os.access(path, os.R_OK)


def test_docs_per_layer_table_is_current() -> None:
    from neuralc.lower.weights import weights_doc_table

    doc = Path(__file__).resolve().parents[2] / "docs" / "weights.md"
    generated = doc.read_text().split("## Per layer\n", 1)[1]
    assert generated == weights_doc_table(), "regenerate the table: python -m neuralc.lower.weights"
