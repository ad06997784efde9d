"""Sequence-parallel attention on torch.distributed: ring and Ulysses (chapter 5).

Same shapes and causal convention as :func:`attn_lib.torch_impl.attention`:
q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv); with ``causal`` query i sees key j
iff j <= i + Nk - Nq.
The sequence is cut into shards, one per rank; each rank is a process
(:mod:`attn_lib._launch`), gloo on CPU, NCCL when every rank has its own GPU.

- :func:`ring_attention` (Liu, Zaharia, Abbeel 2023): each rank keeps its query shard
  and passes its K/V shard to the next rank, P − 1 times, computing on the block it
  holds while the next one is in flight. Each block's partial result comes from
  :func:`torch_impl.attention_lse` and joins the running one by
  :func:`torch_impl.merge_partials`, the log-sum-exp merge of chapter 4.
  ``layout="zigzag"`` gives rank r chunks r and 2P − 1 − r of 2P, so under the causal
  mask every rank scores the same number of pairs.
- :func:`ulysses_attention` (DeepSpeed-Ulysses, Jacobs et al. 2023): one all-to-all
  turns sequence shards into head shards, each rank attends over the whole sequence
  for H/P heads, a second all-to-all turns the output back.

:func:`run` batches several such jobs into one launch (one process group), which is how
the tests and the chapter keep the number of process start-ups small.

Both are forward passes. Training runs the ring again backwards: each rank keeps its q,
output, dO and log-sum-exp and adds up its dQ at home, while the K/V shards travel the
ring once more, each with a dK/dV accumulator that takes one hop more to get home. Its
traffic and overlap condition are closed forms in :mod:`attn_lib.counting`
(``ring_backward_bytes_total``, ``ring_backward_min_tokens``), as is the hybrid of both
schemes, USP (``usp_bytes_total``).
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

import torch

from . import _launch
from ._checks import (check_bool, check_choice, check_nonneg_int, check_positive,
                      check_positive_int, check_qkv, check_tensor, check_type)
from .torch_impl import attention_lse, merge_partials

LAYOUTS = ("contiguous", "zigzag")

#: Query rows per attention_lse call inside a ring step (bounds the scores in flight).
TILE_Q = 64


# ----------------------------------------------------------------------------- checks
# Generic rules come from attn_lib._checks; only the sharding rule is ring-specific.
def chunks_per_rank(layout: str) -> int:
    """How many equal chunks of the sequence a rank holds: 1 contiguous, 2 zigzag."""
    return 1 if check_choice("layout", layout, LAYOUTS) == "contiguous" else 2


def _check_shardable(q, k, world_size: int, layout: str) -> None:
    """Nq and Nk must split into world_size · chunks_per_rank equal chunks."""
    parts = world_size * chunks_per_rank(layout)
    for name, x in (("q", q), ("k", k)):
        n = x.shape[-2]
        if n % parts:
            raise ValueError(
                f"{name} has N = {n} (shape {tuple(x.shape)}), not divisible by "
                f"{parts} = world_size {world_size} × {chunks_per_rank(layout)} "
                f"chunk(s) per rank of layout {layout!r}")


def _check_tensors(q, k, v) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, x)
    check_qkv(q, k, v)


# ---------------------------------------------------------------------------- layouts
def chunk_starts(n: int, world_size: int, layout: str) -> list[list[int]]:
    """For each rank, the start of each chunk it holds (chunk length n / (P·chunks)).

    contiguous: rank r holds [r·C, (r+1)·C). zigzag: chunks r and 2P − 1 − r of 2P.
    """
    n = check_nonneg_int("n", n)
    world_size = check_positive_int("world_size", world_size)
    c = n // (world_size * chunks_per_rank(layout))
    if layout == "contiguous":
        return [[r * c] for r in range(world_size)]
    return [[r * c, (2 * world_size - 1 - r) * c] for r in range(world_size)]


def _shard(x: torch.Tensor, starts: list[int], length: int) -> torch.Tensor:
    """The chunks of x (..., N, e) at `starts`, each `length` long, side by side."""
    return torch.cat([x[..., s : s + length, :] for s in starts], dim=-2).contiguous()


def _unshard(parts: list[torch.Tensor], starts: list[list[int]], length: int, n: int):
    """Inverse of :func:`_shard` over all ranks: (..., n, e) from each rank's chunks."""
    out = parts[0].new_empty(parts[0].shape[:-2] + (n, parts[0].shape[-1]))
    for part, rank_starts in zip(parts, starts):
        for i, s in enumerate(rank_starts):
            out[..., s : s + length, :] = part[..., i * length : (i + 1) * length, :]
    return out


# ------------------------------------------------------------------------- statistics
@dataclass
class RankStats:
    """What one rank did: bytes over the link, (query, key) pairs scored, memory, time.

    compute_s and comm_s hold one entry per step; comm_s is the time spent posting the
    transfer and waiting for it after the compute (what the overlap did not hide).
    """

    rank: int
    bytes_sent: int = 0
    bytes_received: int = 0
    pairs: int = 0
    peak_bytes: int = 0
    compute_s: list = field(default_factory=list)  # seconds, per step
    comm_s: list = field(default_factory=list)  # seconds, per step

    def __post_init__(self):
        self.rank = check_nonneg_int("rank", self.rank)


class TensorBytes(torch.utils._python_dispatch.TorchDispatchMode):
    """Live and peak bytes of the tensors torch allocates while the mode is on.

    The CPU has no allocator counters like ``torch.cuda.max_memory_allocated``; this
    counts every new tensor storage an operator returns and subtracts it when the
    storage is freed.
    Tensors made before the mode started are added with :meth:`hold` (or passed here).
    """

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Nothing here runs under torch.compile; the default wrapper would import
        # torch._dynamo on first use (seconds of start-up in every rank).
        return False

    def __init__(self, *tensors):
        super().__init__()
        self.live = self.peak = 0
        self._seen: set[int] = set()
        self.hold(*tensors)

    def hold(self, *tensors) -> None:
        """Count tensors that already exist (a rank's q, k, v shards)."""
        for t in tensors:
            check_tensor("tensors", t)
            self._track(t)

    def _track(self, t) -> None:
        if not isinstance(t, torch.Tensor):
            return
        st = t.untyped_storage()
        key = st.data_ptr()
        if key in self._seen or st.nbytes() == 0:
            return
        self._seen.add(key)
        self.live += st.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(st, self._free, key, st.nbytes())

    def _free(self, key: int, nbytes: int) -> None:
        self._seen.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            self._track(t)
        return out


def _nbytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _visible(rows: int, cols: int, offset: int) -> int:
    """Pairs (i, j) of a rows×cols block with j <= i + offset, counted from the mask."""
    i = torch.arange(rows)[:, None]
    return int((torch.arange(cols)[None, :] <= i + offset).sum())


def _pairs(nq: int, nk: int, causal: bool) -> int:
    """Pairs one head of full attention scores (bottom-right causal), from the mask."""
    return _visible(nq, nk, nk - nq) if causal else nq * nk


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


# -------------------------------------------------------------------- one rank's ring
def _ring_step(q, q_starts, k, v, k_starts, acc, causal: bool, shift: int,
               st: RankStats):
    """Fold one held K/V shard into the running (out, lse) of every local query chunk.

    q (..., Lq, d) holds len(q_starts) chunks, k (..., Lk, d) and v (..., Lk, dv) hold
    len(k_starts) chunks; acc[i] = [out (..., cq, dv), lse (..., cq)] of query chunk i,
    updated in place. Queries go TILE_Q rows at a time, so the scores in flight are
    (..., TILE_Q, ck): scratch memory grows like N/P, not (N/P)², as in a flash kernel.
    A tile wholly above the diagonal is skipped (that is the causal saving).
    """
    cq, ck = q.shape[-2] // len(q_starts), k.shape[-2] // len(k_starts)
    heads = q[..., 0, 0].numel()  # product of the leading (batch, head) dims
    for i, qs in enumerate(q_starts):
        out, lse = acc[i]
        for j, ks in enumerate(k_starts):
            k_j = k[..., j * ck : (j + 1) * ck, :]  # (..., ck, d)
            v_j = v[..., j * ck : (j + 1) * ck, :]  # (..., ck, dv)
            for r0 in range(0, cq, TILE_Q):
                rows = min(TILE_Q, cq - r0)
                offset = qs + r0 + shift - ks  # row i sees key j iff j <= i + offset
                if causal and offset < -(rows - 1):
                    continue  # no query of this tile sees any key of that chunk
                q_t = q[..., i * cq + r0 : i * cq + r0 + rows, :]  # (..., rows, d)
                part = attention_lse(q_t, k_j, v_j, causal=causal, offset=offset)
                rs = slice(r0, r0 + rows)
                o, l = merge_partials(out[..., rs, :], lse[..., rs], *part)
                out[..., rs, :], lse[..., rs] = o, l
                seen = _visible(rows, ck, offset) if causal else rows * ck
                st.pairs += seen * heads


def _ring_rank(rank: int, world: int, job: dict):
    """One rank of ring attention: its query shard against every K/V shard, in P steps.

    At step t the rank holds the K/V shard of rank (rank − t) mod P; it posts the send
    of that shard to rank + 1 and the receive of the next from rank − 1 *before*
    computing, so the transfer overlaps the compute; then it waits.
    """
    import torch.distributed as dist

    dev = _device(rank, job["backend"])
    # pop: once its shard has moved on, no reference here may keep it alive
    q, k, v = (job.pop(n).to(dev) for n in ("q", "k", "v"))
    st, meter = RankStats(rank), TensorBytes(q, k, v)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev) - _nbytes(q, k, v)
    with meter:
        acc = [[q.new_zeros(q.shape[:-2] + (job["cq"], v.shape[-1]), dtype=_acc(q)),
                q.new_full(q.shape[:-2] + (job["cq"],), float("-inf"), dtype=_acc(q))]
               for _ in job["q_starts"][rank]]
        for t in range(world):
            _launch.report_step(t)
            reqs, bufs = [], None
            if t < world - 1:  # post the next block's transfer, then compute
                t0 = time.perf_counter()
                bufs = (torch.empty_like(k), torch.empty_like(v))
                ops = [dist.P2POp(dist.isend, k, (rank + 1) % world),
                       dist.P2POp(dist.isend, v, (rank + 1) % world),
                       dist.P2POp(dist.irecv, bufs[0], (rank - 1) % world),
                       dist.P2POp(dist.irecv, bufs[1], (rank - 1) % world)]
                reqs = dist.batch_isend_irecv(ops)
                st.bytes_sent += _nbytes(k, v)
                st.bytes_received += _nbytes(*bufs)
                post = time.perf_counter() - t0
            t0 = time.perf_counter()
            held = job["k_starts"][(rank - t) % world]  # chunks of the shard we hold
            _ring_step(q, job["q_starts"][rank], k, v, held, acc, job["causal"],
                       job["shift"], st)
            _sync(q)
            st.compute_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for r in reqs:
                r.wait()
            _sync(q)
            st.comm_s.append(time.perf_counter() - t0 + (post if reqs else 0.0))
            if bufs is not None:
                k, v = bufs
        out = torch.cat([o for o, _ in acc], dim=-2).to(q.dtype)
    st.peak_bytes = (torch.cuda.max_memory_allocated(dev) - base if dev.type == "cuda"
                     else meter.peak)
    return out.cpu(), st


def _device(rank: int, backend: str) -> torch.device:
    return torch.device(f"cuda:{rank}") if backend == "nccl" else torch.device("cpu")


def _acc(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


# ----------------------------------------------------------------- one rank's Ulysses
def _all_to_all(recv: list, send: list, rank: int, backend: str) -> None:
    """recv[j] <- rank j's send[rank], for every rank j (the all-to-all of Ulysses).

    NCCL runs it as one collective. On gloo it is the same exchange as point-to-point
    messages, because gloo's all_to_all is missing from some torch releases (2.11, on
    Colab); the bytes on the wire are the same either way.
    """
    import torch.distributed as dist

    if backend == "nccl":
        dist.all_to_all(recv, send)
        return
    recv[rank].copy_(send[rank])  # own slice stays home
    ops = [dist.P2POp(op, buf, peer) for peer in range(len(send)) if peer != rank
           for op, buf in ((dist.isend, send[peer]), (dist.irecv, recv[peer]))]
    for req in dist.batch_isend_irecv(ops):
        req.wait()


def _ulysses_rank(rank: int, world: int, job: dict):
    """One rank of Ulysses: all-to-all to head shards, full attention, all-to-all back.

    In: q (..., H, Nq/P, d) etc. for this rank's sequence shard. After the first
    all-to-all it holds (..., H/P, N, d): the whole sequence for H/P heads.
    """
    dev = _device(rank, job["backend"])
    st = RankStats(rank)
    t0 = time.perf_counter()
    gathered = []
    for name in ("q", "k", "v"):
        x = job[name].to(dev)  # (..., H, n/P, e)
        # P pieces (..., H/P, n/P, e): piece j goes to rank j
        send = [c.contiguous() for c in x.chunk(world, dim=-3)]
        recv = [torch.empty_like(c) for c in send]
        _all_to_all(recv, send, rank, job["backend"])
        st.bytes_sent += _nbytes(*send) - _nbytes(send[rank])  # own slice stays home
        st.bytes_received += _nbytes(*recv) - _nbytes(recv[rank])
        gathered.append(torch.cat(recv, dim=-2))  # (..., H/P, n, e), in sequence order
    st.comm_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    q, k, v = gathered
    out, _ = attention_lse(q, k, v, causal=job["causal"])  # (..., H/P, Nq, dv)
    nq, nk = q.shape[-2], k.shape[-2]
    st.pairs = _pairs(nq, nk, job["causal"]) * q[..., 0, 0].numel()
    st.compute_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    send = [c.contiguous() for c in out.to(job["q"].dtype).chunk(world, dim=-2)]
    recv = [torch.empty_like(send[0]) for _ in send]  # (..., H/P, Nq/P, dv) each
    _all_to_all(recv, send, rank, job["backend"])
    st.bytes_sent += _nbytes(*send) - _nbytes(send[rank])
    st.bytes_received += _nbytes(*recv) - _nbytes(recv[rank])
    st.comm_s.append(time.perf_counter() - t0)
    return torch.cat(recv, dim=-3).cpu(), st  # (..., H, Nq/P, dv)


def _jobs_worker(rank: int, world: int, jobs: list):
    """Spawned entry point: run each job's rank function in turn, in one group."""
    fns = {"ring": _ring_rank, "ulysses": _ulysses_rank}
    return [fns[job["kind"]](rank, world, job) for job in jobs]


# ------------------------------------------------------------------------ the callers
def _backend(q: torch.Tensor, world_size: int) -> str:
    """NCCL when the inputs are on a GPU and every rank can have its own, else gloo."""
    if q.is_cuda and torch.cuda.device_count() >= world_size:
        return "nccl"
    return "gloo"


def prepare(kind: str, q, k, v, *, causal=False, world_size=2,
            layout="contiguous") -> dict:
    """Check the arguments, cut q, k, v into per-rank shards: a job for :func:`run`."""
    check_choice("kind", kind, ("ring", "ulysses"))
    _check_tensors(q, k, v)
    causal = check_bool("causal", causal)
    world_size = _launch.check_world_size(world_size)
    chunks_per_rank(layout)  # checks layout
    job = {"kind": kind, "causal": causal, "backend": _backend(q, world_size),
           "shape": (tuple(q.shape), tuple(v.shape)), "dtype": q.dtype,
           "device": q.device, "world_size": world_size, "layout": layout}
    if kind == "ulysses":
        if layout != "contiguous":
            raise ValueError(f"layout must be 'contiguous' for Ulysses, got {layout!r}")
        if q.ndim < 3 or q.shape[-3] % world_size:
            heads = q.shape[-3] if q.ndim >= 3 else None
            raise ValueError(
                f"q must have a heads axis (..., H, N, d) with H divisible by "
                f"world_size {world_size}, got shape {tuple(q.shape)} (H = {heads})")
    _check_shardable(q, k, world_size, layout)
    nq, nk = q.shape[-2], k.shape[-2]
    per = world_size * chunks_per_rank(layout)
    job.update(cq=nq // per, ck=nk // per, shift=nk - nq,
               q_starts=chunk_starts(nq, world_size, layout),
               k_starts=chunk_starts(nk, world_size, layout))
    job["ranks"] = [{"q": _shard(q.detach().cpu(), job["q_starts"][r], job["cq"]),
                     "k": _shard(k.detach().cpu(), job["k_starts"][r], job["ck"]),
                     "v": _shard(v.detach().cpu(), job["k_starts"][r], job["ck"])}
                    for r in range(world_size)]
    return job


def _per_rank(job: dict, rank: int) -> dict:
    keep = ("kind", "causal", "backend", "cq", "ck", "shift", "q_starts", "k_starts")
    return {**{key: job[key] for key in keep}, **job["ranks"][rank]}


def _assemble(job: dict, parts: list) -> tuple[torch.Tensor, list]:
    outs, stats = zip(*parts)
    (q_shape, v_shape) = job["shape"]
    out = _unshard(list(outs), job["q_starts"], job["cq"], q_shape[-2])
    return out.to(device=job["device"], dtype=job["dtype"]), list(stats)


def run(jobs: list[dict], *, timeout: float = _launch.TIMEOUT_S) -> list[tuple]:
    """Run jobs from :func:`prepare` (equal world_size) in one launch: [(out, stats)].

    world_size 1 runs in this process: a ring of one needs no link and no rendezvous.
    """
    check_type("jobs", jobs, (list, tuple), "a list of jobs from ring.prepare")
    if not jobs or not all(isinstance(job, dict) and "ranks" in job for job in jobs):
        raise ValueError("jobs must be a non-empty list of jobs from ring.prepare")
    timeout = check_positive("timeout", timeout)
    sizes = {job["world_size"] for job in jobs}
    backends = {job["backend"] for job in jobs}
    if len(sizes) != 1 or len(backends) != 1:
        raise ValueError(f"jobs must share one world_size and backend, got {sizes}, "
                         f"{backends}")
    world = sizes.pop()
    args = [[_per_rank(job, r) for job in jobs] for r in range(world)]
    if world == 1:
        results = [[_local_rank(job) for job in args[0]]]
    else:
        results = _launch.launch(_jobs_worker, world, args, backend=backends.pop(),
                                 timeout=timeout)
    return [_assemble(job, [results[r][j] for r in range(world)])
            for j, job in enumerate(jobs)]


def _local_rank(job: dict):
    """world_size 1 in this process; Ulysses of one rank is plain attention."""
    if job["kind"] == "ring":
        return _ring_rank(0, 1, {**job, "backend": "gloo"})  # a copy: _ring_rank pops
    st = RankStats(0)
    t0 = time.perf_counter()
    out, _ = attention_lse(job["q"], job["k"], job["v"], causal=job["causal"])
    nq, nk = job["q"].shape[-2], job["k"].shape[-2]
    st.pairs = _pairs(nq, nk, job["causal"]) * job["q"][..., 0, 0].numel()
    st.compute_s.append(time.perf_counter() - t0)
    return out.to(job["q"].dtype), st


def ring_attention(q, k, v, *, causal=False, world_size=2, layout="contiguous",
                   return_stats=False):
    """Exact attention with the sequence split over `world_size` processes in a ring.

    q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) -> (..., Nq, dv), as
    :func:`torch_impl.attention`. Nq and Nk must divide into world_size chunks
    (2·world_size for ``layout="zigzag"``). With ``return_stats``, also a list of
    :class:`RankStats`, one per rank.
    """
    return_stats = check_bool("return_stats", return_stats)
    job = prepare("ring", q, k, v, causal=causal, world_size=world_size, layout=layout)
    out, stats = run([job])[0]
    return (out, stats) if return_stats else out


def ulysses_attention(q, k, v, *, causal=False, world_size=2):
    """Exact attention with sequence shards swapped for head shards by two all-to-alls.

    q (..., H, Nq, d), k (..., H, Nk, d), v (..., H, Nk, dv) -> (..., H, Nq, dv); H and
    both sequence lengths must be divisible by `world_size`.
    """
    job = prepare("ulysses", q, k, v, causal=causal, world_size=world_size)
    return run([job])[0][0]
