"""`tunewise estimate`: peak memory, time and cost of a candidate before running it.

    tunewise estimate --model smollm2-135m --strategy lora
    tunewise estimate --model mistral-7b --strategy qlora --gpu-memory-gb 24 --seq-len 512
    tunewise estimate --model my-model --config path/to/config.json --strategy full --json

The model's shape comes from --config, a built-in shape (smollm2-135m/360m/1.7b, llama-2-7b/13b,
llama-3-8b, mistral-7b, minilm-l6, tiny-llama, tiny-bert), a local folder's config.json, or the
bundled model's config. The formulas are in advisor/estimate.py's docstring.
"""

from __future__ import annotations

import argparse
import json

from bench.errors import TunewiseError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m", help="model name, hub id or folder")
    parser.add_argument("--strategy", default="lora", help="candidate name (lora, qlora, full, ...)")
    parser.add_argument("--config", metavar="CONFIG_JSON", help="a config.json for the model shape")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per example")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1000, help="training rows")
    parser.add_argument("--test-rows", type=int, default=200, help="rows to predict")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--labels", type=int, default=0, help="classification: number of labels")
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--gpu-memory-gb", type=float, help="estimate for a GPU with this memory")
    parser.add_argument("--gpu", help="GPU name for throughput and price (e.g. A100, H100, T4)")
    parser.add_argument("--json", action="store_true", help="print JSON with the breakdown")


def run(args: argparse.Namespace) -> int:
    from advisor.estimate import (Workload, estimate, fmt_bytes_gb, fmt_seconds, gpu_machine,
                                  shape_for, this_machine)
    from bench.hardware import probe

    for name in ("seq_len", "batch_size", "rows", "lora_r"):
        if getattr(args, name) <= 0:
            raise TunewiseError(f"--{name.replace('_', '-')} must be positive")
    if args.epochs <= 0 or args.test_rows < 0 or args.labels < 0:
        raise TunewiseError("--epochs must be positive; --test-rows and --labels not negative")
    shape = shape_for(args.model, args.config)
    if args.gpu or args.gpu_memory_gb:
        machine = gpu_machine(args.gpu, args.gpu_memory_gb)
    else:
        machine = this_machine(probe())
    work = Workload(train_rows=args.rows, test_rows=args.test_rows, seq_len=args.seq_len,
                    batch_size=args.batch_size, epochs=args.epochs, n_labels=args.labels,
                    lora_r=args.lora_r)
    est = estimate(args.strategy, shape, work, machine)
    fits = machine.memory_gb is None or est.peak_memory_gb <= machine.memory_gb
    if args.json:
        print(json.dumps({"strategy": args.strategy, "model": shape.name, "params": shape.params,
                          **est.as_dict(), "fits": fits, "breakdown": est.breakdown}, indent=1))
        return 0
    b = est.breakdown
    print(f"{args.strategy} on {shape.name} ({shape.params / 1e6:,.1f}M params), "
          f"{machine.kind} at {machine.flops / 1e12:.2f} TFLOP/s effective ({machine.source})")
    print(f"  peak memory  {fmt_bytes_gb(est.peak_memory_gb)}  = weights {b['weights_gb']} GB"
          f" + gradients {b['gradients_gb']} + optimizer {b['optimizer_gb']}"
          f" + activations {b['activations_gb']} + runtime {b['runtime_gb']}"
          f"  (trained params {b['trained_params']:,})")
    print(f"  time         {fmt_seconds(est.time_s)}  = adapt {b['adapt_s']} s + predict "
          f"{b['predict_s']} s + setup {b['setup_s']} s")
    print(f"  cost         ${est.cost_usd:.4f} at ${machine.price_per_hour}/h")
    if machine.memory_gb is not None:
        print(f"  fits         {'yes' if fits else 'no'} ({machine.memory_gb:g} GB available)")
    return 0
