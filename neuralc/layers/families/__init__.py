"""The layer families. Importing this package registers every layer (one module per family).

`EXAMPLES` maps each layer name to a worked example (DSL arguments, input types), used by
`docs/layers.md` and the registry's tests.
"""

from __future__ import annotations

from neuralc.layers.families import (
    attention,
    conv,
    core,
    norm,
    pooling,
    recurrent,
    structural,
)
from neuralc.layers.families.common import Example
from neuralc.layers.families.compose import check_follows

EXAMPLES: dict[str, Example] = {
    **core.EXAMPLES,
    **conv.EXAMPLES,
    **pooling.EXAMPLES,
    **norm.EXAMPLES,
    **attention.EXAMPLES,
    **recurrent.EXAMPLES,
    **structural.EXAMPLES,
}

__all__ = ["EXAMPLES", "Example", "check_follows"]
