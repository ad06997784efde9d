"""A paged KV cache (chapter 3b): fixed-size blocks, block tables, reference counts.

The idea of vLLM's PagedAttention (Kwon et al., SOSP 2023): instead of one buffer reserved
up to the context per sequence (:class:`attn_lib.tiny_gpt.KVCache`), keys and values live
in a pool of blocks of ``block_size`` tokens; each sequence owns a *block table*, the list
of block ids that hold its tokens in order. A block is taken from a free list when the
previous one fills up, so at most the last block of a sequence is partly empty.

- :class:`BlockAllocator`: the free list and one reference count per block.
- :class:`PagedKVCache`: pools (num_blocks, block_size, n_kv_heads, head_dim) for K and V,
  sequences with block tables, ``fork`` (share every block), copy-on-write on append into
  a shared block, and prefix caching: each *full* block is registered under a hash of its
  tokens and of all the tokens before it (vLLM's automatic prefix caching), so a new
  sequence with the same prefix reuses those blocks instead of recomputing them.
- :func:`paged_attention`: attention of each sequence's queries over its blocks, gathered
  from the pools in torch; equal to attention over the same keys laid out contiguously,
  with grouped-query heads and the book's bottom-right causal convention.
- :func:`quantize_blocks` / :func:`dequantize_blocks`: an 8-bit copy of a pool with one
  scale per (block, kv head).

One layer per cache (a model keeps one per layer; the bookkeeping is the same).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from ._checks import (check_bool, check_int, check_nonneg_int, check_positive_int, check_tensor,
                      check_type, resolve_scale, check_scale)

_NO_PARENT = b""


class BlockAllocator:
    """A free list of block ids 0..num_blocks-1 and a reference count per block.

    ``allocate`` pops a free block (count 1), ``incref`` shares it, ``free`` drops one
    reference and returns the block to the free list when none is left. Freeing a free
    block is a ValueError: no block is ever freed while referenced, or freed twice.
    """

    def __init__(self, num_blocks: int):
        self.num_blocks = check_positive_int("num_blocks", num_blocks)
        self._free = list(range(self.num_blocks - 1, -1, -1))  # pop() gives 0, 1, 2, ...
        self._refs = [0] * self.num_blocks

    @property
    def num_free(self) -> int:
        return len(self._free)

    def refcount(self, block: int) -> int:
        """References held on `block` (0: free)."""
        return self._refs[self._block("block", block)]

    def _block(self, name: str, block) -> int:
        b = check_int(name, block)
        if not 0 <= b < self.num_blocks:
            raise ValueError(f"{name} must be a block id in [0, {self.num_blocks}), got {b}")
        return b

    def allocate(self) -> int:
        """A free block, now referenced once. MemoryError when the pool is exhausted."""
        if not self._free:
            raise MemoryError(f"no free block left (num_blocks={self.num_blocks})")
        b = self._free.pop()
        self._refs[b] = 1
        return b

    def incref(self, block: int) -> None:
        """One more reference to an allocated block (a second table now points at it)."""
        b = self._block("block", block)
        if self._refs[b] == 0:
            raise ValueError(f"block {b} is free: it cannot be shared")
        self._refs[b] += 1

    def free(self, block: int) -> bool:
        """Drop one reference; True when that was the last and the block is free again."""
        b = self._block("block", block)
        if self._refs[b] == 0:
            raise ValueError(f"block {b} is already free")
        self._refs[b] -= 1
        if self._refs[b] == 0:
            self._free.append(b)
            return True
        return False


@dataclass
class _Seq:
    table: list = field(default_factory=list)  # block ids, in token order
    length: int = 0
    tokens: list = field(default_factory=list)  # token ids (for prefix hashes)
    hashes: list = field(default_factory=list)  # hash of each full block, in order


def block_hash(parent: bytes, tokens) -> bytes:
    """Hash of a full block: SHA-256 of the previous block's hash and this block's token ids.

    Chaining the parent makes the hash name the whole prefix, not just the block's tokens.
    """
    check_type("parent", parent, bytes)
    ids = [check_int("tokens", t) for t in tokens]
    data = parent + b"|" + ",".join(map(str, ids)).encode()
    return hashlib.sha256(data).digest()


class PagedKVCache:
    """Keys and values of many sequences in one pool of blocks (one layer).

    k_pool, v_pool: (num_blocks, block_size, n_kv_heads, head_dim). Sequences are named by
    any hashable id. ``stats`` counts ``cow_copies`` (blocks copied on write) and
    ``prefix_hits`` (blocks reused from the prefix table).
    """

    def __init__(self, num_blocks: int, block_size: int, n_kv_heads: int, head_dim: int, *,
                 dtype=torch.float32, device="cpu", prefix_caching: bool = True):
        self.block_size = check_positive_int("block_size", block_size)
        self.n_kv_heads = check_positive_int("n_kv_heads", n_kv_heads)
        self.head_dim = check_positive_int("head_dim", head_dim)
        self.prefix_caching = check_bool("prefix_caching", prefix_caching)
        check_type("dtype", dtype, torch.dtype)
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a float dtype, got {dtype}")
        self.allocator = BlockAllocator(num_blocks)
        shape = (self.allocator.num_blocks, self.block_size, self.n_kv_heads, self.head_dim)
        self.k_pool = torch.zeros(shape, dtype=dtype, device=device)
        self.v_pool = torch.zeros(shape, dtype=dtype, device=device)
        self._seqs: dict = {}
        self._prefix: dict[bytes, int] = {}  # full-block hash -> block id
        self._block_key: dict[int, bytes] = {}  # block id -> its registered hash
        self.stats = {"cow_copies": 0, "prefix_hits": 0}

    # ----------------------------------------------------------- sequences
    def _seq(self, seq_id) -> _Seq:
        try:
            return self._seqs[seq_id]
        except (KeyError, TypeError):
            raise ValueError(f"seq_id {seq_id!r} is not a sequence of this cache") from None

    def sequences(self) -> list:
        return list(self._seqs)

    def length(self, seq_id) -> int:
        return self._seq(seq_id).length

    def block_table(self, seq_id) -> list[int]:
        """The block ids holding the sequence's tokens, in order (a copy)."""
        return list(self._seq(seq_id).table)

    def add_sequence(self, seq_id, tokens=None) -> int:
        """Start a sequence; with prefix caching and `tokens`, reuse matching full blocks.

        Returns how many leading tokens are already cached (a multiple of block_size, and
        always fewer than len(tokens): the last prompt token is recomputed for its logits).
        The caller then appends K/V for the rest with :meth:`append`.
        """
        try:
            fresh = seq_id not in self._seqs
        except TypeError:
            raise ValueError(f"seq_id must be hashable, got {seq_id!r}") from None
        if not fresh:
            raise ValueError(f"seq_id {seq_id!r} already exists")
        seq = _Seq()
        self._seqs[seq_id] = seq
        if tokens is None or not self.prefix_caching:
            return 0
        ids = [check_int("tokens", t) for t in tokens]
        parent, bs = _NO_PARENT, self.block_size
        for i in range((len(ids) - 1) // bs):
            h = block_hash(parent, ids[i * bs:(i + 1) * bs])
            block = self._prefix.get(h)
            if block is None:
                break
            self.allocator.incref(block)
            seq.table.append(block)
            seq.hashes.append(h)
            parent = h
        seq.length = len(seq.table) * bs
        seq.tokens = ids[:seq.length]
        self.stats["prefix_hits"] += len(seq.table)
        return seq.length

    def fork(self, seq_id, new_id) -> None:
        """A new sequence sharing every block of `seq_id` (parallel sampling, beam search)."""
        src = self._seq(seq_id)
        self.add_sequence(new_id)
        dst = self._seqs[new_id]
        for b in src.table:
            self.allocator.incref(b)
        dst.table, dst.length = list(src.table), src.length
        dst.tokens, dst.hashes = list(src.tokens), list(src.hashes)

    def free_sequence(self, seq_id) -> None:
        """Drop the sequence's references; blocks nobody else uses return to the free list."""
        seq = self._seq(seq_id)
        for b in seq.table:
            if self.allocator.free(b):
                key = self._block_key.pop(b, None)
                if key is not None and self._prefix.get(key) == b:
                    del self._prefix[key]
        del self._seqs[seq_id]

    # ----------------------------------------------------------- writing
    def append(self, seq_id, k: torch.Tensor, v: torch.Tensor, tokens=None) -> None:
        """Append T rows, k and v (T, n_kv_heads, head_dim), to the sequence.

        A shared last block is copied first (copy-on-write): no write ever lands in a block
        another table references. `tokens` (T ids) lets full blocks join the prefix table.
        """
        seq = self._seq(seq_id)
        self._check_rows(k, v)
        n = k.shape[0]
        if tokens is not None:
            tokens = [check_int("tokens", t) for t in tokens]
            if len(tokens) != n:
                raise ValueError(f"tokens: {len(tokens)} ids for {n} rows of k and v")
        bs, start = self.block_size, seq.length
        if n == 0:
            return
        cow = bool(start % bs) and self.allocator.refcount(seq.table[-1]) > 1
        need = -(-(start + n) // bs) - len(seq.table) + cow
        if need > self.allocator.num_free:  # fail before touching anything
            raise MemoryError(f"{need} blocks needed, {self.allocator.num_free} free")
        if cow:
            self._copy_on_write(seq)  # the partly filled last block is shared: copy it first
        while len(seq.table) * bs < start + n:
            seq.table.append(self.allocator.allocate())
        pos = torch.arange(start, start + n)
        table = torch.tensor(seq.table, dtype=torch.long)
        blocks, slots = table[pos // bs], pos % bs  # (T,) each
        # never write into a shared block
        assert all(self.allocator.refcount(b) == 1 for b in seq.table[start // bs:])
        dev = self.k_pool.device
        blocks, slots = blocks.to(dev), slots.to(dev)
        self.k_pool[blocks, slots] = k.to(device=dev, dtype=self.k_pool.dtype)
        self.v_pool[blocks, slots] = v.to(device=dev, dtype=self.v_pool.dtype)
        seq.length = start + n
        if tokens is not None and len(seq.tokens) == start:
            seq.tokens.extend(tokens)
            for i in range(start // bs, seq.length // bs):
                if i == len(seq.hashes):
                    self._register(seq, seq.table[i], i)

    def _check_rows(self, k, v) -> None:
        for name, x in (("k", k), ("v", v)):
            check_tensor(name, x)
            want = (self.n_kv_heads, self.head_dim)
            if x.ndim != 3 or tuple(x.shape[1:]) != want:
                raise ValueError(f"{name} must be (T, n_kv_heads={want[0]}, head_dim={want[1]}), "
                                 f"got {tuple(x.shape)}")
        if k.shape != v.shape:
            raise ValueError(f"k and v must have one shape, got {tuple(k.shape)}, {tuple(v.shape)}")

    def _copy_on_write(self, seq: _Seq) -> None:
        old = seq.table[-1]
        new = self.allocator.allocate()
        self.k_pool[new] = self.k_pool[old]
        self.v_pool[new] = self.v_pool[old]
        self.allocator.free(old)  # still referenced by the other table(s)
        seq.table[-1] = new
        self.stats["cow_copies"] += 1

    def _register(self, seq: _Seq, block: int, i: int) -> None:
        """Hash full block i of the sequence (its tokens and its prefix) and register it."""
        parent = seq.hashes[-1] if seq.hashes else _NO_PARENT
        h = block_hash(parent, seq.tokens[i * self.block_size:(i + 1) * self.block_size])
        seq.hashes.append(h)
        if self.prefix_caching and h not in self._prefix:
            self._prefix[h] = block
            self._block_key[block] = h

    # ----------------------------------------------------------- reading
    def tables(self, seq_ids) -> tuple[list[list[int]], list[int]]:
        """Block tables and lengths of `seq_ids`, the arguments of :func:`paged_attention`."""
        seqs = [self._seq(s) for s in seq_ids]
        return [list(s.table) for s in seqs], [s.length for s in seqs]

    def gather(self, seq_id) -> tuple[torch.Tensor, torch.Tensor]:
        """The sequence's keys and values laid out contiguously: (n_kv_heads, length, head_dim)."""
        seq = self._seq(seq_id)
        idx = torch.tensor(seq.table, dtype=torch.long, device=self.k_pool.device)
        k = self.k_pool[idx].flatten(0, 1)[: seq.length]  # (length, Hkv, hd)
        v = self.v_pool[idx].flatten(0, 1)[: seq.length]
        return k.transpose(0, 1), v.transpose(0, 1)

    def reserved_tokens(self) -> int:
        """Token slots in allocated blocks (shared blocks counted once)."""
        return (self.allocator.num_blocks - self.allocator.num_free) * self.block_size

    def stored_tokens(self) -> int:
        """Tokens held, counting a shared block's tokens once."""
        held: dict[int, int] = {}
        for s in self._seqs.values():
            for i, b in enumerate(s.table):
                held[b] = max(held.get(b, 0), min(self.block_size, s.length - i * self.block_size))
        return sum(held.values())

    def check_invariants(self) -> None:
        """Raise AssertionError unless every count matches the tables.

        Each block's reference count equals the number of tables that list it; the free
        list holds exactly the blocks with count 0, once each; every table covers its
        sequence's length with ceil(length / block_size) blocks.
        """
        uses = [0] * self.allocator.num_blocks
        for s in self._seqs.values():
            assert len(s.table) == -(-s.length // self.block_size), "table does not fit length"
            for b in s.table:
                uses[b] += 1
        assert uses == self.allocator._refs, "reference counts differ from table uses"
        free = self.allocator._free
        assert len(set(free)) == len(free), "a block is on the free list twice"
        assert set(free) == {b for b, n in enumerate(uses) if n == 0}, "free list != unused blocks"
        for h, b in self._prefix.items():
            assert uses[b] > 0, "the prefix table names a free block"


# ----------------------------------------------------------------------------- attention
def _check_tables(block_tables, lengths, n_seqs: int, num_blocks: int, block_size: int,
                  allocator: BlockAllocator | None) -> tuple[list[list[int]], list[int]]:
    if not isinstance(block_tables, (list, tuple)) or len(block_tables) != n_seqs:
        raise ValueError(f"block_tables must be a list of {n_seqs} block-id lists (one per "
                         f"sequence of q), got {type(block_tables).__name__}")
    if not isinstance(lengths, (list, tuple)) or len(lengths) != n_seqs:
        raise ValueError(f"lengths must be a list of {n_seqs} ints, got {lengths!r}")
    tables, lens = [], []
    for table, n in zip(block_tables, lengths):
        ids = [check_int("block_tables", b) for b in table]
        for b in ids:
            if not 0 <= b < num_blocks:
                raise ValueError(f"block_tables: block {b} is not in [0, {num_blocks})")
            if allocator is not None and allocator.refcount(b) == 0:
                raise ValueError(f"block_tables: block {b} is free (no sequence owns it)")
        n = check_nonneg_int("lengths", n)
        if n > len(ids) * block_size:
            raise ValueError(f"lengths: {n} tokens exceed the table's {len(ids)} blocks "
                             f"of {block_size}")
        tables.append(ids)
        lens.append(n)
    return tables, lens


def paged_attention(q: torch.Tensor, cache: PagedKVCache, block_tables, lengths, *,
                    causal: bool = True, scale: float | None = None) -> torch.Tensor:
    """Each sequence's queries attend over the keys in its blocks, gathered from the pools.

    q: (B, H, Nq, head_dim), the last Nq tokens of each of B sequences (Nq = 1 in decode);
    H a multiple of the cache's n_kv_heads (query head h reads kv head h // (H / Hkv)).
    block_tables: B lists of block ids; lengths: B token counts (each ≥ Nq when causal).
    causal is bottom-right: query i of sequence b sees key j iff j <= i + lengths[b] − Nq.
    Returns (B, H, Nq, head_dim) in q's dtype; statistics in float32 at least.
    """
    check_type("cache", cache, PagedKVCache)
    check_tensor("q", q)
    causal, scale = check_bool("causal", causal), check_scale(scale)
    if q.ndim != 4 or q.shape[-1] != cache.head_dim or q.shape[1] % cache.n_kv_heads:
        raise ValueError(f"q must be (B, H, Nq, head_dim={cache.head_dim}) with H a multiple of "
                         f"n_kv_heads={cache.n_kv_heads}, got {tuple(q.shape)}")
    if q.dtype != cache.k_pool.dtype:
        raise TypeError(f"q is {q.dtype} but the cache holds {cache.k_pool.dtype}")
    B, H, nq, hd = q.shape
    tables, lens = _check_tables(block_tables, lengths, B, cache.allocator.num_blocks,
                                 cache.block_size, cache.allocator)
    if causal and any(n < nq for n in lens):
        raise ValueError(f"lengths must be >= Nq={nq} with causal=True (the queries are the "
                         f"last Nq tokens), got {lens}")
    width = max(1, max(len(t) for t in tables))
    idx = torch.tensor([t + [0] * (width - len(t)) for t in tables], dtype=torch.long,
                       device=q.device)  # (B, width): padded with block 0, masked below
    sd = torch.promote_types(q.dtype, torch.float32)
    k = cache.k_pool[idx].flatten(1, 2).to(sd)  # (B, width·bs, Hkv, hd)
    v = cache.v_pool[idx].flatten(1, 2).to(sd)
    groups = H // cache.n_kv_heads
    k = k.permute(0, 2, 1, 3).repeat_interleave(groups, dim=1)  # (B, H, width·bs, hd)
    v = v.permute(0, 2, 1, 3).repeat_interleave(groups, dim=1)
    s = (q.to(sd) * resolve_scale(scale, hd)) @ k.transpose(-1, -2)  # (B, H, Nq, width·bs)
    n = torch.tensor(lens, device=q.device)[:, None, None]  # (B, 1, 1)
    j = torch.arange(k.shape[2], device=q.device)[None, None, :]
    i = torch.arange(nq, device=q.device)[None, :, None]
    visible = (j < n) & ((j <= i + n - nq) if causal else True)  # (B, Nq, width·bs)
    s = s.masked_fill(~visible[:, None], float("-inf"))
    m = s.amax(-1, keepdim=True)
    p = torch.exp(s - torch.where(torch.isfinite(m), m, torch.zeros_like(m)))
    l = p.sum(-1, keepdim=True)
    return ((p @ v) / torch.where(l > 0, l, torch.ones_like(l))).to(q.dtype)


# ----------------------------------------------------------------------------- 8-bit blocks
def quantize_blocks(pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An int8 copy of a pool (num_blocks, block_size, Hkv, hd), one scale per (block, head).

    scale = max |x| / 127 over the block's rows and the head's dims; values round to the
    nearest multiple, so |x − dequantized| <= scale / 2 elementwise.
    Returns (int8 values like pool, float32 scales (num_blocks, 1, Hkv, 1)).
    """
    check_tensor("pool", pool)
    if pool.ndim != 4 or not pool.dtype.is_floating_point:
        raise ValueError(f"pool must be a float (num_blocks, block_size, Hkv, hd) tensor, got "
                         f"{tuple(pool.shape)} {pool.dtype}")
    x = pool.float()
    amax = x.abs().amax(dim=(1, 3), keepdim=True)  # (num_blocks, 1, Hkv, 1)
    scale = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    return torch.round(x / scale).clamp(-127, 127).to(torch.int8), scale


def dequantize_blocks(values: torch.Tensor, scales: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Back to floats: values · scales, in `dtype`."""
    check_tensor("values", values)
    check_tensor("scales", scales)
    if values.dtype != torch.int8 or values.ndim != 4:
        raise ValueError(f"values must be an int8 (num_blocks, block_size, Hkv, hd) tensor, got "
                         f"{tuple(values.shape)} {values.dtype}")
    if scales.ndim != 4 or scales.shape[0] != values.shape[0] or scales.shape[2] != values.shape[2]:
        raise ValueError(f"scales must be (num_blocks, 1, Hkv, 1) for values {tuple(values.shape)}, "
                         f"got {tuple(scales.shape)}")
    return (values.float() * scales).to(dtype)
