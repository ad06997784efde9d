"""The claims ledger: every factual claim of the two seed essays, checked by
code (book/appendix_claims.ipynb).

Each claim is one function, registered with :func:`claim`; calling it returns
a :class:`Verdict`: the numbers behind the check and one of HOLDS, CAVEAT or
FAILS. Quoted figures are the essays' own (numbers may be quoted; the claims
are restated in our words), typed once in :mod:`.essays`.

Modules, in the ledger's order (which numbers the claims):
  essays         every figure the essays print, with where it stands
  pairs          1-6    pairs and FLOPs (chapters 1, 2)
  ffn            7-9    attention against the feed-forward block (chapter 2)
  tables         10-14  essay B's FLOP and memory tables (chapter 2)
  decode         15-16  decode and prefill, counted and measured (chapter 3)
  flash          17-21  FlashAttention (chapter 4)
  vs_recurrence  22     quadratic attention against a recurrence (chapter 1)
  facts          23-25  smaller facts
  long_context   26-27  a million tokens (chapter 5)
"""
from __future__ import annotations

from ._registry import (CAVEAT, CLAIMS, FAILS, HOLDS, MARKS, VERDICTS, WIDTH,
                        Claim, Verdict, check, claim, reported_markdown,
                        run_all, source_markdown, summary_markdown, tally)

# importing a topic module registers its claims: this order numbers them
from . import essays, pairs, ffn, tables, decode, flash  # noqa: F401,I001
from . import vs_recurrence, facts, long_context  # noqa: F401,I001

__all__ = ["CAVEAT", "CLAIMS", "FAILS", "HOLDS", "MARKS", "VERDICTS", "WIDTH",
           "Claim", "Verdict", "check", "claim", "reported_markdown", "run_all",
           "source_markdown",
           "summary_markdown", "tally", "essays", "pairs", "ffn", "tables",
           "decode", "flash", "vs_recurrence", "facts", "long_context"]
