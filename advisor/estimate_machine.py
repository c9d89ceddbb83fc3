"""The machine a candidate would run on, for the pre-run estimator (advisor.estimate): its
effective FLOP/s (GPU data sheets x MFU, or the CPU measured once and cached) and list prices.
The price table and `this_machine()` live in advisor.estimate.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


# Peak dense bf16 tensor-core TFLOP/s (vendor data sheets) and an assumed model FLOPs
# utilisation: ~35 % is typical of Hugging Face training loops at small batch.
GPU_PEAK_TFLOPS: dict[str, float] = {
    "h200": 989.0, "h100": 989.0, "a100": 312.0, "a10": 125.0, "l40": 181.0, "l4": 121.0,
    "4090": 165.0, "3090": 71.0, "v100": 125.0, "t4": 65.0,
}
GPU_MFU = 0.35
DEFAULT_GPU = "a10"  # when only the memory is known (a 24 GB card)
# Memory bandwidth, GB/s (vendor data sheets: HBM or GDDR peak). The estimator's memory-traffic
# terms (a decoding step reads every weight; label scoring copies the prompts' KV cache) divide
# by it; like GPU_MFU for FLOP/s, a loop of small kernels reaches part of it.
GPU_BANDWIDTH_GBS: dict[str, float] = {
    "h200": 4800.0, "h100": 3350.0, "a100": 2039.0, "a10": 600.0, "l40": 864.0, "l4": 300.0,
    "4090": 1008.0, "3090": 936.0, "v100": 900.0, "t4": 320.0,
}
GPU_BANDWIDTH_UTILISATION = 0.6

# Effective FLOP/s of transformer work on the CPU = measured matmul FLOP/s x this efficiency.
# The measured runs of DESIGN.md imply ~1.3e11 FLOP/s effective on this project's 2-core CPU
# (0.9 there). On the Intel Xeon of 2026-12-03 a SmolLM2 prompt pass took 1.09 / 1.20 / 1.30x
# (8 x 64 tokens) and 1.29 / 1.42 / 1.43x (4 x 512) its 2 x params x tokens at the matmul
# probe's speed (benchmarks/estimator_terms.py, three runs, one thread, CPU time, load 3-4);
# with the attention square counted apart (prompt_attention_flops) that is 0.82-0.85.
CPU_EFFICIENCY = 0.83
REFERENCE_CPU_FLOPS = 1.3e11  # the 2-core CPU of DESIGN.md's measurements (see the tests)
# Matmul FLOPs per byte of a large memory copy on this project's CPU, the two probes below side
# by side on one thread (benchmarks/estimator_terms.py, 2026-12-03, Intel Xeon 2-vCPU VM,
# three runs: 32.5 and 30.9 at load 4, where other jobs' memory traffic slowed the copy, and
# 22.7 at load 2.8, 2.21e11 FLOP/s and 9.74e9 B/s): the bandwidth taken where none was measured
# (`this_machine(measure=False)`, $TUNEWISE_CPU_FLOPS alone), from the least loaded run. To be
# re-measured on an idle machine.
CPU_FLOP_PER_BYTE = 23.0

# $/hour, used when bench/prices.toml is absent (rough 2026 on-demand cloud list prices).
DEFAULT_PRICES: dict[str, float] = {
    "cpu": 0.10, "h200": 4.50, "h100": 3.50, "a100": 2.00, "a10": 1.00, "l40": 1.50,
    "l4": 0.80, "4090": 0.70, "3090": 0.40, "v100": 1.20, "t4": 0.40,
}


@dataclass(frozen=True)
class Machine:
    """Where a candidate would run: effective FLOP/s, memory limit and price."""

    kind: str  # "cpu" or a GPU key of GPU_PEAK_TFLOPS
    flops: float  # effective FLOP/s for transformer training/inference
    memory_gb: float | None  # the limit a candidate must fit (GPU memory, or RAM on CPU)
    price_per_hour: float
    source: str = ""  # how `flops` was obtained, shown to the user
    bandwidth: float = 0.0  # memory bytes/s (read + write of a copy); 0: derived from flops

    @property
    def cuda(self) -> bool:
        return self.kind != "cpu"

    @property
    def bytes_per_s(self) -> float:
        """The memory bandwidth the traffic terms divide by: the measured one, else the GPU's
        data sheet x utilisation, else the CPU's FLOP/s over CPU_FLOP_PER_BYTE."""
        if self.bandwidth > 0:
            return self.bandwidth
        if self.cuda:
            return GPU_BANDWIDTH_GBS.get(self.kind, GPU_BANDWIDTH_GBS[DEFAULT_GPU]) * 1e9 * \
                GPU_BANDWIDTH_UTILISATION
        return self.flops / CPU_FLOP_PER_BYTE


def gpu_key(gpu_name: str | None) -> str:
    text = (gpu_name or "").lower()
    for key in sorted(GPU_PEAK_TFLOPS, key=len, reverse=True):
        if key in text:
            return key
    return DEFAULT_GPU


def throughput_cache() -> Path:
    root = Path(os.environ.get("TUNEWISE_CACHE", Path.home() / ".cache" / "tunewise"))
    return root / "cpu_throughput.json"


def measure_cpu_matmul_flops(repeats: int = 20) -> float:
    """Best-of-N FLOP/s of a model-shaped fp32 matmul (1024 tokens x 576 -> 1536, SmolLM2's
    MLP). Best-of because the machine may be shared: we want what it can do, not its worst."""
    import torch

    a, b = torch.randn(1024, 576), torch.randn(576, 1536)
    a @ b  # warm up the kernels
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * 1024 * 576 * 1536 / max(time.perf_counter() - start, 1e-9))
    return best


def measure_cpu_copy_bandwidth(repeats: int = 20) -> float:
    """Best-of-N bytes/s (read + write) of copying a 32 MB fp32 block, beyond the per-core
    caches: what a decoding step's weight reads and label scoring's cache copies move at.
    Best-of, like the matmul probe."""
    import torch

    block = torch.empty(8 * 2**20)  # 32 MB
    block.clone()  # warm up: the allocator and the first touch of the pages
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        block.clone()
        best = max(best, 2 * block.numel() * 4 / max(time.perf_counter() - start, 1e-9))
    return best


def cpu_bandwidth(refresh: bool = False) -> tuple[float, str]:
    """CPU memory bandwidth (bytes/s) and where it came from: $TUNEWISE_CPU_BANDWIDTH, the
    cache beside the FLOP/s (cpu_flops), or a fresh measurement (a fraction of a second) that
    is added to that cache."""
    if os.environ.get("TUNEWISE_CPU_BANDWIDTH"):
        return float(os.environ["TUNEWISE_CPU_BANDWIDTH"]), "$TUNEWISE_CPU_BANDWIDTH"
    cache, cores = throughput_cache(), os.cpu_count() or 1
    data: dict = {}
    if cache.is_file():
        try:
            data = json.loads(cache.read_text())
        except (OSError, ValueError):
            data = {}
    if data.get("cores") == cores and data.get("copy_bytes_per_s") and not refresh:
        return float(data["copy_bytes_per_s"]), (
            f"measured {data.get('bandwidth_measured_at', '?')} at load "
            f"{data.get('bandwidth_load_average', '?')}, cached in {cache}")
    measured = measure_cpu_copy_bandwidth()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if data.get("cores") == cores:  # beside this machine's FLOP/s; a new file otherwise
        data.update({"copy_bytes_per_s": measured, "bandwidth_load_average": round(load, 1),
                     "bandwidth_measured_at": time.strftime("%Y-%m-%d")})
        try:
            cache.write_text(json.dumps(data, indent=1))
        except OSError:
            pass
    return measured, f"measured now at load {round(load, 1)}"


def cpu_flops(refresh: bool = False) -> tuple[float, str]:
    """Effective CPU FLOP/s and where the number came from: $TUNEWISE_CPU_FLOPS, the cache, or
    a fresh measurement (a second, then cached for this machine's core count)."""
    if os.environ.get("TUNEWISE_CPU_FLOPS"):
        return float(os.environ["TUNEWISE_CPU_FLOPS"]), "$TUNEWISE_CPU_FLOPS"
    cache, cores = throughput_cache(), os.cpu_count() or 1
    if cache.is_file() and not refresh:
        try:
            data = json.loads(cache.read_text())
            if data.get("cores") == cores:
                # the efficiency of this checkout over the cached matmul speed
                effective = (float(data["matmul_flops"]) * CPU_EFFICIENCY
                             if data.get("matmul_flops") else float(data["effective_flops"]))
                return effective, (
                    f"measured {data['measured_at']} at load {data.get('load_average', '?')}, "
                    f"cached in {cache}")
        except (OSError, ValueError, KeyError):
            pass
    matmul = measure_cpu_matmul_flops()
    # A shared machine measures slow: keep the load beside the number so the user can judge
    # it (`tunewise estimate` shows it; delete the cache file or set $TUNEWISE_CPU_FLOPS).
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    data = {"cores": cores, "matmul_flops": matmul, "efficiency": CPU_EFFICIENCY,
            "effective_flops": matmul * CPU_EFFICIENCY, "load_average": round(load, 1),
            "measured_at": time.strftime("%Y-%m-%d")}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(data, indent=1))
    except OSError:
        pass  # a read-only home: measure again next time
    return data["effective_flops"], f"measured now at load {data['load_average']}"
