"""The ONNX backend: IR → an ONNX model built node by node (no framework export).

An `nn` network (-O0, -O1) is lowered layer by layer; a network at the `tensor` or `kernel`
stage (-O2, -O3, `--emit tensor`) op by op. Modules:
  graph.py       `GraphBuilder`: nodes, initializers, constants, traceable names, opset-dependent
                 helpers, and the layout bookkeeping (channels-last values, channels-first copies)
  emitter.py     picks the walk for the network's stage, assembles the model (inputs, outputs,
                 opset imports, metadata, external data)
  core.py        nn: Dense/Output, activations, Dropout, Flatten, Reshape, Embedding, norms, merges
  spatial.py     nn: convolutions, pooling, global pooling, UpSampling2D, ZeroPadding2D
  attention.py   nn: TransformerEncoder/Decoder (torch semantics), MultiHeadAttention (Keras')
  recurrent.py   nn LSTM, GRU, SimpleRNN and tensor.lstm/gru/rnn (ONNX's ops, gates reordered)
  stages.py      tensor/kernel stage: the op walk, value forms (token matrices), weights checks
  tensor_ops.py  tensor ops → ONNX ops
  kernel_ops.py  kernel ops: attention (Attention / com.microsoft.MultiHeadAttention /
                 decomposed), ffn, add_layernorm, bias_act
  runtime.py     `predict` through ONNX Runtime, device checks

`neuralc.lower.onnx.TARGET` is the entry point.
"""
