"""A cheap hardware probe (no torch import: the TUI must start fast).

    probe() -> {"cpu": "AMD EPYC ...", "cores": 2, "memory_gb": 23.4,
                "gpu": None | "NVIDIA H100 80GB HBM3", "gpu_memory_gb": None | 79.6, "cuda": bool}
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import lru_cache
from typing import Any


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover - psutil is a dependency
        return 0.0


def _gpus() -> list[tuple[str, float]]:
    """[(name, memory_gb)] from nvidia-smi when present; [] otherwise."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return []
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        name, _, memory = line.rpartition(",")
        try:
            gpus.append((name.strip(), round(float(memory) / 1024, 1)))
        except ValueError:
            continue
    return gpus


@lru_cache(maxsize=1)
def probe() -> dict[str, Any]:
    gpus = _gpus()
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count() or 1,
        "memory_gb": _memory_gb(),
        "gpu": gpus[0][0] if gpus else None,
        "gpu_count": len(gpus),
        "gpu_memory_gb": gpus[0][1] if gpus else None,
        "cuda": bool(gpus),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
