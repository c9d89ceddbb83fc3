"""Micro-measurements behind the estimator's time terms (advisor/estimate_time.py), ~2 minutes.

    python benchmarks/estimator_terms.py            # SmolLM2-135M, one thread, CPU time

Each cost is measured in CPU time on one thread (a shared machine preempts the process, but
the CPU time is its own work) and divided by the estimator's own probes (advisor.estimate_machine:
the model-shaped matmul and the memory copy, best-of wall time) run in the same process on the
same thread, so the printed ratios are in the units the estimator's constants use. Printed: the prompt pass against 2 x params x tokens at the matmul speed;
label scoring's extra cost per repeated cache byte; a greedy decoding step against its weights
and cache traffic; an unmerged LoRA adapter's forward against the plain model's.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # CPU time = work: no spinning threads
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cpu_seconds(fn, tries: int = 3) -> float:
    """The least CPU time of `tries` calls (the first one also warms up)."""
    fn()
    best = float("inf")
    for _ in range(tries):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from advisor.estimate import kv_cache_bytes, shape_for
    from bench.models import load_model
    from strategies.scoring import label_logprobs

    from advisor.estimate_machine import measure_cpu_copy_bandwidth, measure_cpu_matmul_flops

    a, b = torch.randn(1024, 576), torch.randn(576, 1536)
    cpu_flops = 2 * 1024 * 576 * 1536 / cpu_seconds(lambda: a @ b, 10)
    block = torch.empty(32 * 2**20 // 4)  # 32 MB, as the bandwidth probe copies
    cpu_copied = 2 * block.numel() * 4 / cpu_seconds(lambda: block.clone(), 10)  # read + write
    # the units of the ratios below: the estimator's own probes (best-of wall time), on the
    # same single thread, the best of three tries (a shared machine lowers them)
    flops = max(measure_cpu_matmul_flops() for _ in range(3))
    copied = max(measure_cpu_copy_bandwidth() for _ in range(3))
    print(f"probes: matmul {flops:.3g} FLOP/s, copy {copied:.3g} B/s, ratio "
          f"{flops / copied:.1f} FLOP/B (in CPU time: {cpu_flops:.3g} FLOP and "
          f"{cpu_copied:.3g} B per CPU-s, ratio {cpu_flops / cpu_copied:.1f})")

    model, tokenizer = load_model("smollm2-135m")
    model.eval()
    shape = shape_for("smollm2-135m")
    params = shape.matmul_params
    weights_b = sum(p.numel() * p.element_size() for p in model.parameters())

    def forward(batch: int, length: int):
        ids = torch.randint(100, 20000, (batch, length))
        return lambda: model(input_ids=ids, attention_mask=torch.ones_like(ids),
                             logits_to_keep=1)

    with torch.inference_mode():
        for batch, length in ((8, 64), (4, 512)):
            took = cpu_seconds(forward(batch, length), 2)
            print(f"prompt pass {batch} x {length}: {took:.2f} CPU-s, "
                  f"{took * flops / (2 * params * batch * length):.2f}x 2 x params x tokens")

    words = "my card payment was declined at the shop and the fee was charged twice".split()
    prompt = " ".join(words[i % len(words)] for i in range(300))
    labels = ["card payment fee charged", "direct debit payment not recognised",
              "wrong amount of cash received", "transfer fee charged", "declined card payment",
              "pending cash withdrawal", "cash withdrawal charge", "topping up by card",
              "verify my identity", "virtual card not working", "beneficiary not allowed",
              "balance not updated after cheque or cash deposit"]
    prompts = [prompt] * 8
    length = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    single = cpu_seconds(lambda: label_logprobs(model, tokenizer, prompts, ["yes", "no"]), 2)
    longest = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in labels)
    for n in (4, 12):
        took = cpu_seconds(lambda: label_logprobs(model, tokenizer, prompts, labels[:n]), 2)
        label_tokens = len(prompts) * n * (longest - 1)
        compute = 2 * params * label_tokens / flops
        repeated = len(prompts) * n * kv_cache_bytes(shape, length, 1, 4.0)
        print(f"label scoring {n} labels of <= {longest} tokens after {length}-token prompts: "
              f"+{took - single:.2f} CPU-s over 1-token labels; their tokens' FLOPs "
              f"{compute:.2f} s; left {took - single - compute:.2f} s = "
              f"{(took - single - compute) * copied / repeated:.1f} copies of the repeated cache "
              f"({repeated / 2**20:.0f} MB)")

    steps = {}
    for batch, length in ((1, 64), (4, 64), (4, 512)):
        ids = torch.randint(100, 20000, (batch, length))
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            prefill = cpu_seconds(lambda: model(input_ids=ids, attention_mask=mask,
                                                logits_to_keep=1), 2)
            new = 16
            took = cpu_seconds(lambda: model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                do_sample=False, pad_token_id=0), 2)
        step = steps[batch, length] = (took - prefill) / (new - 1)
        cache = kv_cache_bytes(shape, length + new // 2, batch, 4.0)
        print(f"decoding {batch} x {length}: {step * 1000:.0f} ms a step; weights "
              f"{weights_b / copied * 1000:.0f} ms at the copy speed, cache "
              f"{cache / copied * 1000:.1f} ms, FLOPs {2 * params * batch / flops * 1000:.1f} ms;"
              f" the step = {step * copied / weights_b:.2f} weight reads")
    per_row = (steps[4, 64] - steps[1, 64]) / 3
    grown = kv_cache_bytes(shape, 512 - 64, 4, 4.0)
    print(f"decoding: a further row {per_row * 1000:.1f} ms a step = "
          f"{per_row * flops / (2 * params):.1f} prompt tokens' FLOPs; the longer cache "
          f"{(steps[4, 512] - steps[4, 64]) * copied / grown:.1f} passes over it")

    from peft import LoraConfig, get_peft_model

    from advisor.estimate import CPU_EFFICIENCY, Machine, step_time_s

    with torch.inference_mode():
        plain = cpu_seconds(forward(16, 64), 2)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    model.eval()
    with torch.inference_mode():
        adapted = cpu_seconds(forward(16, 64), 2)
    print(f"unmerged LoRA (r 8, all linear layers) forward 16 x 64: {adapted / plain:.2f}x the "
          f"plain model's")

    # a LoRA optimizer step as the Trainer takes it: forward, backward, AdamW
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(100, 20000, (8, 64))

    def lora_step():
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    took = cpu_seconds(lora_step, 2)
    # the estimator's step at the FLOP/s this process's matmul probe gives one CPU-second
    estimated = step_time_s("lora", shape, 8 * 64, Machine("cpu", flops * CPU_EFFICIENCY,
                                                             None, 0.0))
    print(f"LoRA step 8 x 64 (forward, backward, AdamW): {took:.2f} CPU-s, the estimator's "
          f"{estimated:.2f} s ({took / estimated:.2f}x)")


if __name__ == "__main__":
    main()
