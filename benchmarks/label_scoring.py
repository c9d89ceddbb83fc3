"""Batched label scoring vs per-example generation of the label, on the same examples.

    python benchmarks/label_scoring.py                  # 60 test rows of banking_support, smollm2-135m
    python benchmarks/label_scoring.py --quick          # 16 rows, tiny-llama (a smoke run)
    python benchmarks/label_scoring.py --rows 30 --model tiny-llama

Builds the zero-shot classification prompt (strategies.prompts) for each row and predicts its
label three ways, side by side in one process:
1. label scoring, batched, each prompt run once with its KV cache shared by the labels (what
   every LM candidate uses: strategies.scoring.label_logprobs);
2. label scoring, batched, every (prompt, label) pair run in full (the previous way);
3. greedy generation, one example at a time, of up to (longest label + 2) tokens, parsed back
   to a label (exact text, then containment; else "unparsed").
It prints each one's throughput (examples/s), the speed ratios, the agreement of the predicted
labels (uncalibrated summed scores: the likelihood greedy decoding approximates), and accuracy.
Target: scoring (shared) >= 5x the examples/s of generation, with accuracy no worse.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SAMPLE = Path(__file__).resolve().parent.parent / "bench" / "samples" / "banking_support"


def read_split(rows: int):
    from strategies.base import TaskSplit

    read = lambda name: [json.loads(line) for line in (SAMPLE / name).read_text().splitlines()  # noqa: E731
                         if line.strip()]
    train, test = read("train.jsonl"), read("test.jsonl")
    labels = sorted({r["label"] for r in train})
    # Every k-th row, so the slice covers all labels (the file is grouped by label).
    step = max(1, len(test) // rows)
    return TaskSplit("classification", train=train, validation=[], test=test[::step][:rows],
                     labels=labels)


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split("\n")[0].strip()


def parse_label(generated: str, label_texts: list[str], labels: list[str]) -> str | None:
    said = " ".join(normalise(generated).split())
    for text, label in zip(label_texts, labels):
        if said == normalise(text):
            return label
    contained = [label for text, label in zip(label_texts, labels)
                 if normalise(text) in said or (said and normalise(text).startswith(said))]
    return contained[0] if len(contained) == 1 else None


def time_scoring(model, tokenizer, prompts, texts, *, shared: bool, batch_size: int):
    from strategies import scoring

    original = scoring._can_share_cache
    if not shared:
        scoring._can_share_cache = lambda model: False
    try:
        start = time.perf_counter()
        scores = scoring.label_logprobs(model, tokenizer, prompts, texts, batch_size=batch_size)
        return time.perf_counter() - start, scores
    finally:
        scoring._can_share_cache = original


def time_generation(model, tokenizer, prompts, max_new_tokens: int):
    import torch

    outputs = []
    start = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            outputs.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:],
                                            skip_special_tokens=True))
    return time.perf_counter() - start, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 rows, tiny-llama")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    args.rows = args.rows or (16 if args.quick else 60)
    args.model = args.model or ("tiny-llama" if args.quick else "smollm2-135m")

    import torch

    from bench.models import load_model
    from strategies.prompts import CONTENT_FREE_TEXT, classification_prompt, label_texts
    from strategies.scoring import calibrated_predictions, label_logprobs

    torch.manual_seed(0)
    split = read_split(args.rows)
    model, tokenizer = load_model(args.model)
    model.eval()
    texts = label_texts(split)
    prompts = [classification_prompt(tokenizer, split, row["text"]) for row in split.test]
    gold = [row["label"] for row in split.test]
    max_label_tokens = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    print(f"load average {os.getloadavg()[0]:.1f}; model {args.model}, {len(prompts)} rows of banking_support, {len(texts)} labels, "
          f"mean prompt {sum(len(tokenizer(p)['input_ids']) for p in prompts) / len(prompts):.0f} "
          f"tokens, torch threads {torch.get_num_threads()}")

    # Warm up once so the first timed path does not pay one-off costs.
    label_logprobs(model, tokenizer, prompts[:2], texts, batch_size=2)

    shared_s, scores = time_scoring(model, tokenizer, prompts, texts, shared=True,
                                    batch_size=args.batch_size)
    full_s, full_scores = time_scoring(model, tokenizer, prompts, texts, shared=False,
                                       batch_size=args.batch_size)
    gen_s, generated = time_generation(model, tokenizer, prompts, max_label_tokens + 2)

    scored = [split.labels[i] for i in scores.sum_logp.argmax(1)]
    content_free = label_logprobs(model, tokenizer,
                                  [classification_prompt(tokenizer, split, CONTENT_FREE_TEXT)],
                                  texts)
    calibrated = [split.labels[i] for i in
                  calibrated_predictions(scores.mean_logp(), content_free.mean_logp()[0])]
    parsed = [parse_label(g, texts, split.labels) for g in generated]
    n = len(prompts)
    accuracy = lambda predicted: sum(p == g for p, g in zip(predicted, gold)) / n  # noqa: E731

    print(f"label scoring, shared prompt cache : {n / shared_s:6.2f} examples/s ({shared_s:.1f} s)")
    print(f"label scoring, every pair in full  : {n / full_s:6.2f} examples/s ({full_s:.1f} s)")
    print(f"greedy generation, one at a time   : {n / gen_s:6.2f} examples/s ({gen_s:.1f} s, "
          f"{max_label_tokens + 2} new tokens max)")
    print(f"speed ratio scoring(shared) / generation : {gen_s / shared_s:.2f}x")
    print(f"speed ratio scoring(shared) / scoring(full pairs) : {full_s / shared_s:.2f}x")
    print(f"max |shared - full| summed log-prob: "
          f"{abs(scores.sum_logp - full_scores.sum_logp).max():.2e}")
    print(f"agreement scored(sum, uncalibrated) vs generated: "
          f"{sum(s == p for s, p in zip(scored, parsed)) / n:.2%}; "
          f"generations not parseable to a label: {parsed.count(None)}/{n}")
    print(f"accuracy: scored {accuracy(scored):.2%}, scored+calibrated {accuracy(calibrated):.2%}, "
          f"generated {accuracy(parsed):.2%} (chance {1 / len(texts):.2%})")
    print("first generations:", [g.strip()[:40] for g in generated[:5]])
    speed = gen_s / shared_s
    best_scored = max(accuracy(scored), accuracy(calibrated))
    met = speed >= 5 and best_scored >= accuracy(parsed)
    print(f"target >= 5x with accuracy no worse: {'MET' if met else 'NOT MET'} ({speed:.1f}x, "
          f"scored {best_scored:.2%} vs generated {accuracy(parsed):.2%})")


if __name__ == "__main__":
    main()
