"""The fused Triton kernel (attn_lib.triton_flash) against the float64 NumPy reference.

On a CPU the kernel runs in Triton's interpreter (small N, fp32 and fp16); on a CUDA machine
the same tests run natively, plus bf16 and longer sequences. Skipped where Triton is absent.
Tolerance, after FlashAttention's tests: at most 2x the error plain torch attention makes in
the same dtype, plus a small floor.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from attn_lib import reference, torch_impl  # noqa: E402
from attn_lib import triton_flash as tf  # noqa: E402

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"
DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if CUDA else [])
FLOOR = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
# On a GPU, small cases use one fixed block shape: autotuning every (shape, d, causal, dtype)
# would compile the whole search space each time. test_long_sequences_on_gpu autotunes.
BLOCKS = (64, 64) if CUDA else None

# (B, H, Nq, Nk, d): square, ragged (not a multiple of the 32-wide interpreter blocks),
# fewer / more queries than keys, and a single decode query.
SHAPES = [(1, 2, 128, 128, 64), (2, 1, 77, 77, 32), (1, 1, 40, 100, 16), (1, 1, 100, 40, 32), (1, 1, 1, 65, 64)]


def _qkv(b, h, nq, nk, d, dtype, dv=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, e, generator=g) for n, e in ((nq, d), (nk, d), (nk, dv or d)))
    return [x.to(device=DEV, dtype=dtype) for x in (q, k, v)]


def _reference(q, k, v, **kw):
    return reference.attention(*(x.double().cpu().numpy() for x in (q, k, v)), **kw)


def _assert_close(out, q, k, v, **kw):
    """Max error vs float64 within 2x plain torch's error in the same dtype, plus a floor."""
    ref = _reference(q, k, v, **kw)
    assert out.dtype == q.dtype and out.shape == ref.shape
    got = out.double().cpu().numpy()
    assert np.isfinite(got).all()
    baseline = np.abs(torch_impl.attention(q, k, v, **kw).double().cpu().numpy() - ref).max()
    tol = 2 * baseline + FLOOR[q.dtype] * (100 if q.dtype == torch.float32 and _tf32() else 1)
    err = np.abs(got - ref).max()
    assert err <= tol, f"max error {err:.2e} > {tol:.2e} ({q.dtype}, {kw})"


def _tf32():
    return CUDA and torch.backends.cuda.matmul.allow_tf32


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_reference(shape, causal, dtype):
    q, k, v = _qkv(*shape, dtype)
    _assert_close(tf.flash_attention(q, k, v, causal=causal, _blocks=BLOCKS), q, k, v, causal=causal)


@pytest.mark.parametrize("blocks", [(16, 16), (16, 64), (64, 16)])
def test_block_shapes_cover_the_diagonal(blocks):
    # Block rows narrower / wider than block columns: the unmasked/masked stage split must hold.
    q, k, v = _qkv(1, 1, 90, 110, 32, torch.float32)
    _assert_close(tf.flash_attention(q, k, v, causal=True, _blocks=blocks), q, k, v, causal=True)


def test_padded_head_dims_and_distinct_dv():
    # d = 24 and dv = 40 are padded to 32 and 64 inside the kernel, masked on load and store.
    q, k, v = _qkv(1, 2, 45, 77, 24, torch.float32, dv=40)
    out = tf.flash_attention(q, k, v, causal=True, _blocks=BLOCKS)
    assert out.shape == (1, 2, 45, 40)
    _assert_close(out, q, k, v, causal=True)


def test_strided_inputs_and_custom_scale():
    # (B, N, H, d) memory viewed as (B, H, N, d): the kernel must follow the strides.
    q, k, v = (x.transpose(1, 2).contiguous().transpose(1, 2) for x in _qkv(2, 3, 50, 60, 32, torch.float32))
    assert not q.is_contiguous()
    _assert_close(tf.flash_attention(q, k, v, scale=0.3, _blocks=BLOCKS), q, k, v, scale=0.3)


def test_rows_that_see_no_key_are_zero():
    q, k, v = _qkv(1, 1, 70, 20, 16, torch.float32)
    out = tf.flash_attention(q, k, v, causal=True, _blocks=BLOCKS)  # queries 0..49 precede every key
    assert torch.all(out[..., :50, :] == 0) and not torch.isnan(out).any()
    assert torch.all(out[..., 50:, :].abs().sum(-1) > 0)


@pytest.mark.skipif(CUDA, reason="bf16 runs natively on a GPU (test_matches_reference)")
def test_bf16_under_the_interpreter_computes_in_fp32():
    q, k, v = _qkv(1, 1, 33, 33, 32, torch.bfloat16)
    out = tf.flash_attention(q, k, v, causal=True)
    assert out.dtype == torch.bfloat16
    assert np.abs(out.double().numpy() - _reference(q, k, v, causal=True)).max() < 1e-2


@pytest.mark.skipif(not CUDA, reason="long sequences only on a GPU")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [64, 128])
def test_long_sequences_on_gpu(causal, d):
    q, k, v = _qkv(2, 4, 1000, 1000, d, torch.bfloat16)
    _assert_close(tf.flash_attention(q, k, v, causal=causal), q, k, v, causal=causal)


def test_bad_input_names_the_argument():
    q, k, v = _qkv(1, 1, 8, 8, 16, torch.float32)
    with pytest.raises(ValueError, match="4-D"):
        tf.flash_attention(q[0], k[0], v[0])
    with pytest.raises(TypeError, match="float16, bfloat16 or float32"):
        tf.flash_attention(q.double(), k.double(), v.double())
    with pytest.raises(TypeError, match="floating"):
        tf.flash_attention(q.int(), k.int(), v.int())
    with pytest.raises(ValueError, match="head dim"):
        tf.flash_attention(*(torch.zeros(1, 1, 4, 512, device=DEV) for _ in range(3)))
    with pytest.raises(ValueError, match="keys Nk"):
        tf.flash_attention(q, k, v[:, :, :4])
    with pytest.raises(TypeError, match="torch.Tensor"):
        tf.flash_attention(q.cpu().numpy(), k, v)
    with pytest.raises(ValueError, match="_blocks"):
        tf.flash_attention(q, k, v, _blocks=(24, 32))


def test_cpu_tensors_need_the_interpreter(monkeypatch):
    monkeypatch.setitem(tf._RUNTIME, "interpret", False)  # as if compiled for a GPU
    x = torch.zeros(1, 1, 4, 16)
    with pytest.raises(ValueError, match="CUDA"):
        tf.flash_attention(x, x, x)


def test_unavailable_triton_raises_clearly(monkeypatch):
    monkeypatch.setattr(tf, "AVAILABLE", False)
    x = torch.zeros(1, 1, 4, 16)
    with pytest.raises(RuntimeError, match="triton"):
        tf.flash_attention(x, x, x)
    assert "Triton is not installed" in tf.why_unavailable()


def test_why_unavailable_is_none_where_the_kernel_runs():
    assert tf.why_unavailable() is None  # here: interpreted on a CPU, compiled on a GPU
    assert tf.interpreting() == (not CUDA)
    if not CUDA:
        assert tf.tuned_configs() == []  # the interpreter runs fixed blocks, nothing is tuned


def test_why_unavailable_reports_a_broken_kernel_in_one_line(monkeypatch):
    # A Triton that imports but cannot run the kernel (e.g. an older interpreter) is caught.
    monkeypatch.setattr(tf, "_RUNTIME", {"interpret": tf.interpreting()})

    def broken(*args, **kwargs):
        raise RuntimeError("0 active drivers\n(more detail)")
    monkeypatch.setattr(tf, "_build_kernels", broken)
    line = tf.why_unavailable()
    assert line.startswith("the Triton kernel cannot run here") and "0 active drivers" in line
    assert "\n" not in line


@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(__import__("triton").__file__),
                                                    "backends", "nvidia", "bin", "ptxas")),
                    reason="Triton's bundled ptxas is missing")
def test_compiles_for_h100_without_a_gpu():
    # Ahead-of-time compile for sm_90 in a process that does not interpret the kernel.
    code = ("import attn_lib.triton_flash as tf, json; "
            "print(json.dumps(tf.compile_report(90, dtype='bf16', head_dim=128, causal=True)))")
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = __import__("json").loads(run.stdout.strip().splitlines()[-1])
    assert report["wgmma"] and report["pipelined_loads"]  # Hopper tensor cores, cp.async pipeline
    assert report["stack_bytes"] == 0  # no register spills
    assert report["shared_bytes"] <= 227 * 1024  # fits an H100 SM's shared memory


def test_autotune_pruning_fits_queries_head_dim_and_dtype():
    # The GPU autotuner's search space, checked on any machine: decode gets 16-row query
    # blocks, long sequences 64/128, each shape class at most 8 configs (<= 10 s to tune),
    # float32 at most 2, and every head dim only configs that do not spill (their limits).
    tf._build_kernels()
    configs = tf._gpu_configs()
    half, single = torch.zeros(1, dtype=torch.bfloat16), torch.zeros(1)

    def pruned(nq, d, q=half, tma=False):
        return tf._prune_configs(configs, {"NQ_BUCKET": nq, "Q": q}, BLOCK_D=d, BLOCK_DV=d, USE_TMA=tma)

    assert {c.kwargs["BLOCK_M"] for c in pruned(1, 64)} == {16}
    assert {c.kwargs["BLOCK_M"] for c in pruned(64, 64)} == {64}
    assert {c.kwargs["BLOCK_M"] for c in pruned(4096, 64)} == {64, 128}
    for nq in (1, 64, 4096):
        for d in (16, 64, 128, 256):
            for tma in (False, True):
                chosen = pruned(nq, d, tma=tma)
                limits = {r[:4]: r[5 if tma else 4] for r in tf.GPU_CONFIGS}
                assert 1 <= len(chosen) <= 8 and all(d <= limits[tf._config_key(c)] for c in chosen)
                assert 1 <= len(pruned(nq, d, single, tma)) <= 2
    assert (128, 128, 2, 8) in {tf._config_key(c) for c in pruned(4096, 128, tma=True)}
    assert (128, 128, 2, 8) not in {tf._config_key(c) for c in pruned(4096, 128, tma=False)}


def _reports(jobs):
    """compile_report(**kw) for each kwargs dict in jobs, in one process that compiles."""
    code = ("import attn_lib.triton_flash as tf, json, sys; "
            "print(json.dumps([tf.compile_report(**kw) for kw in json.loads(sys.argv[1])]))")
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    run = subprocess.run([sys.executable, "-c", code, __import__("json").dumps(jobs)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return __import__("json").loads(run.stdout.strip().splitlines()[-1])


def _shipped_sm90_configs():
    """Every configuration an H100/H200 can run with this Triton, at its largest head dim:
    the forward's autotune space on the TMA path (fp16/bf16 and float32) and the backward's."""
    jobs = [dict(dtype="bf16", head_dim=d_tma, block_m=m, block_n=n, num_stages=s, num_warps=w, tma=True)
            for m, n, s, w, _, d_tma in tf.GPU_CONFIGS if d_tma]
    jobs += [dict(dtype="fp32", head_dim=d_tma, block_m=m, block_n=n, num_stages=s, num_warps=w, tma=True,
                  dot_precision="ieee") for m, n, s, w, _, d_tma in tf.FP32_CONFIGS]
    for d, configs in tf._BWD_GPU_CONFIGS.items():
        for kernel, (m, n, s, w) in zip(("bwd_dkdv", "bwd_dq"), configs):
            jobs.append(dict(dtype="bf16", head_dim=d, block_m=m, block_n=n, num_stages=s, num_warps=w,
                             kernel=kernel))
    return [{**job, "causal": True, "capability": 90} for job in jobs]  # causal: both loop stages


@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(__import__("triton").__file__),
                                                    "backends", "nvidia", "bin", "ptxas")),
                    reason="Triton's bundled ptxas is missing")
def test_shipped_configs_compile_for_h100_without_spills():
    # The evidence behind GPU_CONFIGS' head-dim limits and _BWD_GPU_CONFIGS: compiled ahead
    # of time for sm_90 (no GPU needed), every configuration fits the 227 KB of shared memory
    # a block may use and the forward's tiles move by TMA; every half-precision one keeps its
    # registers (no stack: no spills) and, where its dots have >= 64 rows (a warpgroup's
    # wgmma tile), uses wgmma. float32 (exact FMA dots) is exempt from the spill check.
    tf._build_kernels()
    jobs = _shipped_sm90_configs()
    t4 = [dict(capability=75, dtype="fp16", head_dim=d, causal=True, block_m=m, block_n=n, num_stages=s,
               num_warps=w, kernel=kernel)
          for d, configs in tf._BWD_PRE_AMPERE_CONFIGS.items()
          for kernel, (m, n, s, w) in zip(("bwd_dkdv", "bwd_dq"), configs)]
    reports = _reports(jobs + t4)
    for job, report in zip(t4, reports[len(jobs):]):  # a T4 block has 64 KB of shared memory
        assert report["shared_bytes"] <= 64 * 1024, (job, report)
    for job, report in zip(jobs, reports):
        assert report["shared_bytes"] <= 227 * 1024, (job, report)
        assert report["tma"] == job.get("tma", False), (job, report)
        if job["dtype"] == "fp32":
            continue
        assert report["stack_bytes"] == 0, (job, report)
        dot_rows = job["block_n"] if job.get("kernel") == "bwd_dkdv" else job["block_m"]
        assert report["wgmma"] == (dot_rows >= 64), (job, report)


def test_tma_path_matches_the_pointer_path_in_the_interpreter():
    # The interpreter emulates tensor descriptors: the Hopper path's indexing (per-head
    # descriptors, zero fill past the ragged ends, padded head dims) is checked on a CPU.
    if CUDA:
        pytest.skip("the interpreter test; on a GPU the TMA path runs in every test above")
    for causal in (False, True):
        q, k, v = _qkv(2, 2, 45, 77, 24, torch.float32, dv=40, seed=int(causal))
        out, lse = tf._forward(q, k, v, causal, 24 ** -0.5, None, True)
        _assert_close(out, q, k, v, causal=causal)
        ref_out, ref_lse = tf._forward(q, k, v, causal, 24 ** -0.5, None, False)
        assert torch.equal(out, ref_out) and torch.equal(lse, ref_lse)


def _gpu_benchmark():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    try:
        import gpu_attention
    finally:
        sys.path.pop(0)
    return gpu_attention


def test_gpu_benchmark_exits_cleanly_without_a_gpu(capsys):
    if CUDA:
        pytest.skip("on a GPU the benchmark runs for minutes")
    assert _gpu_benchmark().main([]) == 0
    assert "needs a GPU" in capsys.readouterr().out


def test_gpu_benchmark_targets_read_the_right_ratios():
    # Synthetic records: Triton at 0.9x SDPA forward (0.8x at d = 128 causal), 1.5x
    # FlashAttention-2, 0.75x SDPA backward; N < 4096 and failed cases are left out.
    bench = _gpu_benchmark()
    speed = {"triton": (450, 300), "sdpa": (500, 400), "sdpa_flash": (300, 250), "standard": (50, 40)}
    records = [dict(impl=impl, d=d, causal=causal, n=n, status="ok", fwd_s=1e-3, bwd_s=2e-3,
                    fwd_tflops=f * (0.8 / 0.9 if (impl, d, causal) == ("triton", 128, True) else 1), bwd_tflops=b)
               for impl, (f, b) in speed.items() for d in (64, 128) for causal in (False, True)
               for n in (2048, 4096)]
    records.append(dict(impl="standard", d=64, causal=True, n=16384, status="oom"))
    got = {name: (round(value, 3), met) for name, value, _, met in bench.targets(records, 900e12)}
    assert got["forward d=128 causal=True / SDPA default"] == (0.8, False)
    assert got["forward d=64 causal=False / SDPA default"] == (0.9, True)
    assert got["forward geomean / SDPA FLASH_ATTENTION"] == (round(450 / 300 * (0.8 / 0.9) ** 0.25, 3), True)
    assert got["best forward / dense peak"] == (0.5, False)
    assert got["backward geomean / SDPA default"] == (0.75, True)
    assert "oom" in bench.table(records, 900e12)


# ----------------------------------------------------------------------------- the backward
# The Triton backward (FlashAttention-2's: P recomputed from the saved log-sum-exp, D =
# rowsum(dO ∘ O), then dK, dV per key block and dQ per query block) against float64 autograd
# of torch_impl.attention. Rule, after FlashAttention's tests: the float32 error of each
# gradient is at most twice what torch's own float32 autograd makes on the same input, plus
# the first-order floor of rounding the logits once, eps32 · (max|s| + 2) · T, where T is the
# size of the gradient's terms (its formula with absolute values, _term_sizes): a gradient
# that cancels to ~0 (dQ with a single key) is still known only to that floor.
# Every combination of causal × (Nq < Nk, Nq > Nk) × head dim, on fresh lengths and inputs
# every run: the Triton tutorial's backward was wrong for non-causal inputs for years
# (triton#4541, #7216), so non-causal is tested as hard as causal.

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from strategies import FP32_EPS, blind_rows, largest_visible_logit  # noqa: E402


def _grads(fn, q, k, v, g, dtype, **kw):
    leaves = [x.detach().to(dtype).requires_grad_() for x in (q, k, v)]
    return torch.autograd.grad(fn(*leaves, **kw), leaves, g.to(dtype))


def _term_sizes(q, k, v, do, *, causal=False, scale=None):
    """Largest |term| summed into dQ, dK, dV (float64): each formula with absolute values all
    the way down, scale·(P∘(|dO||V|ᵀ + rowsum|dO∘O|))|K|, its transpose times |Q|, and Pᵀ|dO|,
    with P the attention weights (dP = dO Vᵀ and D = rowsum(dO ∘ O) are sums too)."""
    q, k, v, do = (x.double() for x in (q, k, v, do))
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale  # (..., Nq, Nk)
    if causal:
        nq, nk = s.shape[-2:]
        s = s.masked_fill(~torch_impl.causal_mask(nq, nk, s.device), float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)  # blind rows: 0
    ds = p * (do.abs() @ v.abs().transpose(-1, -2) + (do * (p @ v)).abs().sum(-1, keepdim=True))
    return (scale * (ds @ k.abs()).max().item(), scale * (ds.transpose(-1, -2) @ q.abs()).max().item(),
            (p.transpose(-1, -2) @ do.abs()).max().item())


def _assert_grads_close(q, k, v, g, *, blocks=BLOCKS, **kw):
    """Triton float32 gradients within the rule above, blind query rows' dQ exactly zero."""
    want = _grads(torch_impl.attention, q, k, v, g, torch.float64, **kw)  # the oracle
    torch32 = _grads(torch_impl.attention, q, k, v, g, torch.float32, **kw)  # the baseline
    ours = _grads(tf.flash_attention, q, k, v, g, torch.float32, _blocks=blocks, **kw)
    logits = largest_visible_logit(q.double().cpu().numpy(), k.double().cpu().numpy(),
                                   causal=kw.get("causal", False), scale=kw.get("scale"))
    terms = _term_sizes(q, k, v, g, **kw)
    for name, got, base, ref, size in zip(("dq", "dk", "dv"), ours, torch32, want, terms):
        assert got.dtype == torch.float32 and got.shape == ref.shape and torch.isfinite(got).all(), name
        err = (got.double() - ref).abs().max().item()
        floor = FP32_EPS * (logits + 2) * size
        tol = 2 * (base.double() - ref).abs().max().item() + floor * (100 if _tf32() else 1)
        assert err <= tol, f"{name}: max error {err:.2e} > {tol:.2e} ({kw})"
    blind = torch.from_numpy(blind_rows(q.shape[-2], k.shape[-2], kw.get("causal", False)))
    assert not ours[0][..., blind.to(ours[0].device), :].any(), "queries that see no key get no gradient"


@st.composite
def _lengths(draw, fewer_queries: bool):
    """(Nq, Nk) with Nq < Nk or Nq > Nk: 1 to ~3 interpreter blocks, mostly ragged."""
    short = draw(st.integers(1, 70))
    long = draw(st.integers(short + 1, 100))
    return (short, long) if fewer_queries else (long, short)


@pytest.mark.parametrize("d", [16, 32, 64])
@pytest.mark.parametrize("fewer_queries", [True, False], ids=["nq<nk", "nq>nk"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
# 6 fresh draws for each of the 12 cases (72 in all): each is a few interpreter launches
@settings(max_examples=6)
@given(data=st.data())
def test_gradients_match_float64_autograd(causal, fewer_queries, d, data):
    nq, nk = data.draw(_lengths(fewer_queries), label="nq, nk")
    heads = data.draw(st.integers(1, 2), label="heads")
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    q, k, v, do = (torch.randn(1, heads, n, d, generator=g, dtype=torch.float64) for n in (nq, nk, nk, nq))
    _assert_grads_close(*(x.to(DEV) for x in (q, k, v, do)), causal=causal)


@pytest.mark.parametrize("blocks", [(16, 32), (32, 16)])
def test_gradients_with_distinct_dv_scale_and_block_shapes(blocks):
    # d = 24 and dv = 40 (padded to 32 and 64); blocks taller / wider than long; custom scale.
    g = torch.Generator().manual_seed(7)
    q, k, v, do = (torch.randn(2, 1, n, e, generator=g, dtype=torch.float64)
                   for n, e in ((45, 24), (77, 24), (77, 40), (45, 40)))
    for causal in (False, True):
        _assert_grads_close(*(x.to(DEV) for x in (q, k, v, do)), blocks=blocks, causal=causal, scale=0.3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_gradients_keep_dtype(dtype):
    # Half inputs: gradients in the input dtype, within 2x the error of torch's eager
    # attention in that dtype (matmuls in half, softmax in float32) plus the dtype's floor.
    g = torch.Generator().manual_seed(3)
    q, k, v, do = (torch.randn(1, 2, n, 32, generator=g, dtype=torch.float64) for n in (50, 70, 70, 50))
    q, k, v, do = (x.to(DEV) for x in (q, k, v, do))
    want = _grads(torch_impl.attention, q, k, v, do, torch.float64, causal=True)
    eager = _grads(torch_impl.standard_attention, q, k, v, do, dtype, causal=True)
    ours = _grads(tf.flash_attention, q, k, v, do, dtype, causal=True, _blocks=BLOCKS)
    for name, got, base, ref in zip(("dq", "dk", "dv"), ours, eager, want):
        assert got.dtype == dtype and torch.isfinite(got).all(), name
        err = (got.double() - ref).abs().max().item()
        tol = 2 * (base.double() - ref).abs().max().item() + FLOOR[dtype] * ref.abs().max().item()
        assert err <= tol, f"{name}: max error {err:.2e} > {tol:.2e} ({dtype})"


def test_no_grad_calls_skip_the_autograd_function():
    q, k, v = _qkv(1, 1, 33, 40, 16, torch.float32)
    plain = tf.flash_attention(q, k, v, causal=True, _blocks=BLOCKS)
    leaves = [x.clone().requires_grad_() for x in (q, k, v)]
    tracked = tf.flash_attention(*leaves, causal=True, _blocks=BLOCKS)
    assert not plain.requires_grad and tracked.requires_grad
    assert torch.equal(plain, tracked.detach())
    with torch.no_grad():
        assert not tf.flash_attention(*leaves, causal=True, _blocks=BLOCKS).requires_grad
