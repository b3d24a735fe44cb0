"""`neuralc.ir.types`: how many values an HPO attribute has."""

from __future__ import annotations

import sys

import pytest

from neuralc.ir.types import INT64_MAX, INT64_MIN, MAX_CANDIDATES, HPOAttr


@pytest.mark.parametrize(
    "attr",
    [
        HPOAttr("range", (4, 16)),
        HPOAttr("range", (4, 4)),
        HPOAttr("range", (-7, 20), (("step", 3),)),
        HPOAttr("range", (0, 10), (("step", 5),)),
        HPOAttr("range", (0, 11), (("step", 5),)),
        HPOAttr("log_range", (1, 100)),
    ],
)
def test_size_counts_the_integers_the_tuner_may_draw(attr: HPOAttr) -> None:
    lo, hi = attr.args
    step = dict(attr.kwargs).get("step", 1)
    expected = len(range(lo, hi + 1, step))  # type: ignore[arg-type,operator]
    assert attr.size() == expected == len(attr.candidates())


@pytest.mark.parametrize(
    ("lo", "hi", "step", "expected"),
    [
        (-9 * 10**18, 9 * 10**18, 1, 18 * 10**18 + 1),
        (INT64_MIN, INT64_MAX, 1, 2**64),
        (INT64_MIN, INT64_MAX, 2, 2**63),
        (INT64_MIN, INT64_MAX, INT64_MAX, 3),
    ],
)
def test_size_of_a_range_past_sys_maxsize(lo: int, hi: int, step: int, expected: int) -> None:
    """len(range(...)) raises OverflowError past sys.maxsize values; int64 bounds reach it."""
    attr = HPOAttr("range", (lo, hi), (("step", step),))
    assert expected > sys.maxsize or step == INT64_MAX
    assert attr.size() == expected
    assert attr.candidates()[:2] == (lo, lo + step)
    assert len(attr.candidates()) == min(expected, MAX_CANDIDATES)


def test_size_of_a_continuous_range_is_what_checking_tries() -> None:
    """A float range is not enumerated: its size is its candidates (the grid, or the ends)."""
    assert HPOAttr("range", (0.1, 0.3), (("step", 0.1),)).size() == 3
    assert HPOAttr("range", (0.1, 0.3)).size() == 2
    assert HPOAttr("log_range", (1e-4, 1e-2)).size() == 2
    assert HPOAttr("choice", ("a", "b", "c")).size() == 3
