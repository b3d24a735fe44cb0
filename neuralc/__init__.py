"""neuralc: a compiler for the Neural DSL.

Importing the package stays cheap on purpose: the check path (`neuralc check`) must not pull in
torch, TensorFlow or Triton, and the GPU machine lacks textX, so subpackages are imported on use.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
