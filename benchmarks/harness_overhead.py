"""Harness overhead: LoRA through the tunewise harness vs the plain script a user would write.

    python benchmarks/harness_overhead.py            # smollm2-135m, 8 steps, 48 test rows
    python benchmarks/harness_overhead.py --quick    # tiny-llama, 3 steps, 16 test rows
    python benchmarks/harness_overhead.py --steps 20 --test-rows 120 --repeats 2

Both sides do the same work on the same rows of the bundled classification sample
(banking_support): load the model, wrap it in LoRA (r=8, alpha=16, all linear layers), train a
fixed number of optimizer steps at batch 8 on the same length-grouped, dynamically padded
batches (the plain side draws the Trainer's own group_by_length order: length_grouped_batches;
both print the trained-token count) and the same prompt -> label encoding (strategies.training.encode_rows, strategies.prompts), then
predict the test rows by label log-likelihood (strategies.scoring.label_logprobs) and save the
adapter. What the lora *method* does besides its steps is done on both sides too, so the ratio
measures the harness and not the method: gradients clipped at norm 1 (the Trainer's default),
the validation loss evaluated every 10 steps and after the last one, the best weights kept.
Both processes run under the OpenMP wait policy the harness's child would choose now
(bench.child.choose_omp_wait_policy: PASSIVE on a busy machine, ACTIVE on an idle one).

- harness: bench.runner.prepare_run + run_candidate, i.e. what `tunewise bench --strategies lora`
  runs (a spawned child, TRL's SFTTrainer, phase timing, RSS sampling, scoring, the record).
  Early stopping is off (patience 0) so both sides run exactly `--steps` steps.
- plain: a separate `python` process running a hand-written transformers + peft loop
  (AdamW, linear warmup/decay), as a user would without tunewise.

Excluded from the harness side, and only this: the deployment-latency measurement the child
makes after the candidate's work (bench.deploy: up to ~4 s of batch-1 requests; the plain script
measures no latency). Its seconds are the record's deploy.measure_s, outside the candidate's
time_s.total, and are subtracted from the harness's wall and printed beside it. The forgetting
probe, the other measurement after a candidate's work, is off (it is off by --no-forgetting).

Before the timed runs, one untimed process imports the libraries and loads the model, so neither
side pays a cold file cache for the other (warm_file_cache).

Prints each side's wall time (process start to finish, measured by this parent) and peak RSS,
the ratios harness / plain, and whether the target (<= 1.05 each) is met. Repeats alternate which
side goes first; medians are compared. On a shared machine the ratio moves with the other
processes' load (printed): compare runs made on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "bench" / "samples" / "banking_support"
TARGET = 1.05
LORA = dict(r=8, alpha=16, dropout=0.05)
BATCH, LEARNING_RATE, WARMUP = 8, 5e-4, 0.1
# What the lora method does besides its steps, done on both sides: it evaluates the validation
# loss every EVAL_EVERY steps and after the last (batches of EVAL_BATCH), keeps the best
# weights, and clips gradients at the Trainer's default norm.
EVAL_EVERY, EVAL_BATCH, MAX_GRAD_NORM = 10, 16, 1.0


def write_slice(folder: Path, train_rows: int, test_rows: int) -> Path:
    """A copy of the sample with every k-th row (the files are grouped by label)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.jsonl", train_rows), ("test.jsonl", test_rows)):
        lines = [line for line in (SAMPLE / name).read_text().splitlines() if line.strip()]
        step = max(1, len(lines) // rows)
        (folder / name).write_text("\n".join(lines[::step][:rows]) + "\n")
    return folder


# ------------------------------------------------------------------------------ plain side


def length_grouped_batches(lengths: list[int], batch: int, seed: int) -> list[list[int]]:
    """The Trainer's group_by_length order (transformers' own get_length_grouped_indices:
    mega-batches of ~a quarter of the rows, each sorted by length, the longest row first), drawn
    as the Trainer draws its first epoch: from torch's generator seeded with `seed` (the
    Trainer's set_seed), after the one number torch's DataLoader takes for its base seed. So both
    sides train on the same batches; the printed trained-token counts show that they did. One
    epoch's order: steps past it reuse it (the Trainer draws again after dropout has used the
    generator, which no seed reproduces)."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=generator)  # the DataLoader's base seed
    order = get_length_grouped_indices(lengths, batch, generator=generator)
    return [order[i:i + batch] for i in range(0, len(order), batch)]


def padded(encoded: list[dict], pad: int):
    """input ids, labels and attention mask of a batch, right-padded to its longest row."""
    import torch

    width = max(len(e["input_ids"]) for e in encoded)
    ids = torch.tensor([e["input_ids"] + [pad] * (width - len(e["input_ids"])) for e in encoded])
    labels = torch.tensor([e["labels"] + [-100] * (width - len(e["labels"])) for e in encoded])
    mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"]))
                         for e in encoded])
    return ids, labels, mask


def validation_loss(model, encoded: list[dict], pad: int) -> float:
    """Mean validation loss in batches of EVAL_BATCH, as the Trainer's evaluation computes it."""
    import torch

    model.eval()
    losses = []
    with torch.inference_mode():
        for start in range(0, len(encoded), EVAL_BATCH):
            ids, labels, mask = padded(encoded[start:start + EVAL_BATCH], pad)
            losses.append(float(model(input_ids=ids, attention_mask=mask, labels=labels).loss))
    model.train()
    return sum(losses) / max(1, len(losses))


def evaluates_at(step: int, steps: int) -> bool:
    """The lora method's evaluation schedule (the Trainer's): every EVAL_EVERY optimizer steps
    and once more after the last one."""
    return step % EVAL_EVERY == 0 or step == steps


def plain_main(run_dir: Path, model_name: str, steps: int, out: Path) -> None:
    """The hand-written script (runs in its own process)."""
    started = time.perf_counter()
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    from bench.models import load_model
    from strategies.base import TaskSplit
    from strategies.prompts import label_texts, prompt_for
    from strategies.scoring import label_logprobs
    from strategies.training import encode_rows

    torch.manual_seed(0)
    split = TaskSplit(**json.loads((run_dir / "split.json").read_text()))
    model, tokenizer = load_model(model_name, "causal-lm")
    model = get_peft_model(model, LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=LORA["r"], lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"], target_modules="all-linear"))
    loaded = time.perf_counter()
    encoded = encode_rows(tokenizer, split, split.train, 256)
    batches = length_grouped_batches([len(e["input_ids"]) for e in encoded], BATCH, 0)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=LEARNING_RATE, weight_decay=0.0)
    warmup = max(1, int(WARMUP * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / warmup if s < warmup else max(0.0, (steps - s) / (steps - warmup)))
    validation = encode_rows(tokenizer, split, split.validation, 256)
    pad = tokenizer.pad_token_id or 0
    trainable = [p for p in model.parameters() if p.requires_grad]
    best_loss, best_state = float("inf"), None
    model.train()
    train_tokens = 0
    for step in range(1, steps + 1):
        ids, labels, mask = padded([encoded[i] for i in batches[(step - 1) % len(batches)]], pad)
        train_tokens += int(mask.sum())  # as the harness counts them: the batch's real tokens
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if validation and evaluates_at(step, steps):  # the method keeps its best weights
            val_loss = validation_loss(model, validation, pad)
            if val_loss < best_loss:
                best_loss = val_loss
                best_state = {n: p.detach().clone() for n, p in model.named_parameters()
                              if p.requires_grad}
    if best_state is not None:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in best_state:
                    parameter.copy_(best_state[name])
    trained = time.perf_counter()
    model.eval()
    prompts = [prompt_for(tokenizer, split, row) for row in split.test]
    scores = label_logprobs(model, tokenizer, prompts, label_texts(split), batch_size=16,
                            max_prompt_tokens=256)
    predictions = [split.labels[j] for j in scores.mean_logp().argmax(axis=1)]
    model.save_pretrained(str(out.parent / "plain_adapter"))
    accuracy = sum(p == r["label"] for p, r in zip(predictions, split.test)) / len(split.test)
    done = time.perf_counter()
    # the same phase cuts as the harness's record: load (imports + model + adapter), adapt
    # (encoding + training), predict (scoring + saving)
    out.write_text(json.dumps({"inside_s": done - started, "peak_rss_mb": peak_rss_mb(),
                               "accuracy": accuracy, "train_tokens": train_tokens,
                               "phases": {"load": round(loaded - started, 3),
                                          "adapt": round(trained - loaded, 3),
                                          "predict": round(done - trained, 3)}}))


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_plain(run_dir: Path, model_name: str, steps: int) -> dict:
    from bench.child import omp_wait_policy_now

    out = run_dir / "plain.json"
    env = {**os.environ, "OMP_WAIT_POLICY": omp_wait_policy_now()}  # the harness child's rule
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--plain-child", str(run_dir), "--model",
                    model_name, "--steps", str(steps)], check=True, cwd=ROOT, env=env)
    result = json.loads(out.read_text())
    result["wall_s"] = time.perf_counter() - started
    result["omp_wait_policy"] = env["OMP_WAIT_POLICY"]
    return result


def warm_file_cache(model_name: str) -> None:
    """Read what either side reads from disk once, untimed, in a throwaway process: the libraries
    both import (TRL and `datasets` too) and the model's weights. Otherwise whichever side goes
    first pays the cold page cache (seconds of its load phase) and the other does not."""
    subprocess.run([sys.executable, "-c",
                    "import torch, transformers, peft, trl, datasets\n"
                    "from bench.models import load_model\n"
                    f"load_model({model_name!r}, 'causal-lm')"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------------------------ harness side


def run_harness(data: Path, out: Path, model_name: str, steps: int) -> tuple[dict, Path]:
    from bench.runner import BenchPlan, prepare_run, run_candidate

    # exactly `steps` steps, validated by loss as the plain loop does: no time bound (it would
    # time a step first), no step floor, no label-accuracy validation
    overrides = {"lora": {"max_steps": steps, "min_steps": 0, "time_budget_s": 0,
                          "select_by": "loss", "patience": 0, "batch_size": BATCH,
                          "learning_rate": LEARNING_RATE, "max_length": 256,
                          "predict_batch_size": EVAL_BATCH, "eval_every": EVAL_EVERY,
                          "r": LORA["r"], "alpha": LORA["alpha"]}}
    started = time.perf_counter()
    run_dir, jobs = prepare_run(BenchPlan(data=str(data), strategies=["lora"], out=str(out),
                                          model=model_name, overrides=overrides,
                                          # the general-text probe is a measurement of its own,
                                          # outside the candidate's timed phases
                                          options={"forgetting": False}))
    record = run_candidate(jobs[0])
    wall = time.perf_counter() - started
    if record["status"] != "ok":
        raise SystemExit(f"harness lora did not finish: {record.get('error')}")
    # The deployment-latency measurement (bench.deploy) runs in the child after the candidate's
    # work, and its seconds are its own (deploy.measure_s), outside time_s.total: the plain
    # script measures no latency, so they are taken out of the compared wall and printed.
    deploy_s = float((record.get("deploy") or {}).get("measure_s", 0.0))
    return {"wall_s": wall - deploy_s, "wall_with_deploy_s": wall, "deploy_measure_s": deploy_s,
            "peak_rss_mb": record["peak_memory_mb"]["cpu_rss"],
            "phases": record["time_s"], "accuracy": record["metrics"].get("accuracy"),
            "train_tokens": record["info"].get("train_tokens"),
            "steps": record["info"].get("steps"),
            "omp_wait_policy": record["info"].get("omp_wait_policy")}, run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny-llama, 3 steps, 16 test rows")
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--train-rows", type=int, default=96)
    parser.add_argument("--test-rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--plain-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = args.model or ("tiny-llama" if args.quick else "smollm2-135m")
    steps = args.steps or (3 if args.quick else 8)
    if args.plain_child:
        plain_main(args.plain_child, model, steps, args.plain_child / "plain.json")
        return
    test_rows = args.test_rows or (16 if args.quick else 48)

    print(f"load average {os.getloadavg()[0]:.1f}; model {model}; {steps} LoRA steps at batch "
          f"{BATCH}; {args.train_rows} train / {test_rows} test rows of banking_support")
    harness_runs, plain_runs = [], []
    warm_file_cache(model)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_slice(Path(tmp) / "data", args.train_rows, test_rows)
        for repeat in range(args.repeats):
            order = ("harness", "plain") if repeat % 2 == 0 else ("plain", "harness")
            for side in order:
                if side == "harness":
                    result, run_dir = run_harness(data, Path(tmp) / "runs", model, steps)
                    harness_runs.append(result)
                    # The plain side reads the harness's split: the very same rows.
                    split_dir = run_dir
                else:
                    if not harness_runs:  # plain first: prepare a split without training
                        from bench.runner import BenchPlan, prepare_run
                        split_dir, _ = prepare_run(BenchPlan(
                            data=str(data), strategies=["lora"], out=str(Path(tmp) / "split"),
                            model=model))
                    plain_runs.append(run_plain(split_dir, model, steps))
                print(f"  repeat {repeat} {side:<7}: "
                      + json.dumps((harness_runs if side == "harness" else plain_runs)[-1]))
    wall_h = statistics.median(r["wall_s"] for r in harness_runs)
    wall_p = statistics.median(r["wall_s"] for r in plain_runs)
    rss_h = statistics.median(r["peak_rss_mb"] for r in harness_runs)
    rss_p = statistics.median(r["peak_rss_mb"] for r in plain_runs)
    deploy_s = statistics.median(r["deploy_measure_s"] for r in harness_runs)
    print(f"\nharness: wall {wall_h:.1f} s, peak RSS {rss_h:.0f} MB "
          f"(phases {harness_runs[-1]['phases']}; the deployment-latency measurement's "
          f"{deploy_s:.1f} s after them not included)")
    print(f"plain  : wall {wall_p:.1f} s, peak RSS {rss_p:.0f} MB (phases {plain_runs[-1].get('phases')})")
    tokens = {(r["train_tokens"], p["train_tokens"]) for r, p in zip(harness_runs, plain_runs)}
    print("trained tokens harness / plain: " + ", ".join(f"{h} / {p}" for h, p in sorted(tokens))
          + ("  (the same batches)" if all(h == p for h, p in tokens) else
             "  (DIFFERENT batches: the sides did not do the same work)"))
    for name, ratio in (("wall-time", wall_h / wall_p), ("peak-memory", rss_h / rss_p)):
        print(f"{name} ratio harness / plain = {ratio:.3f}  target <= {TARGET}: "
              f"{'MET' if ratio <= TARGET else 'NOT MET'}")


if __name__ == "__main__":
    main()
