"""Emitters: `nn` IR → PyTorch module source, Keras module source, ONNX model; weight files."""
