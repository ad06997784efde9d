"""attn_lib.models and attn_lib.hardware: published figures, sources, lookups, roofline."""
import dataclasses

import pytest

from attn_lib import hardware as H
from attn_lib import models as M

SEVEN = ["gpt2-small", "gpt3-175b", "opt-13b", "llama-2-7b", "llama-2-70b", "llama-3-8b", "mistral-7b"]


def test_the_seven_presets_exist_with_sources():
    assert sorted(M.PRESETS) == sorted(SEVEN)
    for name, cfg in M.PRESETS.items():
        assert cfg.name == name and len(cfg.source.strip()) > 20
        assert cfg.n_heads % cfg.n_kv_heads == 0
        assert cfg.d_attn == cfg.d_model  # every preset here: heads × head_dim = d_model


@pytest.mark.parametrize("name, layers, d, heads, kv, ff", [
    ("gpt2-small", 12, 768, 12, 12, 3072), ("gpt3-175b", 96, 12288, 96, 96, 49152),
    ("opt-13b", 40, 5120, 40, 40, 20480), ("llama-2-7b", 32, 4096, 32, 32, 11008),
    ("llama-2-70b", 80, 8192, 64, 8, 28672), ("llama-3-8b", 32, 4096, 32, 8, 14336),
    ("mistral-7b", 32, 4096, 32, 8, 14336)])
def test_preset_shapes_match_published_tables(name, layers, d, heads, kv, ff):
    cfg = M.get(name)
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ff) == (layers, d, heads, kv, ff)


def test_gqa_width_and_window():
    assert M.get("llama-2-70b").d_kv == 8 * 128
    assert M.get("mistral-7b").sliding_window == 4096
    assert all(M.get(n).sliding_window is None for n in SEVEN if n != "mistral-7b")
    assert M.get("llama-2-7b").mlp_matrices == 3 and M.get("gpt2-small").mlp_matrices == 2


def test_model_get_and_validation():
    cfg = M.get("opt-13b")
    assert M.get(cfg) is cfg
    with pytest.raises(ValueError, match="unknown model 'opt-14b'"):
        M.get("opt-14b")
    with pytest.raises(TypeError, match="model"):
        M.get(13)
    with pytest.raises(ValueError, match="n_layers"):
        dataclasses.replace(cfg, n_layers=0)
    with pytest.raises(ValueError, match="n_kv_heads"):
        dataclasses.replace(cfg, n_kv_heads=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_layers = 1


# ----------------------------------------------------------------------------- hardware
def test_every_gpu_has_a_source_and_sane_numbers():
    assert {"H100 SXM", "A100 40GB", "A100 80GB", "T4", "L4"} <= set(H.GPUS)
    for gpu in H.GPUS.values():
        assert len(gpu.source.strip()) > 20
        assert gpu.bandwidth > 1e11 and gpu.memory >= 16e9
        assert all(1e12 < f < 2e15 for f in gpu.peak_flops.values())


@pytest.mark.parametrize("name, dtype", [("H100 SXM", "bf16"), ("A100 80GB", "fp16"), ("T4", "fp32"), ("L4", "bf16")])
def test_ridge_point_is_peak_over_bandwidth(name, dtype):
    gpu = H.get(name)
    assert gpu.ridge_point(dtype) == gpu.peak(dtype) / gpu.bandwidth


def test_published_figures():
    h100, a100 = H.get("H100 SXM"), H.get("A100 40GB")
    assert h100.peak("bf16") == pytest.approx(989.4e12) and h100.bandwidth == 3.35e12
    assert a100.peak("fp16") == 312e12 and a100.bandwidth == 1.555e12
    assert H.get("A100 80GB").bandwidth == 2.039e12 and H.get("T4").bandwidth == 320e9
    assert h100.ridge_point("bf16") == pytest.approx(295, abs=1)  # FLOP per byte
    with pytest.raises(ValueError, match="T4 has no bf16"):
        H.get("T4").peak("bf16")


def test_peaks_accept_torch_dtype_names():
    h100, t4 = H.get("H100 SXM"), H.get("T4")
    for torch_name, short in H.DTYPE_NAMES.items():
        assert h100.peak(torch_name) == h100.peak(short)
    assert t4.ridge_point("float16") == t4.ridge_point("fp16")
    with pytest.raises(ValueError, match="T4 has no bf16"):
        t4.peak("bfloat16")


@pytest.mark.parametrize("device_name, expected", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H200", "H200"),
    ("NVIDIA A100-SXM4-40GB", "A100 40GB"), ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
    ("NVIDIA A100 80GB PCIe", "A100 80GB"), ("Tesla T4", "T4"), ("NVIDIA L4", "L4"),
    ("NVIDIA GeForce RTX 4090", None), ("NVIDIA L40S", None)])
def test_lookup_by_torch_device_name(device_name, expected):
    found = H.lookup(device_name)
    assert (found.name if found else None) == expected


def test_get_accepts_names_device_names_and_specs():
    h100 = H.GPUS["H100 SXM"]
    assert H.get("H100 SXM") is h100 and H.get(h100) is h100 and H.get("NVIDIA H100 80GB HBM3") is h100
    with pytest.raises(ValueError, match="unknown GPU"):
        H.get("TPU v5e")


def test_roofline_time_is_the_slower_of_math_and_memory():
    gpu = H.get("A100 80GB")
    flops, bytes_ = 1e12, 1e9
    assert H.roofline_time(flops, bytes_, gpu, "fp16") == max(flops / 312e12, bytes_ / 2.039e12)
    ridge = gpu.ridge_point("fp16")
    # At the ridge point both limits take the same time.
    assert H.roofline_time(ridge * 1e9, 1e9, gpu, "fp16") == pytest.approx(1e9 / gpu.bandwidth)
    assert H.roofline_time(0, 2.039e12, "A100 80GB", "fp16") == pytest.approx(1.0)


def test_flash_paper_memory_hierarchy():
    f = H.FLASH_PAPER_A100
    assert f["sram_bandwidth"] / f["hbm_bandwidth"] > 10 and f["hbm_bytes"] / f["sram_bytes"] == 2000
    assert "Dao" in f["source"]


def test_on_chip_memory_figures_have_sources():
    recorded = [g for g in H.GPUS.values() if g.smem_per_sm is not None]
    assert {"H100 SXM", "H100 PCIe", "H200", "A100 40GB", "A100 80GB"} <= {g.name for g in recorded}
    for g in recorded:
        assert g.sm_count and g.l2_bytes and "Tuning Guide" in g.memory_source
        assert 64 * 2**10 <= g.smem_per_sm <= 256 * 2**10 < g.l2_bytes
    h100 = H.get("H100 SXM")
    # binary units, as CUDA reports them: 228 KiB per SM, 50 MiB of L2, 132 SMs (SXM5)
    assert (h100.smem_per_sm, h100.l2_bytes, h100.sm_count) == (233_472, 50_000_000, 132)
    assert H.get("A100 40GB").smem_per_sm == 164 * 1024 and H.get("A100 40GB").l2_bytes == 40 * 10**6


def test_one_bandwidth_per_device():
    # the paper's rounded 1.5 TB/s is quoted for its own ratios; estimates use the datasheet figure
    assert H.get("A100 40GB").bandwidth == 1.555e12
    assert H.FLASH_PAPER_A100["hbm_bandwidth"] == 1.5e12


def test_links_cite_sources_and_resolve_by_name():
    for name, l in H.LINKS.items():
        assert isinstance(l, H.Link) and l.name == name
        assert l.source and l.bidirectional == 2 * l.bandwidth, name
        assert H.link(name) is l and H.link(l) is l  # a Link passes through
    assert H.link("PCIe 5.0 x16").bandwidth == 64e9  # 128 GB/s both ways
    with pytest.raises(ValueError, match="name must be one of"):
        H.link("carrier pigeon")
    with pytest.raises(TypeError, match="a link name"):
        H.link(64e9)


def test_sram_over_hbm_bandwidth_is_the_papers_figure():
    # one figure for the book (chapter 4 and the claims appendix): 19 / 1.5 TB/s
    assert H.sram_over_hbm_bandwidth() == 19e12 / 1.5e12
    assert round(H.sram_over_hbm_bandwidth()) == 13
