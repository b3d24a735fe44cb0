"""The ONNX backend: `nn` IR → an ONNX model built node by node (no framework export).

Modules:
  graph.py      `GraphBuilder`: nodes, initializers, constants, traceable names, opset-dependent
                helpers, and the layout bookkeeping (channels-last values, channels-first copies)
  emitter.py    walks an unrolled copy of the network, dispatches per layer, assembles the model
  core.py       Dense/Output, activations, Dropout, Flatten, Reshape, Embedding, norms, merges
  spatial.py    convolutions, pooling, global pooling, UpSampling2D, ZeroPadding2D
  attention.py  TransformerEncoder/Decoder (torch semantics), MultiHeadAttention (Keras')
  recurrent.py  LSTM, GRU, SimpleRNN (ONNX's LSTM/GRU/RNN ops, gates reordered in-graph)
  runtime.py    `predict` through ONNX Runtime, device checks

`neuralc.lower.onnx.TARGET` is the entry point.
"""
