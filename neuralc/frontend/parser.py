"""Source text → `ast.Program`, with syntax diagnostics.

The textX metamodel is built once per process (about 60 ms) and reused: `neuralc check` must stay
fast, so nothing heavier than textX is imported here. textX's model never leaves this package;
`build_ast` turns it into the frozen dataclasses of `ast.py`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation
from neuralc.frontend import ast
from neuralc.frontend.build_ast import AstBuilder, Locator
from neuralc.frontend.syntax_errors import syntax_diagnostic, too_deep

__all__ = ["ParseError", "parse_file", "parse_text", "read_source"]

GRAMMAR = Path(__file__).with_name("neural.tx")


class ParseError(CompileError):
    """A `CompileError` raised before any `Program` exists.

    It carries the text it was raised for (`sources`, keyed by path) so a caller can render the
    source line and caret without reading the file a second time.
    """

    def __init__(self, diagnostics: Diagnostic | list[Diagnostic], sources: dict[str, str]):
        super().__init__(diagnostics)
        self.sources = sources


@functools.cache
def _metamodel() -> Any:
    # Imported here, not at module level: importing the parser module (e.g. for its types)
    # should not pay for textX.
    from textx import metamodel_from_file

    # autokwd: keywords match on word boundaries, so `layersX` is not `layers` + `X`.
    return metamodel_from_file(str(GRAMMAR), autokwd=True)


def parse_text(text: str, path: str = "<string>") -> ast.Program:
    """Parse Neural DSL source. Raises `ParseError` (a `CompileError`) on any user error."""
    from textx.exceptions import TextXSyntaxError

    if text.startswith("\ufeff"):
        # A UTF-8 byte order mark (some Windows editors write one) is not part of the program.
        text = text[1:]
    sources = {path: text}
    locator = Locator(path, text)
    builder = AstBuilder(locator)
    try:
        program = builder.program(_metamodel().model_from_str(text), text)
    except TextXSyntaxError as exc:
        raise ParseError(syntax_diagnostic(exc, text, locator), sources) from None
    except RecursionError:
        # The PEG parser recurses per bracket level; hundreds of levels exhaust Python's stack.
        raise ParseError(too_deep(text, locator), sources) from None
    if builder.diagnostics:
        raise ParseError(builder.diagnostics, sources)
    if not program.networks and not program.macros:
        raise ParseError(
            Diagnostic(
                "file defines no network",
                SourceLocation(path, 1, 1),
                notes=("a Neural file holds one or more 'network Name { ... }' definitions",),
            ),
            sources,
        )
    return program


def read_source(path: str | Path) -> str:
    """The text of a source file, or a `ParseError` saying why it cannot be read as one."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise _unreadable(name, "no such file") from None
    except IsADirectoryError:
        raise _unreadable(name, "it is a directory") from None
    except PermissionError:
        raise _unreadable(name, "permission denied") from None
    except OSError as exc:
        raise _unreadable(name, exc.strerror or type(exc).__name__) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(name, data, exc) from None


def parse_file(path: str | Path) -> ast.Program:
    """Read and parse a `.neural` file; every failure is a `ParseError` with a diagnostic."""
    return parse_text(read_source(path), str(path))


def _unreadable(name: str, reason: str) -> ParseError:
    return ParseError(Diagnostic(f"cannot read '{name}': {reason}"), {})


def _not_utf8(name: str, data: bytes, exc: UnicodeDecodeError) -> ParseError:
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    # Columns count characters, as everywhere else; the bytes before the bad one on its line
    # are valid UTF-8 by construction (the decoder stops at the first error).
    column = len(data[line_start : exc.start].decode("utf-8")) + 1
    # Render what can be decoded, so the caret line still shows the user's text.
    text = data.decode("utf-8", errors="replace")
    diagnostic = Diagnostic(
        f"file is not valid UTF-8: invalid byte 0x{data[exc.start]:02x}",
        SourceLocation(name, line, column),
        notes=("save the file as UTF-8",),
    )
    return ParseError(diagnostic, {name: text})
