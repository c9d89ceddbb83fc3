"""One large candidate across several GPUs: choose DDP or FSDP, launch a process per GPU, measure.

    from bench.distributed import plan_for, launch, combine_measures
    plan = plan_for("lora", gpu_count=4)           # DDP, NCCL, 4 ranks
    plan = plan_for("full", gpu_count=8)           # FSDP (full shard, transformer-layer wrap)
    results = launch(train_one_rank, (job,), plan)  # {rank: RankResult}
    combine_measures([r.measure for r in results.values()])  # peak MB per GPU, total tokens/s

Why these choices:
- LoRA, QLoRA and the other adapters train a few million parameters on a frozen base that fits
  one GPU: plain data parallelism (DDP) is the simplest and fastest; each rank holds the whole
  (quantised) base on its own GPU and only the adapter gradients are all-reduced.
- Full fine-tuning holds weights + gradients + Adam state (~16 bytes/parameter): FSDP shards
  all three across the GPUs, which is what lets a model larger than one GPU train at all.
- The launch is torchrun's own machinery (torch.distributed.elastic, `--standalone`
  rendezvous), called from the candidate's child process, so the ranks are children of the
  measured process and the harness's timeout, memory ceiling and kill reach them. Inside each
  rank the Hugging Face Trainer (which runs on accelerate) reads RANK / LOCAL_RANK /
  WORLD_SIZE and wraps the model in DDP or FSDP itself from `trainer_arguments()`.
- The Trainer arguments reach the training code through the environment variable
  TRAINER_ARGS_ENV (JSON), because strategies sit below bench in the layering and cannot
  import this module: the training function merges that JSON into its TrainingArguments.

Measured the same way as one process: each rank reports its own peak memory (CUDA
max_memory_allocated, RSS) and the tokens it trained on; the candidate's record gets the peak
of every GPU and the total tokens/s (all ranks' tokens over the slowest rank's seconds).
Tested here on CPU only (gloo backend, 2 processes); NCCL on real GPUs and FSDP are not.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable

from bench.peak_memory import peak_cuda_mb, peak_rss_mb
from strategies import catalogue

TRAINER_ARGS_ENV = "TUNEWISE_TRAINER_ARGS"
# Development and CI hook: spread a trainable candidate over N CPU processes (gloo) as it would
# be over N GPUs, to exercise the multi-GPU path on a machine without GPUs.
CPU_RANKS_ENV = "TUNEWISE_CPU_RANKS"


@dataclass(frozen=True)
class DistributedPlan:
    """How one candidate spreads over the GPUs visible to it."""

    world_size: int  # processes, one per GPU
    mode: str  # "ddp" (replicate, all-reduce gradients) | "fsdp" (shard everything)
    backend: str  # "nccl" on CUDA, "gloo" on CPU (tests)
    quantized: bool = False  # QLoRA: each rank loads its 4-bit base onto its own GPU

    def trainer_arguments(self) -> dict[str, Any]:
        """TrainingArguments for every rank (transformers 5 names)."""
        if self.mode == "fsdp":
            return {"fsdp": "full_shard auto_wrap", "ddp_backend": self.backend,
                    "fsdp_config": {"version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                    "reshard_after_forward": True,
                                    "state_dict_type": "FULL_STATE_DICT",
                                    # rank 0 reads the checkpoint, the others get a broadcast
                                    "cpu_ram_efficient_loading": True}}
        # A frozen base has parameters that get no gradient: skipping the search for unused
        # ones is right for LoRA and saves a traversal per step.
        return {"ddp_backend": self.backend, "ddp_find_unused_parameters": False}

    def environment(self) -> dict[str, str]:
        return {TRAINER_ARGS_ENV: json.dumps(self.trainer_arguments())}


def visible_gpu_count(environ: dict[str, str] | None = None,
                      device_count: Callable[[], int] | None = None) -> int:
    """GPUs this candidate may use: CUDA_VISIBLE_DEVICES when set (the executors pin it), else
    every GPU torch sees."""
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if device_count is None:
        import torch

        device_count = torch.cuda.device_count
    return int(device_count())


def plan_for(strategy: str, gpu_count: int, *, backend: str = "nccl") -> DistributedPlan | None:
    """The plan for a candidate with `gpu_count` GPUs, or None when it runs as one process
    (one GPU or none, or a method that trains nothing). How it shards is its catalogue
    entry's: full-parameter methods shard weights, gradients and optimizer state (FSDP),
    adapters replicate (DDP); `lora+rag` and `peft:<type>` shard as their base."""
    entry = catalogue.entry(strategy)
    if gpu_count < 2 or entry is None or entry.shards is None:
        return None
    quantized = entry.profile is not None and entry.profile.quantized
    return DistributedPlan(world_size=gpu_count, mode=entry.shards, backend=backend,
                           quantized=quantized)


def plan_for_child(strategy: str, trainable: bool, device: str,
                   environ: dict[str, str] | None = None) -> DistributedPlan | None:
    """The plan of a candidate's child process: several visible GPUs (the executor pinned
    them with --gpus-per-candidate), or TUNEWISE_CPU_RANKS on CPU; None runs one process."""
    environ = os.environ if environ is None else environ
    if not trainable:
        return None
    if device == "cuda":
        return plan_for(strategy, visible_gpu_count(environ), backend="nccl")
    ranks = environ.get(CPU_RANKS_ENV, "").strip()
    return plan_for(strategy, int(ranks), backend="gloo") if ranks.isdigit() else None


# --------------------------------------------------------------------------- measurement


@dataclass
class RankMeasure:
    rank: int
    seconds: float
    tokens: int
    peak_rss_mb: float
    peak_cuda_mb: float | None


@dataclass
class RankResult:
    value: Any
    measure: RankMeasure


def _rank_main(entry: Callable[..., tuple[Any, int]], args: tuple, environment: dict) -> RankResult:
    """Runs in every rank: `entry(*args)` returns (value, tokens trained on this rank)."""
    os.environ.update(environment)
    rank = int(os.environ.get("RANK", "0"))
    if os.environ.get("LOCAL_RANK") is not None and _cuda_available():
        import torch

        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # one GPU per rank
    started = time.perf_counter()
    value, tokens = entry(*args)
    # The same readings as a one-process candidate's (bench.peak_memory).
    return RankResult(value, RankMeasure(rank, time.perf_counter() - started, int(tokens),
                                         peak_rss_mb(), peak_cuda_mb()))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def combine_measures(measures: list[RankMeasure]) -> dict[str, Any]:
    """One candidate's numbers from its ranks: every GPU's peak, total throughput."""
    measures = sorted(measures, key=lambda m: m.rank)
    slowest = max(m.seconds for m in measures)
    tokens = sum(m.tokens for m in measures)
    cuda = [m.peak_cuda_mb for m in measures]
    return {
        "world_size": len(measures),
        "peak_cuda_mb_per_gpu": [round(v, 1) if v is not None else None for v in cuda],
        "peak_cuda_mb": (round(max(v for v in cuda if v is not None), 1)
                         if any(v is not None for v in cuda) else None),
        "peak_rss_mb_per_rank": [round(m.peak_rss_mb, 1) for m in measures],
        "train_tokens": tokens,
        "tokens_per_s": round(tokens / slowest, 2) if slowest > 0 and tokens else None,
        "seconds": round(slowest, 3),
    }


# --------------------------------------------------------------------------- launching


def launch_config(plan: DistributedPlan, run_id: str | None = None):
    """torchrun --standalone --nproc-per-node N, as a LaunchConfig: one node, a local c10d
    rendezvous on a free port, spawned ranks, and no restarts (a crash is a result)."""
    from torch.distributed.launcher.api import LaunchConfig

    return LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=plan.world_size,
                        run_id=run_id or f"tunewise-{uuid.uuid4().hex[:8]}",
                        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                        start_method="spawn", monitor_interval=0.1)


def launch(entry: Callable[..., tuple[Any, int]], args: tuple, plan: DistributedPlan,
           run_id: str | None = None) -> dict[int, RankResult]:
    """Run `entry(*args)` in plan.world_size ranks and return each rank's result.

    `entry` must be importable by name (the ranks are spawned). It sets up its own training;
    the Trainer arguments for the plan are in os.environ[TRAINER_ARGS_ENV] inside each rank."""
    from torch.distributed.launcher.api import elastic_launch

    results = elastic_launch(launch_config(plan, run_id), _rank_main)(
        entry, args, plan.environment())
    return dict(sorted(results.items()))


def measured_summary(results: dict[int, RankResult]) -> dict[str, Any]:
    """Combined measurement plus rank 0's value, for a candidate's `info`."""
    summary = combine_measures([r.measure for r in results.values()])
    summary["per_rank"] = [asdict(r.measure) for r in results.values()]
    return summary
