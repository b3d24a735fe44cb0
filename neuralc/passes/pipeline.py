"""Pipeline text: `unroll-repeat,canonicalize{max-iterations=4},fixpoint(cse,dce)`.

    pipeline := item (',' item)*
    item     := NAME options?                      a registered pass
              | 'fixpoint' options? '(' pipeline ')'   repeat until no pass changes the IR
    options  := '{' (KEY '=' VALUE (',' KEY '=' VALUE)*)? '}'

Option keys are the pass's dataclass fields with dashes for underscores (`max-count` is
`max_count`); values convert to the field's type (`true`/`false` for bools, ints, floats; a
string may be quoted, `"a,b"`, to hold commas or braces). `fixpoint` takes one option,
`max-iterations` (default 10). `format_pipeline` writes the text back, options that differ from
their defaults only, so `parse(format(p)) == p`.

Errors are `CompileError`s (a pipeline is user input): an unknown pass or option names the
column and suggests the closest registered name.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from neuralc.diagnostics import did_you_mean
from neuralc.passes.base import PASSES, Pass, PipelineError, pipeline_error

FIXPOINT = "fixpoint"
DEFAULT_MAX_ITERATIONS = 10


@dataclass(frozen=True)
class PassSpec:
    """One pass as written: its name and its options, values still text."""

    name: str
    options: tuple[tuple[str, str], ...] = ()
    column: int = 1


@dataclass(frozen=True)
class FixpointSpec:
    items: tuple[PassSpec | FixpointSpec, ...]
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    column: int = 1


@dataclass(frozen=True)
class FixpointGroup:
    """Passes run in order, again and again, until an iteration changes nothing; more than
    `max_iterations` iterations is an error naming what never settled."""

    passes: tuple[Pass | FixpointGroup, ...]
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    name: typing.ClassVar[str] = FIXPOINT


PipelineItem = Pass | FixpointGroup
Spec = PassSpec | FixpointSpec


class Pipeline(list[PipelineItem]):
    """A built pipeline: its items, plus the pass names `--disable-pass` took out of it, which
    the pass manager hands to the passes (`PassContext.disabled`) so that a legality failure
    can say the pass that lowers an op was disabled rather than missing."""

    disabled: tuple[str, ...] = ()


def as_pipeline(items: Iterable[PipelineItem], disabled: Iterable[str] = ()) -> Pipeline:
    out = Pipeline(items)
    out.disabled = tuple(dict.fromkeys(disabled))
    return out


# -- parsing ------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> PipelineError:
        shown = self.text if len(self.text) < 120 else self.text[:117] + "..."
        return pipeline_error(f"bad pipeline at column {self.pos + 1}: {message}",
                              f"in '{shown}'", "pipeline text: name, name{option=value}, "
                              "fixpoint(name,...), separated by commas")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            got = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected '{ch}', got {got}")
        self.pos += 1

    def word(self, what: str) -> str:
        self.skip()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum()
                                             or self.text[self.pos] in "-_.:"):
            self.pos += 1
        if start == self.pos:
            got = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"
            raise self.fail(f"expected {what}, got {got}")
        return self.text[start:self.pos]

    def value(self) -> str:
        self.skip()
        if self.peek() == '"':
            end = self.text.find('"', self.pos + 1)
            if end < 0:
                raise self.fail("unterminated string")
            out, self.pos = self.text[self.pos + 1:end], end + 1
            return out
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ",}":
            self.pos += 1
        out = self.text[start:self.pos].strip()
        if not out:
            raise self.fail("expected a value")
        return out


def parse_pipeline(text: str) -> list[Spec]:
    """Pipeline text → specs (names are not looked up yet; `build_pipeline` does that)."""
    reader = _Reader(text)
    if not reader.peek():
        return []
    items = _items(reader)
    if reader.peek():
        raise reader.fail(f"unexpected {reader.peek()!r}")
    return items


def _items(reader: _Reader) -> list[Spec]:
    items = [_item(reader)]
    while reader.peek() == ",":
        reader.pos += 1
        items.append(_item(reader))
    return items


def _item(reader: _Reader) -> Spec:
    reader.skip()
    column = reader.pos + 1
    name = reader.word("a pass name")
    options: list[tuple[str, str]] = []
    if reader.peek() == "{":
        reader.pos += 1
        if reader.peek() != "}":
            while True:
                key = reader.word("an option name")
                reader.expect("=")
                options.append((key, reader.value()))
                if reader.peek() != ",":
                    break
                reader.pos += 1
        reader.expect("}")
    if name != FIXPOINT:
        return PassSpec(name, tuple(options), column)
    limit = DEFAULT_MAX_ITERATIONS
    for key, value in options:
        if key.replace("_", "-") != "max-iterations":
            raise pipeline_error(f"unknown option '{key}' of fixpoint", "fixpoint takes "
                                 "max-iterations")
        limit = _convert(FIXPOINT, key, value, int)  # type: ignore[assignment]
        if limit < 1:
            raise pipeline_error("fixpoint max-iterations must be at least 1")
    reader.expect("(")
    inner = _items(reader)
    reader.expect(")")
    return FixpointSpec(tuple(inner), limit, column)


# -- building -----------------------------------------------------------------------------------


def known_pass_names(extra: Iterable[str] = ()) -> list[str]:
    return sorted({*PASSES, *extra})


def unknown_pass(name: str, where: str = "", extra: Iterable[str] = ()) -> PipelineError:
    hint = did_you_mean(name, known_pass_names(extra))
    return pipeline_error(f"unknown pass '{name}'{where}", hint,
                          "known passes: " + ", ".join(known_pass_names()))


def build_pipeline(specs: Sequence[Spec] | str) -> list[PipelineItem]:
    """Specs (or pipeline text) → pass instances and fixpoint groups."""
    if isinstance(specs, str):
        specs = parse_pipeline(specs)
    return [_build(spec) for spec in specs]


def _build(spec: Spec) -> PipelineItem:
    if isinstance(spec, FixpointSpec):
        return FixpointGroup(tuple(_build(s) for s in spec.items), spec.max_iterations)
    cls = PASSES.get(spec.name)
    if cls is None:
        raise unknown_pass(spec.name, f" (column {spec.column})")
    return make_pass(cls, dict(spec.options))


def pass_options(cls: type[Pass]) -> dict[str, dataclasses.Field]:
    """The pass's options by their pipeline spelling (`max-count`)."""
    return {f.name.replace("_", "-"): f for f in dataclasses.fields(cls) if f.init}


def make_pass(cls: type[Pass], options: dict[str, str]) -> Pass:
    fields = pass_options(cls)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, object] = {}
    for key, text in options.items():
        spelled = key.replace("_", "-")
        f = fields.get(spelled)
        if f is None:
            known = ", ".join(fields) or "none"
            raise pipeline_error(f"unknown option '{key}' of pass '{cls.name}'",
                                 did_you_mean(spelled, fields), f"its options: {known}")
        kwargs[f.name] = _convert(cls.name, spelled, text, hints.get(f.name, str))
    try:
        return cls(**kwargs)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise pipeline_error(f"pass '{cls.name}': {exc}") from None


def _convert(pass_name: str, key: str, text: str, hint: object) -> object:
    options = typing.get_args(hint) or (hint,)
    if text.lower() in ("none", "null") and type(None) in options:
        return None
    for kind in (bool, int, float, str):
        if kind not in options:
            continue
        if kind is bool:
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
            continue
        try:
            return kind(text)
        except ValueError:
            continue
    names = " or ".join(_KINDS.get(o, getattr(o, "__name__", str(o))) for o in options)
    raise pipeline_error(f"option '{key}' of pass '{pass_name}' must be {names}, got {text!r}")


# How `_convert` names the types an option accepts (users read "an integer", not "int").
_KINDS: dict[object, str] = {bool: "true or false", int: "an integer", float: "a number",
                             str: "a string", type(None): "none"}


# -- writing ------------------------------------------------------------------------------------


def format_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    text = str(value)
    return f'"{text}"' if any(c in text for c in ',{}()" ') or not text else text


def format_pass(p: PipelineItem) -> str:
    if isinstance(p, FixpointGroup):
        limit = ("" if p.max_iterations == DEFAULT_MAX_ITERATIONS
                 else f"{{max-iterations={p.max_iterations}}}")
        return f"{FIXPOINT}{limit}(" + ",".join(format_pass(q) for q in p.passes) + ")"
    options = []
    for spelled, f in pass_options(type(p)).items():
        value = getattr(p, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if value != default:
            options.append(f"{spelled}={format_value(value)}")
    return type(p).name + (f"{{{','.join(options)}}}" if options else "")


def format_pipeline(items: Iterable[PipelineItem]) -> str:
    return ",".join(format_pass(p) for p in items)


def flatten(items: Iterable[PipelineItem]) -> list[Pass]:
    """Every pass instance, fixpoint groups opened."""
    out: list[Pass] = []
    for item in items:
        out += flatten(item.passes) if isinstance(item, FixpointGroup) else [item]
    return out


def without(items: Iterable[PipelineItem], names: Iterable[str]) -> list[PipelineItem]:
    """The pipeline minus every pass named in `names` (`--disable-pass`); emptied groups go."""
    drop = list(names)
    out: list[PipelineItem] = []
    for item in items:
        if isinstance(item, FixpointGroup):
            inner = without(item.passes, drop)
            if inner:
                out.append(dataclasses.replace(item, passes=tuple(inner)))
        elif type(item).name not in drop:
            out.append(item)
    return as_pipeline(out, [*getattr(items, "disabled", ()), *drop])


def replace_options(items: Iterable[PipelineItem], name: str, **changes: object
                    ) -> list[PipelineItem]:
    """The pipeline with `changes` applied to every pass named `name` (its disabled names
    kept)."""
    out = as_pipeline((), getattr(items, "disabled", ()))
    for item in items:
        if isinstance(item, FixpointGroup):
            out.append(dataclasses.replace(
                item, passes=tuple(replace_options(item.passes, name, **changes))))
        elif type(item).name == name:
            out.append(dataclasses.replace(item, **changes))  # type: ignore[type-var]
        else:
            out.append(item)
    return out


__all__ = [
    "FIXPOINT", "FixpointGroup", "FixpointSpec", "PassSpec", "Pipeline", "PipelineError",
    "PipelineItem", "as_pipeline", "build_pipeline", "flatten", "format_pass", "format_pipeline",
    "make_pass", "parse_pipeline", "pass_options", "pipeline_error", "replace_options",
    "unknown_pass", "without",
]
