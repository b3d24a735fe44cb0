"""The pass contract.

A pass is a frozen dataclass whose fields are its options (they appear in pipeline text as
`name{option=value}`, dashes for underscores); `run` mutates the module in place and returns
whether it changed anything (onnx_ir's `modified` flag). The pass manager — not each pass —
verifies the IR after every pass, times passes and dumps IR (xDSL's discipline).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from neuralc.diagnostics import Diagnostic
from neuralc.ir.core import Module


@dataclass
class FusionRejection:
    """Why a fusion candidate did not match: the first failed check, at the candidate's op."""

    pattern: str
    op_name: str
    reason: str


@dataclass
class PassContext:
    """What passes may read and report besides the IR."""

    opt_level: int = 0
    target: str | None = None  # the backend that will emit the module, when known
    devices: tuple[str, ...] = ()  # `--devices cuda:0,cuda:1` for `auto` placement
    available_devices: tuple[str, ...] | None = None  # None: do not check availability
    kernels: str = "auto"  # "auto" (Triton on CUDA) or "torch" (composites)
    training: bool = False
    warnings: list[Diagnostic] = field(default_factory=list)
    fusion_rejections: list[FusionRejection] = field(default_factory=list)
    # rewrite-rule name -> times it fired (tinygrad-style hit counts)
    hits: dict[str, int] = field(default_factory=dict)

    def hit(self, rule: str) -> None:
        self.hits[rule] = self.hits.get(rule, 0) + 1

    def reject(self, pattern: str, op_name: str, reason: str) -> None:
        self.fusion_rejections.append(FusionRejection(pattern, op_name, reason))


@dataclass(frozen=True)
class Pass(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    # The lowest -O level whose default pipeline includes this pass (TVM's opt_level).
    min_level: ClassVar[int] = 0

    @abstractmethod
    def run(self, module: Module, ctx: PassContext) -> bool:
        """Transform `module` in place; return whether anything changed."""


PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    if cls.name in PASSES and PASSES[cls.name] is not cls:
        raise ValueError(f"pass {cls.name} registered twice")
    PASSES[cls.name] = cls
    return cls


PassFactory = Callable[..., Pass]
