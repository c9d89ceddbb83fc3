"""Peak memory of the calling process, read the same way in a candidate's child and in every
rank of a distributed candidate (bench.child and bench.distributed both use it)."""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """This process's RSS high-water mark, MB.

    Linux: VmHWM of /proc/self/status, which belongs to the process's own memory map.
    (ru_maxrss is not usable in a spawned child: Linux carries it across fork + exec, so it
    would report the parent's size.) Elsewhere: ru_maxrss (KB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def peak_cuda_mb() -> float | None:
    """torch.cuda.max_memory_allocated in MB; None when this process never used a GPU (or
    never imported torch: then it cannot have, and torch is not imported to find out)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.max_memory_allocated() / 2**20
