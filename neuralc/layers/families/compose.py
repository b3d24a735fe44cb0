"""Rules about which layer may follow which: checks no single shape rule can make.

The one rule so far — a layer tagged "image_input" (Conv2D, Conv2DTranspose, 2-D pooling,
UpSampling2D, ZeroPadding2D) cannot take the output of a layer tagged "features" (Dense, Output)
that was applied to an image, looking through "transparent" layers (Dropout, Activation,
BatchNormalization, LayerNormalization).

Why: Dense on a rank > 2 input acts on the last axis (Keras), so on an image it is a per-pixel
projection and its output is a grid of feature vectors. Every shape would still fit, but a user
who writes Dense before Conv2D almost always expected Dense to flatten (upstream's own test,
IncompatibleLayers, expects "Conv2D cannot follow Dense"). The explicit spellings of both
intentions stay available: `Conv2D(units, (1, 1))` is the per-pixel projection (same parameters
as the Dense), and `Flatten()` before Dense gives a classifier head. Sequences are exempt:
Dense per time step before a Conv1D is ordinary (a Transformer's feed-forward block).
"""

from __future__ import annotations

from collections.abc import Iterable

from neuralc.ir.types import TensorType
from neuralc.layers.spec import LayerSpec, ShapeError


def check_follows(
    consumer: LayerSpec, producers: Iterable[tuple[LayerSpec, TensorType]]
) -> None:
    """Raise a ShapeError when `consumer` may not take its input from these producers.

    `producers` lists the layers that produced the consumer's input, nearest first, each with
    the type of *its* input: `[(Dropout, f32[N,28,28,128]), (Dense, f32[N,28,28,1]), ...]`.
    The walk stops at the first non-transparent producer.
    """
    if "image_input" not in consumer.tags:
        return
    for spec, input_type in producers:
        if "transparent" in spec.tags:
            continue
        if "features" in spec.tags and input_type.rank >= 4:
            raise ShapeError(
                f"{consumer.name} cannot follow {spec.name}: {spec.name} on the image "
                f"{input_type} acts on each pixel's channels (last axis), so its output is "
                "per-pixel features, not an image to convolve or pool",
                note=f"for a per-pixel projection write Conv2D(filters, (1, 1)) instead of "
                f"{spec.name}; to classify, put Flatten() before {spec.name}",
            )
        return
