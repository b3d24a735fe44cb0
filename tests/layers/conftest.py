"""Fixtures for the layer registry's tests: the frameworks, imported once and only on use.

`neuralc.layers` itself never imports torch or TensorFlow (the check path stays light); these
tests build the framework modules the registry claims to match.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def torch() -> ModuleType:
    import torch

    torch.manual_seed(0)
    return torch


@pytest.fixture(scope="session")
def keras() -> ModuleType:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras
