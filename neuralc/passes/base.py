"""The pass contract.

A pass is a frozen dataclass whose fields are its options (they appear in pipeline text as
`name{option=value}`, dashes for underscores); `run` mutates the module in place and returns
whether it changed anything (onnx_ir's `modified` flag). The pass manager — not each pass —
verifies the IR after every pass, times passes and dumps IR (xDSL's discipline).

An option declares its valid values once, with `option(default, minimum=..., choices=...)`;
constructing the pass checks them (`check_options`), so pipeline text, `dataclasses.replace`
and direct construction all give the same diagnostic instead of a crash inside `run`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.ir.core import Module

T = TypeVar("T")


class PipelineError(CompileError):
    """A malformed or unknown pipeline, or a pass option out of its range."""


def pipeline_error(message: str, *notes: str | None) -> PipelineError:
    return PipelineError(Diagnostic(message, None, "error", tuple(n for n in notes if n)))


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
    # The running pipeline's pass names, and those `--disable-pass` left out (set by the pass
    # manager): a legality failure says whether the pass that lowers an op is missing or off.
    pipeline: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()

    def hit(self, rule: str) -> None:
        self.hits[rule] = self.hits.get(rule, 0) + 1

    def warn(self, diagnostic: Diagnostic) -> None:
        """Report a warning once: a pass that runs twice in a pipeline (place-devices at -O2)
        finds the same problem twice, and the user should read it once."""
        if diagnostic not in self.warnings:
            self.warnings.append(diagnostic)

    def reject(self, pattern: str, op_name: str, reason: str) -> None:
        self.fusion_rejections.append(FusionRejection(pattern, op_name, reason))


@dataclass(frozen=True)
class Pass(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    # The lowest -O level whose default pipeline includes this pass (TVM's opt_level).
    min_level: ClassVar[int] = 0

    def __post_init__(self) -> None:
        check_options(self)

    @abstractmethod
    def run(self, module: Module, ctx: PassContext) -> bool:
        """Transform `module` in place; return whether anything changed."""


def option(default: T, *, minimum: int | float | None = None,
           choices: tuple[str, ...] = ()) -> T:
    """A pass option (a dataclass field) with its valid values: at least `minimum` (None is
    still allowed when the type admits it), or one of `choices`."""
    metadata = {"minimum": minimum, "choices": choices}
    return field(default=default, metadata=metadata)  # type: ignore[no-any-return]


def check_options(p: Pass) -> None:
    """Raise a PipelineError for the first option of `p` outside its declared range."""
    name = type(p).name
    for f in dataclasses.fields(p):
        value: Any = getattr(p, f.name)
        spelled = f.name.replace("_", "-")
        minimum = f.metadata.get("minimum")
        choices = f.metadata.get("choices") or ()
        if (minimum is not None and isinstance(value, int | float)
                and not isinstance(value, bool) and value < minimum):
            default = f.default
            example = default if isinstance(default, int | float) else minimum
            shown = "none" if default is None else default
            raise pipeline_error(
                f"option '{spelled}' of pass '{name}' must be at least {minimum}, got {value}",
                f"for example {name}{{{spelled}={example}}} (the default is {shown})")
        if choices and value not in choices:
            raise pipeline_error(
                f"option '{spelled}' of pass '{name}' must be one of {', '.join(choices)}, "
                f"got {value!r}", f"for example {name}{{{spelled}={f.default}}}")


PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    if cls.name in PASSES and PASSES[cls.name] is not cls:
        raise ValueError(f"pass {cls.name} registered twice")
    PASSES[cls.name] = cls
    return cls


PassFactory = Callable[..., Pass]
