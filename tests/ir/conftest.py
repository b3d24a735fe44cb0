"""Fixtures of the IR tests: a throwaway `test` dialect and fake layers, removed afterwards so
other suites see the op table as the compiler builds it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ir_testlib import FAKE_LAYERS, TEST_OPS

from neuralc.ir.core import OPS
from neuralc.ir.dialects import ensure_dialects
from neuralc.ir.nn import register_nn_dialect


@pytest.fixture(scope="session", autouse=True)
def ir_dialects() -> Iterator[None]:
    ensure_dialects()
    added = [d.name for d in TEST_OPS if d.name not in OPS]
    for opdef in TEST_OPS:
        OPS[opdef.name] = opdef
    register_nn_dialect(FAKE_LAYERS)
    added += [spec.op_name for spec in FAKE_LAYERS]
    yield
    for name in added:
        OPS.pop(name, None)
