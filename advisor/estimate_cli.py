"""`tunewise estimate`: peak memory, time and cost of a candidate before running it.

    tunewise estimate --model smollm2-135m --strategies lora
    tunewise estimate --model mistral-7b --strategies lora,qlora --gpu-memory-gb 24 --seq-len 512
    tunewise estimate --model my-model --model-config path/to/config.json --strategies full --json
    tunewise estimate --strategies lora --set lora.r=32 --preset full --prices my_prices.toml

`--json` prints one object for one strategy and a list of them for several. The older spellings
--strategy and --config (for --model-config) still work, with a warning.

The model's shape comes from --model-config, a built-in shape (smollm2-135m/360m/1.7b, llama-2-7b/13b,
llama-3-8b, mistral-7b, minilm-l6, tiny-llama, tiny-bert), a local folder's config.json, or the
bundled model's config. The candidate's own settings (demonstrations, passages, adapter rank,
batch, epochs, step cap) come from its config under --preset, then --set, as `bench` would run
it. The formulas are in advisor/estimate.py's docstring.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from bench.cli_options import add_deprecated_alias
from bench.errors import TunewiseError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m", help="model name, hub id or folder")
    parser.add_argument("--strategies", default="lora", metavar="A,B",
                        help="comma-separated candidate names (lora, qlora, full, ...; "
                        "default lora)")
    parser.add_argument("--model-config", metavar="CONFIG_JSON",
                        help="a config.json for the model shape")
    parser.add_argument("--seq-len", type=int, default=128,
                        help="tokens per example (the candidate's truncation, max_length or "
                        "max_prompt_tokens, rises to it where lower)")
    parser.add_argument("--batch-size", type=int, help="default: the candidate's config")
    parser.add_argument("--rows", type=int, default=1000, help="training rows")
    parser.add_argument("--test-rows", type=int, default=200, help="rows to predict")
    parser.add_argument("--epochs", type=float, help="default: the candidate's config")
    parser.add_argument("--labels", type=int, default=0, help="classification: number of labels")
    parser.add_argument("--lora-r", type=int, help="adapter rank (default: the candidate's config)")
    parser.add_argument("--preset", choices=("quick", "full"), default="quick",
                        help="the config preset the candidate would run with")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a config option, as for `bench` (r=16 or lora.r=16); repeatable")
    parser.add_argument("--prices", metavar="TOML", help="your own price table (default: "
                        "$TUNEWISE_PRICES, else bench/prices.toml)")
    parser.add_argument("--gpu-memory-gb", type=float, help="estimate for a GPU with this memory")
    parser.add_argument("--gpu", help="GPU name for throughput and price (e.g. A100, H100, T4)")
    parser.add_argument("--json", action="store_true", help="print JSON with the breakdown")
    add_deprecated_alias(parser, "--strategy", "--strategies")
    add_deprecated_alias(parser, "--config", "--model-config")


def run(args: argparse.Namespace) -> int:
    from advisor.bench_cli import parse_sets
    from bench.plan import check_override_targets
    from advisor.estimate import gpu_machine, shape_for, this_machine
    from bench.hardware import probe

    for name in ("seq_len", "batch_size", "rows", "lora_r", "epochs"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise TunewiseError(f"--{name.replace('_', '-')} must be positive")
    if args.test_rows < 0 or args.labels < 0:
        raise TunewiseError("--test-rows and --labels must not be negative")
    shape = shape_for(args.model, args.model_config)
    if args.gpu or args.gpu_memory_gb:
        machine = gpu_machine(args.gpu, args.gpu_memory_gb, args.prices)
    else:
        machine = this_machine(probe(), prices_path=args.prices)
    names = [name.strip() for name in args.strategies.split(",") if name.strip()]
    if not names:
        raise TunewiseError("--strategies is empty")
    overrides = parse_sets(args.sets)
    check_override_targets(overrides, names)
    results = [_estimate_one(name, shape, machine, overrides, args) for name in names]
    if args.json:
        shown = [_as_json(name, shape, est, fits) for name, est, fits in results]
        print(json.dumps(shown[0] if len(shown) == 1 else shown, indent=1))
        return 0
    for name, est, fits in results:
        _print_estimate(name, shape, machine, est, fits)
    return 0


def _estimate_one(name: str, shape, machine, overrides, args: argparse.Namespace):
    """(name, the estimate, whether it fits) for one candidate under the flags."""
    from advisor.estimate import Workload, configured_workload, estimate

    work = Workload(train_rows=args.rows, test_rows=args.test_rows, seq_len=args.seq_len,
                    n_labels=args.labels)
    work = configured_workload(name, work, args.preset, overrides)
    flags = {"batch_size": args.batch_size, "epochs": args.epochs, "lora_r": args.lora_r}
    work = replace(work, **{k: v for k, v in flags.items() if v is not None})
    # the examples are as long as the user says: a config's shorter cut would hide them
    work = replace(work, **{cut: args.seq_len for cut in ("max_length", "max_prompt_tokens")
                            if 0 < getattr(work, cut) < args.seq_len})
    est = estimate(name, shape, work, machine)
    return name, est, machine.memory_gb is None or est.peak_memory_gb <= machine.memory_gb


def _as_json(name: str, shape, est, fits: bool) -> dict:
    return {"strategy": name, "model": shape.name, "params": shape.params, **est.as_dict(),
            "fits": fits, "breakdown": est.breakdown}


def _print_estimate(name: str, shape, machine, est, fits: bool) -> None:
    from advisor.estimate import fmt_bytes_gb, fmt_seconds

    b = est.breakdown
    print(f"{name} on {shape.name} ({shape.params / 1e6:,.1f}M params), "
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
