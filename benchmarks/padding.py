"""Training throughput: dynamic padding + length-grouped batches vs fixed max-length padding.

    python benchmarks/padding.py            # smollm2-135m, 4 batches per side per sample
    python benchmarks/padding.py --quick    # tiny-llama, 2 batches per side per sample

For each bundled sample (banking_support, squad_mini, self_instruct_mini, hh_helpful_mini) the
training rows are encoded exactly as the fine-tuning candidates encode them
(strategies.training.encode_rows, max_length 256), so the length distribution is the real one.
Two batchings of the same rows at batch 8:
- fixed: every row padded to max_length (256), rows in random order;
- dynamic: transformers' group_by_length order (mega-batches sorted by length), each batch
  padded only to its own longest row (what the harness does: SFTTrainer with
  train_sampling_strategy="group_by_length" and its padding-free-of-max collator).
Each side runs forward + backward + AdamW step of a LoRA model on the same number of batches
(the first N of its order; a full epoch would be too slow on these CPUs). Throughput is real
(non-padding) tokens per second; the ratio dynamic / fixed is the speed-up at equal useful work.
The estimated full-epoch ratio (from the padded-token totals of every batch) is printed too.
Target >= 1.5x.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SAMPLES = Path(__file__).resolve().parent.parent / "bench" / "samples"
NAMES = ("banking_support", "squad_mini", "self_instruct_mini", "hh_helpful_mini")
MAX_LENGTH, BATCH, TARGET = 256, 8, 1.5


def load_split(name: str):
    from bench.data import load_task_data

    return load_task_data(str(SAMPLES / name)).split


def encoded_rows(tokenizer, split):
    """The fine-tuning encoding; preference rows (prompt, chosen, rejected) are encoded as the
    sft-chosen candidate trains on them: prompt -> chosen."""
    from strategies.base import TaskSplit
    from strategies.training import encode_rows

    if split.task == "preference":
        rows = [{"instruction": r["prompt"], "input": "", "output": r["chosen"]} for r in split.train]
        split = TaskSplit("generation", train=rows, validation=[], test=[])
    return encode_rows(tokenizer, split, split.train, MAX_LENGTH)


def grouped_batches(lengths, seed=0):
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    batches = []
    for start in range(0, len(order), 50 * BATCH):
        chunk = sorted(order[start:start + 50 * BATCH], key=lambda i: -lengths[i])
        batches += [chunk[i:i + BATCH] for i in range(0, len(chunk), BATCH)]
    # The Trainer puts the longest batch first (memory errors early); then a random order.
    rest = batches[1:]
    random.Random(seed).shuffle(rest)
    return batches[:1] + rest


def random_batches(n, seed=0):
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i:i + BATCH] for i in range(0, n, BATCH)]


def tensors(batch, pad_id, width):
    import torch

    ids = torch.tensor([e["input_ids"] + [pad_id] * (width - len(e["input_ids"])) for e in batch])
    labels = torch.tensor([e["labels"] + [-100] * (width - len(e["labels"])) for e in batch])
    mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"]))
                         for e in batch])
    return ids, mask, labels


def train_tokens_per_s(model, optimizer, encoded, batches, pad_id, fixed: bool) -> float:
    real, start = 0, time.perf_counter()
    for indices in batches:
        batch = [encoded[i] for i in indices]
        width = MAX_LENGTH if fixed else max(len(e["input_ids"]) for e in batch)
        ids, mask, labels = tensors(batch, pad_id, width)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        real += int(mask.sum())
    return real / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batches", type=int, default=None)
    args = parser.parse_args()
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    from bench.models import load_model
    model_name = "tiny-llama" if args.quick else "smollm2-135m"
    n_batches = args.batches or (2 if args.quick else 4)
    model, tokenizer = load_model(model_name, "causal-lm")
    model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16,
                                             target_modules="all-linear"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    pad_id = tokenizer.pad_token_id or 0
    print(f"load average {os.getloadavg()[0]:.1f}; {model_name} + LoRA, batch {BATCH}, "
          f"max_length {MAX_LENGTH}, {n_batches} batches per side, torch threads "
          f"{torch.get_num_threads()}")
    for name in NAMES:
        split = load_split(name)
        encoded = encoded_rows(tokenizer, split)
        lengths = [len(e["input_ids"]) for e in encoded]
        grouped, fixed = grouped_batches(lengths), random_batches(len(encoded))
        # Full-epoch padded tokens: what each batching computes over (attention aside).
        padded_dynamic = sum(len(b) * max(lengths[i] for i in b) for b in grouped)
        padded_fixed = len(encoded) * MAX_LENGTH
        # Time batches drawn from the middle of the grouped order (not only the longest).
        picks = grouped[1:1 + n_batches]
        fixed_s = train_tokens_per_s(model, optimizer, encoded, fixed[:n_batches], pad_id, True)
        dynamic_s = train_tokens_per_s(model, optimizer, encoded, picks, pad_id, False)
        ratio = dynamic_s / fixed_s
        lengths.sort()
        print(f"{name:<19} rows {len(encoded):>3}, tokens/row median {lengths[len(lengths) // 2]}"
              f" max {lengths[-1]}: fixed {fixed_s:7.1f} tok/s, dynamic {dynamic_s:7.1f} tok/s, "
              f"ratio {ratio:5.2f}x (epoch padded-token ratio {padded_fixed / padded_dynamic:.2f}x)"
              f"  target >= {TARGET}: {'MET' if ratio >= TARGET else 'NOT MET'}")


if __name__ == "__main__":
    main()
