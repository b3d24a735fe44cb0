"""`neuralc.frontend.check`: HPO combinations, the tuner's space and the combination note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neuralc.cli import main
from neuralc.diagnostics import CompileError
from neuralc.frontend import check
from neuralc.frontend.check import MAX_NOTE_PROBES, check_program
from neuralc.frontend.parser import parse_text


def test_a_range_wider_than_sys_maxsize_is_a_diagnostic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """18e18 + 1 values: counting them with len(range(...)) raised OverflowError (an internal
    error) before the first value's own diagnostic could be reported."""
    path = tmp_path / "model.neural"
    path.write_text(
        "network T {\n  input: (4,)\n  layers:\n"
        "    Dense(HPO(range(-9000000000000000000, 9000000000000000000)))\n}\n"
    )
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        f"{path}:4:11: error: Dense units must be >= 1, got -9000000000000000000"
    )
    assert "internal error" not in err and "Traceback" not in err


def _counting_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    build = check.build_module

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return build(*args, **kwargs)

    monkeypatch.setattr(check, "build_module", counted)
    return calls


def test_an_error_of_every_combination_builds_few_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deciding whether to name the combination tried every other one (10,000 builds here)."""
    calls = _counting_builds(monkeypatch)
    program = parse_text(
        "network T { input: (4,) layers: Dense(HPO(range(1, 100000))) Dense(-3) }", "m.neural"
    )
    with pytest.raises(CompileError, match="Dense units must be >= 1, got -3") as caught:
        check_program(program)
    assert not any("HPO combination" in n for n in caught.value.diagnostics[0].notes)
    assert len(calls) == 1 + MAX_NOTE_PROBES


def test_an_error_of_the_first_combination_only_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _counting_builds(monkeypatch)
    program = parse_text(
        "network T { input: (10, 64) layers: "
        "TransformerEncoder(num_heads=HPO(choice(7, 8)), dff=64) }",
        "m.neural",
    )
    with pytest.raises(CompileError, match="num_heads=7 does not divide") as caught:
        check_program(program)
    assert "with the HPO combination 7" in caught.value.diagnostics[0].notes[-1]
    assert len(calls) == 2
