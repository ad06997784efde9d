"""attn_lib.ring on real torch.distributed processes (gloo, CPU), and its closed forms.

Ring attention and Ulysses must equal the float64 oracle (torch_impl.attention) for
world sizes 1-4, causal or not, both layouts, d != dv, Nq != Nk (both ways), float32 and
float64: a fixed table of cases that covers every one of these axes at every world
size, plus fresh random cases each run drawn from the session's seed. The bytes and
pairs each rank reports must equal counting's closed forms; bad arguments and shapes
that do not shard fail before any process starts; a rank that raises or hangs fails the
call, named, and leaves no process behind. Process start-up dominates the cost (~1 s),
so each test runs all its cases in one launch.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from attn_lib import _launch, counting, hardware, ring, torch_impl  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# A case: (kind, layout, causal, lead, cq, ck, d, dv, dtype). cq and ck are the query and
# key lengths of one chunk: Nq = cq · P · chunks_per_rank(layout), likewise Nk, so every
# case shards at every world size.
F64, F32 = torch.float64, torch.float32
T = ring.TILE_Q
EXPLICIT = [
    # ring, both layouts, causal or not; Nq = Nk, Nq < Nk, Nq > Nk (rows that see no key)
    ("ring", "contiguous", False, (2, 3), 3, 3, 4, 4, F64),
    ("ring", "contiguous", True, (1, 2), 3, 3, 5, 3, F64),
    ("ring", "contiguous", True, (2, 1), 2, 5, 3, 6, F32),
    ("ring", "contiguous", True, (1, 3), 4, 2, 6, 2, F64),
    ("ring", "zigzag", False, (1, 2), 2, 3, 4, 2, F32),
    ("ring", "zigzag", True, (2, 2), 2, 2, 3, 6, F64),
    ("ring", "zigzag", True, (1, 1), 1, 3, 5, 4, F64),
    ("ring", "zigzag", True, (1, 2), 3, 1, 4, 5, F32),
    ("ring", "zigzag", True, (), 3, 3, 2, 3, F32),  # no leading dims: q (N, d)
    # chunks longer than TILE_Q: a ring step cuts its queries into tiles, some skipped
    ("ring", "contiguous", True, (1, 1), T + 6, T + 6, 2, 3, F64),
    ("ring", "zigzag", True, (1, 1), T + 3, T - 5, 3, 2, F64),
    # Ulysses: heads split over the ranks (H = P or 2P), contiguous only
    ("ulysses", "contiguous", True, (1, "P"), 3, 3, 4, 4, F64),
    ("ulysses", "contiguous", True, (2, "2P"), 2, 4, 3, 5, F32),
    ("ulysses", "contiguous", True, (1, "P"), 4, 2, 5, 3, F64),
    ("ulysses", "contiguous", False, (2, "P"), 3, 1, 2, 6, F64),
    ("ulysses", "contiguous", False, (1, 2, "P"), 2, 3, 4, 4, F32),  # (B, G, H, N, d)
]


def _resolve(case, world):
    """(kind, layout, causal, lead, nq, nk, d, dv, dtype) for this world size."""
    kind, layout, causal, lead, cq, ck, d, dv, dtype = case
    heads = {"P": world, "2P": 2 * world}
    lead = tuple(heads.get(x, x) for x in lead)
    parts = world * ring.chunks_per_rank(layout)
    return kind, layout, causal, lead, cq * parts, ck * parts, d, dv, dtype


def random_case(rng, world):
    """One case drawn from `rng`: every axis varies (kind, layout, causal, Nq vs Nk, d vs
    dv, dtype, leading dims)."""
    kind = rng.choice(["ring", "ring", "ulysses"])
    layout = "contiguous" if kind == "ulysses" else rng.choice(ring.LAYOUTS)
    cq = rng.randint(1, 6)
    ck = rng.choice([cq, rng.randint(1, 6)])  # Nq = Nk often, not always
    if kind == "ulysses":
        lead = (rng.randint(1, 2), world * rng.randint(1, 2))
    else:
        lead = tuple(rng.randint(1, 3) for _ in range(rng.randint(0, 2)))
    d, dv = rng.randint(1, 8), rng.randint(1, 8)
    dtype = rng.choice([F64, F32])
    return _resolve((kind, layout, rng.random() < 0.6, lead, cq, ck, d, dv, dtype), world)


def _tensors(lead, nq, nk, d, dv, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*lead, n, e, generator=g, dtype=torch.float64).to(dtype)
            for n, e in ((nq, d), (nk, d), (nk, dv))]


def _bound(q, k, v, causal):
    """Error allowed against float64 (FlashAttention's test rule): 2× SDPA's, plus one logit rounding."""
    if q.dtype == torch.float64:
        return 1e-10
    want = torch_impl.attention(*(t.double() for t in (q, k, v)), causal=causal)
    sdpa = torch_impl.sdpa(q, k, v, causal=causal).double()
    s = (q.double() @ k.double().transpose(-1, -2)).abs().max() / math.sqrt(q.shape[-1])
    floor = torch.finfo(q.dtype).eps * s * v.abs().max()
    return float(2 * (sdpa - want).abs().max() + floor)


def _check_cases(world, cases, seeds):
    """Run every case in one launch; check outputs against float64 and the closed forms."""
    jobs, inputs = [], []
    for (kind, layout, causal, lead, nq, nk, d, dv, dtype), seed in zip(cases, seeds):
        q, k, v = _tensors(lead, nq, nk, d, dv, dtype, seed)
        jobs.append(ring.prepare(kind, q, k, v, causal=causal, world_size=world,
                                 layout=layout))
        inputs.append((q, k, v))
    for case, (q, k, v), (out, stats) in zip(cases, inputs, ring.run(jobs)):
        kind, layout, causal, lead, nq, nk, d, dv, dtype = case
        want = torch_impl.attention(q.double(), k.double(), v.double(), causal=causal)
        assert out.shape == want.shape and out.dtype == dtype, case
        err = float((out.double() - want).abs().max())
        bound = _bound(q, k, v, causal)
        assert err <= bound, f"{case}: error {err:.3g} > bound {bound:.3g}"
        width, b = math.prod(lead), q.element_size()
        sent = [s.bytes_sent for s in stats]
        assert sent == [s.bytes_received for s in stats], case
        if kind == "ring":
            total = counting.ring_bytes_total(nk, world, width * (d + dv), b)
            assert sent == [total] * world, case
            assert all(len(s.compute_s) == len(s.comm_s) == world for s in stats)
        else:  # Ulysses: q (Nq), k and v (Nk) in, the output (Nq) back
            total = counting.ulysses_bytes_total(nq + nk, world, width * (d + dv), b)
            assert sent == [pytest.approx(total, rel=1e-12)] * world, case
        pairs = [s.pairs for s in stats]
        assert sum(pairs) == counting.attention_pairs(nq, nk, causal=causal) * width, case
        if kind == "ring" and nq == nk:
            expect = counting.ring_pairs_per_rank(nq, world, layout, causal=causal)
            assert pairs == [p * width for p in expect], case


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_explicit_cases_match_float64_and_closed_forms(world):
    """Every axis at every world size: ring (both layouts) and Ulysses, causal or not,
    Nq = Nk, Nq < Nk and Nq > Nk, d != dv, float64 and float32, several leading shapes."""
    _check_cases(world, [_resolve(c, world) for c in EXPLICIT], range(len(EXPLICIT)))


@pytest.mark.parametrize("world", [2, 3, 4])
def test_random_cases_match_float64_and_closed_forms(world, request):
    """Fresh cases every run, drawn from the session's seed (printed in the header and
    after a failure; ``--hypothesis-seed=N`` replays them). One launch per world size."""
    seed = request.config.getoption("hypothesis_seed")
    rng = random.Random(f"{seed}-ring-{world}")
    cases = [random_case(rng, world) for _ in range(20)]
    _check_cases(world, cases, [rng.randrange(2**31) for _ in cases])


def test_load_balance_measured():
    """Causal, P = 4: contiguous shards spread work ≈ 2P − 1 : 1; zigzag evens it."""
    q, k, v = _tensors((1, 1), 256, 256, 4, 4, torch.float64, 0)
    jobs = [ring.prepare("ring", q, k, v, causal=True, world_size=4, layout=lay)
            for lay in ring.LAYOUTS]
    (_, contiguous), (_, zigzag) = ring.run(jobs)
    ratio = lambda stats: max(s.pairs for s in stats) / min(s.pairs for s in stats)
    assert ratio(zigzag) <= 1.1
    assert abs(ratio(contiguous) - 7) / 7 < 0.1
    # the K/V a rank holds and scores with falls as 1/P: per-rank peak at P = 4 vs P = 2
    peak4 = max(s.peak_bytes for s in contiguous)
    (_, two), = ring.run([ring.prepare("ring", q, k, v, world_size=2)])
    assert 1.8 <= max(s.peak_bytes for s in two) / peak4 <= 2.2


# -------------------------------------------------------------------------- bad input
def _qkv(n=10, heads=2, d=4):
    return _tensors((1, heads), n, n, d, d, torch.float32, 0)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"world_size": 0}, ValueError, "world_size"),
    ({"world_size": -2}, ValueError, "world_size"),
    ({"world_size": True}, TypeError, "world_size"),
    ({"world_size": 2.0}, TypeError, "world_size"),
    ({"world_size": 3}, ValueError, "not divisible by 3"),
    ({"world_size": 4, "layout": "zigzag"}, ValueError, "divisible by 8"),
    ({"layout": "striped"}, ValueError, "layout"),
    ({"causal": 1}, TypeError, "causal"),
    ({"return_stats": "yes"}, TypeError, "return_stats"),
])
def test_ring_rejects_bad_arguments(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        ring.ring_attention(*_qkv(), **kwargs)


def test_ring_rejects_bad_tensors():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="q must be a torch.Tensor"):
        ring.ring_attention(q.numpy(), k, v)
    with pytest.raises(ValueError, match="head dim"):
        ring.ring_attention(q, k[..., :3], v)
    with pytest.raises(TypeError, match="floating dtype"):
        ring.ring_attention(q.long(), k.long(), v.long())


@pytest.mark.parametrize("nq, nk, world, layout, name", [
    (12, 10, 3, "contiguous", "k has N = 10"),  # keys must shard too
    (10, 12, 3, "contiguous", "q has N = 10"),
    (12, 6, 2, "zigzag", "k has N = 6"),  # zigzag: 2·P chunks, not P
    (8, 8, 3, "zigzag", "q has N = 8"),
])
def test_both_lengths_must_split_into_equal_chunks(nq, nk, world, layout, name):
    q, k, v = _tensors((1, 6), nq, nk, 4, 4, torch.float32, 0)  # H = 6 splits over 2 or 3
    with pytest.raises(ValueError, match=name):
        ring.ring_attention(q, k, v, world_size=world, layout=layout)
    with pytest.raises(ValueError, match=name if layout == "contiguous" else "layout"):
        ring.prepare("ulysses", q, k, v, world_size=world, layout=layout)


def test_what_shards_is_accepted_without_a_launch():
    # Nq != Nk is fine when both shard; the ring needs no heads axis; Ulysses only H % P.
    q, k, v = _tensors((), 8, 16, 3, 5, torch.float32, 0)
    job = ring.prepare("ring", q, k, v, world_size=4, layout="zigzag")
    assert (job["cq"], job["ck"], job["shift"]) == (1, 2, 8)
    assert job["q_starts"] == [[0, 7], [1, 6], [2, 5], [3, 4]]
    assert job["ranks"][1]["k"].shape == (4, 3)  # chunks 1 and 6 of k, 2 keys each
    q, k, v = _tensors((1, 6), 6, 3, 3, 5, torch.float32, 0)
    assert ring.prepare("ulysses", q, k, v, world_size=3)["ranks"][0]["q"].shape == (1, 6, 2, 3)


def test_ulysses_rejects_heads_not_divisible():
    with pytest.raises(ValueError, match="H divisible by world_size 2.*H = 3"):
        ring.ulysses_attention(*_qkv(heads=3), world_size=2)
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="heads axis"):
        ring.ulysses_attention(q[0, 0], k[0, 0], v[0, 0])
    with pytest.raises(ValueError, match="world_size"):
        ring.ulysses_attention(q, k, v, world_size=0)
    with pytest.raises(TypeError, match="causal"):
        ring.ulysses_attention(q, k, v, causal="no")


def test_public_functions_return_what_they_say():
    q, k, v = _qkv(n=8, heads=2)
    out, stats = ring.ring_attention(q, k, v, causal=True, world_size=1,
                                     return_stats=True)
    assert torch.allclose(out, torch_impl.attention(q, k, v, causal=True), atol=1e-6)
    assert [s.rank for s in stats] == [0] and stats[0].bytes_sent == 0
    assert isinstance(stats[0], ring.RankStats) and stats[0].pairs == 2 * (8 * 9 // 2)
    assert ring.ulysses_attention(q, k, v, world_size=1).shape == (1, 2, 8, 4)


def test_tensor_bytes_counts_live_and_peak_storage():
    held = torch.zeros(10)  # 40 bytes made before the mode: added by hand
    with ring.TensorBytes(held) as meter:
        x = torch.zeros(1000)  # 4000 bytes
        assert meter.live == 40 + 4000
        del x  # its storage is freed: live falls, the peak stays
    assert (meter.live, meter.peak) == (40, 4040)


# -------------------------------------------------------------------------- processes
def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_rank_that_raises_fails_the_call_and_leaves_no_process():
    t0 = time.monotonic()
    match = r"rank 1 failed(.|\n)*deliberate"
    with pytest.raises(_launch.RankError, match=match) as info:
        _launch.launch(_launch.raise_on_rank, 3, [{"rank": 1}] * 3, timeout=60)
    assert time.monotonic() - t0 < 60
    assert info.value.rank == 1 and len(info.value.pids) == 3
    assert all(_gone(pid) for pid in info.value.pids)
    assert not multiprocessing.active_children()  # every rank joined


def test_a_hung_rank_times_out_named_and_leaves_no_process():
    t0 = time.monotonic()
    with pytest.raises(_launch.RankTimeout, match="rank 1 did not finish") as info:
        _launch.launch(_launch.hang_on_rank, 2, [{"rank": 1}] * 2, timeout=4)
    assert time.monotonic() - t0 < 4 + 15  # the deadline, plus terminate and join
    assert info.value.ranks == [1]
    assert all(_gone(pid) for pid in info.value.pids)


def test_launch_checks_its_arguments():
    with pytest.raises(ValueError, match="one entry per rank"):
        _launch.launch(_launch.raise_on_rank, 2, [{}])
    with pytest.raises(ValueError, match="backend"):
        _launch.launch(_launch.raise_on_rank, 1, [{}], backend="mpi")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (NCCL path)")
def test_gpu_inputs_come_back_on_the_gpu():
    q, k, v = (t.cuda() for t in _qkv())
    out = ring.ring_attention(q, k, v, world_size=min(2, torch.cuda.device_count()))
    assert out.is_cuda
    assert torch.allclose(out, torch_impl.attention(q, k, v), atol=1e-5)


# ----------------------------------------------------------------------- closed forms
@given(st.integers(0, 12), st.integers(0, 12), st.integers(-15, 15))
def test_block_pairs_counts_the_mask(rows, cols, offset):
    brute = sum(1 for i in range(rows) for j in range(cols) if j <= i + offset)
    assert counting.block_pairs(rows, cols, offset) == brute


@given(st.integers(1, 6), st.integers(1, 12), st.sampled_from(ring.LAYOUTS))
def test_pairs_per_rank_sum_the_blocks(p, c, layout):
    n = c * p * ring.chunks_per_rank(layout)
    starts = ring.chunk_starts(n, p, layout)
    cl = n // (p * ring.chunks_per_rank(layout))
    want = [sum(counting.block_pairs(cl, cl, qs - ks) for qs in starts[r]
                for s in starts for ks in s) for r in range(p)]
    assert counting.ring_pairs_per_rank(n, p, layout) == want
    assert sum(want) == counting.attention_pairs(n, causal=True)
    assert counting.ring_pairs_per_rank(n, p, layout, causal=False) == [n * n // p] * p


@pytest.mark.parametrize("p", [2, 4, 8])
def test_contiguous_imbalance_tends_to_2p_minus_1(p):
    pairs = counting.ring_pairs_per_rank(p * 4096, p)
    assert abs(max(pairs) / min(pairs) - (2 * p - 1)) < 1e-2
    even = counting.ring_pairs_per_rank(p * 4096, p, "zigzag")
    assert max(even) == min(even)


def test_traffic_and_memory_closed_forms():
    n, p, w = 1 << 20, 8, 2048
    step = counting.ring_bytes_per_step(n, p, w)
    assert counting.ring_bytes_total(n, p, w) == (p - 1) * step
    assert counting.ring_bytes_total(n, 1, w) == 0
    assert counting.ulysses_bytes_total(n, 1, w) == 0
    # Ulysses sends (P-1)/P^2 · N · width; the ring (P-1)/P · N · kv_width
    assert counting.ulysses_bytes_total(n, p, w) == (p - 1) / p**2 * n * w * 2
    kv = counting.kv_cache_bytes("llama-3-8b", n)
    assert counting.kv_bytes_per_device("llama-3-8b", n, p) * p == kv
    a1 = counting.activation_bytes_per_device("llama-3-8b", n, 1)
    assert counting.activation_bytes_per_device("llama-3-8b", n, p) == a1 / p
    assert counting.ulysses_max_world_size("llama-3-8b") == 8
    with pytest.raises(ValueError, match="world_size"):
        counting.kv_bytes_per_device("llama-3-8b", n, 0)


@pytest.mark.parametrize("link", list(hardware.LINKS))
def test_overlap_condition_is_where_compute_meets_transfer(link):
    f, bw = hardware.get("H100 SXM").peak("bf16"), hardware.link(link).bandwidth
    c = counting.overlap_min_tokens("llama-3-8b", f, bw)
    p = 8
    at = counting.ring_step_seconds("llama-3-8b", round(c * p), p, f, bw)
    assert math.isclose(at["compute"], at["transfer"], rel_tol=1e-3)
    below = counting.ring_step_seconds("llama-3-8b", round(c * p / 2), p, f, bw)
    assert below["transfer"] > below["compute"] and below["step"] == below["transfer"]
    causal = counting.overlap_min_tokens("llama-3-8b", f, bw, causal=True)
    assert causal == 2 * c


# -------------------------------------------------------------------- chapter 5 figures
@pytest.mark.parametrize("layout", ring.LAYOUTS)
def test_schedule_passes_every_shard_to_every_rank(layout):
    from attn_lib.viz import ring as rviz

    p = 4
    held = rviz.holder_schedule(p, layout)
    for r in range(p):  # over the P steps, rank r meets every chunk exactly once
        seen = sorted(c for t in range(p) for c in held[t][r])
        assert seen == list(range(p * ring.chunks_per_rank(layout)))
    work = rviz.step_work(p, layout)  # [step][rank] share of a block of 64-token chunks
    shard = 64 * ring.chunks_per_rank(layout)
    per_rank = [sum(work[t][r] for t in range(p)) * shard**2 for r in range(p)]
    want = counting.ring_pairs_per_rank(p * shard, p, layout)
    assert [round(x) for x in per_rank] == want


def test_planner_and_its_table():
    import matplotlib

    matplotlib.use("Agg")
    from attn_lib.viz import ring as rviz

    plans = [rviz.plan(p, 1 << 20) for p in (1, 8)]
    assert not plans[0]["fits"] and plans[1]["fits"] and plans[1]["hidden"]
    assert plans[1]["kv_gb"] * 8 == pytest.approx(plans[0]["kv_gb"])
    table = rviz.plan_table(plans).splitlines()
    assert len(table) == 4 and table[0].startswith("| P |")
    assert rviz.num3(9_104_000.0) == "9,100,000" and rviz.num3(17.18) == "17.2"
    fig = rviz.ring_schedule_figure(3)
    assert len(fig.axes) == 2
