"""Fixtures of the training tests: temporary model files, `neuralc` run in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from neuralc.cli import main


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """`neuralc ARGS...` in-process; returns (exit status, stderr)."""

    def _run(*args: object) -> tuple[int, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err

    return _run
