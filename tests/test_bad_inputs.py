"""Bad input, table-driven: every public callable of attn_lib rejects it at the boundary.

Each row is one bad call and the error it must raise: a TypeError for a wrong kind of
value, a ValueError for a wrong value, with a message that names the argument (the rules
live in attn_lib._checks). `test_every_public_callable_has_a_row` walks the public
functions, classes and methods of the modules below, so a new function without a row here
fails the suite. Shapes and dtypes of q, k, v are varied in depth in tests/test_errors.py.
"""
from __future__ import annotations

import importlib.util
import inspect
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from attn_lib import (book, colab, counting, decode_cost, flop_check,  # noqa: E402
                      hardware, memory_model, models, recorded, reference, reported, ring,
                      timing, tiny_gpt, torch_impl, triton_flash, unfused, variants, viz)
from attn_lib.bench import measure as bench_measure, plan as bench_plan  # noqa: E402
from attn_lib.viz import flash as viz_flash  # noqa: E402
from attn_lib.tiny_gpt import (Block, CausalSelfAttention, KVCache, TinyGPT,  # noqa: E402
                               TinyGPTConfig)
from attn_lib import recall, recurrence  # noqa: E402
from attn_lib import paged_kv, serving  # noqa: E402
from attn_lib.viz import kv as KVVIZ  # noqa: E402

MODULES = [book, colab, counting, decode_cost, flop_check, hardware, memory_model, models,
           recall, recorded, recurrence, reference, reported, ring, timing, tiny_gpt, torch_impl,
           triton_flash, unfused, variants, paged_kv, serving]
HAS_TRITON = importlib.util.find_spec("triton") is not None


# ------------------------------------------------------------------------- inputs
QN, KN, VN = (np.zeros(s, np.float32) for s in ((2, 5, 4), (2, 6, 4), (2, 6, 3)))
QT, KT, VT = (torch.from_numpy(x) for x in (QN, KN, VN))
Q4 = torch.zeros(1, 2, 4, 16)  # (B, H, N, d): for Triton and grouped attention
LSE = torch.zeros(2, 5)  # (..., Nq) beside an out (..., Nq, dv) = QT's shape
STATS = reference.softmax_stats(np.zeros((2, 3)))
TINY = TinyGPTConfig(vocab=16, context=16, d_model=8, n_layers=1, n_heads=2, n_kv_heads=1,
                     d_ff=16)
MODEL = TinyGPT(TINY)
CACHE = KVCache.empty(TINY, 1)
ATTN, BLOCK = CausalSelfAttention(TINY), Block(TINY)
X3 = torch.zeros(1, 3, TINY.d_model)  # (B, T, d_model)
GPU = hardware.GPUS["T4"]
RUN = recorded.Run(None, {"attention": []})
MC = dict(name="m", n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, head_dim=16, d_ff=128,
          vocab=100, context=64, source="test")  # a valid ModelConfig
LINK_KW = dict(name="L", bandwidth=1e9, bidirectional=2e9, scope="s", source="t")
Q8 = torch.zeros(1, 2, 8, 4)  # (B, H, N, d): shardable over 2 ranks, both layouts
JOB = ring.prepare("ring", Q8, Q8, Q8, world_size=1)  # a valid job, never run here
REPORTED = reported.load()  # the stored file of figures quoted from papers
GPU_KW = dict(name="X", peak_flops={"bf16": 1e12}, bandwidth=1e9, memory=1e9, source="t")
ALLOC = paged_kv.BlockAllocator(4)
ALLOC.allocate()  # block 0 in use, blocks 1-3 free
PAGED = paged_kv.PagedKVCache(4, 2, 1, 2)  # 4 blocks of 2 tokens, 1 kv head of dim 2
PAGED.add_sequence(0)
PAGED.append(0, torch.zeros(3, 1, 2), torch.zeros(3, 1, 2))  # blocks 0, 1; 2 and 3 free
QP = torch.zeros(1, 1, 1, 2)  # (B, H, Nq, d) for PAGED
TOK = torch.zeros(1, 4, dtype=torch.long)  # (B, T) token ids for MODEL
REQ = serving.Request(0, 0.0, 4, 4)


class _Axes:
    def plot(self, *a, **k):
        return []


# ------------------------------------------------------------------------- the table
@dataclass
class Row:
    fn: object  # the public callable this row covers
    exc: type
    arg: str  # the argument the message must name
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    triton: bool = False  # needs the Triton package to reach the check

    def call(self):
        out = self.fn(*self.args, **self.kwargs)
        if inspect.isgenerator(out):
            next(out)  # a generator checks its arguments on the first step


def row(exc, arg, fn, *args, **kwargs) -> Row:
    return Row(fn, exc, arg, args, kwargs)


def attention_rows(fn, q, k, v, *, lse: bool = False) -> list[Row]:
    """The flag and scale rules, for one attention implementation."""
    rows = [row(TypeError, "causal", fn, q, k, v, causal="False"),
            row(TypeError, "causal", fn, q, k, v, causal=1),
            row(ValueError, "scale", fn, q, k, v, scale=float("nan")),
            row(ValueError, "scale", fn, q, k, v, scale=math.inf),
            row(TypeError, "scale", fn, q, k, v, scale=True),
            row(TypeError, "scale", fn, q, k, v, scale="0.5")]
    if lse:
        rows.append(row(TypeError, "offset", fn, q, k, v, causal=True, offset=1.5))
    return rows


TE, VE = TypeError, ValueError
R, T, C, K, V = reference, torch_impl, counting, decode_cost, variants
MM = memory_model
ROWS: list[Row] = [
    # reference (NumPy)
    *attention_rows(R.attention, QN, KN, VN),
    *attention_rows(R.flash_attention, QN, KN, VN),
    row(TE, "q", R.attention, QT, KT, VT),  # torch tensors: "use attn_lib.torch_impl"
    row(TE, "k", R.flash_attention, QN, KT, VN),
    row(TE, "io", R.attention, QN, KN, VN, io=True),
    row(TE, "io", R.flash_attention, QN, KN, VN, io={}),
    row(VE, "block_q", R.flash_attention, QN, KN, VN, block_q=0),
    row(TE, "block_k", R.flash_attention, QN, KN, VN, block_k=4.0),
    row(VE, "sram_elements", R.flash_attention, QN, KN, VN, sram_elements=-1),
    row(VE, "nq", R.causal_mask, -1, 4),
    row(TE, "nk", R.causal_mask, 3, 4.0),
    row(TE, "x", R.softmax, QT),
    row(TE, "axis", R.softmax, QN, axis=1.0),
    row(TE, "m", R.SoftmaxStats, torch.zeros(2), np.zeros(2)),
    row(TE, "x", R.softmax_stats, QT),
    row(TE, "b", R.merge_stats, STATS, (1, 2)),
    row(TE, "a", R.merge_stats, None, STATS),
    row(VE, "chunk", R.online_softmax_stats, QN, chunk=0),
    row(TE, "x", R.online_softmax_stats, QT),
    row(TE, "chunk", R.online_softmax, QN, chunk=None),
    row(TE, "x", R.online_softmax, QT),
    row(TE, "reads", R.IOCounter, reads="0"),
    row(VE, "n", R.IOCounter().read, -4),
    row(TE, "n", R.IOCounter().write, 2.5),
    row(TE, "what", R.IOCounter().write, 2, what=3),
    row(VE, "sram_elements", R.algorithm1_blocks, 0, 64),
    row(VE, "d", R.algorithm1_blocks, 1024, 0),
    row(VE, "nq", R.naive_io_elements, -1, 4, 8),
    row(TE, "d", R.naive_io_elements, 4, 4, "8"),
    row(VE, "dv", R.naive_io_elements, 4, 4, 8, 0),
    row(VE, "block_k", R.flash_io_elements, 4, 4, 8, block_q=2, block_k=0),
    row(TE, "block_q", R.flash_io_elements, 4, 4, 8, block_q=True, block_k=2),
    row(TE, "causal", R.iter_blocks, 4, 4, 2, 2, "yes"),
    row(VE, "block_q", R.iter_blocks, 4, 4, -2, 2, False),
    row(TE, "causal", R.visited_blocks, 4, 4, 2, 2, None),
    row(VE, "nk", R.visited_blocks, 4, -4, 2, 2, True),
    # torch_impl
    *attention_rows(T.attention, QT, KT, VT),
    *attention_rows(T.flash_attention, QT, KT, VT),
    *attention_rows(T.sdpa, QT, KT, VT),
    *attention_rows(T.standard_attention, QT, KT, VT),
    row(TE, "q", T.sdpa_backend, QN, KT, VT),
    row(TE, "causal", T.sdpa_backend, QT, KT, VT, causal=None),
    *attention_rows(T.attention_lse, QT, KT, VT, lse=True),
    row(TE, "q", T.attention, QN, KT, VT),
    row(VE, "block_q", T.flash_attention, QT, KT, VT, block_q=-1),
    row(TE, "v", T.attention_lse, QT, KT, VN),
    row(VE, "nq", T.causal_mask, -2, 3),
    row(TE, "nk", T.causal_mask, 2, "3"),
    row(TE, "lse_a", T.merge_partials, QT, LSE.numpy(), QT, LSE),
    row(VE, "lse_b", T.merge_partials, QT, LSE, QT, torch.zeros(2, 4)),
    row(VE, "out_b", T.merge_partials, QT, LSE, torch.zeros(2, 5, 2), LSE),
    row(TE, "out_a", T.merge_partials, QT.int(), LSE, QT, LSE),
    *attention_rows(lambda *a, **kw: T.split_kv_attention(*a, n_splits=2, **kw), QT, KT, VT),
    row(VE, "n_splits", T.split_kv_attention, QT, KT, VT, n_splits=0),
    row(TE, "n_splits", T.split_kv_attention, QT, KT, VT, n_splits=2.0),
    row(TE, "q", T.split_kv_attention, QN, KT, VT, n_splits=2),
    # counting
    row(VE, "n", C.handshakes, -1),
    row(TE, "n", C.handshakes, 2.0),
    row(TE, "n", C.handshakes, True),
    row(TE, "causal", C.attention_pairs, 8, causal="False"),
    row(VE, "n_tokens", C.attention_pairs, -8),
    row(VE, "n_keys", C.attention_pairs, 8, -8),
    row(TE, "window", C.attention_pairs, 8, window=2.5),
    row(VE, "window", C.attention_pairs, 8, window=0),
    row(TE, "window", C.attention_flops, 8, 64, window="3"),
    row(VE, "batch", C.attention_call_flops, 0, 1, 8, 8, 16),
    row(TE, "heads", C.attention_call_flops, 1, 1.0, 8, 8, 16),
    row(VE, "n_q", C.attention_call_flops, 1, 1, -8, 8, 16),
    row(VE, "n_k", C.attention_call_flops, 1, 1, 8, -8, 16),
    row(TE, "causal", C.attention_call_flops, 1, 1, 8, 8, 16, "False"),
    row(VE, "head_dim_v", C.attention_call_flops, 1, 1, 8, 8, 16, head_dim_v=0),
    row(VE, "n_layers", C.receptive_field, -1, 3),
    row(TE, "window", C.receptive_field, 2, True),
    row(VE, "d_model", C.attention_flops, 8, -64),
    row(VE, "n_layers", C.attention_flops, 8, 64, 0),
    row(TE, "causal", C.attention_flops, 8, 64, causal="True"),
    row(TE, "n_tokens", C.layer_flops, "gpt2-small", 8.5),
    row(TE, "model", C.layer_flops, 12, 8),
    row(TE, "unembedding", C.forward_flops, "gpt2-small", 8, unembedding=1),
    row(VE, "n_tokens", C.forward_flops, "gpt2-small", -1),
    row(TE, "causal", C.attention_share, "gpt2-small", 8, causal="no"),
    row(VE, "against", C.crossover_length, "gpt2-small", "attention"),
    row(TE, "causal", C.crossover_length, "gpt2-small", causal=0),
    row(VE, "bytes_per_value", C.score_matrix_bytes, 8, -2),
    row(VE, "n_heads", C.score_matrix_bytes, 8, n_heads=-12),
    row(TE, "n_layers", C.score_matrix_bytes, 8, n_layers=1.0),
    row(VE, "bytes_per_value", C.kv_cache_bytes, "gpt2-small", 8, 0),
    row(VE, "batch", C.kv_cache_bytes, "gpt2-small", 8, batch=0),
    row(ValueError, "model", C.kv_cache_bytes, "gpt-5", 8),
    row(VE, "n_ctx", C.kaplan_forward_flops_per_token, "gpt2-small", -1024),
    row(VE, "seq_len", C.palm_training_flops_per_token, "gpt2-small", 0),
    row(VE, "d_model", C.attention_backward_flops, 8, 0),
    row(TE, "recompute", C.attention_backward_flops, 8, 64, recompute="yes"),
    row(TE, "causal", C.attention_backward_flops, 8, 64, causal=1),
    # counting: context parallelism (chapter 5)
    row(VE, "world_size", C.kv_bytes_per_device, "llama-3-8b", 8, 0),
    row(VE, "bytes_per_value", C.kv_bytes_per_device, "llama-3-8b", 8, 2, -2),
    row(TE, "model", C.activation_width, 8),
    row(VE, "model", C.activation_width, "gpt-5"),
    row(VE, "bytes_per_value", C.activation_bytes_per_device, "llama-3-8b", 8, 2, 0),
    row(TE, "n_layers", C.activation_bytes_per_device, "llama-3-8b", 8, 2, n_layers=1.5),
    row(VE, "world_size", C.activation_bytes_per_device, "llama-3-8b", 8, -2),
    row(VE, "kv_width", C.ring_bytes_per_step, 8, 2, 0),
    row(VE, "bytes_per_value", C.ring_bytes_per_step, 8, 2, 64, -1),
    row(TE, "world_size", C.ring_bytes_total, 8, 2.0, 64),
    row(VE, "n_tokens", C.ring_bytes_total, -8, 2, 64),
    row(VE, "width", C.ulysses_bytes_total, 8, 2, -64),
    row(TE, "n_tokens", C.ulysses_bytes_total, "8", 2, 64),
    row(TE, "model", C.ulysses_max_world_size, None),
    row(TE, "offset", C.block_pairs, 4, 4, 0.5),
    row(VE, "rows", C.block_pairs, -4, 4, 0),
    row(VE, "layout", C.ring_pairs_per_rank, 8, 2, "striped"),
    row(TE, "causal", C.ring_pairs_per_rank, 8, 2, causal="True"),
    row(VE, "n_tokens", C.ring_pairs_per_rank, 9, 2),  # not divisible into shards
    row(VE, "flop_rate", C.overlap_min_tokens, "llama-3-8b", 0, 1e9),
    row(VE, "link_bandwidth", C.overlap_min_tokens, "llama-3-8b", 1e15, -1e9),
    row(TE, "causal", C.overlap_min_tokens, "llama-3-8b", 1e15, 1e9, causal="no"),
    row(VE, "link_bandwidth", C.ring_step_seconds, "llama-3-8b", 8, 2, 1e15, math.nan),
    row(TE, "flop_rate", C.ring_step_seconds, "llama-3-8b", 8, 2, "1e15", 1e9),
    row(VE, "world_size", C.ring_step_seconds, "llama-3-8b", 8, 0, 1e15, 1e9),
    row(VE, "bytes_per_value", C.weight_bytes, "llama-3-8b", 0),
    row(VE, "model", C.weight_bytes, "gpt-5"),
    row(TE, "bytes_per_value", C.weight_bytes, "gpt2-small", "2"),
    row(TE, "untied_embeddings", C.weight_bytes, "gpt2-small", untied_embeddings=None),
    row(TE, "unembedding", C.weight_shapes, "gpt2-small", unembedding=1),
    row(VE, "model", C.weight_shapes, "gpt-5"),
    # models
    *(row(VE, f, models.ModelConfig, **{**MC, f: v}) for f, v in [
        ("n_layers", 0), ("d_model", -64), ("n_heads", -4), ("head_dim", 0), ("d_ff", -1),
        ("vocab", 0), ("context", -64), ("sliding_window", -5), ("sliding_window", 0),
        ("mlp_matrices", 4), ("n_kv_heads", 3), ("name", "")]),
    *(row(TE, f, models.ModelConfig, **{**MC, f: v}) for f, v in [
        ("n_layers", 2.0), ("n_heads", True), ("sliding_window", "4096"),
        ("source", None)]),
    row(TE, "model", models.get, None),
    row(VE, "model", models.get, "gpt-5"),
    # hardware
    row(VE, "bandwidth", hardware.GPU, **{**GPU_KW, "bandwidth": -1.0}),
    row(VE, "memory", hardware.GPU, **{**GPU_KW, "memory": 0}),
    row(VE, "peak_flops['bf16']", hardware.GPU, **{**GPU_KW, "peak_flops": {"bf16": -1}}),
    row(TE, "peak_flops", hardware.GPU, **{**GPU_KW, "peak_flops": 1e12}),
    row(VE, "dtype", GPU.peak, "bf16"),  # a T4 has no bf16
    row(VE, "dtype", GPU.ridge_point, "fp8"),
    row(TE, "name", hardware.lookup, 4),
    row(TE, "gpu", hardware.get, 4),
    row(VE, "gpu", hardware.get, "Voodoo 3"),
    row(VE, "flops", hardware.roofline_time, -1e12, 1e9),
    row(TE, "bytes_moved", hardware.roofline_time, 1e12, "1e9"),
    row(ValueError, "bytes_moved", hardware.roofline_time, 1e12, math.inf),
    row(VE, "bandwidth", hardware.Link, **{**LINK_KW, "bandwidth": 0}),
    row(TE, "bidirectional", hardware.Link, **{**LINK_KW, "bidirectional": "2e9"}),
    row(VE, "name", hardware.Link, **{**LINK_KW, "name": ""}),
    row(VE, "name", hardware.link, "carrier pigeon"),
    row(TE, "name", hardware.link, 4),
    # decode_cost (the decode-step oracle's rows: tests/test_decode_cost.py)
    row(VE, "prompt_len", K.generation_attention_pairs, 0, 4, cached=True),
    row(VE, "n_new", K.generation_attention_pairs, 4, -1, cached=True),
    row(TE, "cached", K.generation_attention_pairs, 4, 4, cached="yes"),
    row(VE, "cache_len", K.decode_attention_cost, "gpt2-small", 0),
    row(VE, "bytes_per_value", K.decode_attention_cost, "gpt2-small", 8,
        bytes_per_value=-2),
    row(TE, "batch", K.weight_matmul_cost, "gpt2-small", 1.5),
    row(TE, "unembedding", K.weight_matmul_cost, "gpt2-small", unembedding="False"),
    row(VE, "bytes_per_value", K.compute_bound_batch, "H100 SXM", bytes_per_value=0),
    row(VE, "context", K.max_batch, "gpt2-small", -1024, "H100 SXM"),
    row(VE, "bytes_per_value", K.max_batch, "gpt2-small", 1024, "H100 SXM", -1),
    row(VE, "batch", K.decode_step_estimate, "gpt2-small", 1024, 0),
    row(VE, "context", K.decode_step_estimate, "gpt2-small", 0, 1),
    row(VE, "a", K.common_prefix_len, [[1, 2]], [1, 2]),
    row(VE, "b", K.common_prefix_len, [1, 2], [1.5, 2.0]),
    row(VE, "prefix_len", K.prefix_cache_flops, "gpt2-small", -1, 4),
    row(TE, "suffix_len", K.prefix_cache_flops, "gpt2-small", 4, 4.0),
    row(VE, "unit", viz.format_bytes, 1024, "kb"),
    row(VE, "nbytes", viz.format_bytes, -1024, "KB"),
    row(TE, "nbytes", viz.format_bytes, "1024"),
    row(TE, "fn", viz.source_markdown, "standard_attention"),
    row(TE, "fn", viz.source_markdown, print),
    row(TE, "names", KVVIZ.kv_memory_rows, "gpt2-small"),
    row(VE, "bytes_per_value", KVVIZ.kv_memory_rows, bytes_per_value=0),
    # paged_kv (chapter 3b)
    row(VE, "num_blocks", paged_kv.BlockAllocator, 0),
    row(VE, "block", ALLOC.refcount, 99),
    row(VE, "block", ALLOC.incref, 2),  # a free block cannot be shared
    row(VE, "block", ALLOC.free, 3),  # nor freed again
    row(TE, "parent", paged_kv.block_hash, "x", [1]),
    row(TE, "tokens", paged_kv.block_hash, b"", [1.5]),
    row(VE, "block_size", paged_kv.PagedKVCache, 4, 0, 1, 1),
    row(TE, "dtype", paged_kv.PagedKVCache, 4, 2, 1, 1, dtype=torch.int8),
    row(VE, "seq_id", PAGED.length, "nope"),
    row(VE, "seq_id", PAGED.block_table, "nope"),
    row(VE, "seq_id", PAGED.add_sequence, 0),  # exists already
    row(VE, "seq_id", PAGED.fork, "nope", 1),
    row(VE, "seq_id", PAGED.free_sequence, "nope"),
    row(VE, "k", PAGED.append, 0, torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)),
    row(VE, "tokens", PAGED.append, 0, torch.zeros(1, 1, 2), torch.zeros(1, 1, 2), tokens=[1, 2]),
    row(VE, "seq_id", PAGED.tables, ["nope"]),
    row(VE, "seq_id", PAGED.gather, "nope"),
    row(VE, "block_tables", paged_kv.paged_attention, QP, PAGED, [[2]], [1]),  # a free block
    row(VE, "block_tables", paged_kv.paged_attention, QP, PAGED, [[9]], [1]),
    row(VE, "lengths", paged_kv.paged_attention, QP, PAGED, [[0]], [3]),  # past the table
    row(VE, "lengths", paged_kv.paged_attention, QP, PAGED, [[0]], [0]),  # causal: < Nq
    row(TE, "cache", paged_kv.paged_attention, QP, None, [[0]], [1]),
    row(VE, "q", paged_kv.paged_attention, torch.zeros(1, 1, 1, 3), PAGED, [[0]], [1]),
    row(TE, "causal", paged_kv.paged_attention, QP, PAGED, [[0]], [1], causal="yes"),
    row(VE, "pool", paged_kv.quantize_blocks, torch.zeros(2, 3)),
    row(VE, "values", paged_kv.dequantize_blocks, torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)),
    row(VE, "scales", paged_kv.dequantize_blocks, torch.zeros(2, 1, 1, 1, dtype=torch.int8),
        torch.ones(1, 1, 1, 1)),
    # serving (chapter 3b)
    row(VE, "prompt_len", serving.Request, 0, 0.0, 0, 1),
    row(VE, "arrival", serving.Request, 0, -1.0, 1, 1),
    row(VE, "n", serving.request_trace, 0),
    row(VE, "prompt_range", serving.request_trace, 5, prompt_range=(9, 3)),
    row(TE, "output_range", serving.request_trace, 5, output_range=7),
    row(VE, "rate", serving.request_trace, 5, rate=0.0),
    row(VE, "block_size", serving.measure_waste, [3], 0, 8),
    row(VE, "lengths", serving.measure_waste, [9], 4, 8),
    row(VE, "n_prompts", serving.system_prompt_trace, 3, n_prompts=0),
    row(TE, "prompts", serving.prefix_sharing, [], 4),
    row(VE, "block_size", serving.prefix_sharing, [[1]], 0),
    row(VE, "block_size", serving.prefix_savings, "gpt2-small", [[1, 2]], 0),
    row(VE, "chunk", serving.chunked_prefill, MODEL, TOK, 0),
    row(TE, "model", serving.chunked_prefill, None, TOK, 2),
    row(VE, "tokens", serving.chunked_prefill, MODEL, TOK[0], 2),
    row(VE, "chunk", serving.activation_bytes_per_chunk, MODEL, TOK, 0),
    row(TE, "model", serving.activation_bytes_per_chunk, None, TOK, 1),
    row(VE, "contexts", serving.decode_step_seconds, "gpt2-small", [0]),
    row(VE, "contexts", serving.decode_step_seconds, "gpt2-small", []),
    row(VE, "prompt_lens", serving.prefill_seconds, "gpt2-small", [-1]),
    row(VE, "batches", serving.throughput_curve, "gpt2-small", 128, [0]),
    row(VE, "context", serving.throughput_curve, "gpt2-small", 0, [1]),
    row(VE, "policy", serving.simulate_batching, [REQ], "gpt2-small", policy="fifo", max_batch=2),
    row(TE, "requests", serving.simulate_batching, [], "gpt2-small", policy="static", max_batch=1),
    row(VE, "max_batch", serving.simulate_batching, [REQ], "gpt2-small", policy="static",
        max_batch=0),
    # counting and models for chapter 3b
    row(VE, "block_size", C.blocks_for, 10, 0),
    row(VE, "n_tokens", C.blocks_for, -1, 4),
    row(VE, "block_size", C.paged_waste_tokens, [3], 0),
    row(VE, "lengths", C.paged_waste_tokens, [-1], 4),
    row(VE, "lengths", C.contiguous_waste_tokens, [9], 8),
    row(VE, "max_len", C.contiguous_waste_tokens, [1], 0),
    row(VE, "block_size", C.expected_last_block_waste, 0),
    row(VE, "block_size", C.expected_waste_share, 10.0),
    row(VE, "mean_len", C.expected_waste_share, -1, block_size=4),
    row(VE, "chunk", C.chunked_prefill_activation_bytes, "llama-3-8b", 100, 0),
    row(VE, "block_size", C.int8_kv_bytes_per_token, "llama-3-8b", 0),
    row(TE, "mla", C.mla_kv_bytes_per_token, "deepseek-v2"),
    row(TE, "mla", C.mha_equivalent_kv_bytes_per_token, None),
    row(VE, "kv_lora_rank", models.MLAConfig, "x", 1, 1, 1, 0, 1, "s"),
    # variants
    row(VE, "window", V.sliding_window_mask, 4, 4, 0),
    row(VE, "nq", V.sliding_window_mask, -4, 4, 2),
    row(TE, "window", V.sliding_window_attention, QN, KN, VN, window=None),
    row(VE, "scale", V.sliding_window_attention, QN, KN, VN, window=2, scale=math.nan),
    row(VE, "block_q", V.sliding_window_attention, QN, KN, VN, window=2, block_q=0),
    # tiny_gpt
    row(VE, "n_kv_heads", TinyGPTConfig, n_heads=4, n_kv_heads=3),
    row(VE, "d_model", TinyGPTConfig, d_model=30, n_heads=4),
    row(TE, "vocab", TinyGPTConfig, vocab=2.5),
    row(VE, "context", TinyGPTConfig, context=0),
    row(TE, "seed", TinyGPTConfig, seed=None),
    row(VE, "device", tiny_gpt.bench_config, "tpu"),
    row(VE, "model", TinyGPTConfig.from_model, "no-such-model"),
    row(TE, "config", tiny_gpt.bench_batch, "llama-2-7b"),
    row(VE, "device", tiny_gpt.bench_batch, TINY, "tpu"),
    row(VE, "memory_share", tiny_gpt.bench_batch, TINY, "cpu", memory_share=2),
    row(VE, "cap", tiny_gpt.bench_batch, TINY, "cpu", cap=0),
    row(TE, "config", KVCache, None, [], [], 0),
    row(VE, "length", KVCache, TINY, [], [], -1),
    row(VE, "batch", KVCache.empty, TINY, 0),
    row(TE, "config", KVCache.empty, MODEL),
    row(TE, "dtype", KVCache.empty, TINY, dtype=torch.int64),
    row(VE, "length", KVCache.random, TINY, 1, TINY.context + 1),
    row(TE, "length", KVCache.random, TINY, 1, 2.0),
    row(VE, "layer", CACHE.keys, TINY.n_layers),
    row(TE, "layer", CACHE.values, "0"),
    row(TE, "reserved", CACHE.nbytes, "yes"),
    row(VE, "q", tiny_gpt.grouped_attention, Q4[0], Q4[0], Q4[0]),
    row(VE, "heads", tiny_gpt.grouped_attention, Q4, Q4[:, :1], Q4),
    row(TE, "q", tiny_gpt.grouped_attention, Q4.numpy(), Q4, Q4),
    row(TE, "cfg", CausalSelfAttention, models.PRESETS["gpt2-small"]),
    row(VE, "x", ATTN.forward, torch.zeros(1, 3, TINY.d_model + 1)),
    row(VE, "layer", ATTN.forward, X3, None, 5),
    row(TE, "cfg", Block, {"d_model": 8}),
    row(TE, "cache", BLOCK.forward, X3, cache={}),
    row(TE, "config", TinyGPT, MC),
    row(VE, "device", TinyGPT, TINY, device="gpu0"),
    row(TE, "dtype", TinyGPT, TINY, dtype="int8"),
    row(TE, "tokens", MODEL.forward, torch.tensor([1.0, 2.0])),
    row(VE, "tokens", MODEL.prefill, torch.tensor([1, TINY.vocab])),
    row(TE, "cache", MODEL.prefill, torch.tensor([1]), cache={}),
    row(TE, "cache", MODEL.decode_step, torch.tensor([1]), None),
    row(TE, "token", MODEL.decode_step, torch.tensor([0.5]), CACHE),
    row(VE, "n_new", MODEL.generate, torch.tensor([1]), -1),
    row(TE, "use_cache", MODEL.generate, torch.tensor([1]), 2, use_cache="False"),
    row(TE, "cache", MODEL.generate, torch.tensor([1]), 2, cache=[]),
    # triton_flash
    *(Row(r.fn, r.exc, r.arg, r.args, r.kwargs, triton=True)
      for r in attention_rows(triton_flash.flash_attention, Q4, Q4, Q4)),
    Row(triton_flash.flash_attention, TE, "q", (Q4.numpy(), Q4, Q4), triton=True),
    row(VE, "dtype", triton_flash.compile_report, 90, dtype="fp8"),
    row(VE, "block_m", triton_flash.compile_report, 90, block_m=24),
    row(VE, "head_dim", triton_flash.compile_report, 90, head_dim=512),
    row(TE, "causal", triton_flash.compile_report, 90, causal="True"),
    row(VE, "dot_precision", triton_flash.compile_report, 90, dot_precision="fp64"),
    row(VE, "kernel", triton_flash.compile_report, 90, kernel="bwd"),
    row(TE, "tma", triton_flash.compile_report, 90, tma="yes"),
    row(VE, "tma", triton_flash.compile_report, 90, kernel="bwd_dq", tma=True),
    # ring (chapter 5): every check runs before a process starts
    *(r for r in attention_rows(ring.ring_attention, Q8, Q8, Q8) if r.arg == "causal"),
    row(TE, "return_stats", ring.ring_attention, Q8, Q8, Q8, return_stats=1),
    row(VE, "world_size", ring.ring_attention, Q8, Q8, Q8, world_size=0),
    row(TE, "world_size", ring.ring_attention, Q8, Q8, Q8, world_size=2.0),
    row(VE, "world_size", ring.ring_attention, Q8, Q8, Q8, world_size=10_000),
    row(VE, "layout", ring.ring_attention, Q8, Q8, Q8, layout="striped"),
    row(VE, "q", ring.ring_attention, Q8, Q8, Q8, world_size=3),  # 8 tokens, 3 ranks
    row(TE, "k", ring.ring_attention, Q8, Q8.numpy(), Q8),
    row(TE, "causal", ring.ulysses_attention, Q8, Q8, Q8, causal="no"),
    row(VE, "q", ring.ulysses_attention, Q8[0, 0], Q8[0, 0], Q8[0, 0]),  # no heads axis
    row(TE, "world_size", ring.ulysses_attention, Q8, Q8, Q8, world_size=True),
    row(VE, "kind", ring.prepare, "tree", Q8, Q8, Q8),
    row(VE, "layout", ring.prepare, "ulysses", Q8, Q8, Q8, layout="zigzag"),
    row(TE, "v", ring.prepare, "ring", Q8, Q8, None),
    row(TE, "jobs", ring.run, JOB),
    row(VE, "jobs", ring.run, []),
    row(VE, "timeout", ring.run, [JOB], timeout=0),
    row(VE, "layout", ring.chunks_per_rank, "diagonal"),
    row(VE, "world_size", ring.chunk_starts, 8, 0, "contiguous"),
    row(TE, "n", ring.chunk_starts, 8.0, 2, "zigzag"),
    row(VE, "layout", ring.chunk_starts, 8, 2, None),
    row(TE, "rank", ring.RankStats, "0"),
    row(VE, "rank", ring.RankStats, -1),
    row(TE, "tensors", ring.TensorBytes, np.zeros(2)),
    row(TE, "tensors", ring.TensorBytes().hold, Q8, "q"),
    # book (glue): the significant-digits rule
    row(VE, "sig", book.portable, 1.5, sig=0),
    row(VE, "sig", book.portable, [1.5], sig=9),
    row(VE, "sig", book.glue, "x", 1.5, sig=True),
    row(VE, "sig", book.glue_many, {"x": 1.5}, sig=2.5),
    # colab (the Colab set-up cell)
    row(TE, "version", colab.install_ref, 1),
    row(VE, "version", colab.install_ref, "latest"),
    row(VE, "repo_url", colab.install_command, "http://example.org/r"),
    row(TE, "ref", colab.install_command, "https://github.com/o/r", ref=1),
    row(TE, "find_spec", colab.needs_install, 3),
    row(VE, "capability", colab.bf16_native, (8,)),
    row(VE, "device_type", colab.preferred_dtype, "tpu", True),
    row(TE, "bf16_supported", colab.preferred_dtype, "cuda", "yes"),
    row(VE, "device_type", colab.dtype_for, "gpu"),
    row(TE, "dtype", colab.torch_dtype, "half"),
    row(TE, "dtype", colab.torch_dtype, torch.int32),
    row(VE, "repo_url", colab.colab_url, "u", "main", "book/x.ipynb"),
    row(VE, "notebook_path", colab.colab_url, "https://github.com/o/r", "main", "x.py"),
    row(TE, "notebook_path", colab.colab_url, "https://github.com/o/r", "main", 3),
    row(TE, "env", colab.describe, "cpu"),
    row(VE, "env", colab.describe, {"device": "cpu"}),
    row(VE, "repo_url", colab.colab_cell, "ftp://x"),
    # book (config and TOC readers)
    row(TE, "config_path", book.repo_url_from_config, None),
    row(TE, "toc_path", book.toc_pages, 3.0),
    row(TE, "config_path", book.book_repository, ["_config.yml"]),
    # reported (figures quoted from papers)
    row(TE, "row", reported.reported_flops, [1]),
    row(VE, "row['pass']", reported.reported_flops, {**REPORTED["rows"][0], "pass": "x"}),
    row(TE, "where", reported.validate_row, {}, 3, {}),
    row(TE, "sources", reported.validate_row, {}, "rows[0]", ["flash2"]),
    row(VE, "rows[0]", reported.validate_row, [], "rows[0]", {}),
    row(TE, "source", reported.validate, {}, source=None),
    row(VE, "schema", reported.validate, {"schema": "v0"}),
    row(TE, "path", reported.load, 3),
    row(TE, "data", reported.rows, [1]),
    row(VE, "key", reported.citation, REPORTED, "no-such-paper"),
    row(TE, "data", reported.citation, None, "x"),
    row(TE, "row", reported.label, None, REPORTED),
    row(VE, "pass_", reported.plot_reported, _Axes(), REPORTED, pass_="sideways"),
    row(TE, "ax", reported.plot_reported, None, REPORTED),
    row(VE, "pass_", reported.max_reported_tflops, pass_="both"),
    row(VE, "gpu", reported.max_reported_tflops, "Voodoo 3"),
    row(VE, "key", reported.hardware_figure, "h100_warp_drive"),
    row(TE, "data", reported.hardware_figure, "h100_exp_tflops", [1]),
    row(VE, "key", reported.hardware_citation, "h100_warp_drive"),
    row(TE, "named_gpu", reported.plot_reported, _Axes(), REPORTED, named_gpu="yes"),
    # unfused (chapter 4: traffic of plain attention)
    row(VE, "phase", unfused.OpTraffic, "aten.bmm", "QKᵀ", "sideways", 0, 0),
    row(VE, "read_bytes", unfused.OpTraffic, "aten.bmm", "QKᵀ", "forward", -1, 0),
    row(TE, "t", unfused.tensor_bytes, np.zeros(2)),
    row(VE, "n_ctx", unfused.standard_attention_module, 0),
    row(TE, "causal", unfused.standard_attention_module, 8, causal="yes"),
    row(VE, "dropout", unfused.standard_attention_module, 8, dropout=1.5),
    row(VE, "batch", unfused.count_unfused, 0, 1, 4, 2),
    row(TE, "backward", unfused.count_unfused, 1, 1, 4, 2, backward=1),
    row(VE, "dropout", unfused.count_unfused, 1, 1, 4, 2, dropout=-0.1),
    row(TE, "n", unfused.closed_form, 1, 1, 4.0, 2),
    row(VE, "bytes_per_value", unfused.closed_form, 1, 1, 4, 2, bytes_per_value=0),
    row(TE, "causal", unfused.closed_form, 1, 1, 4, 2, causal=None),
    row(TE, "ops", unfused.by_step, [1, 2]),
    row(TE, "ops", unfused.total_bytes, None),
    row(VE, "sram_bytes", unfused.figure2_comparison, sram_bytes=0),
    row(VE, "gpu", unfused.figure2_comparison, gpu="Voodoo 3"),
    row(VE, "ns[]", unfused.compile_fusion_run, [0]),
    row(TE, "dtype", unfused.compile_fusion_run, [8], dtype="float9"),
    row(VE, "heads", unfused.compile_fusion_run, [8], heads=0),
    row(VE, "dropout", unfused.figure2_comparison, dropout=1.0),
    row(VE, "d", unfused.unfused_over_algorithm0, 64, 0),
    row(TE, "causal", unfused.unfused_over_algorithm0, 64, 16, causal="no"),
    # memory_model (chapter 4: HBM and L2 traffic of FlashAttention-2)
    row(VE, "smem_bytes", MM.fa2_blocks, 0, 64),
    row(TE, "d", MM.fa2_blocks, 228 * 1024, 64.0),
    row(VE, "stages", MM.fa2_blocks, 228 * 1024, 64, stages=0),
    row(VE, "d", MM.fa2_blocks, 1024, 4096),  # no tile fits
    row(VE, "hbm_bytes", MM.Traffic, -1, 0, 0, False, 64, 64),
    row(TE, "kv_resident", MM.Traffic, 0, 0, 0, "yes", 64, 64),
    row(VE, "nk", MM.kv_bytes, 0, 64),
    row(VE, "bytes_per_value", MM.kv_bytes, 8, 64, bytes_per_value=-2),
    row(VE, "block_q", MM.heads_in_flight, 128, 0),
    row(VE, "gpu", MM.heads_in_flight, 128, 64, gpu="Voodoo 3"),
    row(VE, "n", MM.fa2_traffic, 0, 64),
    row(TE, "causal", MM.fa2_traffic, 128, 64, causal="no"),
    row(VE, "slices", MM.fa2_traffic, 128, 64, slices=0),
    row(VE, "l2_bytes", MM.fa2_traffic, 128, 64, l2_bytes=-1),
    row(VE, "gpu", MM.fa2_traffic, 128, 64, gpu="T4"),  # no on-chip figures for it
    row(VE, "n", MM.regime, -1, 64),
    row(VE, "d", MM.l2_fit_length, 0),
    row(TE, "slices", MM.regime, 128, 64, slices=1.5),
    row(VE, "sram_bytes", MM.algorithm1_ratio, sram_bytes=0),
    row(VE, "bytes_per_value", MM.three_level_ratio, bytes_per_value=0),
    row(TE, "causal", MM.hbm_over_compulsory, causal=1),
    row(VE, "n", MM.l2_over_hbm, 0),
    row(VE, "n", MM.chapter_cases, 0),
    row(TE, "ns", MM.theorem2_scaling, 1024),
    row(VE, "ns", MM.theorem2_scaling, []),
    row(VE, "n", MM.crossover_slices, 0, 64),
    # timing (clock, timer, best-of, fits, memory, threads)
    row(TE, "slope", timing.is_linear, "1.0"),
    row(TE, "device", timing.clock_for, 3),
    row(TE, "fn", timing.time_fn, 3),
    row(VE, "min_run_time", timing.time_fn, abs, 1.0, min_run_time=-1),
    row(TE, "clock", timing.time_fn, abs, 1.0, clock=3),
    row(TE, "fn", timing.measure, None),
    row(VE, "min_run_time", timing.measure, abs, 1.0, min_run_time=0),
    row(TE, "fns", timing.best_of, [abs]),
    row(TE, "fns", timing.best_of, {"a": 3}),
    row(VE, "rounds", timing.best_of, {"a": abs}, rounds=0),
    row(VE, "min_run_time", timing.best_of, {"a": abs}, min_run_time=-0.1),
    row(TE, "clock", timing.best_of, {"a": abs}, clock=3),
    row(TE, "keep", timing.best_of, {"a": abs}, keep="min"),
    row(TE, "fn", timing.peak_cpu_bytes, "f"),
    row(TE, "fn", timing.peak_cuda_bytes, 3),
    row(VE, "xs", timing.loglog_fit, [1.0], [1.0]),
    row(VE, "xs", timing.loglog_slope, [1.0, -2.0], [1.0, 2.0]),
    row(VE, "n", timing.matmul_flops_per_s, 0),
    row(VE, "n", timing.limit_threads, 0),
    row(TE, "n", timing.use_threads, 1.5),
    # flop_check
    row(TE, "fn", flop_check.counted_flops, 3),
    row(VE, "n_tokens", flop_check.counted_layer_flops, "gpt2-small", 0),
    row(TE, "dtype", flop_check.counted_layer_flops, "gpt2-small", 4, dtype=torch.int8),
    row(VE, "device", flop_check.counted_layer_flops, "gpt2-small", 4, device="tpu"),
    row(TE, "seed", flop_check.counted_layer_flops, "gpt2-small", 4, seed=0.5),
    row(VE, "model", flop_check.counted_layer_flops, "no-such-model", 4),
    row(TE, "n_tokens", flop_check.compare_layer_flops, "gpt2-small", "4"),
    # recorded
    row(ValueError, "run", recorded.validate_run, [1, 2]),
    row(VE, "schema", recorded.validate_run, {}),
    row(TE, "source", recorded.validate_run, {}, source=None),
    row(TE, "data", recorded.Run, None, [1]),
    row(TE, "path", recorded.Run, "x.json", {}),
    row(TE, "causal", RUN.attention, causal="yes"),
    row(VE, "impl", RUN.attention, "flash"),
    row(VE, "status", RUN.attention, status="fine"),
    row(TE, "path", recorded.load_run, 3),
    row(VE, "kind", recorded.load_runs, "tpu"),
    row(TE, "directory", recorded.load_runs, directory=3),
    row(TE, "include_quick", recorded.load_runs, include_quick="no"),
    row(TE, "run", recorded.series, {"attention": []}),
    row(VE, "what", recorded.series, RUN, "flops"),
    row(TE, "head_dim", recorded.series, RUN, head_dim=64.0),
    row(VE, "impl", recorded.describe_impl, "flash"),
    # bench (the suite's plan and provenance)
    row(VE, "capability", bench_plan.gpu_dtypes, (9,)),
    row(VE, "device", bench_plan.plan, "tpu"),
    row(TE, "quick", bench_plan.plan, "cpu", quick="yes"),
    row(TE, "one_dtype", bench_plan.plan, "cpu", one_dtype=1),
    row(VE, "device", bench_measure.device_info, "tpu"),
    row(TE, "run", viz_flash.plot_recorded, _Axes(), None),
    row(TE, "ax", viz_flash.plot_recorded, None, RUN),
    row(VE, "what", viz_flash.plot_recorded, _Axes(), RUN, "flops"),
    # recurrence
    row(TE, "x", recurrence.rnn_states, QN, torch.zeros(4, 4)),
    row(VE, "w", recurrence.rnn_states, QT, torch.zeros(3, 4)),
    row(TE, "x", recurrence.rnn_states, QT.int(), torch.zeros(4, 4)),
    row(VE, "a", recurrence.linear_recurrence, torch.zeros(5), torch.zeros(5)),
    row(VE, "b", recurrence.linear_recurrence, QT, KT),
    row(TE, "b", recurrence.linear_scan, QT, QN),
    row(VE, "h0", recurrence.linear_scan, QT, QT, torch.zeros(2, 3)),
    row(TE, "h0", recurrence.linear_scan, QT, QT, torch.zeros(2, 4, dtype=torch.float64)),
    row(VE, "n", recurrence.scan_steps, 0),
    row(TE, "n", recurrence.scan_steps, 2.0),
    # recall (chapter 5)
    row(VE, "n_pairs", recall.recall_task, 0, 4),
    row(TE, "d", recall.recall_task, 4, 4.0),
    row(VE, "dv", recall.recall_task, 4, 4, 0),
    row(TE, "rng", recall.recall_task, 4, 4, rng=0),
    row(VE, "seed", recall.recall_task, 4, 4, seed=-1),
    row(TE, "keys", recall.softmax_read, KT[0], VN[0], KN[0]),
    row(ValueError, "keys", recall.softmax_read, KN, VN, KN),  # 3-D, not (N, d)
    row(VE, "values", recall.linear_read, KN[0], VN[0, :5], KN[0]),
    row(VE, "queries", recall.best_state_read, KN[0], VN[0], VN[0]),  # d differs
    row(TE, "queries", recall.linear_read, KN[0], VN[0], KN[0].astype(int)),
    row(TE, "reads", recall.correct_reads, [[1.0]], VN[0]),
    row(VE, "reads", recall.correct_reads, VN[0, :2], VN[0]),
    row(TE, "n_pairs", recall.recall_curve, 8, 16),
    row(VE, "n_pairs", recall.recall_curve, 8, [16, 0]),
    row(VE, "d", recall.recall_curve, 0, [16]),
    row(VE, "trials", recall.recall_curve, 8, [16], trials=0),
    row(VE, "reader", recall.accuracy, {}, "cosine"),
    row(TE, "curve", recall.accuracy, [], "linear"),
    # counting, chapter 5: the ring's backward pass and USP
    row(VE, "world_size", C.ring_backward_bytes_total, 8, 0, 64),
    row(VE, "grad_bytes_per_value", C.ring_backward_bytes_total, 8, 2, 64, 2, 0),
    row(VE, "kv_width", C.ring_backward_bytes_total, 8, 1, 0),
    row(VE, "link_bandwidth", C.ring_backward_min_tokens, "llama-3-8b", 1e15, 0),
    row(TE, "causal", C.ring_backward_min_tokens, "llama-3-8b", 1e15, 1e9, causal=1),
    row(VE, "grad_bytes_per_value", C.ring_backward_min_tokens, "llama-3-8b", 1e15, 1e9,
        2, -4),
    row(VE, "ulysses_size", C.usp_bytes_total, 8, 0, 2, 64, 128),
    row(TE, "ring_size", C.usp_bytes_total, 8, 2, 2.0, 64, 128),
    row(VE, "width", C.usp_bytes_total, 8, 2, 2, 64, 0),
    row(VE, "bytes_per_value", C.linear_state_bytes, "llama-3-8b", 0),
    row(VE, "k", C.matmul_intensity, 4, 4, 0),
    row(TE, "m", C.matmul_intensity, 4.0, 4, 4),
    row(VE, "name", hardware.cuda_fact, "cores"),
]


def _key(fn) -> str:
    f = getattr(fn, "__func__", fn)  # bound methods, classmethods: the function itself
    return f"{f.__module__}.{f.__qualname__}"


def _id(r: Row) -> str:
    return f"{_key(r.fn).removeprefix('attn_lib.')}-{r.arg}"


def _takes_arguments(obj, is_method: bool) -> bool:
    try:
        params = list(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return True
    return len(params) > (1 if is_method else 0)


def public_callables() -> set[str]:
    """module.function, module.Class, module.Class.method: public callables with arguments."""
    found = set()
    for mod in MODULES:
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj) and _takes_arguments(obj, False):
                found.add(_key(obj))
            elif inspect.isclass(obj):
                found.add(_key(obj))
                for meth, member in vars(obj).items():
                    fn = getattr(member, "__func__", member)
                    public = not meth.startswith("_") and inspect.isfunction(fn)
                    if public and _takes_arguments(fn, True):
                        found.add(f"{_key(obj)}.{meth}")
    return found


# ------------------------------------------------------------------------- tests
def test_every_public_callable_has_a_row():
    covered = {_key(r.fn) for r in ROWS}
    missing = sorted(public_callables() - covered)
    assert not missing, f"public callables without a bad-input row here: {missing}"


def test_the_table_is_large():
    assert len(public_callables()) > 80  # the walk finds the library, not an empty set
    assert len(ROWS) >= 60


@pytest.mark.parametrize("r", ROWS, ids=[_id(r) for r in ROWS])
def test_bad_input_raises_naming_the_argument(r: Row):
    if r.triton and not HAS_TRITON:
        pytest.skip("triton is not installed")
    with pytest.raises(r.exc) as err:
        r.call()
    assert re.search(rf"(?<!\w){re.escape(r.arg)}(?!\w)", str(err.value)), (
        f"message does not name {r.arg!r}: {err.value}")


# NumPy integer scalars work wherever Python ints do, and give the same answer.
INT_CALLS = [
    (counting.handshakes, (10,), {}),
    (counting.attention_flops, (16, 64, 2), {}),
    (counting.score_matrix_bytes, (16, 2), {"n_heads": 4, "n_layers": 2}),
    (counting.kv_cache_bytes, ("llama-2-70b", 16, 2), {"batch": 3}),
    (counting.kaplan_forward_flops_per_token, ("gpt2-small", 1024), {}),
    (decode_cost.decode_attention_cost, ("mistral-7b", 100), {"batch": 2}),
    (decode_cost.prefix_cache_flops, ("gpt2-small", 4, 3), {}),
    (counting.attention_pairs, (20, 24), {"window": 4}),
    (counting.attention_call_flops, (1, 2, 8, 8, 16), {}),
    (reference.flash_io_elements, (8, 8, 4), {"block_q": 2, "block_k": 4}),
    (reference.visited_blocks, (8, 8, 2, 4, True), {}),
]


def _np(a):
    return np.int64(a) if isinstance(a, int) and not isinstance(a, bool) else a


@pytest.mark.parametrize("fn, args, kwargs", INT_CALLS, ids=[c[0].__name__ for c in INT_CALLS])
def test_numpy_integers_work_like_ints(fn, args, kwargs):
    np_args = tuple(_np(a) for a in args)
    np_kwargs = {k: np.int32(v) for k, v in kwargs.items()}
    assert fn(*np_args, **np_kwargs) == fn(*args, **kwargs)


def test_numpy_integers_in_configs_are_stored_as_int():
    cfg = models.ModelConfig(**{**MC, "n_layers": np.int64(2),
                                "sliding_window": np.int32(8)})
    assert type(cfg.n_layers) is int and type(cfg.sliding_window) is int
    assert type(TinyGPTConfig(vocab=np.int64(32)).vocab) is int
    q = np.random.default_rng().standard_normal((1, 4, 4)).astype(np.float32)
    out = reference.flash_attention(q, q, q, block_q=np.int64(2), scale=np.float32(0.5))
    same = reference.flash_attention(q, q, q, block_q=2, scale=0.5)
    np.testing.assert_array_equal(out, same)
