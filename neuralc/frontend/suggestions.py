"""Did-you-mean notes for a misspelled configuration name: an optimizer, a schedule, one of
their arguments, a loss or a `train { }` / `execution { }` setting.

Its own module because both configuration checkers (`neuralc.frontend.config` and
`neuralc.frontend.optimizer_calls`) use it, and because it matches names differently from
`neuralc.diagnostics.did_you_mean`: abbreviations first, word by word, then similarity.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


def suggest(word: str, known: Iterable[str]) -> str | None:
    """A 'did you mean' note that first reads `word` as an abbreviation, word by word
    (`ExpDecay` → `ExponentialDecay`, `learn_rate` → `learning_rate`), where plain similarity
    (`diagnostics.did_you_mean`) prefers the equally long `StepDecay`; then by similarity."""
    pool = list(known)
    parts = _words(word)
    matches = [c for c in pool if _abbreviates(parts, _words(c))]
    if len(matches) == 1 and matches[0] != word:
        return f"did you mean '{matches[0]}'?"
    # Case-blind, as names are matched (`"sgdd"` → `SGD`); otherwise `did_you_mean`'s test.
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f"did you mean '{lowered[close[0]]}'?" if close else None


def _words(name: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]


def _abbreviates(parts: list[str], full: list[str]) -> bool:
    return (
        bool(parts)
        and len(parts) <= len(full)
        and all(f.startswith(p) for p, f in zip(parts, full, strict=False))
    )


__all__ = ["suggest"]
