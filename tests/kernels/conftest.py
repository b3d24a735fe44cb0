"""Shared setup for the kernel tests.

Mode: every test here runs the Triton kernels in Triton's CPU interpreter
(``TRITON_INTERPRET=1``, set per test with ``monkeypatch`` so nothing leaks into other test
modules of the same pytest-xdist worker), except tests marked ``gpu``, which run the compiled
kernels on CUDA, and fallback tests, which delete the variable themselves.  This works
whatever was imported before: ``neuralc.kernels.dispatch`` reads the variable at call time
and loads a matching copy of the kernel modules.

Randomness: inputs are fresh on every run.  The ``seed`` fixture draws a seed, seeds torch
with it and prints it; set ``NEURALC_TEST_SEED`` to replay a failure.

Helpers and the error metric live in ``kernel_testing.py``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _kernel_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("gpu") is not None:
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
        # One configuration per kernel instead of autotuning: GPU tests check correctness,
        # the benchmark checks the tuned configurations.
        monkeypatch.setenv("NEURALC_TRITON_AUTOTUNE", "0")
    else:
        monkeypatch.setenv("TRITON_INTERPRET", "1")


@pytest.fixture
def seed() -> Iterator[int]:
    value = int(os.environ.get("NEURALC_TEST_SEED", random.SystemRandom().randrange(2**31)))
    torch.manual_seed(value)
    print(f"NEURALC_TEST_SEED={value}")
    yield value
