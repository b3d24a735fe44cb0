"""Every `tests/passes/golden/*.nir` file through its pipeline, checked by `filecheck.py` (whose
docstring documents the format), plus the checker's own behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from filecheck import Check, FileCheckError, filecheck, parse_golden, run_golden

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.nir")), ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    run_golden(path)


def _checks(text: str) -> list[Check]:
    return parse_golden(Path("t.nir"), text).checks


OUTPUT = "module {\n  %a = nn.dense(%x)\n  %b = nn.relu(%a)\n\n  return(%b)\n}\n"


@pytest.mark.parametrize("directives", [
    "// CHECK: nn.dense\n// CHECK-NEXT: nn.relu\n// CHECK-EMPTY:\n// CHECK-NEXT: return",
    "// CHECK: %a =\n// CHECK-SAME: nn.dense(\n// CHECK-NOT: nn.conv\n// CHECK: return(%b)",
    "// CHECK: %{{[a-z]}} = nn.dense\n// CHECK:   %b   =  nn.relu",
    "// CHECK-COUNT-2: = nn.\n// CHECK-NOT: = nn.",
    "// CHECK-NOT: kernel.\n// CHECK: module",
])
def test_filecheck_accepts(directives: str) -> None:
    filecheck(OUTPUT, _checks(directives))


@pytest.mark.parametrize(("directives", "why"), [
    ("// CHECK: nn.conv", "no match found"),
    ("// CHECK: nn.dense\n// CHECK-NEXT: return", "the next line does not match"),
    ("// CHECK: nn.dense\n// CHECK-NOT: nn.relu\n// CHECK: return", "must not be there"),
    ("// CHECK: return\n// CHECK: nn.dense", "no match found"),
    ("// CHECK-COUNT-3: = nn.", "no match found"),
    ("// CHECK: %a\n// CHECK-SAME: nn.relu", "rest of the line"),
    ("// CHECK-NOT: nn.relu", "must not be there"),
])
def test_filecheck_rejects(directives: str, why: str) -> None:
    with pytest.raises(FileCheckError, match=why) as info:
        filecheck(OUTPUT, _checks(directives))
    assert "line 1" in str(info.value) or "line 2" in str(info.value) or "line 3" in str(
        info.value)


def test_parse_golden_header() -> None:
    golden = parse_golden(Path("t.nir"), "// RUN: passes=a,b{x=1, y=2} level=2\n"
                                         "// RUN: available=cpu,cuda:0\n"
                                         "// EXPECT-ERROR: boom\n// EXPECT-WARNING: hm\n")
    assert golden.run == {"passes": "a,b{x=1, y=2}", "level": "2", "available": "cpu,cuda:0"}
    assert golden.errors == ["boom"] and golden.warnings == ["hm"]
    with pytest.raises(FileCheckError, match="bad RUN word"):
        parse_golden(Path("t.nir"), "// RUN: pases=a\n")
