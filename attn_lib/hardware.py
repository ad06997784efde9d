"""Published accelerator peaks (dense, no sparsity) and the roofline model.

Chapters 2-4 turn FLOP and byte counts into time with these. Units: FLOP/s and bytes/s
(decimal: 1 TFLOP/s = 1e12 FLOP/s, 1 TB/s = 1e12 B/s), memory in bytes. Shared memory per
SM is binary (the tuning guides' "228 KB" are the 233,472 bytes a kernel can configure);
the L2 sizes are taken as written, in decimal: the whitepapers' "50 MB" is 50e6 bytes, not
50 MiB. One bandwidth per device: every time estimate uses `bandwidth`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._checks import check_choice, check_nonneg, check_positive, check_str, check_type


#: torch's dtype names -> the short names peaks are keyed by (the library's one such map).
DTYPE_NAMES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


@dataclass(frozen=True)
class GPU:
    """Dense peak throughput per dtype (FLOP/s), memory bandwidth (B/s) and capacity (B)."""

    name: str
    peak_flops: dict = field(hash=False)
    bandwidth: float
    memory: float
    source: str
    aliases: tuple = ()
    #: on-chip memory (chapter 4's three-level model); None where not recorded
    sm_count: int | None = None
    smem_per_sm: int | None = None  # bytes of shared memory one SM can give its blocks
    l2_bytes: int | None = None
    memory_source: str = ""

    def __post_init__(self):
        check_str("name", self.name), check_str("source", self.source)
        check_type("peak_flops", self.peak_flops, dict, "a dict {dtype: FLOP/s}")
        for dtype, flops in self.peak_flops.items():
            check_positive(f"peak_flops[{dtype!r}]", flops)
        check_positive("bandwidth", self.bandwidth), check_positive("memory", self.memory)
        check_type("aliases", self.aliases, tuple, "a tuple of str")

    def peak(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for a dtype, by short name ('bf16') or torch's ('bfloat16')."""
        dtype = DTYPE_NAMES.get(dtype, dtype)
        if dtype not in self.peak_flops:
            known = ", ".join(self.peak_flops)
            raise ValueError(f"dtype {dtype!r}: {self.name} has no {dtype} peak; known: {known}")
        return self.peak_flops[dtype]

    def ridge_point(self, dtype: str = "bf16") -> float:
        """Arithmetic intensity (FLOP/byte) above which a kernel is compute-bound."""
        return self.peak(dtype) / self.bandwidth


T = 1e12
_KIB = 2**10
_MB = 10**6  # the whitepapers' "MB" of L2
_HOPPER_SMEM = ("NVIDIA Hopper Tuning Guide, 'Shared Memory': shared memory capacities of 0, 8, 16, 32, "
                "64, 100, 132, 164, 196 and 228 KB per SM (227 KB addressable by one thread block)")
_AMPERE_SMEM = ("NVIDIA Ampere Tuning Guide, 'Shared Memory': up to 164 KB of shared memory per SM on "
                "A100 (163 KB addressable by one thread block)")


def _hopper(name, dense, tf32, fp32, bandwidth, memory, aliases, sm_count, source, chip) -> GPU:
    """A Hopper GPU: one dense bf16/fp16 peak, 228 KiB of shared memory per SM, 50 MB of L2."""
    peaks = {"bf16": dense, "fp16": dense, "tf32": tf32, "fp32": fp32}
    return GPU(name, peaks, bandwidth, memory, source, aliases, sm_count=sm_count,
               smem_per_sm=228 * _KIB, l2_bytes=50 * _MB, memory_source=f"{_HOPPER_SMEM}; {chip}")


_A100 = dict(sm_count=108, smem_per_sm=164 * _KIB, l2_bytes=40 * _MB,
             memory_source=_AMPERE_SMEM + "; NVIDIA A100 Tensor Core GPU Architecture whitepaper: "
             "108 SMs, 40 MB L2 cache")
GPUS: dict[str, GPU] = {
    g.name: g
    for g in (
        _hopper("H100 SXM", 989.4 * T, 494.7 * T, 66.9 * T, 3.35e12, 80e9, ("h100",), 132,
                "NVIDIA H100 Tensor Core GPU datasheet (SXM5): BF16/FP16 1,979 TFLOPS with sparsity "
                "(989.4 dense), TF32 989 sparse, FP32 67 TFLOPS, HBM3 3.35 TB/s, 80 GB",
                "NVIDIA H100 Tensor Core GPU Architecture whitepaper: H100 SXM5 has 132 SMs and a "
                "50 MB L2 cache"),
        _hopper("H100 PCIe", 756.5 * T, 378 * T, 51.2 * T, 2.0e12, 80e9, ("h100 pcie",), 114,
                "NVIDIA H100 Tensor Core GPU datasheet (PCIe): BF16/FP16 1,513 TFLOPS with sparsity "
                "(756.5 dense), TF32 756 sparse, FP32 51 TFLOPS, HBM2e 2 TB/s, 80 GB",
                "NVIDIA H100 Tensor Core GPU Architecture whitepaper: H100 PCIe has 114 SMs and a "
                "50 MB L2 cache"),
        _hopper("H200", 989.4 * T, 494.7 * T, 66.9 * T, 4.8e12, 141e9, ("h200",), 132,
                "NVIDIA H200 Tensor Core GPU datasheet (SXM): BF16/FP16 1,979 TFLOPS with sparsity "
                "(989.4 dense), HBM3e 4.8 TB/s, 141 GB",
                "the H200 is the H100 SXM5's GH100 configuration (132 SMs, 50 MB L2, H100 "
                "whitepaper) with HBM3e; its datasheet lists memory only"),
        GPU("A100 40GB", {"bf16": 312 * T, "fp16": 312 * T, "tf32": 156 * T, "fp32": 19.5 * T},
            1.555e12, 40e9,
            "NVIDIA A100 Tensor Core GPU datasheet (SXM): BF16/FP16 312 TFLOPS dense, TF32 156, "
            "FP32 19.5, HBM2 1,555 GB/s, 40 GB",
            ("a100-sxm4-40gb", "a100 40gb", "a100-pcie-40gb"), **_A100),
        GPU("A100 80GB", {"bf16": 312 * T, "fp16": 312 * T, "tf32": 156 * T, "fp32": 19.5 * T},
            2.039e12, 80e9,
            "NVIDIA A100 Tensor Core GPU datasheet (SXM): BF16/FP16 312 TFLOPS dense, HBM2e 2,039 GB/s, 80 GB",
            ("a100-sxm4-80gb", "a100 80gb", "a100"), **_A100),
        GPU("T4", {"fp16": 65 * T, "fp32": 8.1 * T},
            320e9, 16e9,
            "NVIDIA T4 Tensor Core GPU datasheet: mixed-precision FP16/FP32 65 TFLOPS, FP32 8.1 TFLOPS, "
            "GDDR6 320 GB/s, 16 GB; Turing has no bf16",
            ("t4",)),
        GPU("L4", {"bf16": 121 * T, "fp16": 121 * T, "fp32": 30.3 * T},
            300e9, 24e9,
            "NVIDIA L4 Tensor Core GPU datasheet: FP16/BF16 242 TFLOPS with sparsity (121 dense), "
            "FP32 30.3 TFLOPS, GDDR6 300 GB/s, 24 GB",
            ("l4",)),
    )
}

#: The memory hierarchy figure of FlashAttention (Dao et al. 2022, Fig. 1 left), for an A100,
#: as the paper rounds it: quote it for the paper's ratios (13x, 1/2000), but estimate times
#: with the datasheet's GPUS["A100 40GB"].bandwidth (1.555 TB/s), the one figure per device.
FLASH_PAPER_A100 = {
    "sram_bandwidth": 19e12, "sram_bytes": 20e6,
    "hbm_bandwidth": 1.5e12, "hbm_bytes": 40e9,
    "source": "Dao et al. 2022, 'FlashAttention', Figure 1 (left): SRAM 19 TB/s (20 MB), HBM 1.5 TB/s (40 GB)",
}


def sram_over_hbm_bandwidth() -> float:
    """How many times faster on-chip SRAM is than HBM: the book's one figure for it.

    Both bandwidths come from the same figure, the FlashAttention paper's Figure 1 for an
    A100 (19 TB/s against 1.5 TB/s, about 12.7), so chapter 4 and the claims appendix quote
    one ratio. Times are still estimated with the datasheet bandwidth (``GPU.bandwidth``).
    """
    f = FLASH_PAPER_A100
    return f["sram_bandwidth"] / f["hbm_bandwidth"]


def lookup(name: str) -> GPU | None:
    """The spec whose name or alias occurs in a device name such as 'NVIDIA H100 80GB HBM3'."""
    low = check_str("name", name).lower()
    for gpu in sorted(GPUS.values(), key=lambda g: -max(map(len, g.aliases + (g.name,)))):
        if any(re.search(rf"\b{re.escape(a)}\b", low) for a in gpu.aliases + (gpu.name.lower(),)):
            return gpu
    return None


def get(gpu: str | GPU) -> GPU:
    if isinstance(gpu, GPU):
        return gpu
    check_type("gpu", gpu, str, "a GPU name or hardware.GPU")
    if gpu in GPUS:
        return GPUS[gpu]
    found = lookup(gpu)
    if found is None:
        raise ValueError(f"gpu: unknown GPU {gpu!r}; known: {', '.join(GPUS)}")
    return found


def roofline_time(flops: float, bytes_moved: float, gpu: str | GPU = "H100 SXM", dtype: str = "bf16") -> float:
    """Lower bound on run time (s): the slower of doing the math and moving the bytes."""
    flops, bytes_moved = check_nonneg("flops", flops), check_nonneg("bytes_moved", bytes_moved)
    g = get(gpu)
    return max(flops / g.peak(dtype), bytes_moved / g.bandwidth)


# ------------------------------------------------------------------------ interconnects
@dataclass(frozen=True)
class Link:
    """A device-to-device link: bytes/s one way (what a ring step uses), both ways."""

    name: str
    bandwidth: float  # B/s per direction
    bidirectional: float  # B/s, both directions together, as vendors quote it
    scope: str  # which devices it joins
    source: str

    def __post_init__(self):
        check_str("name", self.name), check_str("scope", self.scope)
        check_str("source", self.source)
        check_positive("bandwidth", self.bandwidth)
        check_positive("bidirectional", self.bidirectional)


#: Interconnects chapter 5 sends K/V blocks over (decimal GB/s; Gb/s = bits).
LINKS: dict[str, Link] = {
    link.name: link
    for link in (
        Link("NVLink 4 (H100)", 450e9, 900e9, "GPUs in one server (NVSwitch)",
             "NVIDIA H100 Tensor Core GPU datasheet: NVLink 900 GB/s (SXM, "
             "bidirectional total over 18 fourth-generation links), i.e. 450 GB/s "
             "each way"),
        Link("PCIe 5.0 x16", 64e9, 128e9, "GPU to host or GPU to GPU without NVLink",
             "NVIDIA H100 Tensor Core GPU datasheet: PCIe Gen5 128 GB/s "
             "(bidirectional); PCI-SIG PCIe 5.0 base specification: 32 GT/s per "
             "lane, 16 lanes"),
        Link("InfiniBand NDR", 50e9, 100e9,
             "between servers, one 400 Gb/s port per GPU",
             "NVIDIA ConnectX-7 adapter / Quantum-2 NDR InfiniBand product briefs: "
             "400 Gb/s per port, per direction (= 50 GB/s)"),
    )
}


def link(name: str | Link) -> Link:
    """A link by its name in :data:`LINKS` (or the Link itself)."""
    if isinstance(name, Link):
        return name
    check_type("name", name, str, "a link name (str) or a Link")
    return LINKS[check_choice("name", name, LINKS)]


# ------------------------------------------------------- the programming model (primer)
#: Facts of NVIDIA's CUDA programming model that the GPU primer (appendix) states, each
#: with its source: (value, source). Per-device sizes and peaks live in GPUS above.
CUDA_MODEL: dict[str, tuple[int, str]] = {
    "warp_size": (32, "CUDA C++ Programming Guide, 'SIMT Architecture': the multiprocessor "
                      "creates, schedules and executes threads in groups of 32 called warps"),
    "max_threads_per_block": (1024, "CUDA C++ Programming Guide, 'Thread Hierarchy': on "
                                    "current GPUs a thread block may contain up to 1024 "
                                    "threads"),
    "registers_per_sm": (65536, "CUDA C++ Programming Guide, 'Compute Capabilities' "
                                "table: 64K 32-bit registers per multiprocessor for "
                                "compute capability 7.5 (T4) to 9.0 (H100)"),
    "tensor_cores_per_sm": (4, "NVIDIA H100 Tensor Core GPU Architecture whitepaper: four "
                               "fourth-generation Tensor Cores per SM (528 on H100 SXM5's "
                               "132 SMs); the A100 whitepaper: four third-generation per SM"),
}


def cuda_fact(name: str) -> int:
    """A value of :data:`CUDA_MODEL` by name ('warp_size', ...)."""
    return CUDA_MODEL[check_choice("name", name, CUDA_MODEL)][0]
