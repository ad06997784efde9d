"""The ledger's machinery: register a check as a claim, run it, print it.

Each claim is one function in a topic module of attn_lib.claims, registered
with :func:`claim`; calling it returns a :class:`Verdict`: the numbers behind
the check and one of HOLDS, CAVEAT or FAILS.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Callable

from ..viz._common import source_markdown as source_block

HOLDS, CAVEAT, FAILS = "holds", "holds with a caveat", "does not hold"
VERDICTS = (HOLDS, CAVEAT, FAILS)
MARKS = {HOLDS: "✔", CAVEAT: "⚠", FAILS: "✘"}
WIDTH = 80  # widest printed line: the book's column


@dataclass
class Verdict:
    """One checked claim: deterministic `values` (printed, compared), noisy
    `measured` ones."""

    number: int
    key: str
    title: str
    claim: str
    source: str
    verdict: str
    note: str
    values: dict = field(default_factory=dict)
    measured: dict = field(default_factory=dict)

    def line(self) -> str:
        """The line the notebook prints and nbval compares:
        'claim 3 (1K→1M = 10^6x): holds'."""
        return f"claim {self.number} ({self.title}): {self.verdict}"

    def _value_lines(self) -> list[str]:
        return [_wrap(f"  {k} = {_fmt(v)}", "      ")
                for k, v in self.values.items()]

    def __str__(self) -> str:
        return "\n".join(self._value_lines() + [self._line_wrapped()])

    def report(self) -> str:
        """Values, the reason for the verdict, and the verdict line, each
        within WIDTH."""
        why = _wrap(f"  why: {self.note}", "       ")
        return "\n".join([*self._value_lines(), why, self._line_wrapped()])

    def _line_wrapped(self) -> str:
        line = self.line()
        if len(line) <= WIDTH:
            return line
        head = _wrap(f"claim {self.number} ({self.title}):", "  ")
        return head + f"\n  {self.verdict}"

    def glue(self, glue_fn: Callable, measured: bool = False, *,
             keys=None) -> None:
        """Glue values as 'c<number>_<key>' for the prose; `measured` ones
        only when asked.

        `keys`: the names the prose uses (only those are glued); None glues
        every one.
        """
        values = self.measured if measured else self.values
        if keys is not None:
            if isinstance(keys, str) or not all(isinstance(k, str)
                                                for k in keys):
                raise TypeError(
                    f"keys must be a list of value names, got {keys!r}")
            unknown = [k for k in keys if k not in values]
            if unknown:
                raise ValueError(
                    f"keys {unknown} are not values of claim {self.number}; "
                    f"known: {', '.join(values)}")
            values = {k: values[k] for k in keys}
        for k, v in values.items():
            glue_fn(f"c{self.number}_{k}", v)


def _wrap(text: str, indent: str) -> str:
    """`text` broken at spaces into lines of at most WIDTH characters, later
    ones indented."""
    return "\n".join(textwrap.wrap(text, WIDTH, subsequent_indent=indent,
                                   break_long_words=False,
                                   break_on_hyphens=False))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def prose_list(xs) -> str:
    """'7, 14, 21 and 28': a list of numbers as the prose writes it
    (thousands separated)."""
    if isinstance(xs, (str, bytes)) or not hasattr(xs, "__iter__"):
        raise TypeError(f"xs must be a list of numbers, got {xs!r}")
    words = [f"{x:,}" if isinstance(x, int) else f"{x:,.4g}" for x in xs]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def verdict(ok: bool, caveat: bool = False) -> str:
    """FAILS unless `ok`; CAVEAT if it holds with a `caveat`; else HOLDS."""
    return FAILS if not ok else CAVEAT if caveat else HOLDS


@dataclass(frozen=True)
class Claim:
    number: int
    key: str
    title: str
    claim: str
    source: str
    check: Callable


#: Registered claims by key, in the ledger's order (the import order of the
#: topic modules in attn_lib/claims/__init__.py, then their order of lines).
CLAIMS: dict[str, Claim] = {}


def claim(title: str, source: str, text: str):
    """Register a check function as the next claim of the ledger."""
    if source not in ("A", "B", "A, B"):
        raise ValueError(f"source must be 'A', 'B' or 'A, B', got {source!r}")

    def register(fn):
        number = len(CLAIMS) + 1

        def run(**kwargs) -> Verdict:
            result, note, values, measured = fn(**kwargs)
            if result not in VERDICTS:
                raise ValueError(f"{fn.__name__} returned verdict {result!r}")
            return Verdict(number, fn.__name__, title, text, source, result,
                           note, values, measured)

        run.__name__, run.__doc__, run.__wrapped__ = (fn.__name__, fn.__doc__,
                                                      fn)
        CLAIMS[fn.__name__] = Claim(number, fn.__name__, title, text, source,
                                    run)
        return run

    return register


def check(key: str, **kwargs) -> Verdict:
    """Run one claim's check by key (or by number as a string)."""
    for c in CLAIMS.values():
        if key in (c.key, str(c.number)):
            return c.check(**kwargs)
    raise ValueError(f"unknown claim {key!r}; known: {', '.join(CLAIMS)}")


def run_all() -> list[Verdict]:
    """Every claim, in order (the measured ones take a few seconds on a
    CPU)."""
    return [c.check() for c in CLAIMS.values()]


def summary_markdown(results: list[Verdict]) -> str:
    """A markdown table: number, claim in our words, essay, verdict."""
    rows = ["| # | claim (our words) | essay | verdict |",
            "|---:|---|:---:|---|"]
    for r in results:
        rows.append(f"| [{r.number}](#claim-{r.number}) | {r.claim} | "
                    f"{r.source} | {MARKS[r.verdict]} {r.verdict} |")
    return "\n".join(rows)


def tally(results: list[Verdict]) -> dict[str, int]:
    """How many claims got each verdict."""
    return {v: sum(r.verdict == v for r in results) for v in VERDICTS}


def source_markdown(key: str, folded: bool = False) -> str:
    """The check's source as a fenced markdown code block, for showing beside
    its verdict; `folded`: inside an HTML <details> block that opens on a
    click (the book and Jupyter render it)."""
    if key not in CLAIMS:
        raise ValueError(f"unknown claim {key!r}; known: {', '.join(CLAIMS)}")
    if not isinstance(folded, bool):
        raise TypeError(f"folded must be True or False, got {folded!r}")
    block = source_block(CLAIMS[key].check)  # unwraps the @claim decorator
    if not folded:
        return block
    return ("<details>\n<summary>The check's code</summary>\n\n" + block
            + "\n\n</details>")


def reported_markdown(reported: dict) -> str:
    """A markdown table of reported figures: {name: (value, where in the
    source)} as the rows 'figure | reported | where in the paper'."""
    if not isinstance(reported, dict):
        raise TypeError(f"reported must be a dict, got {reported!r}")
    rows = ["| figure | reported value | where in the paper |",
            "|---|---:|---|"]
    return "\n".join(rows + [f"| {name} | {value} | {where} |"
                             for name, (value, where) in reported.items()])


def randn(*shape, dtype=None):
    """Random torch values on attn_lib.device(), in the set-up's dtype unless
    given: the inputs of the measured claims."""
    import torch

    from .. import device
    from ..colab import environment, torch_dtype

    dtype = dtype or torch_dtype(environment()["dtype"])
    return torch.randn(*shape, device=device(), dtype=dtype)
