"""Which dialects IR may use: registering every dialect's ops before IR is read or checked.

Separate from the parser because the verifier (and tests that build IR in code) need the same
registration without reading any text; the parser is only one of its callers.
"""

from __future__ import annotations

# Dialect modules that register their ops at import, loaded on first use when present (a dialect
# that does not exist yet is simply not known).
DIALECT_MODULES = ("neuralc.ir.common_ops", "neuralc.ir.tensor", "neuralc.ir.kernel")
_modules_loaded = False


def ensure_dialects() -> None:
    """Register every dialect whose ops IR may use. Idempotent; the nn part re-reads the layer
    registry each call (cheap), so layers registered later get their ops too."""
    global _modules_loaded
    from neuralc.ir.nn import register_nn_dialect

    register_nn_dialect()
    if not _modules_loaded:
        import importlib
        import importlib.util

        for name in DIALECT_MODULES:
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
        _modules_loaded = True
