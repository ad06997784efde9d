"""Chapter 5's closed forms for training and the hybrid scheme (attn_lib.counting):
the ring's backward traffic and USP's, against a hop-by-hop count of the messages."""
import pytest

from attn_lib import counting as C


def ring_backward_hops(world_size: int) -> tuple[int, int]:
    """(K/V hops, dK/dV hops) one rank sends, replaying the backward ring step by step.

    At step t the rank holds the K/V shard of rank (r − t) mod P and that shard's dK/dV
    accumulator. It forwards K/V unless this is the last step; it always forwards the
    accumulator (after the last step it goes home).
    """
    kv = dkv = 0
    for t in range(world_size):
        if world_size == 1:
            break
        kv += t + 1 != world_size
        dkv += 1
    return kv, dkv


@pytest.mark.parametrize("p", [1, 2, 3, 4, 8])
def test_ring_backward_bytes_follow_the_hops(p):
    n, width = 48 * p, 10  # N/P tokens per shard, kv_width values per token
    kv_hops, dkv_hops = ring_backward_hops(p)
    shard = n // p * width
    want = kv_hops * shard * 2 + dkv_hops * shard * 4  # bf16 K/V, fp32 dK/dV
    assert C.ring_backward_bytes_total(n, p, width) == want
    assert C.ring_backward_bytes_total(n, p, width, 2, 2) == (kv_hops + dkv_hops) * shard * 2


@pytest.mark.parametrize("pu, pr", [(1, 4), (4, 1), (2, 2), (8, 4), (2, 16)])
def test_usp_bytes_reduce_to_ring_and_ulysses_and_count_pieces(pu, pr):
    n, kvw, w = 64 * pu * pr, 6, 14
    got = C.usp_bytes_total(n, pu, pr, kvw, w)
    p = pu * pr
    # all-to-all: a rank's N/P tokens of `w` values, cut into P_u head groups, keeps one
    a2a = (pu - 1) * (n // p) * (w // 1) / pu * 2
    # ring: P_r − 1 hops of N/P_r tokens × kv_width/P_u values (its heads only)
    ring = (pr - 1) * (n // pr) * kvw / pu * 2
    assert got["all_to_all"] == pytest.approx(a2a) and got["ring"] == pytest.approx(ring)
    assert got["total"] == pytest.approx(a2a + ring)
    if pu == 1:
        assert got["total"] == pytest.approx(C.ring_bytes_total(n, pr, kvw))
    if pr == 1:
        assert got["total"] == pytest.approx(C.ulysses_bytes_total(n, pu, w))


def test_backward_overlap_threshold():
    f, bw = 1e15, 4e11
    fwd = C.overlap_min_tokens("llama-3-8b", f, bw)
    bwd = C.ring_backward_min_tokens("llama-3-8b", f, bw)
    # 2.5x the compute, (2 + 4)/2 = 3x the bytes per step: 3/2.5 = 1.2x the tokens
    assert bwd == pytest.approx(1.2 * fwd)
    assert C.ring_backward_min_tokens("llama-3-8b", f, bw, causal=True) == pytest.approx(2 * bwd)


def test_linear_state_is_a_head_dim_square_per_kv_head_and_layer():
    from attn_lib import models
    cfg = models.get("llama-3-8b")
    got = C.linear_state_bytes(cfg)
    assert got == cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * cfg.head_dim * 2
    # the KV cache of N tokens holds 2N head_dim-vectors per KV head per layer
    n = cfg.head_dim // 2
    assert C.kv_cache_bytes(cfg, n) == got
