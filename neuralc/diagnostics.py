"""User-facing diagnostics: `path:line:col: error: message`, the source line, a caret, notes.

Every error a user can cause is raised as a `CompileError` holding `Diagnostic`s; the CLI renders
them against the source text and exits 1. Internal bugs stay ordinary exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True, slots=True, order=True)
class SourceLocation:
    """A 1-based line and column in a source file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(slots=True)
class Diagnostic:
    message: str
    loc: SourceLocation | None = None
    severity: Severity = "error"
    notes: tuple[str, ...] = ()
    # Secondary locations (e.g. "previous definition is here"), rendered as notes with a caret.
    related: tuple[tuple[SourceLocation, str], ...] = field(default=())

    def render(self, sources: Mapping[str, str] | None = None) -> str:
        lines = [_header(self.loc, self.severity, self.message)]
        lines += _snippet(self.loc, sources)
        for loc, message in self.related:
            lines.append(_header(loc, "note", message))
            lines += _snippet(loc, sources)
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _header(loc: SourceLocation | None, severity: str, message: str) -> str:
    return f"{loc}: {severity}: {message}" if loc else f"neuralc: {severity}: {message}"


def _snippet(loc: SourceLocation | None, sources: Mapping[str, str] | None) -> list[str]:
    if loc is None or sources is None or loc.file not in sources:
        return []
    text_lines = sources[loc.file].splitlines()
    if not 1 <= loc.line <= len(text_lines):
        return []
    source_line = text_lines[loc.line - 1].expandtabs(1)
    caret_column = max(loc.column, 1)
    return [f"  {source_line}", "  " + " " * (caret_column - 1) + "^"]


class CompileError(Exception):
    """One or more user errors; never a bug in neuralc."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic]) -> None:
        self.diagnostics = (
            [diagnostics] if isinstance(diagnostics, Diagnostic) else list(diagnostics)
        )
        super().__init__("\n".join(d.message for d in self.diagnostics))

    def render(self, sources: Mapping[str, str] | None = None) -> str:
        return "\n".join(d.render(sources) for d in self.diagnostics)


def error(
    message: str, loc: SourceLocation | None = None, *notes: str
) -> CompileError:
    """Shorthand for raising a single-diagnostic error: `raise error("...", loc, "fix")`."""
    return CompileError(Diagnostic(message, loc, "error", tuple(n for n in notes if n)))


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' note for a misspelled name, or None if nothing is close."""
    import difflib

    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered:
        return f"did you mean '{lowered[word.lower()]}'?"
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
