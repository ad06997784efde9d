"""The paged KV cache (chapter 3b): paged == contiguous attention, refcount and
copy-on-write invariants under random operations, prefix hashing, 8-bit blocks.

Property tests draw fresh examples every run (tests/conftest.py).
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

from attn_lib import counting, paged_kv, torch_impl  # noqa: E402
from attn_lib.paged_kv import BlockAllocator, PagedKVCache  # noqa: E402

F64 = dict(dtype=torch.float64)


def _fill(cache, lengths, gen):
    for s, n in enumerate(lengths):
        cache.add_sequence(s)
        k = torch.randn(n, cache.n_kv_heads, cache.head_dim, generator=gen, **F64)
        cache.append(s, k, torch.randn(k.shape, generator=gen, **F64))


# ----------------------------------------------------------------------------- attention
@settings(max_examples=60)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=5),
       block=st.integers(1, 9), kv_heads=st.sampled_from([1, 2]), groups=st.sampled_from([1, 2, 3]),
       nq=st.integers(1, 6), causal=st.booleans(), seed=st.integers(0, 2**31 - 1),
       chunks=st.integers(1, 3))
def test_paged_attention_equals_contiguous(lengths, block, kv_heads, groups, nq, causal, seed,
                                           chunks):
    if causal:
        lengths = [max(n, nq) for n in lengths]
    gen = torch.Generator().manual_seed(seed)
    need = sum(counting.blocks_for(n, block) for n in lengths) + 3
    cache = PagedKVCache(need, block, kv_heads, 4, **F64)
    # interleave the sequences' appends so their blocks are not adjacent in the pool
    for s in range(len(lengths)):
        cache.add_sequence(s)
    for part in range(chunks):
        for s, n in enumerate(lengths):
            lo, hi = n * part // chunks, n * (part + 1) // chunks
            k = torch.randn(hi - lo, kv_heads, 4, generator=gen, **F64)
            cache.append(s, k, torch.randn(k.shape, generator=gen, **F64))
    q = torch.randn(len(lengths), kv_heads * groups, nq, 4, generator=gen, **F64)
    out = paged_kv.paged_attention(q, cache, *cache.tables(range(len(lengths))), causal=causal)
    for s in range(len(lengths)):
        k, v = (x.repeat_interleave(groups, 0) for x in cache.gather(s))
        want = torch_impl.attention(q[s], k, v, causal=causal)
        torch.testing.assert_close(out[s], want, rtol=0, atol=1e-12)
    cache.check_invariants()


def test_paged_attention_float32_matches_float64_oracle():
    gen = torch.Generator().manual_seed(0)
    cache = PagedKVCache(20, 8, 2, 16)
    _fill(cache, [30, 5, 17], gen)
    q = torch.randn(3, 4, 1, 16, generator=gen)
    out = paged_kv.paged_attention(q, cache, *cache.tables(range(3)))
    for s in range(3):
        k, v = (x.double().repeat_interleave(2, 0) for x in cache.gather(s))
        want = torch_impl.attention(q[s].double(), k, v, causal=True)
        assert (out[s].double() - want).abs().max() < 1e-5
    assert out.dtype == torch.float32


def test_a_query_that_sees_no_key_returns_zeros():
    cache = PagedKVCache(2, 4, 1, 4, **F64)
    cache.add_sequence(0)
    q = torch.ones(1, 1, 1, 4, **F64)
    out = paged_kv.paged_attention(q, cache, [[]], [0], causal=False)
    assert torch.equal(out, torch.zeros_like(out))


# ----------------------------------------------------------------------------- invariants
OPS = st.lists(st.tuples(st.sampled_from(["add", "append", "fork", "free"]),
                         st.integers(0, 5), st.integers(1, 11)), min_size=1, max_size=40)


@settings(max_examples=80)
@given(ops=OPS, block=st.integers(1, 6), seed=st.integers(0, 2**31 - 1))
def test_refcounts_and_copy_on_write_under_random_operations(ops, block, seed):
    """Random adds (with shared-prefix prompts), appends, forks and frees: after each,
    the counts match the tables, no shared block was written, and every sequence reads
    back exactly the rows written for it (its shadow copy)."""
    gen = torch.Generator().manual_seed(seed)
    cache = PagedKVCache(400, block, 1, 2, **F64)
    shadow: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    prompt = list(range(50))  # a common prefix: later adds reuse its full blocks
    prefix_rows = torch.randn(50, 1, 2, generator=gen, **F64)
    next_id = 0
    for op, pick, n in ops:
        live = sorted(shadow)
        if op == "add" or not live:
            sid, next_id = next_id, next_id + 1
            toks = prompt[: n * 4]
            hit = cache.add_sequence(sid, toks)
            assert hit % block == 0 and hit < max(len(toks), 1)
            rows = prefix_rows[: len(toks)]  # the same tokens give the same keys
            cache.append(sid, rows[hit:], rows[hit:], tokens=toks[hit:])
            shadow[sid] = (rows.clone(), rows.clone())
        elif op == "append":
            sid = live[pick % len(live)]
            shared = {b: (cache.k_pool[b].clone(), cache.v_pool[b].clone())
                      for b in range(cache.allocator.num_blocks) if cache.allocator.refcount(b) > 1}
            k = torch.randn(n, 1, 2, generator=gen, **F64)
            v = torch.randn(n, 1, 2, generator=gen, **F64)
            cache.append(sid, k, v)
            for b, (kb, vb) in shared.items():  # no write into a block that was shared
                assert torch.equal(cache.k_pool[b], kb) and torch.equal(cache.v_pool[b], vb)
            shadow[sid] = (torch.cat([shadow[sid][0], k]), torch.cat([shadow[sid][1], v]))
        elif op == "fork":
            src = live[pick % len(live)]
            sid, next_id = next_id, next_id + 1
            cache.fork(src, sid)
            shadow[sid] = tuple(x.clone() for x in shadow[src])
        else:
            sid = live[pick % len(live)]
            table = cache.block_table(sid)
            others = {b for s in shadow if s != sid for b in cache.block_table(s)}
            cache.free_sequence(sid)
            del shadow[sid]
            for b in table:  # freed only when no other table holds it
                assert (cache.allocator.refcount(b) == 0) == (b not in others)
        cache.check_invariants()
        for sid, (k, v) in shadow.items():
            gk, gv = cache.gather(sid)
            assert torch.equal(gk.transpose(0, 1), k) and torch.equal(gv.transpose(0, 1), v)


def test_allocator_never_frees_a_referenced_block_twice():
    a = BlockAllocator(2)
    b = a.allocate()
    a.incref(b)
    assert a.free(b) is False and a.refcount(b) == 1
    assert a.free(b) is True and a.num_free == 2
    with pytest.raises(ValueError, match="block"):
        a.free(b)
    with pytest.raises(ValueError, match="block"):
        a.incref(b)
    a.allocate(), a.allocate()
    with pytest.raises(MemoryError):
        a.allocate()


def test_failed_append_changes_nothing():
    cache = PagedKVCache(2, 4, 1, 1)
    cache.add_sequence(0)
    with pytest.raises(MemoryError):
        cache.append(0, torch.zeros(9, 1, 1), torch.zeros(9, 1, 1))
    assert cache.length(0) == 0 and cache.allocator.num_free == 2
    cache.check_invariants()


# ----------------------------------------------------------------------------- prefix hashing
def test_prefix_hash_names_the_whole_prefix():
    h1 = paged_kv.block_hash(b"", [1, 2])
    assert paged_kv.block_hash(h1, [3, 4]) != paged_kv.block_hash(paged_kv.block_hash(b"", [9, 9]), [3, 4])
    assert paged_kv.block_hash(b"", [1, 2]) == h1  # deterministic (no per-process salt)


def test_prefix_blocks_are_reused_and_dropped_when_freed():
    cache = PagedKVCache(10, 4, 1, 1)
    toks = list(range(10))
    assert cache.add_sequence("a", toks) == 0
    cache.append("a", torch.zeros(10, 1, 1), torch.zeros(10, 1, 1), tokens=toks)
    assert cache.add_sequence("b", toks) == 8  # two full blocks; the last token is recomputed
    assert cache.block_table("b")[:2] == cache.block_table("a")[:2]
    assert cache.add_sequence("c", [0, 1, 2, 3, 99, 5, 6, 7, 8]) == 4  # diverges in block 2
    assert cache.add_sequence("d", toks[:8]) == 4  # an exact 2-block prompt keeps 1 cached
    for s in "abcd":
        cache.free_sequence(s)
    cache.check_invariants()
    assert cache.allocator.num_free == 10 and cache.add_sequence("e", toks) == 0


# ----------------------------------------------------------------------------- 8-bit blocks
@settings(max_examples=30)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-3, 1e3))
def test_int8_blocks_round_within_half_a_step(seed, scale):
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randn(5, 4, 2, 8, generator=gen, **F64) * scale
    pool[1] = 0.0  # an empty block: scale 1, values 0
    values, scales = paged_kv.quantize_blocks(pool)
    assert values.dtype == torch.int8 and scales.shape == (5, 1, 2, 1)
    err = (paged_kv.dequantize_blocks(values, scales, torch.float64) - pool).abs()
    assert bool((err <= scales / 2 * (1 + 1e-6)).all())
    assert torch.equal(paged_kv.dequantize_blocks(values, scales)[1], torch.zeros(4, 2, 8))
