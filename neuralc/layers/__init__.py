"""The layer registry: every DSL layer described once.

Each `LayerSpec` holds the layer's parameters (positional order, types, defaults, aliases,
ranges), its shape rule, its weights (names, layouts, initializers — the parameter count is
derived from them) and, attached by `neuralc.lower`, its lowerings. The parser's checks, shape
inference, `docs/layers.md` and the emitters all read it.
"""

from neuralc.layers.registry import LAYERS, all_layers, get_layer, register_layer
from neuralc.layers.spec import (
    REQUIRED,
    LayerSpec,
    Param,
    ShapeError,
    WeightSpec,
)

__all__ = [
    "LAYERS",
    "REQUIRED",
    "LayerSpec",
    "Param",
    "ShapeError",
    "WeightSpec",
    "all_layers",
    "get_layer",
    "register_layer",
]
