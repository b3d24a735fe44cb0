"""Numeric exactness of lowering and fusion on tiny shapes: the lowered tensor IR, run by the
numpy interpreter (`numpy_interp`, float64), equals the PyTorch emitter's eager module on the nn
IR (torch's own Transformer layers, Keras-arithmetic convolutions, ...) with the same weights;
the fused kernel IR equals the unfused tensor IR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy_interp
import pytest
from tensor_testlib import FUSE, compile_nn, op_counts, random_inputs, random_weights, run

from neuralc.lower.weights import save_weights

PROGRAMS = {
    "dense": 'Dense(5, activation="gelu") Dense(4, activation="leaky_relu") '
             'Output(3, activation="softmax")',
    "activations": 'Dense(5, activation="selu") Activation("elu") Activation("softsign") '
                   'Activation("softplus") Activation("hard_sigmoid") Activation("swish") '
                   'Activation("tanh") Activation("sigmoid") Activation("log_softmax")',
    "conv": 'Conv2D(4, (3,3), "relu", padding="same", strides=(2,2)) '
            'Conv2D(5, (2,3), dilation_rate=(2,1)) MaxPooling2D((2,2), padding="same") '
            "Flatten() Output(2)",
    "conv1d": 'Conv1D(4, 3, padding="same", strides=2) '
              'AveragePooling1D(3, strides=2, padding="same") MaxPooling1D(2) '
              "GlobalMaxPooling1D()",
    "conv_transpose": 'Conv2DTranspose(4, (3,3), strides=(2,2), padding="same") '
                      "Conv2DTranspose(2, (1,1), strides=(2,2)) "
                      'Conv2DTranspose(2, (2,3), strides=(1,2), padding="same") '
                      "Conv2DTranspose(2, (1,3), strides=(3,2))",
    "resample": 'AveragePooling2D((3,3), strides=(2,2), padding="same") UpSampling2D(2) '
                'UpSampling2D((1,2), interpolation="bilinear") ZeroPadding2D((1,2)) '
                "GlobalAveragePooling2D()",
    "norms": "BatchNormalization() LayerNormalization() LayerNormalization(center=false) "
             "BatchNormalization(scale=false) LayerNormalization(scale=false)",
    "recurrent": "Embedding(input_dim=20, output_dim=8) LSTM(6, return_sequences=true) "
                 'GRU(5, return_sequences=true) SimpleRNN(4, activation="relu")',
    "keras_mha": "MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4) "
                 "MultiHeadAttention(num_heads=3, key_dim=2, output_shape=(2, 4), "
                 "use_bias=false) Flatten()",
    "encoder": 'TransformerEncoder(num_heads=2, d_model=8, dff=16, activation="gelu") '
               "TransformerEncoder(num_heads=4, d_model=8, dff=12, norm_first=true)",
    "gpt": "TransformerDecoder(num_heads=2, d_model=8, dff=16) * 2 Dense(3)",
    "seq2seq": "Embedding(input_dim=30, output_dim=8) "
               "TransformerEncoder(num_heads=2, d_model=8, dff=16) * 2 "
               "TransformerDecoder(num_heads=2, d_model=8, dff=16) * 2 "
               'Dense(5, activation="softmax")',
    "seq2seq_pre_norm": "Embedding(input_dim=30, output_dim=8) "
                        "TransformerEncoder(num_heads=2, d_model=8, dff=16, norm_first=true) "
                        "TransformerDecoder(num_heads=4, d_model=8, dff=16, norm_first=true)",
    "residual": 'ResidualConnection { Conv2D(4, (3,3), "relu", padding="same") '
                'Conv2D(4, (3,3), padding="same") } ResidualConnection { '
                'Conv2D(8, (3,3), "relu", strides=(2,2), padding="same") '
                'Conv2D(8, (3,3), padding="same") '
                'Conv2D(8, (1,1), strides=(2,2), padding="same") } Flatten()',
}
INPUTS = {"dense": "(6,)", "activations": "(6,)", "conv": "(9, 8, 3)", "conv1d": "(11, 3)",
          "conv_transpose": "(5, 4, 3)", "resample": "(7, 6, 2)", "norms": "(5, 6)",
          "recurrent": "(7,)", "keras_mha": "(5, 8)", "encoder": "(5, 8)", "gpt": "(5, 8)",
          "seq2seq": "(6,)", "seq2seq_pre_norm": "(6,)", "residual": "(6, 6, 4)"}


def _program(name: str) -> str:
    return f"network A {{ input: {INPUTS[name]} layers: {PROGRAMS[name]} }}"


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_lowered_ir_matches_the_pytorch_module(name: str, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from neuralc.lower.pytorch import TARGET
    from neuralc.lower.target import BuildOptions

    module = compile_nn(_program(name))
    net = module.networks[0]
    weights, inputs = random_weights(net), random_inputs(net)
    artifact, weight_file = tmp_path / "m.py", tmp_path / "w.safetensors"
    artifact.write_bytes(TARGET.emit(net, BuildOptions("m.neural")))
    save_weights(weight_file, weights)
    expected = TARGET.predict(artifact, weight_file, inputs, "cpu")
    run(module, "lower-nn-to-tensor")
    (got,) = numpy_interp.run(net, inputs, weights)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["keras_mha", "encoder", "gpt", "seq2seq", "dense",
                                  "activations"])
def test_fused_ir_matches_the_unfused_ir(name: str) -> None:
    module = compile_nn(_program(name))
    net = module.networks[0]
    weights, inputs = random_weights(net), random_inputs(net)
    run(module, "lower-nn-to-tensor")
    (unfused,) = numpy_interp.run(net, inputs, weights)
    ctx = run(module, FUSE)
    assert op_counts(module, "kernel."), ctx.fusion_rejections
    (fused,) = numpy_interp.run(net, inputs, weights)
    np.testing.assert_allclose(fused, unfused, rtol=1e-12, atol=1e-12)
