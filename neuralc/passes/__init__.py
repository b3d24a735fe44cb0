"""Passes over the IR, one per module, named after the pass (`unroll_repeat.py` is `unroll-repeat`)."""
