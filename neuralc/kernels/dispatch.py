"""Decides where a kernel call runs and loads the Triton code in the matching mode.

Three paths exist for every public kernel:

* CUDA tensors: the compiled Triton kernels.
* ``TRITON_INTERPRET=1`` in the environment *at call time*: the same Triton kernels,
  executed by Triton's NumPy interpreter on the CPU (slow; meant for tests).
* anything else (CPU tensors, float64, ...): the plain PyTorch composite.

``@triton.jit`` decides between a compiled and an interpreted function when the decorator
runs, i.e. when the kernel module is imported.  A process that imported the kernels before
the variable was set (other tests importing ``neuralc`` first, pytest-xdist workers, ...)
would otherwise be stuck with the wrong flavour.  The kernel source modules are therefore
never imported normally: :func:`triton_module` executes each one under a private module name
once per flavour, with the variable forced for the duration of the import.

Triton's own standard library (``tl.zeros``, ``tl.sum``, ``tl.max``, ``tl.cdiv``, ...) is
decorated the same way when ``triton`` is first imported, and the interpreter cannot call
compiled-flavour library functions (nor can the compiler use interpreted ones).  Every launch
therefore runs inside :func:`_stdlib_flavour`, which temporarily rebinds those functions in
``triton.language.*`` to the flavour of the launch when the import-time flavour differs.
That is a no-op in the usual case (compiled kernels, ``triton`` imported without the
variable), and makes ``TRITON_INTERPRET=1`` work even when ``triton`` was imported earlier
(as in this repository's test suite, whose root conftest imports it first).  Launches are
not meant to run concurrently from several threads in different flavours.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from types import ModuleType
from typing import Any

import torch

_ENV = "TRITON_INTERPRET"
SUPPORTED_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)

_modules: dict[tuple[str, bool], ModuleType] = {}
_lock = threading.Lock()
_poison = False


def interpret_enabled() -> bool:
    """True when the Triton interpreter should run the kernels (read at every call)."""
    return os.environ.get(_ENV, "0").strip().lower() in ("1", "true", "on", "yes")


def use_triton(*tensors: torch.Tensor | None) -> bool:
    """Whether the Triton path (compiled or interpreted) should handle these tensors.

    ``None`` entries (optional arguments) are ignored.  Unsupported floating dtypes fall back
    to the composite so that e.g. float64 gradchecks keep working everywhere.
    """
    present = [t for t in tensors if t is not None]
    floats = [t for t in present if t.is_floating_point()]
    if any(t.dtype not in SUPPORTED_DTYPES for t in floats):
        return False
    if interpret_enabled():
        return True
    return bool(present) and all(t.is_cuda for t in present)


def triton_module(name: str) -> ModuleType:
    """Load ``neuralc.kernels.<name>`` in the flavour the environment asks for right now."""
    interpret = interpret_enabled()
    key = (name, interpret)
    module = _modules.get(key)
    if module is not None:
        return module
    with _lock:
        module = _modules.get(key)
        if module is None:
            module = _load(name, interpret)
            _modules[key] = module
    return module


def _load(name: str, interpret: bool) -> ModuleType:
    spec = importlib.util.find_spec(f"{__package__}.{name}")
    if spec is None or spec.origin is None:
        raise ImportError(f"kernel module {name!r} not found")
    flavour = "interpret" if interpret else "jit"
    private = f"{__package__}._{flavour}_{name.lstrip('_')}"
    private_spec = importlib.util.spec_from_file_location(private, spec.origin)
    assert private_spec is not None and private_spec.loader is not None
    module = importlib.util.module_from_spec(private_spec)
    previous = os.environ.get(_ENV)
    os.environ[_ENV] = "1" if interpret else "0"
    try:
        # Registered before execution, like a normal import, so that tracebacks and
        # ``inspect`` (which Triton uses to read kernel sources) can resolve the module.
        sys.modules[private] = module
        private_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(private, None)
        raise
    finally:
        if previous is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = previous
    return module


def new_output(
    shape: Sequence[int], dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    """Allocate a buffer that a kernel must fully overwrite.

    Every Triton output goes through here so that tests can fill the buffers with NaN
    (:func:`poisoned_outputs`) and catch elements a kernel forgot to write.
    """
    if _poison:
        return torch.full(tuple(shape), float("nan"), dtype=dtype, device=device)
    return torch.empty(tuple(shape), dtype=dtype, device=device)


@contextlib.contextmanager
def poisoned_outputs() -> Iterator[None]:
    """Test hook: inside the block, kernel output buffers start out as NaN."""
    global _poison
    previous = _poison
    _poison = True
    try:
        yield
    finally:
        _poison = previous


_swaps: dict[bool, list[tuple[ModuleType, str, Any, Any]]] = {}


def _stdlib_swaps(interpret: bool) -> list[tuple[ModuleType, str, Any, Any]]:
    """(module, name, current, replacement) for library functions of the wrong flavour."""
    cached = _swaps.get(interpret)
    if cached is not None:
        return cached
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    wrong = JITFunction if interpret else InterpretedFunction
    converted: dict[int, Any] = {}
    swaps = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "triton.language" or name.startswith("triton.language.")):
            continue
        for attr, value in list(vars(module).items()):
            if not isinstance(value, wrong):
                continue
            if id(value) not in converted:
                fn = value.fn
                converted[id(value)] = InterpretedFunction(fn) if interpret else JITFunction(fn)
            swaps.append((module, attr, value, converted[id(value)]))
    _swaps[interpret] = swaps
    return swaps


@contextlib.contextmanager
def _stdlib_flavour(interpret: bool) -> Iterator[None]:
    swaps = _stdlib_swaps(interpret)
    if not swaps:
        yield
        return
    for module, attr, _, replacement in swaps:
        setattr(module, attr, replacement)
    try:
        yield
    finally:
        for module, attr, original, _ in swaps:
            setattr(module, attr, original)


class Launcher:
    """``kernel[grid](...)`` with Triton's library functions in the matching flavour."""

    def __init__(self, kernel: Any, interpret: bool) -> None:
        self.kernel = kernel
        self.interpret = interpret

    def __getitem__(self, grid: Any) -> Callable[..., Any]:
        def launch(*args: Any, **kwargs: Any) -> Any:
            with _stdlib_flavour(self.interpret):
                return self.kernel[grid](*args, **kwargs)

        return launch


def launcher(kernel: Any) -> Launcher:
    """Wrap an un-tuned ``@triton.jit`` kernel inside a module loaded by ``triton_module``."""
    return Launcher(kernel, interpret_enabled())


# Set by ``autotuning(...)`` around a call: the forwards of ``-O3`` builds autotune, those of
# ``-O2`` launch each kernel's first configuration (no first-call sweep).  Backward kernels run
# outside the forward's block (on CUDA, on autograd's threads) and so autotune at either level.
_AUTOTUNE: ContextVar[bool | None] = ContextVar("neuralc_autotune", default=None)


@contextlib.contextmanager
def autotuning(enabled: bool) -> Iterator[None]:
    """Within the block, kernels launched from this thread autotune (``True``) or use their
    first configuration (``False``).  ``NEURALC_TRITON_AUTOTUNE`` still overrides it.  A
    backward pass started after the block keeps the default (autotune), and on CUDA autograd
    runs backward kernels on its own threads, which keep it even inside the block."""
    token = _AUTOTUNE.set(bool(enabled))
    try:
        yield
    finally:
        _AUTOTUNE.reset(token)


def autotune_enabled() -> bool:
    """Whether a launch autotunes: ``NEURALC_TRITON_AUTOTUNE=0``/``1`` when set, else the
    enclosing ``autotuning(...)`` block, else yes.

    Read at every launch.  Turning it off saves the compile-and-time sweep where only
    correctness matters (GPU tests) or where start-up time does.
    """
    forced = os.environ.get("NEURALC_TRITON_AUTOTUNE", "").strip()
    if forced:
        return forced != "0"
    chosen = _AUTOTUNE.get()
    return True if chosen is None else chosen


def _grid(grid: Any, meta: dict[str, Any]) -> Any:
    return grid(meta) if callable(grid) else grid


class FixedConfig:
    """Launches a kernel with one fixed set of meta-parameters.

    Stands in for autotuning under the interpreter, where benchmarking every configuration
    would be very slow; its small tiles are also smaller than the test shapes, so block
    boundaries, diagonals and ragged tails all get exercised.
    """

    def __init__(self, kernel: Any, kwargs: dict[str, Any]) -> None:
        self.kernel = kernel
        self.kwargs = dict(kwargs)

    def __getitem__(self, grid: Any) -> Callable[..., Any]:
        def launch(*args: Any, **kwargs: Any) -> Any:
            meta = {**kwargs, **self.kwargs}
            with _stdlib_flavour(True):
                return self.kernel[_grid(grid, meta)](*args, **meta)

        return launch


Prune = Callable[[list[Any], dict[str, Any]], list[Any]]


class TunedKernel:
    """``triton.autotune`` over the configurations that ``prune`` picks for a launch.

    ``prune(configs, launch_kwargs)`` may filter ``configs`` or return another list (e.g.
    float32 tiles).  It runs here rather than through ``prune_configs_by`` so it sees the
    launch's keyword arguments the same way on every Triton version; one autotuner is kept
    per configuration set.  Once a key is tuned, later launches call the kernel with the
    winning configuration directly, skipping the autotuner's per-launch bookkeeping (it
    matters for the short kernels, whose launch cost is comparable to their run time).
    """

    def __init__(self, kernel: Any, configs: list[Any], key: list[str], prune: Prune | None):
        self.kernel = kernel
        self.configs = list(configs)
        self.key = list(key)
        self.prune = prune
        self.tuners: dict[tuple[int, ...], Any] = {}
        self.best: dict[tuple[Any, ...], Any] = {}
        self.arg_names: list[str] = list(getattr(kernel, "arg_names", []))

    def __getitem__(self, grid: Any) -> Callable[..., Any]:
        def launch(*args: Any, **kwargs: Any) -> Any:
            configs = self.prune(self.configs, kwargs) if self.prune else self.configs
            if not configs:
                raise RuntimeError("no kernel configuration fits this launch")
            if not autotune_enabled():
                return self._run(grid, configs[0], args, kwargs)
            ids = tuple(map(id, configs))
            key = self._key(ids, args, kwargs)
            best = self.best.get(key)
            if best is not None:
                return self._run(grid, best, args, kwargs)
            tuner = self.tuners.get(ids)
            if tuner is None:
                import triton

                tuner = triton.autotune(configs=list(configs), key=self.key)(self.kernel)
                self.tuners[ids] = tuner
            with _stdlib_flavour(False):
                result = tuner[grid](*args, **kwargs)
            chosen = getattr(tuner, "best_config", None)
            if chosen is not None and key is not None:
                self.best[key] = chosen
            return result

        return launch

    def _key(
        self, ids: tuple[int, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        # Mirrors triton.autotune's key: the named arguments plus every tensor's dtype.
        named = dict(zip(self.arg_names, args, strict=False))
        named.update(kwargs)
        if any(k not in named for k in self.key):
            return None
        dtypes = tuple(str(v.dtype) for v in named.values() if hasattr(v, "dtype"))
        return (ids, *(named[k] for k in self.key), *dtypes)

    def _run(self, grid: Any, cfg: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        meta = {**kwargs, **cfg.kwargs}
        launch_opts = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
        with _stdlib_flavour(False):
            return self.kernel[_grid(grid, meta)](*args, **meta, **launch_opts)

    def tuned(self) -> dict[tuple[Any, ...], Any]:
        """Autotuning results so far: key -> chosen ``triton.Config`` (for reports)."""
        out: dict[tuple[Any, ...], Any] = {}
        for tuner in self.tuners.values():
            out.update(getattr(tuner, "cache", {}))
        return out


def autotune(
    configs: list[Any],
    key: list[str],
    interpret_kwargs: dict[str, Any],
    prune: Prune | None = None,
) -> Callable[[Any], Any]:
    """Autotuned launches when compiled, :class:`FixedConfig` under the interpreter.

    Meant to be applied inside kernel modules loaded by :func:`triton_module`, where the
    environment variable reflects the flavour being built.  The first configuration that
    survives ``prune`` is the one used when autotuning is disabled, so list a robust one
    first.
    """

    def decorate(kernel: Any) -> Any:
        if interpret_enabled():
            return FixedConfig(kernel, interpret_kwargs)
        return TunedKernel(kernel, configs, key, prune)

    return decorate
