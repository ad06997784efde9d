"""A tiny decoder-only transformer with a KV cache: prefill, decode steps, greedy generation.

Chapter 3 uses it to show that prefill costs O(N²) while each cached decode step costs
O(N). Random, seeded weights (nothing is trained: the cost does not depend on the values).

    cfg = TinyGPTConfig(n_heads=4, n_kv_heads=2)    # grouped-query attention
    model = TinyGPT(cfg)
    logits, cache = model.prefill(prompt)           # (B, T, vocab), cache.length == T
    logits, cache = model.decode_step(tok, cache)   # (B, vocab),    cache.length == T + 1
    seq = model.generate(prompt, 20)                # greedy; use_cache=False recomputes

The cache is preallocated up to ``config.context`` tokens, and a decode step writes its
one new key/value row into it in place: appending is O(1) and a step reads exactly the
``length`` valid rows. ``torch.cat`` would copy the whole cache on every step (an extra
O(T) write and a fresh allocation per step, O(T²) copying over a generation). The price
is reserving the worst case up front, which is what a static cache in a serving system
does (vLLM pages it in blocks instead). ``decode_step`` therefore mutates the cache it is
given and returns the same object; ``cache.clone()`` forks it (prompt caching does that).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn as nn

from . import models, torch_impl
from ._checks import (check_bool, check_int, check_int_in, check_nonneg_int,
                      check_positive_int, check_tensor, check_type)
from .colab import torch_dtype


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TinyGPTConfig:
    """Shape of the tiny model. n_kv_heads < n_heads means grouped-query attention (GQA)."""

    vocab: int = 256
    context: int = 512
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 4
    d_ff: int = 256
    seed: int = 0

    def __post_init__(self):
        for f in fields(self):  # NumPy integers are stored as int; the seed may be any int
            check = check_int if f.name == "seed" else check_positive_int
            object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def from_model(cls, model, *, n_layers: int | None = None, context: int | None = None,
                   vocab: int | None = None, seed: int = 0) -> "TinyGPTConfig":
        """Layers shaped like a published model (a preset name or ModelConfig), random weights.

        d_model, heads, key/value heads and d_ff come from ``attn_lib.models``; `n_layers`,
        `context` and `vocab` default to the model's and may be cut (a few of its layers,
        a small vocabulary, so that the layers, not the unembedding, dominate a timing).
        ``TinyGPTConfig.from_model("llama-2-7b", n_layers=2)`` is two Llama-2-7B-sized
        layers. The MLP keeps this model's two matrices (GELU), not a SwiGLU's three.
        """
        m = models.get(model)
        if m.head_dim * m.n_heads != m.d_model:
            raise ValueError(f"model {m.name!r} has n_heads * head_dim != d_model")
        return cls(vocab=m.vocab if vocab is None else vocab,
                   context=m.context if context is None else context, d_model=m.d_model,
                   n_layers=m.n_layers if n_layers is None else n_layers, n_heads=m.n_heads,
                   n_kv_heads=m.n_kv_heads, d_ff=m.d_ff, seed=seed)

    def to_model_config(self) -> models.ModelConfig:
        """The same shape as an :class:`attn_lib.models.ModelConfig`, for attn_lib.counting."""
        return models.ModelConfig(
            f"tiny-gpt(d={self.d_model}, L={self.n_layers}, h={self.n_heads}/{self.n_kv_heads})",
            self.n_layers, self.d_model, self.n_heads, self.n_kv_heads, self.head_dim, self.d_ff,
            self.vocab, self.context, "attn_lib.tiny_gpt (random weights)", mlp_matrices=2)


def bench_config(device: str | torch.device | None = None) -> TinyGPTConfig:
    """The model chapter 3 and the suite's kv-cache section time prefill and decode on.

    On a GPU: two Llama-2-7B-sized layers (d_model 4096, 32 heads, d_ff 11008; a 256-token
    vocabulary, a 32,768-token context), so that a prefill of thousands of tokens and a
    decode step over a long cache are real work, far past the ~10 µs launch of each kernel.
    On a CPU: a small model (d_model 128) with a 65,536-token context, so that on a 2-core
    machine a decode step's cost is dominated by reading the cache from 16K tokens on.
    """
    dev = _device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda":
        return TinyGPTConfig.from_model("llama-2-7b", n_layers=2, context=32768, vocab=256)
    return TinyGPTConfig(vocab=256, context=65536, d_model=128, n_layers=2, n_heads=4,
                         n_kv_heads=4, d_ff=512, seed=0)


def bench_batch(config: TinyGPTConfig, device: str | torch.device | None = None, dtype="float32", *,
                memory_share: float = 0.6, cap: int = 32) -> int:
    """How many sequences a decode-step timing batches: chapter 3 and the suite's rule.

    On a GPU, the largest power of two whose reserved caches (``config.context`` tokens
    each, in `dtype`) take at most `memory_share` of the device's memory, at most `cap`
    (H100 80 GB: 32; a 16 GB T4: 8 for two Llama-2-7B-sized layers). A batch makes the
    cache, not the weights read once per step, the bulk of a step. On a CPU: 8 (with
    4 the fixed part of a step pulled the fitted slope over 16K-64K caches to 0.88 under load).
    """
    check_type("config", config, TinyGPTConfig)
    dev = _device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    cap = check_positive_int("cap", cap)
    if not (isinstance(memory_share, (int, float)) and 0 < memory_share <= 1):
        raise ValueError(f"memory_share must be in (0, 1], got {memory_share!r}")
    if dev.type != "cuda":
        return min(8, cap)
    per_seq = KVCache.empty(config, 1, device="meta", dtype=dtype).nbytes(reserved=True)
    budget = memory_share * torch.cuda.get_device_properties(dev).total_memory
    return max(1, min(cap, 2 ** int(math.log2(max(1.0, budget / per_seq)))))


# ----------------------------------------------------------------------------- cache
@dataclass
class KVCache:
    """Keys and values of every past token, per layer, in buffers preallocated to the context.

    k[l], v[l]: (B, n_kv_heads, context, head_dim); rows [0, length) are valid.
    ``keys(l)`` / ``values(l)`` are the valid views (B, n_kv_heads, length, head_dim).
    """

    config: TinyGPTConfig
    k: list
    v: list
    length: int = 0

    def __post_init__(self):
        check_type("config", self.config, TinyGPTConfig)
        check_type("k", self.k, list, "a list of tensors")
        check_type("v", self.v, list, "a list of tensors")
        self.length = check_nonneg_int("length", self.length)

    @classmethod
    def empty(cls, config: TinyGPTConfig, batch: int = 1, *, device="cpu", dtype=torch.float32) -> "KVCache":
        """An empty cache for `batch` sequences (memory reserved for the full context)."""
        check_type("config", config, TinyGPTConfig)
        batch, device = check_positive_int("batch", batch), _device(device)
        shape = (batch, config.n_kv_heads, config.context, config.head_dim)
        # torch.empty, not zeros: rows past `length` are never read.
        new = lambda: [torch.empty(shape, device=device, dtype=torch_dtype(dtype)) for _ in range(config.n_layers)]
        return cls(config, new(), new(), 0)

    @classmethod
    def random(cls, config: TinyGPTConfig, batch: int, length: int, *, device="cpu", dtype=torch.float32,
               seed: int = 0) -> "KVCache":
        """A cache of `length` random rows: for timing decode steps without running a long prefill."""
        check_type("config", config, TinyGPTConfig)
        length, seed = check_nonneg_int("length", length), check_int("seed", seed)
        if not 0 <= length <= config.context:
            raise ValueError(f"length must be in [0, context={config.context}], got {length}")
        cache = cls.empty(config, batch, device=device, dtype=dtype)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        for buf in cache.k + cache.v:
            # One random block of up to 256 rows, tiled: cheap to make even for long caches.
            block = torch.randn(buf.shape[:2] + (min(length, 256), buf.shape[3]), generator=gen)
            block = block.to(device=buf.device, dtype=buf.dtype)
            for start in range(0, length, 256):
                rows = min(256, length - start)
                buf[:, :, start : start + rows] = block[:, :, :rows]
        cache.length = length
        return cache

    @property
    def batch(self) -> int:
        return self.k[0].shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.k[0].dtype

    @property
    def device(self) -> torch.device:
        return self.k[0].device

    def keys(self, layer: int) -> torch.Tensor:
        check_int_in("layer", layer, 0, self.config.n_layers)
        return self.k[layer][:, :, : self.length]  # (B, Hkv, length, hd)

    def values(self, layer: int) -> torch.Tensor:
        check_int_in("layer", layer, 0, self.config.n_layers)
        return self.v[layer][:, :, : self.length]  # (B, Hkv, length, hd)

    def nbytes(self, reserved: bool = False) -> int:
        """Bytes of the valid rows (or of the whole reserved buffers)."""
        rows = self.config.context if check_bool("reserved", reserved) else self.length
        per_row = self.batch * self.config.n_kv_heads * self.config.head_dim * self.k[0].element_size()
        return 2 * self.config.n_layers * rows * per_row

    def clone(self) -> "KVCache":
        """An independent copy (only the valid rows are copied)."""
        other = KVCache.empty(self.config, self.batch, device=self.device, dtype=self.dtype)
        for src, dst in zip(self.k + self.v, other.k + other.v):
            dst[:, :, : self.length] = src[:, :, : self.length]
        other.length = self.length
        return other

    def _write(self, layer: int, k_new: torch.Tensor, v_new: torch.Tensor):
        """Store T new rows after the valid ones; return keys, values (B, Hkv, length + T, hd)."""
        end = self.length + k_new.shape[2]
        self.k[layer][:, :, self.length : end] = k_new
        self.v[layer][:, :, self.length : end] = v_new
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


def _device(device) -> torch.device:
    """A torch.device from a name or device; a bad name is a ValueError naming `device`."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be a torch device or its name ('cpu', 'cuda'), "
                         f"got {device!r}") from err


# ----------------------------------------------------------------------------- attention
def grouped_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal (bottom-right) attention with n_heads query heads over n_kv_heads key/value heads.

    q (B, H, Nq, hd), k and v (B, Hkv, Nk, hd) with H a multiple of Hkv -> (B, H, Nq, hd).
    Query head h reads key/value head h // (H // Hkv).
    """
    _check_grouped(q, k, v)
    B, H, nq, hd = q.shape
    groups = H // k.shape[1]
    if nq == 1:
        # Decode: the lone query is the newest token, so bottom-right alignment lets it see
        # every cached key (no mask). Fold each group's query heads into query rows so the
        # shared key/value head is read once and the cache is never copied.
        out = torch_impl.sdpa(q.reshape(B, k.shape[1], groups, hd), k, v, causal=False)
        return out.reshape(B, H, 1, hd)
    if groups > 1:  # prefill: copying the kv heads is cheap next to the O(N²) work
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return torch_impl.sdpa(q, k, v, causal=True)


def _check_grouped(q, k, v) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, x)
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if not q.ndim == k.ndim == v.ndim == 4:
        raise ValueError(f"q, k, v must be 4-D (B, H, N, hd), got {shapes}")
    if q.shape[1] % k.shape[1] or k.shape[1] != v.shape[1]:
        raise ValueError(f"q's heads must be a multiple of k's and v's (equal) heads, got {shapes}")
    if q.shape[0] != k.shape[0] or k.shape != v.shape or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q, k, v must share B and hd, and k, v one shape; got {shapes}")
    if not q.dtype.is_floating_point or not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k, v must share one float dtype, got {q.dtype}, {k.dtype}, {v.dtype}")


def _check_hidden(x, cfg: TinyGPTConfig, cache, layer) -> None:
    """x (B, T, d_model) float tensor; cache a KVCache or None; layer an index."""
    check_tensor("x", x)
    if x.ndim != 3 or x.shape[-1] != cfg.d_model or not x.dtype.is_floating_point:
        raise ValueError(f"x must be a float (B, T, d_model={cfg.d_model}) tensor, got shape "
                         f"{tuple(x.shape)}, dtype {x.dtype}")
    if cache is not None:
        check_type("cache", cache, KVCache)
    check_int_in("layer", layer, 0, cfg.n_layers)


class CausalSelfAttention(nn.Module):
    """Multi-head (or grouped-query) self-attention that can read and extend a KVCache."""

    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.cfg = check_type("cfg", cfg, TinyGPTConfig)
        hd = cfg.head_dim
        self.wq = nn.Linear(cfg.d_model, cfg.n_heads * hd, bias=False)
        self.wk = nn.Linear(cfg.d_model, cfg.n_kv_heads * hd, bias=False)
        self.wv = nn.Linear(cfg.d_model, cfg.n_kv_heads * hd, bias=False)
        self.wo = nn.Linear(cfg.n_heads * hd, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        """x (B, T, d_model) -> (B, T, d_model); with a cache, x's tokens follow the cached ones."""
        _check_hidden(x, self.cfg, cache, layer)
        B, T, _ = x.shape
        c = self.cfg
        q = self.wq(x).view(B, T, c.n_heads, c.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.wk(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
        v = self.wv(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
        if cache is not None:
            k, v = cache._write(layer, k, v)  # (B, Hkv, length + T, hd)
        y = grouped_attention(q, k, v)  # (B, H, T, hd)
        return self.wo(y.transpose(1, 2).reshape(B, T, c.n_heads * c.head_dim))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.cfg = check_type("cfg", cfg, TinyGPTConfig)
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))

    def forward(self, x, cache=None, layer=0):
        _check_hidden(x, self.cfg, cache, layer)
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


# ----------------------------------------------------------------------------- model
class TinyGPT(nn.Module):
    """Decoder-only transformer: token + learned position embeddings, blocks, LayerNorm, unembedding."""

    def __init__(self, config: TinyGPTConfig, device=None, dtype=torch.float32):
        super().__init__()
        if not isinstance(config, TinyGPTConfig):
            raise TypeError(f"config must be a TinyGPTConfig, got {type(config).__name__}")
        self.config = config
        device, dtype = _device(device or "cpu"), torch_dtype(dtype)
        with torch.device("meta"):  # shapes only: torch's own random init would be wasted work
            self.tok_emb = nn.Embedding(config.vocab, config.d_model)
            self.pos_emb = nn.Embedding(config.context, config.d_model)
            self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
            self.ln_f = nn.LayerNorm(config.d_model)
            self.head = nn.Linear(config.d_model, config.vocab, bias=False)
        self.to(dtype=dtype).to_empty(device=device)  # allocated once, in place
        self._init_weights()
        self.eval()

    @torch.no_grad()
    def _init_weights(self):
        # Drawn by NumPy from the seed (the same bits on every machine and device, and
        # several times faster than torch's CPU sampler: two Llama-sized layers hold 450M
        # values), then copied to the device in its dtype. Scales keep activations O(1) and
        # spread the logits (std ≈ 3) so greedy choices are far from ties.
        rng = np.random.default_rng(self.config.seed)
        for name, p in self.named_parameters():
            if "ln" in name:  # LayerNorm: weight 1, bias 0
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif p.ndim == 1:
                p.zero_()
            else:
                if "emb" in name:
                    scale = 0.5 if "pos" in name else 1.0
                else:
                    scale = (3.0 if name == "head.weight" else 1.0) / math.sqrt(p.shape[1])
                w = rng.standard_normal(tuple(p.shape), dtype=np.float32)
                w *= np.float32(scale)
                p.copy_(torch.from_numpy(w))

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.head.weight.dtype

    # --------------------------------------------------------------- input checks
    def _tokens(self, tokens, name: str, start: int = 0) -> torch.Tensor:
        """Validate token ids; return them as (B, T) int64 on the model's device."""
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            tokens = torch.tensor([[tokens]])
        if not isinstance(tokens, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(tokens).__name__}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer token ids, got dtype {tokens.dtype}")
        if tokens.ndim == 1:
            tokens = tokens[None, :] if name != "token" else tokens[:, None]
        if tokens.ndim != 2 or tokens.numel() == 0:
            raise ValueError(f"{name} must be a non-empty (T,) or (B, T) tensor, got shape {tuple(tokens.shape)}")
        if tokens.device.type == "cpu":  # ids already on a GPU (generated ones) are trusted: no host sync per step
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= self.config.vocab:
                raise ValueError(f"{name} must be ids in [0, vocab={self.config.vocab}), got values in [{lo}, {hi}]")
        if start + tokens.shape[1] > self.config.context:
            raise ValueError(f"{name}: {start} cached + {tokens.shape[1]} new tokens exceed "
                             f"context={self.config.context}")
        return tokens.to(self.device, torch.long)

    def _check_cache(self, cache, batch: int) -> None:
        if not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache, got {type(cache).__name__}")
        if cache.config != self.config:
            raise ValueError(f"cache belongs to a different config: {cache.config} vs the model's {self.config}")
        if cache.batch != batch:
            raise ValueError(f"cache holds batch {cache.batch} but the tokens have batch {batch}")
        if cache.dtype != self.dtype or cache.device != self.device:
            raise TypeError(f"cache is {cache.dtype} on {cache.device}, the model {self.dtype} on {self.device}")

    # --------------------------------------------------------------- forward passes
    def _run(self, tokens: torch.Tensor, cache: KVCache | None, start: int) -> torch.Tensor:
        """tokens (B, T) at positions start.. -> logits (B, T, vocab); extends `cache` if given."""
        pos = torch.arange(start, start + tokens.shape[1], device=self.device)
        x = self.tok_emb(tokens) + self.pos_emb(pos)  # (B, T, d)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        if cache is not None:
            cache.length += tokens.shape[1]
        return self.head(self.ln_f(x))

    @torch.inference_mode()
    def forward(self, tokens) -> torch.Tensor:
        """Full causal forward with no cache: tokens (B, T) -> logits (B, T, vocab)."""
        return self._run(self._tokens(tokens, "tokens"), None, 0)

    @torch.inference_mode()
    def prefill(self, tokens, cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """Process a prompt in one pass: tokens (B, T) -> (logits (B, T, vocab), cache).

        With `cache`, the tokens continue the cached sequence (chunked prefill: how a reused
        prompt prefix is extended); the cache is extended in place and returned.
        """
        if cache is not None:
            check_type("cache", cache, KVCache)
        start = 0 if cache is None else cache.length
        tokens = self._tokens(tokens, "tokens", start)
        if cache is None:
            cache = KVCache.empty(self.config, tokens.shape[0], device=self.device, dtype=self.dtype)
        self._check_cache(cache, tokens.shape[0])
        return self._run(tokens, cache, start), cache

    @torch.inference_mode()
    def decode_step(self, token, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        """One new token per sequence, token (B,) or (B, 1), against the cache -> (logits (B, vocab), cache).

        The step attends one query to the length + 1 cached keys: O(length) work.
        """
        if not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache, got {type(cache).__name__}")
        token = self._tokens(token, "token", cache.length)
        if token.shape[1] != 1:
            raise ValueError(f"token must be one id per sequence, got shape {tuple(token.shape)}")
        self._check_cache(cache, token.shape[0])
        return self._run(token, cache, cache.length)[:, -1], cache

    @torch.inference_mode()
    def generate(self, prompt, n_new: int, use_cache: bool = True, cache: KVCache | None = None) -> torch.Tensor:
        """Greedy decoding: prompt (T,) or (B, T) -> prompt followed by n_new tokens, same ndim.

        use_cache=False recomputes the whole sequence for every new token (the O(T³) way).
        cache: a KV cache of tokens that precede `prompt` (a reused prompt prefix); it is
        extended in place, so pass ``cache.clone()`` to keep the original.
        """
        n_new, use_cache = check_nonneg_int("n_new", n_new), check_bool("use_cache", use_cache)
        if cache is not None:
            check_type("cache", cache, KVCache)
        if cache is not None and not use_cache:
            raise ValueError("cache was given but use_cache=False: recomputation cannot start from a cache")
        squeeze = isinstance(prompt, torch.Tensor) and prompt.ndim == 1
        start = 0 if cache is None else cache.length
        seq = self._tokens(prompt, "prompt", start)
        if start + seq.shape[1] + n_new > self.config.context:
            raise ValueError(f"{start} cached + prompt ({seq.shape[1]}) + n_new ({n_new}) tokens exceed "
                             f"context={self.config.context}")
        if n_new == 0:
            return seq[0] if squeeze else seq
        if use_cache:
            logits, cache = self.prefill(seq, cache)
            nxt = logits[:, -1].argmax(-1)  # (B,)
            out = [seq, nxt[:, None]]
            for _ in range(n_new - 1):
                logits, cache = self.decode_step(nxt, cache)
                nxt = logits.argmax(-1)
                out.append(nxt[:, None])
            seq = torch.cat(out, dim=1)
        else:
            for _ in range(n_new):
                nxt = self._run(seq, None, 0)[:, -1].argmax(-1)
                seq = torch.cat([seq, nxt[:, None]], dim=1)
        return seq[0] if squeeze else seq
