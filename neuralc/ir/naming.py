"""Layer instance names: Keras-like counters (`dense`, `dense_1`, …) and repetition names.

Names are identity: they become submodule names in emitted code and weight-name prefixes in the
weight file. A repeated single layer `TransformerEncoder(...) * 6` is an `nn.repeat` named
`transformer_encoder` whose body op is `transformer_encoder.layer`; its i-th copy is
`transformer_encoder.<i>` (PyTorch's `nn.ModuleList` naming). A repeated block (a macro) keeps
inner names: body op `block.conv2d` becomes `block.<i>.conv2d`.
"""

from __future__ import annotations

from neuralc.layers.spec import snake_case

SINGLE_BODY = "layer"


class NameScope:
    """Hands out unique names with Keras-style counters, within an optional dotted prefix."""

    def __init__(self, prefix: str = "", taken: set[str] | None = None) -> None:
        self.prefix = prefix
        self.taken: set[str] = taken if taken is not None else set()
        # Next counter per stem, so naming n layers of one kind stays linear, not quadratic.
        self._next: dict[str, int] = {}

    def fresh(self, base: str) -> str:
        stem = snake_case(base)
        counter = self._next.get(stem, 0)
        name = self._qualified(stem if counter == 0 else f"{stem}_{counter}")
        while name in self.taken:
            counter += 1
            name = self._qualified(f"{stem}_{counter}")
        self._next[stem] = counter + 1
        self.taken.add(name)
        return name

    def exact(self, name: str) -> str:
        qualified = self._qualified(name)
        self.taken.add(qualified)
        return qualified

    def child(self, prefix: str) -> NameScope:
        return NameScope(self._qualified(prefix), self.taken)

    def copy(self) -> NameScope:
        clone = NameScope(self.prefix, set(self.taken))
        clone._next = dict(self._next)
        return clone

    def _qualified(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name


def unrolled_name(body_name: str, repeat_name: str, index: int) -> str:
    """The name of a body op's copy in repetition `index` (0-based)."""
    inner = body_name.removeprefix(repeat_name + ".")
    if inner == SINGLE_BODY:
        return f"{repeat_name}.{index}"
    return f"{repeat_name}.{index}.{inner}"
