"""Path selection (CUDA / interpreter / composite) and the test hooks of ``dispatch``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

from neuralc.kernels import dispatch

REPO = Path(__file__).resolve().parents[2]


def test_env_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.zeros(2)
    assert dispatch.interpret_enabled() and dispatch.use_triton(cpu)
    monkeypatch.delenv("TRITON_INTERPRET")
    assert not dispatch.interpret_enabled() and not dispatch.use_triton(cpu)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert dispatch.use_triton(cpu, None)


def test_unsupported_dtypes_use_the_composite() -> None:
    assert not dispatch.use_triton(torch.zeros(2, dtype=torch.float64))
    assert dispatch.use_triton(
        torch.zeros(2, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.bool)
    )


def test_each_flavour_gets_its_own_module(monkeypatch: pytest.MonkeyPatch) -> None:
    interpreted = dispatch.triton_module("_attention_fwd_triton")
    assert isinstance(interpreted.attn_fwd, dispatch.FixedConfig)
    assert isinstance(interpreted.attn_fwd.kernel, InterpretedFunction)
    monkeypatch.delenv("TRITON_INTERPRET")
    compiled = dispatch.triton_module("_attention_fwd_triton")
    assert compiled is not interpreted
    assert isinstance(compiled.attn_fwd, dispatch.TunedKernel)
    assert isinstance(compiled.attn_fwd.kernel, JITFunction)
    assert isinstance(compiled._fwd_loop, JITFunction)
    assert dispatch.triton_module("_attention_fwd_triton") is compiled


def test_library_functions_are_restored_after_an_interpreted_launch() -> None:
    before = tl.zeros
    swaps = dispatch._stdlib_swaps(True)
    with dispatch._stdlib_flavour(True):
        assert not isinstance(tl.zeros, JITFunction)
    assert tl.zeros is before
    if isinstance(before, JITFunction):  # triton was imported in compiled mode
        assert swaps


def test_poisoned_outputs() -> None:
    with dispatch.poisoned_outputs():
        buf = dispatch.new_output((3, 4), torch.float16, "cpu")
        assert buf.isnan().all()
    assert not dispatch._poison


def test_interpreter_after_triton_was_imported_without_it() -> None:
    # Fresh process: triton and the kernels are imported first, the variable is set later.
    code = (
        "import os, torch, triton\n"
        "import neuralc.kernels as nk\n"
        "q = torch.randn(1, 1, 20, 16)\n"
        "assert not nk.use_triton(q)\n"
        "os.environ['TRITON_INTERPRET'] = '1'\n"
        "out = nk.attention(q, q, q, causal=True)\n"
        "ref = nk.attention_reference(q, q, q, causal=True)\n"
        "assert (out - ref).abs().max() < 1e-5, (out - ref).abs().max()\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_autotuning_switch_and_its_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """-O2 modules run their forward inside `autotuning(False)` (first configuration, no
    search), -O3 modules inside `autotuning(True)`; the environment variable overrides both."""
    monkeypatch.delenv("NEURALC_TRITON_AUTOTUNE", raising=False)
    assert dispatch.autotune_enabled()  # direct calls autotune by default
    with dispatch.autotuning(False):
        assert not dispatch.autotune_enabled()
        with dispatch.autotuning(True):
            assert dispatch.autotune_enabled()
        assert not dispatch.autotune_enabled()
    assert dispatch.autotune_enabled()
    monkeypatch.setenv("NEURALC_TRITON_AUTOTUNE", "0")
    with dispatch.autotuning(True):
        assert not dispatch.autotune_enabled()
    monkeypatch.setenv("NEURALC_TRITON_AUTOTUNE", "1")
    with dispatch.autotuning(False):
        assert dispatch.autotune_enabled()


def test_first_configuration_is_launched_when_not_autotuning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEURALC_TRITON_AUTOTUNE", raising=False)
    launched: list[object] = []
    tuned = dispatch.TunedKernel(None, ["first", "second"], [], None)
    monkeypatch.setattr(tuned, "_run", lambda grid, config, args, kwargs: launched.append(config))
    with dispatch.autotuning(False):
        tuned[(1,)]()
    assert launched == ["first"]


def test_a_backward_after_the_forward_block_autotunes(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the -O levels' docs say: `autotuning(False)` around the forward (an -O2 module's)
    does not reach the backward pass that training runs after it, which keeps the default. (On
    CUDA autograd's worker threads would not see the setting even inside the block.)"""
    monkeypatch.delenv("NEURALC_TRITON_AUTOTUNE", raising=False)
    seen: list[tuple[str, bool]] = []

    class Probe(torch.autograd.Function):
        @staticmethod
        def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
            seen.append(("forward", dispatch.autotune_enabled()))
            return x * 2

        @staticmethod
        def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
            seen.append(("backward", dispatch.autotune_enabled()))
            return grad * 2

    x = torch.ones(3, requires_grad=True)
    with dispatch.autotuning(False):
        loss = Probe.apply(x).sum()
    loss.backward()
    assert seen == [("forward", False), ("backward", True)]
