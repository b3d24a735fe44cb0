"""docs/layers.md is generated from the registry and must be regenerated when it changes."""

from __future__ import annotations

from pathlib import Path

from neuralc.docs_gen import CATEGORIES, render
from neuralc.layers import all_layers
from neuralc.layers.families import EXAMPLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "layers.md"


def test_committed_layers_md_is_up_to_date() -> None:
    assert DOC.read_text() == render(), (
        "docs/layers.md is stale: run `python -m neuralc.docs_gen > docs/layers.md`")


def test_every_layer_is_documented_with_an_example() -> None:
    text = render()
    for spec in all_layers():
        assert spec.name in EXAMPLES, f"{spec.name} has no worked example"
        assert f"\n### {spec.name}\n" in text
        assert spec.category in CATEGORIES, spec.category
        assert spec.doc.strip(), spec.name
        assert all(p.doc for p in spec.params), spec.name
