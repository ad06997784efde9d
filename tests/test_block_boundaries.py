"""Causal attention at every block boundary: the Triton kernel and the torch tiled loop.

A tiled causal kernel decides per block which keys to visit and which blocks need the
mask; those decisions depend on where the diagonal j = i + Nk − Nq crosses the block grid,
which repeats with period BLOCK_N in Nk − Nq. So each implementation is swept over a whole
period of Nk − Nq (both signs: Nq > Nk gives rows that see no key) and over Nq at, just
below and just above block multiples, and compared with the float64 oracle under
FlashAttention's rule (tests/strategies.py). Fixed shapes elsewhere in the suite need not
put the diagonal where a one-off error shows (e.g. Nk − Nq = 30 with blocks of 32).

- Triton: the interpreter's own block sizes (triton_flash._INTERPRET_BLOCK_M/_N, 32 × 32;
  ~20 ms a call at N <= 128 on a CPU), float32, forward and gradients (the dQ kernel
  repeats the forward's key loop, the dK/dV kernel its own query loop). Skipped where
  Triton is absent; on a GPU the same sizes run compiled with those blocks fixed.
- torch_impl.flash_attention: block_q / block_k square, tall, wide and not powers of two,
  float64 and float32 forward, and float64 gradients (the backward's first query block).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from attn_lib import torch_impl  # noqa: E402
from strategies import Case, blind_rows, check_against_oracle, fp32_budget, oracle_attention  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def diagonal_sweep(bq: int, bk: int) -> list[tuple[int, int]]:
    """(Nq, Nk) pairs: Nk − Nq over a whole period bk of each sign at Nq = 2·bq − 1 (two query
    blocks, the second one row short), and Nq around block multiples at the offsets where
    an off-by-one flips a block (0, ±1, bk − 2, bk − 1, −bk)."""
    nq = 2 * bq - 1
    pairs = [(nq, nq + t) for t in range(bk)]  # Nk >= Nq: every row sees a key
    pairs += [(nq + t, nq) for t in range(1, bk + 1)]  # Nq > Nk: the first rows see none
    for n in sorted({1, bq - 1, bq, bq + 1, 2 * bq, 2 * bq + 1, 3 * bq} - {0}):
        for t in (0, 1, -1, bk - 2, bk - 1, -bk):
            if n + t >= 1:
                pairs.append((n, n + t))
    return sorted(set(pairs))


def assert_all_pass(check, pairs) -> None:
    """Run check(nq, nk) on every pair; fail listing every (Nq, Nk) that fails, with its
    Nk − Nq (where in the block period the bug shows)."""
    bad = []
    for nq, nk in pairs:
        try:
            check(nq, nk)
        except AssertionError as err:
            bad.append(f"Nq={nq} Nk={nk} (Nk-Nq={nk - nq}): {str(err).splitlines()[0][:80]}")
    assert not bad, f"{len(bad)} of {len(pairs)} sizes fail:\n" + "\n".join(bad)


# ------------------------------------------------------------------------------ Triton
def _triton():
    pytest.importorskip("triton")
    from attn_lib import triton_flash

    if triton_flash.why_unavailable() is not None:
        pytest.skip(triton_flash.why_unavailable())
    return triton_flash


def test_triton_kernel_at_every_block_boundary():
    tf = _triton()
    bm, bn = tf._INTERPRET_BLOCK_M, tf._INTERPRET_BLOCK_N
    dev = "cpu" if tf.interpreting() else "cuda"
    if dev == "cuda":  # compiled: exact fp32 dots, the blocks the interpreter uses
        torch.backends.cuda.matmul.allow_tf32 = False

    def check(nq, nk):
        case = Case((1, 1), nq, nk, 16, 8, True, seed=nq * 1000 + nk)
        q, k, v = case.arrays(np.float32)
        out = tf.flash_attention(*(torch.from_numpy(x).to(dev) for x in (q, k, v)), causal=True,
                                 _blocks=(bm, bn)).cpu().numpy()
        exact = oracle_attention(q, k, v, causal=True)
        assert not np.any(out[..., blind_rows(nq, nk, True), :]), "rows that see no key must be 0"
        err = float(np.abs(out - exact).max())
        budget = fp32_budget(q, k, v, exact, causal=True, scale=None)
        assert err <= budget, f"error {err:.3g} > budget {budget:.3g}"

    pairs = diagonal_sweep(bm, bn)
    assert len(pairs) > 2 * bn  # a whole period of each sign, and the Nq sweep
    assert_all_pass(check, pairs)


def test_triton_gradients_at_every_block_boundary():
    # The backward's dQ kernel repeats the forward's two-stage key loop (its own copy of the
    # early exit and the unmasked-stage end), and the dK/dV kernel starts each key block at
    # the first query block that sees it: the same sweep, float32 gradients against float64
    # autograd under tests/test_triton_flash.py's rule (_assert_grads_close).
    tf = _triton()
    from test_triton_flash import _assert_grads_close

    bm, bn = tf._INTERPRET_BLOCK_M, tf._INTERPRET_BLOCK_N
    dev = "cpu" if tf.interpreting() else "cuda"

    def check(nq, nk):
        g = torch.Generator().manual_seed(nq * 1000 + nk)
        q, k, v, do = (torch.randn(1, 1, n, 16, generator=g, dtype=torch.float64).to(dev)
                       for n in (nq, nk, nk, nq))
        _assert_grads_close(q, k, v, do, blocks=(bm, bn), causal=True)

    assert_all_pass(check, diagonal_sweep(bm, bn))


# ----------------------------------------------------------------------- torch tiled
BLOCKS = [(8, 8), (16, 8), (4, 12), (5, 7)]  # square, tall, wide, neither a power of two


@pytest.mark.parametrize("bq, bk", BLOCKS, ids=lambda b: str(b))
def test_torch_tiled_forward_at_every_block_boundary(bq, bk):
    def check(nq, nk):
        case = Case((2,), nq, nk, 4, 3, True, seed=nq * 1000 + nk, block_q=bq, block_k=bk)

        def run(q, k, v):
            with torch.no_grad():
                return torch_impl.flash_attention(*(torch.from_numpy(x) for x in (q, k, v)),
                                                  causal=True, block_q=bq, block_k=bk).numpy()
        check_against_oracle(run, case)

    assert_all_pass(check, diagonal_sweep(bq, bk))


@pytest.mark.parametrize("bq, bk", BLOCKS, ids=lambda b: str(b))
def test_torch_tiled_gradients_at_every_block_boundary(bq, bk):
    # The backward loops keys outer and starts each key block at the first query block that
    # can see it: a wrong start skips rows whose gradient is not zero.
    def check(nq, nk):
        g = torch.Generator().manual_seed(nq * 1000 + nk)
        q, k, v = (torch.randn(2, n, e, generator=g, dtype=torch.float64, requires_grad=True)
                   for n, e in ((nq, 4), (nk, 4), (nk, 3)))
        d_out = torch.randn(2, nq, 3, generator=g, dtype=torch.float64)
        got = torch.autograd.grad(torch_impl.flash_attention(q, k, v, causal=True, block_q=bq,
                                                             block_k=bk), (q, k, v), d_out)
        want = torch.autograd.grad(torch_impl.attention(q, k, v, causal=True), (q, k, v), d_out)
        for name, a, b in zip("qkv", got, want):
            err = float((a - b).abs().max())
            assert err <= 1e-10, f"d{name} error {err:.3g}"

    assert_all_pass(check, diagonal_sweep(bq, bk))
