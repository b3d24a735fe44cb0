"""The Neural DSL's abstract syntax tree.

Plain frozen dataclasses, each carrying the `SourceLocation` where it starts, so every later
diagnostic can point at the user's text. The parser builds these from textX's model; nothing
downstream sees textX objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from neuralc.diagnostics import SourceLocation

# A literal value as the user wrote it, after lexing: numbers, strings, booleans, None.
Scalar: TypeAlias = int | float | str | bool | None


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class Name:
    """A bare identifier used as a value: `optimizer: Adam`, `loss: categorical_crossentropy`."""

    name: str
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class TupleExpr:
    items: tuple[Expr, ...]
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class Arg:
    """A positional (`name is None`) or named argument."""

    name: str | None
    value: Expr
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class Call:
    """A call used as a value: `Adam(learning_rate=1e-3)`, `ExponentialDecay(1e-4, 1000, 0.96)`."""

    name: str
    args: tuple[Arg, ...]
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class HPO:
    """`HPO(choice(a, b))`, `HPO(range(lo, hi, step=s))`, `HPO(log_range(lo, hi))`."""

    kind: str  # "choice" | "range" | "log_range"
    args: tuple[Arg, ...]
    loc: SourceLocation


Expr: TypeAlias = Literal | Name | TupleExpr | ListExpr | Call | HPO


@dataclass(frozen=True, slots=True)
class LayerCall:
    """One line of a `layers:` section: a layer or macro use.

    `Conv2D(32, (3,3)) * 2 @ "cuda:0"`, `ResidualConnection { ... }`, `MyBlock`, `MyBlock()`.
    `has_parens` tells `MyBlock` from `MyBlock()` (both are valid macro uses).
    """

    name: str
    args: tuple[Arg, ...]
    loc: SourceLocation
    has_parens: bool = True
    body: tuple[LayerItem, ...] | None = None
    repeat: Expr | None = None
    device: Literal | None = None


@dataclass(frozen=True, slots=True)
class Branch:
    """A named branch of a multi-input network: `image: { Conv2D(...) ... }`."""

    input_name: str
    layers: tuple[LayerItem, ...]
    loc: SourceLocation


LayerItem: TypeAlias = LayerCall | Branch


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One network input. `name` is None for the single unnamed `input: (...)`.

    `shape` holds the dimensions as written (a leading None/NONE included); the IR builder
    decides what a None means (semantics.md: a leading one is the batch).
    """

    name: str | None
    shape: TupleExpr
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class Setting:
    """`key: value` inside `train { }`, `execution { }` and similar blocks."""

    key: str
    value: Expr
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class Block:
    """A `train { }`, `execution { }` or `execute { }` block (keyword kept as written)."""

    keyword: str
    settings: tuple[Setting, ...]
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    loc: SourceLocation
    inputs: tuple[InputSpec, ...] = ()
    layers: tuple[LayerItem, ...] = ()
    layers_loc: SourceLocation | None = None
    loss: Expr | None = None
    optimizer: Expr | None = None
    metrics: Expr | None = None
    blocks: tuple[Block, ...] = ()
    # Any other top-level `key: value` inside the network (kept, so checks can warn on them).
    settings: tuple[Setting, ...] = ()


@dataclass(frozen=True, slots=True)
class MacroDef:
    """`define Name { layers }`."""

    name: str
    layers: tuple[LayerItem, ...]
    loc: SourceLocation


@dataclass(frozen=True, slots=True)
class Program:
    path: str
    networks: tuple[Network, ...] = ()
    macros: tuple[MacroDef, ...] = ()
    source: str = field(default="", repr=False, compare=False)
