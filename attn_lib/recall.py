"""Associative recall: what a fixed-size state forgets and softmax attention does not (chapter 5).

The task (the "associative recall" probe of Zoology, Arora et al. 2023, without training):
N key → value pairs are stored, then each stored key is asked for again, and a reader must
return its value. Keys are random Gaussian vectors in d dimensions (norm ≈ √d, as in a
model), values random vectors in dv dimensions; a read is correct when the stored value
closest to it in direction (largest cosine) is the one that belongs to the key. NumPy, float64.

Three readers, all exact formulas, no training:

- :func:`softmax_read`: softmax attention over the N stored pairs, scale 1/√d. It keeps
  every key and value (a cache that grows as N·(d + dv)) and compares the query with
  each of them: N work per query, N² for N queries.
- :func:`linear_read`: linear attention with the identity feature map (Katharopoulos et
  al. 2020): the pairs are summed into one dv × d state S = Σ v_i k_iᵀ and the read is
  S q. The state has the same size for every N (the "fast weights" of Schlag et al.
  2021).
- :func:`best_state_read`: the best any dv × d state can do in least squares, S = V Kᵀ
  (K Kᵀ)⁺, computed from all pairs at once. Up to N = d keys are linearly independent and
  every value comes back exactly; beyond d no dv × d matrix can return them all.

:func:`recall_curve` measures the three over a range of N, as counts of correct reads.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_nonneg_int, check_numpy, check_positive_int

READERS = ("softmax", "linear", "best_state")


def recall_task(n_pairs: int, d: int, dv: int | None = None, *,
                rng: np.random.Generator | None = None, seed: int = 0):
    """N stored pairs: keys (N, d) ~ N(0, 1), values (N, dv) ~ N(0, 1/dv) (norm ≈ 1).

    dv defaults to d. Pass a NumPy Generator `rng` to draw from it, else one is made from
    `seed`.
    """
    n, d = check_positive_int("n_pairs", n_pairs), check_positive_int("d", d)
    dv = d if dv is None else check_positive_int("dv", dv)
    if rng is None:
        rng = np.random.default_rng(check_nonneg_int("seed", seed))
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    keys = rng.standard_normal((n, d))  # (N, d)
    values = rng.standard_normal((n, dv)) / np.sqrt(dv)  # (N, dv)
    return keys, values


def _check_matrix(name: str, x) -> None:
    """A non-empty 2-D float NumPy array."""
    check_numpy(name, x)
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"{name} must be a float NumPy array, got {type(x).__name__}"
                        f"{'' if not hasattr(x, 'dtype') else f' of {x.dtype}'}")
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"{name} must be a non-empty (N, d) matrix, got shape {x.shape}")


def _check_pairs(keys, values, queries) -> None:
    for name, x in (("keys", keys), ("values", values), ("queries", queries)):
        _check_matrix(name, x)
    if keys.shape[0] != values.shape[0]:
        raise ValueError(f"keys {keys.shape} and values {values.shape} must hold the same "
                         f"number of pairs")
    if queries.shape[1] != keys.shape[1]:
        raise ValueError(f"queries {queries.shape} and keys {keys.shape} must share d")


def softmax_read(keys, values, queries):
    """Softmax attention over the stored pairs: (Nq, d) queries -> (Nq, dv), scale 1/√d."""
    _check_pairs(keys, values, queries)
    s = queries @ keys.T / np.sqrt(keys.shape[1])  # (Nq, N)
    w = np.exp(s - s.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ values  # (Nq, dv)


def linear_read(keys, values, queries):
    """Linear attention (identity features): state S = Σ v_i k_iᵀ (dv, d), read S q."""
    _check_pairs(keys, values, queries)
    state = values.T @ keys  # (dv, d): the same size for every N
    return queries @ state.T  # (Nq, dv)


def best_state_read(keys, values, queries):
    """The least-squares dv × d state, S = Vᵀ K (KᵀK)⁺ (min ‖K Sᵀ − V‖), read S q."""
    _check_pairs(keys, values, queries)
    state_t = np.linalg.pinv(keys) @ values  # (d, dv) = Sᵀ
    return queries @ state_t  # (Nq, dv)


def correct_reads(reads, values) -> int:
    """How many reads (N, dv) point closest to their own value (N, dv): largest cosine.

    Cosine, not distance: a read's scale does not matter (a linear read comes out ≈ d
    times its value), and an exact read always picks its own value.
    """
    _check_matrix("reads", reads), _check_matrix("values", values)
    if reads.shape != values.shape:
        raise ValueError(f"reads {reads.shape} must have the shape of values {values.shape}")
    unit = values / np.linalg.norm(values, axis=1, keepdims=True)  # (N, dv)
    guess = np.argmax(reads @ unit.T, axis=1)  # (N,): the read's norm is common to a row
    return int((guess == np.arange(values.shape[0])).sum())


_READ = {"softmax": softmax_read, "linear": linear_read, "best_state": best_state_read}


def recall_curve(d: int, n_pairs, *, trials: int = 4, seed: int = 0) -> dict:
    """Correct reads out of N·trials for each N in `n_pairs` and each reader.

    Returns {"d", "n", "trials", "total": [N·trials], "softmax": [correct], "linear":
    [...], "best_state": [...]}; every stored key is queried once per trial. One seeded
    Generator draws every task in order, so the result is the same on every machine up to
    the last bits of the BLAS (which move a count only at an exact tie).
    """
    d, trials = check_positive_int("d", d), check_positive_int("trials", trials)
    if not isinstance(n_pairs, (list, tuple)) or not n_pairs:
        raise TypeError(f"n_pairs must be a non-empty list of ints, got {n_pairs!r}")
    ns = [check_positive_int("n_pairs", n) for n in n_pairs]
    rng = np.random.default_rng(check_nonneg_int("seed", seed))
    out = {"d": d, "n": ns, "trials": trials, "total": [n * trials for n in ns],
           **{r: [] for r in READERS}}
    for n in ns:
        counts = dict.fromkeys(READERS, 0)
        for _ in range(trials):
            keys, values = recall_task(n, d, rng=rng)
            for name in READERS:
                counts[name] += correct_reads(_READ[name](keys, values, keys), values)
        for name in READERS:
            out[name].append(counts[name])
    return out


def accuracy(curve: dict, reader: str) -> list[float]:
    """Fraction of correct reads per N for one reader of a :func:`recall_curve` result."""
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, got {reader!r}")
    if not isinstance(curve, dict) or reader not in curve or "total" not in curve:
        raise TypeError("curve must be a dict from recall.recall_curve")
    return [c / t for c, t in zip(curve[reader], curve["total"])]
