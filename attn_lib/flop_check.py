"""Count one layer's FLOPs by running it under torch's FlopCounterMode (chapter 2).

`counted_layer_flops` builds one transformer layer from plain torch ops (the Q/K/V/O
projections, QKᵀ, PV, the MLP), runs each part under
``torch.utils.flop_counter.FlopCounterMode`` and returns what torch counted, keyed like
:func:`attn_lib.counting.layer_flops`. FlopCounterMode counts matmul-like ops only, so the
elementwise parts (scale, softmax, activation) are run but count zero; and it counts a
masked matmul in full, so the comparison is made without a causal mask.

On ``device="meta"`` the ops are dispatched with shapes only (no memory, no arithmetic), so
full-size presets can be counted in milliseconds; on "cpu"/"cuda" the arithmetic really runs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from . import counting, models
from ._checks import check_int, check_positive_int

#: The parts FlopCounterMode can see (matmuls); scale and softmax are elementwise.
MATMUL_PARTS = ("projections", "scores", "av", "mlp")


def _inplace_matmul_flops(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """2·m·k·n (times the batch) for acc.addmm_(a, b) / acc.baddbmm_(a, b): (…, m, k) @ (…, k, n)."""
    return 2 * math.prod(a_shape) * b_shape[-1]


#: torch's table has addmm/baddbmm but not their in-place forms, with which a tiled loop
#: accumulates (``acc.baddbmm_(p, v)`` in torch_impl.flash_attention); same count.
_INPLACE_MATMULS = {torch.ops.aten.addmm_: _inplace_matmul_flops, torch.ops.aten.baddbmm_: _inplace_matmul_flops}


def _count(fn, *args, **kwargs) -> tuple[int, object]:
    """(FLOPs torch counted while fn(*args, **kwargs) ran, its result)."""
    with FlopCounterMode(display=False, custom_mapping=_INPLACE_MATMULS) as counter:
        out = fn(*args, **kwargs)
    return counter.get_total_flops(), out


def counted_flops(fn, *args, **kwargs) -> int:
    """Matmul FLOPs FlopCounterMode sees while fn runs, in-place accumulation included (ch. 2, 4)."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r}")
    return _count(fn, *args, **kwargs)[0]


def _weights(cfg: models.ModelConfig, device, dtype, seed: int) -> dict[str, torch.Tensor]:
    """Random (out, in) weight matrices of one layer, as F.linear takes them."""
    gen = torch.Generator().manual_seed(seed) if device != "meta" else None
    d, ff = cfg.d_model, cfg.d_ff

    def w(rows, cols):  # (rows, cols), scaled so activations stay O(1)
        if device == "meta":
            return torch.empty(rows, cols, device="meta", dtype=dtype)
        return (torch.randn(rows, cols, generator=gen) / cols**0.5).to(device, dtype)

    mlp = {"up": w(ff, d), "down": w(d, ff)}
    if cfg.mlp_matrices == 3:
        mlp["gate"] = w(ff, d)  # SwiGLU: down(silu(gate x) * up x)
    return {"q": w(cfg.d_attn, d), "k": w(cfg.d_kv, d), "v": w(cfg.d_kv, d), "o": w(d, cfg.d_attn), **mlp}


def _mlp(x, w):
    """x (N, d) -> (N, d): GELU MLP, or SwiGLU when a gate matrix is present."""
    hidden = F.silu(F.linear(x, w["gate"])) * F.linear(x, w["up"]) if "gate" in w else F.gelu(F.linear(x, w["up"]))
    return F.linear(hidden, w["down"])


def counted_layer_flops(model: str | models.ModelConfig, n_tokens: int, *, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, seed: int = 0) -> dict[str, int]:
    """FLOPs FlopCounterMode counts for one layer over n_tokens (batch 1, no mask), by part.

    Returns {'projections', 'scores', 'av', 'mlp'} (matmuls) plus 'scale' and 'softmax',
    which torch runs but does not count (0), and 'layer': one uncut run of the whole layer.
    """
    cfg = models.get(model)
    n_tokens, seed = check_positive_int("n_tokens", n_tokens), check_int("seed", seed)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if str(device) not in ("cpu", "meta") and not str(device).startswith("cuda"):
        raise ValueError(f"device must be 'cpu', 'meta' or a CUDA device, got {device!r}")
    w = _weights(cfg, device, dtype, seed)
    h, hk, hd, n = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, n_tokens
    if device == "meta":
        x = torch.empty(n, cfg.d_model, device="meta", dtype=dtype)
    else:
        x = torch.randn(n, cfg.d_model, generator=torch.Generator().manual_seed(seed + 1)).to(device, dtype)

    def heads(t, k):  # (N, k·hd) -> (H, N, hd); grouped kv heads are repeated, not recomputed
        return t.view(n, k, hd).transpose(0, 1).repeat_interleave(h // k, dim=0)

    def qkv(x):
        return heads(F.linear(x, w["q"]), h), heads(F.linear(x, w["k"]), hk), heads(F.linear(x, w["v"]), hk)

    def attend(q, k, v):  # the four attention stages, each counted on its own
        s = _count(torch.matmul, q, k.transpose(-1, -2))  # (H, N, N)
        scaled = _count(torch.mul, s[1], hd**-0.5)
        p = _count(torch.softmax, scaled[1], -1)
        o = _count(torch.matmul, p[1], v)  # (H, N, hd)
        return {"scores": s[0], "scale": scaled[0], "softmax": p[0], "av": o[0]}, o[1]

    def layer(x):  # the whole layer in one go (no norms or residuals: they are not matmuls)
        q, k, v = qkv(x)
        a = torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * hd**-0.5, -1), v)
        return _mlp(F.linear(a.transpose(0, 1).reshape(n, cfg.d_attn), w["o"]), w)

    proj_in, (q, k, v) = _count(qkv, x)
    parts, a = attend(q, k, v)
    proj_out, attn_out = _count(lambda a: F.linear(a.transpose(0, 1).reshape(n, cfg.d_attn), w["o"]), a)
    mlp, _ = _count(_mlp, attn_out, w)
    total, _ = _count(layer, x)
    return {"projections": proj_in + proj_out, **parts, "mlp": mlp, "layer": total}


def compare_layer_flops(model: str | models.ModelConfig, n_tokens: int, **kwargs) -> dict[str, tuple[int, int]]:
    """{part: (formula from counting.layer_flops, counted by FlopCounterMode)} for the matmul parts."""
    cfg = models.get(model)
    check_positive_int("n_tokens", n_tokens)
    formula = counting.layer_flops(cfg, n_tokens)
    counted = counted_layer_flops(cfg, n_tokens, **kwargs)
    return {part: (formula[part], counted[part]) for part in MATMUL_PARTS}
