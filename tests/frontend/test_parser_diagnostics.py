"""Expected diagnostics: exact location, message and rendering."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from neuralc.diagnostics import CompileError, SourceLocation
from neuralc.frontend.parser import ParseError, parse_file, parse_text


def error(text: str, path: str = "m.neural") -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_text(text, path)
    assert isinstance(info.value, CompileError)
    return info.value


def rendered(text: str) -> str:
    exc = error(text)
    return exc.render(exc.sources)


def expect(text: str, rendering: str) -> None:
    assert rendered(text) == textwrap.dedent(rendering).strip("\n")


def test_missing_paren_points_after_the_last_argument() -> None:
    expect(
        'network N {\n  layers:\n    Dense(10, activation="relu"\n    Dropout(0.5)\n}\n',
        """
        m.neural:3:32: error: syntax error: expected ')' or ',' after '"relu"'
              Dense(10, activation="relu"
                                         ^
        m.neural:3:10: note: to match this '('
              Dense(10, activation="relu"
                   ^
        """,
    )


def test_missing_paren_of_a_multi_line_call_points_at_the_opener() -> None:
    expect(
        'network N {\n  optimizer: Adam(\n    learning_rate=0.1\n\n  loss: "mse"\n}\n',
        """
        m.neural:3:22: error: syntax error: expected ')' or ',' after '0.1'
              learning_rate=0.1
                               ^
        m.neural:2:18: note: to match this '('
            optimizer: Adam(
                           ^
        """,
    )


def test_missing_comma_stays_on_the_token() -> None:
    exc = error("network N {\n  layers: Dense(10 units=3)\n}\n")
    (diagnostic,) = exc.diagnostics
    assert diagnostic.message == "syntax error: expected ')' or ',', found 'units'"
    assert diagnostic.loc == SourceLocation("m.neural", 2, 20)
    assert diagnostic.related == ()


def test_missing_brace_at_end_of_file() -> None:
    expect(
        "network N {\n  layers:\n    Dense(10)\n",
        """
        m.neural:3:14: error: syntax error: expected '}', a layer or a network section, found end of file
              Dense(10)
                       ^
        m.neural:1:11: note: to match this '{'
          network N {
                    ^
        """,
    )


def test_missing_brace_before_the_next_network() -> None:
    expect(
        "network A {\n  layers: Dense(1)\n\nnetwork B {\n  layers: Dense(1)\n}\n",
        """
        m.neural:4:1: error: syntax error: expected '}', a layer or a network section, found 'network'
          network B {
          ^
        m.neural:1:11: note: to match this '{'
          network A {
                    ^
        """,
    )


def test_bad_token() -> None:
    expect(
        "network N {\n  layers:\n    Dense(10) $ 2\n}\n",
        """
        m.neural:3:15: error: syntax error: expected '}', a layer or a network section, found '$'
              Dense(10) $ 2
                        ^
        """,
    )


def test_unterminated_string() -> None:
    expect(
        'network N {\n  loss: "mse\n}\n',
        """
        m.neural:2:9: error: syntax error: unterminated string literal
            loss: "mse
                  ^
        note: a string ends with a matching quote on the same line
        """,
    )


def test_layers_without_colon() -> None:
    expect(
        "network N {\n  input: (3,)\n  layers\n    Dense(10)\n}\n",
        """
        m.neural:3:9: error: syntax error: expected ':' after 'layers'
            layers
                  ^
        note: a section name is followed by a colon: 'layers:'
        """,
    )


def test_input_without_colon_same_line() -> None:
    (diagnostic,) = error("network N {\n  input (3,)\n}\n").diagnostics
    assert diagnostic.message == "syntax error: expected ':', found '('"
    assert diagnostic.loc == SourceLocation("m.neural", 2, 9)
    assert diagnostic.notes == ("a section name is followed by a colon: 'input:'",)


def test_unquoted_device_and_unknown_hpo_kind() -> None:
    (device,) = error("network N {\n  layers: Dense(1) @ cuda\n}\n").diagnostics
    assert (device.message, device.loc.column if device.loc else None) == (
        "syntax error: expected a string, found 'cuda'",
        22,
    )
    assert device.notes == ('a device is a quoted string, as in @ "cuda:0"',)
    (hpo,) = error("network N {\n  layers: Dense(HPO(pick(1, 2)))\n}\n").diagnostics
    assert hpo.message == "syntax error: expected 'choice', 'log_range' or 'range', found 'pick'"


def test_misspelled_keywords_get_a_suggestion() -> None:
    (top,) = error("netwrk N {\n}\n").diagnostics
    assert top.loc == SourceLocation("m.neural", 1, 1)
    assert top.notes == ("did you mean 'network'?",)
    (block,) = error(
        "network N {\n  layers: Dense(1)\n  trian {\n    epochs: 10\n  }\n}\n"
    ).diagnostics
    assert block.loc == SourceLocation("m.neural", 4, 13)
    assert block.notes[-1] == "'trian' is read as a layer: did you mean 'train'?"


def test_positional_argument_after_named() -> None:
    expect(
        "network N {\n  layers: Dense(units=10, 3)\n}\n",
        """
        m.neural:2:27: error: positional argument follows named argument
            layers: Dense(units=10, 3)
                                    ^
        m.neural:2:17: note: first named argument is here
            layers: Dense(units=10, 3)
                          ^
        note: write positional arguments before named ones
        """,
    )


def test_duplicates_are_all_reported() -> None:
    exc = error(
        "network N {\n  loss: a\n  loss: b\n  layers: D(x=1, x=2)\n"
        "  train { e: 1\n e: 2 }\n  input: { a: (1), a: (2) }\n}\n"
    )
    assert [(d.message, d.loc and d.loc.line) for d in exc.diagnostics] == [
        ("duplicate 'loss' section", 3),
        ("duplicate argument 'x'", 4),
        ("duplicate setting 'e'", 6),
        ("duplicate input 'a'", 7),
    ]
    assert [r[0].line for d in exc.diagnostics for r in d.related] == [2, 4, 5, 7]


def test_nesting_too_deep_is_a_diagnostic() -> None:
    (diagnostic,) = error("network N { train { x: " + "[" * 400 + "]" * 400 + " } }").diagnostics
    assert diagnostic.message == "syntax error: brackets nest too deeply (402 levels)"
    assert diagnostic.loc == SourceLocation("m.neural", 1, 423)


@pytest.mark.parametrize("text", ["", "   \n\t\n", "# only a comment\n\n# another\n"])
def test_empty_file(text: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.neural"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParseError) as info:
        parse_file(path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == "file defines no network"
    assert diagnostic.loc == SourceLocation(str(path), 1, 1)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.neural"
    path.write_bytes(b"network N {\n  layers: Dense(1)  # caf\xe9 \xc3\xa9\n}\n")
    with pytest.raises(ParseError) as info:
        parse_file(path)
    exc = info.value
    (diagnostic,) = exc.diagnostics
    assert diagnostic.loc == SourceLocation(str(path), 2, 26)
    assert exc.render(exc.sources) == (
        f"{path}:2:26: error: file is not valid UTF-8: invalid byte 0xe9\n"
        "    layers: Dense(1)  # caf\ufffd \xe9\n"
        "                           ^\n"
        "note: save the file as UTF-8"
    )


def test_column_of_bad_byte_counts_characters(tmp_path: Path) -> None:
    path = tmp_path / "mixed.neural"
    # Line 2 is "# ok é " (7 characters, 8 bytes) and then the bad byte.
    path.write_bytes(b"# \xc3\xa9\xe2\x82\xac\n# ok \xc3\xa9 \xff\n")
    with pytest.raises(ParseError) as info:
        parse_file(path)
    assert info.value.diagnostics[0].loc == SourceLocation(str(path), 2, 8)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.neural"
    with pytest.raises(ParseError) as info:
        parse_file(path)
    assert info.value.render() == f"neuralc: error: cannot read '{path}': no such file"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as info:
        parse_file(tmp_path)
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.message, diagnostic.loc) == (
        f"cannot read '{tmp_path}': it is a directory",
        None,
    )


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.neural"
    path.write_text("network N { }\n")
    path.chmod(0)
    with pytest.raises(ParseError) as info:
        parse_file(path)
    assert info.value.diagnostics[0].message == f"cannot read '{path}': permission denied"


def test_unmatched_closer_gets_a_note() -> None:
    (extra,) = error("network N {\n  layers: Dense(10))\n}\n").diagnostics
    assert extra.loc == SourceLocation("m.neural", 2, 20)
    assert extra.notes == ("this ')' has no matching '('",)
    (brace,) = error("network N {\n  layers:\n    Dense(10)\n  }\n}\n").diagnostics
    assert brace.message == ("syntax error: expected 'define', 'network' or end of file, found '}'")
    assert (brace.loc, brace.notes) == (
        SourceLocation("m.neural", 5, 1),
        ("this '}' has no matching '{'",),
    )


def test_value_missing_at_end_of_line() -> None:
    expect(
        "network N {\n  train {\n    epochs:\n  }\n}\n",
        """
        m.neural:3:12: error: syntax error: expected a value after ':'
              epochs:
                     ^
        """,
    )


def test_block_written_with_a_colon() -> None:
    (diagnostic,) = error("network N {\n  train: { epochs: 1 }\n}\n").diagnostics
    assert diagnostic.message == "syntax error: expected '{', found ':'"
    assert diagnostic.notes == ("a block has no colon: 'train { ... }'",)
