"""Where a CPU training step's memory goes: peak RSS of SmolLM2-135M training steps, one fresh
process per variant, beside the advisor's estimate of the same step.

    python benchmarks/train_memory.py                     # batch 8 x 112 tokens, every variant
    python benchmarks/train_memory.py --seq 112 --batch 8 --variants lora,lora-nodrop
    python benchmarks/train_memory.py --quick             # tiny-llama: a smoke run

Each variant loads the model, then runs 3 optimizer steps on random token ids (no padding) and
reports the process's peak RSS after loading and after training. The difference is what the
training step adds (activations, gradients, optimizer state, the allocator's slack); the advisor's
estimate (advisor.estimate.training_memory) is printed for the same shape beside it.
Variants: `forward` (no grad), `lora` (r=8, dropout 0.05, all linear layers: the `lora`
candidate), `lora-passive` (the same under OMP_WAIT_POLICY=PASSIVE, as the harness's child
runs), `lora-nodrop` (dropout 0), `full` (every weight, AdamW). Run it on an otherwise idle
machine: the step times are compared across variants.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("forward", "lora", "lora-passive", "lora-nodrop", "full")


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(model_name: str, variant: str, batch: int, seq: int) -> dict:
    """Runs inside the child process."""
    import torch

    from bench.models import load_model

    torch.manual_seed(0)
    model, _ = load_model(model_name)
    model.config.use_cache = False
    with torch.no_grad():  # page in memory-mapped weights, so "after load" holds them
        for parameter in model.parameters():
            parameter.sum()
    loaded = _rss_mb()
    ids = torch.randint(0, model.config.vocab_size, (batch, seq))
    if variant == "forward":
        with torch.inference_mode():
            model(input_ids=ids)
        return {"loaded_mb": loaded, "peak_mb": _rss_mb()}
    if variant.startswith("lora"):
        from peft import LoraConfig, get_peft_model

        dropout = 0.0 if variant == "lora-nodrop" else 0.05
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - started)
    # the first step pays one-off allocations; the mean of the others is the steady step time
    return {"loaded_mb": loaded, "peak_mb": _rss_mb(), "step_s": sum(seconds[1:]) / 2}


def estimate(variant: str, batch: int, seq: int, model_name: str) -> str:
    """The advisor's figures for the same step: its parts in MB and its step time."""
    from advisor.estimate import (BUILTIN_SHAPES, Workload, profile_for, step_time_s,
                                  this_machine, training_memory)

    if variant == "forward" or model_name not in BUILTIN_SHAPES:
        return ""
    strategy = "full" if variant == "full" else "lora"
    shape, machine = BUILTIN_SHAPES[model_name], this_machine()
    work = Workload(train_rows=batch, seq_len=seq, batch_size=batch, lora_r=8,
                    lora_dropout=0.0 if variant == "lora-nodrop" else 0.05)
    parts = training_memory(shape, profile_for(strategy), work, machine)
    megabytes = {key: round(value / 2**20) for key, value in parts.items() if key != "trained_params"}
    step = step_time_s(strategy, shape, batch * seq, machine)
    return f"{sum(megabytes.values())} MB {megabytes}, {step:.2f} s/step"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=112, help="tokens per row (the banking "
                        "sample's mean prompt + label is ~110 with the chat template)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="tiny-llama instead of smollm2-135m")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model_name = "tiny-llama" if args.quick else "smollm2-135m"
    if args.child:
        print(json.dumps(measure(model_name, args.child, args.batch, args.seq)))
        return
    print(f"{model_name}, batch {args.batch} x {args.seq} tokens, load average "
          f"{os.getloadavg()[0]:.1f}; peak RSS per fresh process (MB)")
    print(f"{'variant':<12} {'after load':>10} {'peak':>8} {'training adds':>14} {'s/step':>7}  "
          "the estimator's training parts (beside weights and runtime) and step time")
    for variant in args.variants.split(","):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("OMP_WAIT_POLICY", None)
        if variant == "lora-passive":
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--batch", str(args.batch),
                              "--seq", str(args.seq)] + (["--quick"] if args.quick else []),
                             capture_output=True, text=True, cwd=ROOT, env=env)
        if out.returncode:
            print(f"{variant:<12} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        added = result["peak_mb"] - result["loaded_mb"]
        step = f"{result['step_s']:7.2f}" if "step_s" in result else f"{'':7}"
        print(f"{variant:<12} {result['loaded_mb']:10.0f} {result['peak_mb']:8.0f} {added:14.0f} "
              f"{step}  {estimate(variant, args.batch, args.seq, model_name)}")


if __name__ == "__main__":
    main()
