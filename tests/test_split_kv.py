"""Split-KV decode (torch_impl.split_kv_attention) and the log-sum-exp merge it is built on
(torch_impl.attention_lse, merge_partials), against the float64 oracle."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from attn_lib import torch_impl
from strategies import Case, cases, check_against_oracle, logit_rounding_budget, oracle_attention

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _run(case, n_splits):
    def run(q, k, v):
        with torch.no_grad():
            qkv = (torch.from_numpy(x) for x in (q, k, v))
            return torch_impl.split_kv_attention(*qkv, n_splits=n_splits, **case.kwargs).numpy()
    return run


@settings(max_examples=500)
@given(case=cases(), n_splits=st.integers(1, 70))
def test_split_kv_matches_oracle(case, n_splits):
    check_against_oracle(_run(case, n_splits), case)


@settings(max_examples=200)
@given(case=cases(), n_splits=st.integers(1, 70))
def test_one_decode_query_against_the_whole_cache(case, n_splits):
    # The decode step: one query row; bottom-right causal masks nothing, so causal = plain.
    case = Case(case.lead, 1, case.nk, case.d, case.dv, case.causal, case.seed, case.scale)
    check_against_oracle(_run(case, n_splits), case)


@settings(max_examples=100)
@given(case=cases(logit_size=1e4), n_splits=st.integers(1, 70))
def test_logits_of_order_1e4_stay_finite_and_correct(case, n_splits):
    # Chunks' lse values ~1e4 apart: the merge must subtract the larger before exponentiating.
    check_against_oracle(_run(case, n_splits), case, fp64_tol=1e-8, budget=logit_rounding_budget)


def test_split_kv_rejects_bad_n_splits():
    x = torch.zeros(1, 4, 8)
    for bad, exc in ((0, ValueError), (-2, ValueError), (1.5, TypeError), (None, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="n_splits"):
            torch_impl.split_kv_attention(x, x, x, n_splits=bad)


# ----------------------------------------------------------------------------- the merge
def _parts(case, cuts):
    """(q, list of (out, lse) over consecutive key chunks cut at `cuts`), float64."""
    q, k, v = (torch.from_numpy(x) for x in case.arrays(np.float64))
    nq, nk = case.nq, case.nk
    bounds = [0, *cuts, nk]
    return q, k, v, [torch_impl.attention_lse(q, k[..., a:b, :], v[..., a:b, :], causal=case.causal,
                                              scale=case.scale, offset=nk - nq - a)
                     for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=200)
@given(case=cases(), data=st.data())
def test_merge_is_associative_commutative_and_exact(case, data):
    if case.nk < 3:
        case = Case(case.lead, case.nq, case.nk + 2, case.d, case.dv, case.causal, case.seed, case.scale)
    i = data.draw(st.integers(1, case.nk - 2))
    j = data.draw(st.integers(i + 1, case.nk - 1))
    q, k, v, (a, b, c) = _parts(case, [i, j])
    left = torch_impl.merge_partials(*torch_impl.merge_partials(*a, *b), *c)
    right = torch_impl.merge_partials(*a, *torch_impl.merge_partials(*b, *c))
    swapped = torch_impl.merge_partials(*c, *torch_impl.merge_partials(*b, *a))
    whole = torch_impl.attention_lse(q, k, v, causal=case.causal, scale=case.scale)
    for out, lse in (left, right, swapped):
        torch.testing.assert_close(lse, whole[1], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out, whole[0], rtol=1e-12, atol=1e-12)
    exact = oracle_attention(*(x.numpy() for x in (q, k, v)), **case.kwargs)
    np.testing.assert_allclose(left[0].numpy(), exact, rtol=1e-10, atol=1e-10)


@settings(max_examples=100)
@given(case=cases())
def test_lse_is_the_log_sum_exp_of_visible_logits(case):
    q, k, v = case.arrays(np.float64)
    out, lse = torch_impl.attention_lse(*(torch.from_numpy(x) for x in (q, k, v)), **case.kwargs)
    s = q @ np.swapaxes(k, -1, -2) * case.effective_scale  # (..., Nq, Nk)
    if case.causal:
        s = np.where(np.arange(case.nk)[None, :] <= np.arange(case.nq)[:, None] + case.nk - case.nq, s, -np.inf)
    with np.errstate(divide="ignore"):
        want = np.log(np.sum(np.exp(s), axis=-1))  # logits are O(1): no overflow
    np.testing.assert_allclose(lse.numpy(), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.numpy(), oracle_attention(q, k, v, **case.kwargs), rtol=1e-10, atol=1e-10)


@settings(max_examples=100)
@given(case=cases())
def test_a_part_with_lse_minus_inf_is_the_identity(case):
    q, k, v, [(out, lse)] = _parts(case, [])
    empty_out, empty_lse = torch.zeros_like(out), torch.full_like(lse, float("-inf"))
    for merged in (torch_impl.merge_partials(out, lse, empty_out, empty_lse),
                   torch_impl.merge_partials(empty_out, empty_lse, out, lse)):
        assert torch.equal(merged[0], out) and torch.equal(merged[1], lse)
    both_empty = torch_impl.merge_partials(empty_out, empty_lse, empty_out, empty_lse)
    assert torch.all(both_empty[0] == 0) and torch.all(both_empty[1] == float("-inf"))


def test_rows_that_see_no_key_give_zero_and_minus_inf():
    q, k, v = (torch.from_numpy(x) for x in Case((2,), 7, 3, 4, 5, True, seed=1).arrays(np.float32))
    out, lse = torch_impl.attention_lse(q, k, v, causal=True)
    assert torch.all(out[..., :4, :] == 0) and torch.all(lse[..., :4] == float("-inf"))
    assert torch.isfinite(lse[..., 4:]).all()
    split = torch_impl.split_kv_attention(q, k, v, n_splits=2, causal=True)
    assert torch.all(split[..., :4, :] == 0) and torch.isfinite(split).all()
