"""The table of layers, filled by the family modules of this package."""

from __future__ import annotations

from neuralc.layers.spec import LayerSpec

LAYERS: dict[str, LayerSpec] = {}
_ALIASES: dict[str, str] = {}


def register_layer(spec: LayerSpec) -> LayerSpec:
    for key in (spec.name, *spec.aliases):
        if key in LAYERS or key in _ALIASES:
            raise ValueError(f"layer {key} registered twice")
    LAYERS[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def _load_families() -> None:
    # Importing a family module registers its layers; kept here so `get_layer` always sees all.
    from neuralc.layers import families  # noqa: F401


def get_layer(name: str) -> LayerSpec | None:
    _load_families()
    return LAYERS.get(name) or LAYERS.get(_ALIASES.get(name, ""))


def all_layers() -> list[LayerSpec]:
    _load_families()
    return list(LAYERS.values())
