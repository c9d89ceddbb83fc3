"""Pre-run estimates of peak memory, time and cost for a candidate, from the model's shape alone.

    from advisor.estimate import configured_workload, estimate, shape_for, this_machine
    shape = shape_for("mistral-7b")                      # built in: no download, no torch
    work = configured_workload("qlora", Workload(train_rows=1000, seq_len=512),
                               preset="quick", overrides={"qlora": {"r": "16"}})
    est = estimate("qlora", shape, work, machine=gpu_machine(gpu_memory_gb=24))
    est.peak_memory_gb, est.time_s, est.cost_usd, est.breakdown

How a candidate uses its models (its `Profile`) comes from the strategy catalogue; its own
settings (demonstrations, passages, adapter rank, batch, epochs, step cap) from its config class
under the preset and `--set`, by configured_workload().

Formulas (all stated so that a user can check them; bytes per parameter b_w of the weights):
- weights: params x b_w (fp32 4 on CPU, bf16 2 on GPU); NF4 (QLoRA) stores the linear layers at
  ~0.52 B/param (4 bits + double-quantised constants, Dettmers et al. 2023) and keeps the
  embeddings in the compute dtype. SmolLM2-135M: 55 MB + 113 MB = 168 MB, measured 166 MB.
- gradients: one per trained parameter, in fp32 (4 B) for adapters and on CPU, b_w otherwise.
- optimizer: AdamW keeps two fp32 moments (8 B per trained parameter); mixed-precision full
  fine-tuning on a GPU adds fp32 master weights (4 B) -> the familiar ~16 B/param.
- activations of a training step, per layer: counted from what autograd keeps in a Llama
  block (advisor.estimate_memory.activation_bytes); for encoders seq x batch x hidden x
  (34 + 5 x heads x seq / hidden) bytes in 16-bit (Korthikanti et al. 2022, "Reducing
  Activation Recomputation in Large Transformer Models", eq. 1: the attention scores are kept
  because dropout on them sends PyTorch's attention down its math path), doubled in fp32; plus
  the fp32 logits, their log-softmax and gradients for causal LMs. Frozen-base PEFT keeps the
  same activations because the backward pass still runs through them (Biderman et al. 2024
  measured only ~15-40 % less peak memory for LoRA at equal batch). On a CPU glibc's heap keeps
  freed blocks: x CPU_ALLOCATOR_SLACK.
- activations of a prediction batch: one layer at a time, the KV cache, the last position's
  logits; label scoring repeats the cache once per label of more than one token; generation
  grows it by the answer (advisor.estimate_memory.prediction_bytes), x CPU_INFERENCE_SLACK.
- the peak is the larger of training and prediction, plus the process's runtime by what it
  imports (torch + transformers; sentence-transformers + FAISS; peft + TRL).
- lengths (advisor.estimate_lengths): the longest sequence a phase meets sets its memory (from
  the data's length percentiles and the rows it draws), the mean sets its time; few-shot adds its
  demonstrations, rag and `+rag` their passages (corpus chunks from the documents' words and
  `chunk_words`) or neighbours; prompts are cut at the config's max_prompt_tokens, training
  sequences at max_length.
- time: FLOPs over the machine's effective FLOP/s. Training ~6 x params x tokens (full: forward
  2 + backward 4), ~4 x for a frozen base with adapters (no weight gradients), inference 2 x
  (Kaplan et al. 2020). `params` here are the matmul parameters: embeddings are a lookup, but a
  causal LM's output head is a matmul (tied or not). Retrieval adds the encoder's passes over
  the index's texts (corpus chunks or train rows) and every query (test rows; `+rag` also the
  train and validation rows). A prompt adds its attention square (4 x tokens^2 x hidden per
  layer). Memory traffic over the machine's bandwidth (measured beside the FLOP/s): label
  scoring copies each prompt's KV cache once per label of more than one token
  (LABEL_CACHE_PASSES), and a greedy decoding step reads every weight once and the growing
  cache twice (DECODE_WEIGHT_READS, DECODE_CACHE_PASSES), beside DECODE_ROW_COST prompt tokens'
  FLOPs per row for its small ops. Training adds the time budget's two
  timed passes and every validation (classification: label scoring of the validation rows);
  setup follows what the candidate imports (advisor.estimate_time.setup_seconds); after
  predicting, bench.deploy times a few requests at batch 1 (deploy_seconds): shown in the
  breakdown but, like the record's time_s.total, not in the candidate's time.
- cost: time x price per hour of the hardware, from the harness's price table (--prices,
  $TUNEWISE_PRICES or bench/prices.toml).
Calibrated on this project's 2-core CPU (DESIGN.md): see tests/test_estimate.py; each constant
says where it was measured or fitted (the bundled samples only: `python benchmarks/estimator.py
--fit RUN_DIR...`), and benchmarks/RESULTS.md holds the check on data it was not fitted to.

The parts, one module per theme (all re-exported here): advisor.estimate_shapes (model shapes),
advisor.estimate_machine (FLOP/s and GPU tables), advisor.estimate_workload (rows, lengths and the
candidate's own settings), advisor.estimate_lengths (what a run reads), advisor.estimate_memory
and advisor.estimate_time (the formulas above); this module adds the price table, the machine at
hand and `estimate()`, which sums them.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

# The estimator's parts, by theme; everything is re-exported here, the public import surface.
from advisor.estimate_lengths import (CORPUS_TOKENS_PER_WORD, DEMO_TURN_TOKENS, ENCODE_BATCH,
                                      Lengths, QA_BESIDE_PASSAGES, QA_QUESTION_TOKENS, chunk_count,
                                      corpus_chunks, lengths_for)
from advisor.estimate_machine import (CPU_EFFICIENCY, CPU_FLOP_PER_BYTE, DEFAULT_GPU,
                                      DEFAULT_PRICES, GPU_BANDWIDTH_GBS,
                                      GPU_BANDWIDTH_UTILISATION, GPU_MFU,
                                      GPU_PEAK_TFLOPS, Machine, REFERENCE_CPU_FLOPS,
                                      cpu_bandwidth, cpu_flops, gpu_key,
                                      measure_cpu_copy_bandwidth, measure_cpu_matmul_flops,
                                      throughput_cache)
from advisor.estimate_memory import (CPU_ALLOCATOR_SLACK, CPU_INFERENCE_SLACK, CPU_RUNTIME_GB, GB,
                                     NO_MODEL_RUNTIME_GB, SENTENCE_ENCODER_RUNTIME_GB,
                                     TRAINER_RUNTIME_GB, activation_bytes, adapter_params,
                                     inference_activation_bytes, kv_cache_bytes, lora_params,
                                     prediction_bytes, runtime_bytes, training_memory,
                                     weight_bytes)
from advisor.estimate_shapes import (BUILTIN_SHAPES, ModelShape, REFERENCE_SHAPES,
                                     REFERENCE_TOLERANCE, builtin_shape, reference_shape,
                                     shape_for, shape_from_config)
from advisor.estimate_time import (ADAPTER_PREDICT_COST, BUDGET_TIMED_STEPS,
                                   CPU_ADAPTER_TRAIN_MULT, CPU_TRAINER_SETUP_S, CPU_TRAIN_EFFICIENCY,
                                   DECODE_CACHE_PASSES, DECODE_ROW_COST, DECODE_WEIGHT_READS,
                                   LABEL_CACHE_PASSES,
                                   ENCODER_SETUP_S, NO_MODEL_SETUP_S, QUANTIZED_CPU_SLOWDOWN,
                                   RETRIEVAL_SETUP_S, SETUP_S, TRAINER_IMPORT_S,
                                   decoding_traffic_s, deploy_seconds, gpu_step_floor_s,
                                   inference_tokens,
                                   label_positions, request_seconds,
                                   label_scoring_traffic_s, prediction_s, prompt_attention_flops,
                                   quantized_slowdown,
                                   retrieval_flops, setup_seconds, step_time_s,
                                   train_efficiency, train_multiplier, training_extras_s)
from advisor.estimate_workload import (CONFIG_FIELDS, LABEL_TOKENS, TEMPLATE_TOKENS, Workload,
                                       configured_workload, preset_max_steps, profile_for,
                                       strategy_config, workload_from_profile)
from strategies import catalogue
from strategies.profile import Profile

__all__ = ["ADAPTER_PREDICT_COST", "BUILTIN_SHAPES", "CONFIG_FIELDS", "CORPUS_TOKENS_PER_WORD",
           "CPU_ADAPTER_TRAIN_MULT", "CPU_ALLOCATOR_SLACK", "CPU_EFFICIENCY", "CPU_FLOP_PER_BYTE",
           "CPU_INFERENCE_SLACK", "CPU_RUNTIME_GB", "CPU_TRAINER_SETUP_S", "CPU_TRAIN_EFFICIENCY",
           "DECODE_CACHE_PASSES", "DECODE_ROW_COST", "DECODE_WEIGHT_READS", "DEFAULT_GPU",
           "DEFAULT_PRICES", "DEMO_TURN_TOKENS", "ENCODER_SETUP_S", "ENCODE_BATCH", "Estimate",
           "GB", "GPU_BANDWIDTH_GBS", "GPU_BANDWIDTH_UTILISATION", "GPU_MFU", "GPU_PEAK_TFLOPS",
           "LABEL_CACHE_PASSES", "LABEL_TOKENS", "Lengths", "Machine", "ModelShape",
           "NO_MODEL_RUNTIME_GB", "NO_MODEL_SETUP_S", "QA_BESIDE_PASSAGES", "QA_QUESTION_TOKENS",
           "QUANTIZED_CPU_SLOWDOWN", "REFERENCE_CPU_FLOPS", "REFERENCE_SHAPES",
           "REFERENCE_TOLERANCE", "RETRIEVAL_SETUP_S", "SENTENCE_ENCODER_RUNTIME_GB", "SETUP_S",
           "TEMPLATE_TOKENS", "TRAINER_IMPORT_S", "TRAINER_RUNTIME_GB", "Workload",
           "activation_bytes", "adapter_params", "builtin_shape", "chunk_count",
           "configured_workload", "corpus_chunks", "cpu_bandwidth", "cpu_flops",
           "decoding_traffic_s", "deploy_seconds", "estimate", "fits_machine", "fmt_bytes_gb",
           "fmt_seconds", "gpu_key", "gpu_machine", "inference_activation_bytes",
           "inference_tokens", "kv_cache_bytes", "label_positions", "label_scoring_traffic_s",
           "lengths_for", "lora_params", "measure_cpu_copy_bandwidth", "measure_cpu_matmul_flops",
           "memory_parts", "prediction_bytes", "prediction_s", "preset_max_steps", "prices",
           "profile_for", "prompt_attention_flops", "quantized_slowdown", "reference_shape",
           "request_seconds", "retrieval_flops", "runtime_bytes", "setup_seconds", "shape_for",
           "shape_from_config", "step_time_s", "strategy_config", "this_machine",
           "throughput_cache", "to_json", "train_efficiency", "train_multiplier",
           "training_extras_s", "training_memory", "weight_bytes", "workload_from_profile"]


def prices(path: str | os.PathLike | None = None) -> dict[str, float]:
    """$/hour per hardware key: the harness's price table over the built-in defaults. The
    table is the one `bench` prices runs with: `path` (--prices), else $TUNEWISE_PRICES, else
    bench/prices.toml (bench.cost.load_prices; a missing or broken table is a TunewiseError)."""
    from bench.cost import load_prices

    table = dict(DEFAULT_PRICES)
    data = load_prices(path)
    cpu = data.get("cpu")
    table.update(_flatten_prices(data))
    if isinstance(cpu, dict) and isinstance(cpu.get("usd_per_core_hour"), (int, float)):
        # priced per core, like a cloud vCPU: scale to this machine's cores
        table["cpu"] = float(cpu["usd_per_core_hour"]) * (os.cpu_count() or 1)
    return table


def _flatten_prices(data: dict[str, Any]) -> dict[str, float]:
    """Rows `[name] usd_per_hour = 1.0` (optionally `match = "A100"`) or `name = 1.0`, keyed by
    the GPU they name; rows that name no known hardware (e.g. `laptop`) are left out."""
    found: dict[str, float] = {}
    for key, value in data.items():
        per_hour = value if isinstance(value, (int, float)) else (
            value.get("usd_per_hour") if isinstance(value, dict) else None)
        if not isinstance(per_hour, (int, float)):
            continue
        name = str(value.get("match", key)) if isinstance(value, dict) else key
        known = next((g for g in sorted(GPU_PEAK_TFLOPS, key=len, reverse=True)
                      if g in name.lower()), None)
        if key.lower() == "cpu":
            found["cpu"] = float(per_hour)
        elif known:
            found[known] = float(per_hour)
    return found


def gpu_machine(gpu_name: str | None = None, gpu_memory_gb: float | None = None,
                prices_path: str | os.PathLike | None = None) -> Machine:
    key = gpu_key(gpu_name)
    return Machine(key, GPU_PEAK_TFLOPS[key] * 1e12 * GPU_MFU, gpu_memory_gb,
                   prices(prices_path).get(key, DEFAULT_PRICES[DEFAULT_GPU]),
                   f"{key} peak {GPU_PEAK_TFLOPS[key]:.0f} TFLOP/s x MFU {GPU_MFU}")


def this_machine(hardware: dict[str, Any] | None = None, *, gpu_memory_gb: float | None = None,
                 cpu_only: bool = False, measure: bool = True,
                 prices_path: str | os.PathLike | None = None) -> Machine:
    """The machine described by a bench.hardware.probe() dict and the user's answers.
    `measure=False` uses the reference CPU instead of measuring (pure, for tests and snapshots);
    `prices_path`: the price table (see prices())."""
    hardware = hardware or {}
    memory = gpu_memory_gb if gpu_memory_gb is not None else hardware.get("gpu_memory_gb")
    if not cpu_only and (hardware.get("cuda") or gpu_memory_gb):
        return gpu_machine(hardware.get("gpu"), memory, prices_path)
    flops, source = (cpu_flops() if measure else (REFERENCE_CPU_FLOPS, "reference 2-core CPU"))
    # the bandwidth measured beside the FLOP/s; none set by hand or for the reference CPU: the
    # FLOP/s over CPU_FLOP_PER_BYTE (Machine.bytes_per_s)
    by_hand = source == "$TUNEWISE_CPU_FLOPS" and not os.environ.get("TUNEWISE_CPU_BANDWIDTH")
    bandwidth = cpu_bandwidth()[0] if measure and not by_hand else 0.0
    return Machine("cpu", flops, hardware.get("memory_gb"), prices(prices_path)["cpu"], source,
                   bandwidth)


@dataclass
class Estimate:
    strategy: str
    peak_memory_gb: float
    time_s: float
    cost_usd: float
    breakdown: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """The advise JSON's `estimate` object."""
        return {"peak_memory_gb": round(self.peak_memory_gb, 3), "time_s": round(self.time_s, 1),
                "cost_usd": round(self.cost_usd, 4)}


def continuing_workload(work: Workload, step_s: float) -> Workload:
    """A continuing racer's job (Workload.continues_from) with the rows its steps see, as
    strategies.training_budget.continuing_budget plans them: the schedule is the full run's
    steps (epochs over the full split, min_steps, max_steps) cut to what fits in the full time
    bound at `step_s` a step; the job trains from rung_steps(schedule, continues_from) (0: from
    the start) to rung_steps(schedule, budget_fraction), or to the end for the final. Under a
    binding time bound the schedule is short, and RUNG_MIN_STEPS makes a rung far more than
    its train rows' share of it: on SQuAD contexts (~190 tokens, a LoRA step ~15 s on 2 cores)
    the schedule fits 11 steps and a first rung on 16 of 108 rows trains 8 of them, which the
    share of the time bound (44 s) had put at a fraction of the ~190 s it took (benchmarks/
    advisor_regret.py --datasets squad_mini --candidate-set methods, 2026-12-04). A job that
    resumes times nothing (time_budget_s 0 here: no timed passes)."""
    from strategies.training_budget import STEP_OVERHEAD, continuing_target, rung_steps

    full = replace(work, train_rows=max(work.full_train_rows, work.train_rows),
                   budget_fraction=1.0, continues_from=None, planned_rows=None)
    schedule = max(1, full.trained_steps)
    if work.time_budget_s > 0 and step_s > 0:
        schedule = min(schedule, max(1, math.floor(work.time_budget_s / (step_s * STEP_OVERHEAD))))
    start = work.continues_from or 0.0
    done = rung_steps(schedule, start) if start > 0 else 0
    target = continuing_target(schedule, work.budget_fraction if work.budget_fraction < 1
                               else None, done)
    # the child's time guard: the schedule's share of the time bound, plus the timed passes
    # for the job that plans it (validations are in the bound, as the trainer fits them)
    bound = work.time_budget_s * (target - done) / schedule if work.time_budget_s > 0 else 0.0
    if bound and done == 0:
        bound += BUDGET_TIMED_STEPS * step_s
    return replace(work, planned_rows=float((target - done) * work.batch_size),
                   time_budget_s=work.time_budget_s if done == 0 else 0.0,
                   continuing_bound_s=bound)


def estimate(strategy: str, shape: ModelShape, work: Workload, machine: Machine,
             encoder: ModelShape | None = None) -> Estimate:
    """Peak memory, time and cost of one candidate, with the breakdown behind each."""
    profile = profile_for(strategy)
    if profile.model == "none":
        return Estimate(strategy, NO_MODEL_RUNTIME_GB if not machine.cuda else 0.0,
                        NO_MODEL_SETUP_S, NO_MODEL_SETUP_S / 3600 * machine.price_per_hour,
                        {"note": "counts labels; no model", "setup_s": NO_MODEL_SETUP_S})
    encoder = encoder or BUILTIN_SHAPES["minilm-l6"]
    model = encoder if profile.model == "encoder" else shape
    b_w = 2.0 if machine.cuda else 4.0
    retrieval = profile.inference == "rag" or catalogue.rag_base(strategy) is not None
    lengths = lengths_for(profile, work, retrieval)
    if profile.train in ("full", "adapter") and work.continues_from is not None:
        work = continuing_workload(work, step_time_s(strategy, model, int(
            work.batch_size * lengths.train_mean), machine, profile))

    train_tokens = work.trained_rows * lengths.train_mean if profile.train else 0.0
    if profile.train == "head":
        train_tokens = work.train_rows * lengths.prompt_mean  # one encoding pass over train
    predict_tokens, prompt_len = inference_tokens(profile, work, lengths)
    index_flops = retrieval_flops(encoder, lengths) if retrieval else 0.0
    if profile.model == "encoder" and profile.train is None:  # knn: encode train too
        train_tokens, train_mult = lengths.index_tokens, 2
    else:
        train_mult = train_multiplier(profile, machine)
    if profile.train == "full" and profile.trained_fraction:
        # frozen bottom layers need no backward at all; top layers get the full 6x
        train_mult = 2 + 4 * profile.trained_fraction
    train_slowdown, predict_slowdown = quantized_slowdown(profile, machine)
    train_flops = train_mult * model.matmul_params * train_tokens * profile.time_factor
    predict_flops = 2 * model.matmul_params * predict_tokens + index_flops
    adapt_s = train_flops * train_slowdown / (machine.flops * train_efficiency(profile, machine))
    if profile.train in ("full", "adapter"):  # a GPU step's launch floor (estimate_time)
        adapt_s = math.hypot(adapt_s, work.trained_steps * gpu_step_floor_s(profile, model,
                                                                             machine))
    # the timed passes of the time budget and the validations (label scoring on classification)
    validation_s = training_extras_s(profile, model, work, lengths, machine) * predict_slowdown
    adapt_s += validation_s
    if profile.train in ("full", "adapter") and work.time_bound_s > 0:
        # the trainer cuts its steps to fit the time bound from a measured step
        # (strategies.training_budget; a run still 25% over it is stopped there)
        adapt_s = min(adapt_s, work.time_bound_s)
    if profile.train in ("full", "adapter") and not machine.cuda:
        adapt_s += CPU_TRAINER_SETUP_S
    # the prompt pass and the labels' or generated tokens, label scoring's cache copies or
    # decoding's weight and cache reads, then the retriever's encoding
    predict_s = (prediction_s(profile, model, work, lengths, machine, work.test_rows)
                 * predict_slowdown + index_flops / machine.flops)
    setup_s = setup_seconds(profile, retrieval)
    # bench.deploy then times a few requests at batch 1; the record keeps those seconds apart
    # (deploy.measure_s) and out of time_s.total, so the estimate shows them beside the total
    deploy_s = deploy_seconds(request_seconds(profile, model, work, lengths, machine)
                              * predict_slowdown, work.test_rows)
    total_s = setup_s + adapt_s + predict_s

    parts = memory_parts(profile, model, work, machine, lengths)
    if retrieval:  # the retriever's encoder sits beside the LLM, embedding a batch at a time
        parts["weights"] += weight_bytes(encoder, b_w, False)
        encoding = prediction_bytes(encoder, lengths.index_longest, ENCODE_BATCH, b_w)
        parts["activations"] = max(parts["activations"],
                                   encoding * (1.0 if machine.cuda else CPU_INFERENCE_SLACK))
    runtime = runtime_bytes(profile, retrieval, machine)
    peak = (parts["weights"] + parts["gradients"] + parts["optimizer"] + parts["activations"]
            + runtime) / GB
    cost = total_s / 3600 * machine.price_per_hour
    breakdown = {
        "model": model.name, "machine": machine.kind, "flops_per_s": machine.flops,
        "flops_source": machine.source, "train_flops": train_flops, "predict_flops": predict_flops,
        "index_flops": index_flops,
        "adapt_s": round(adapt_s, 2), "predict_s": round(predict_s, 2), "setup_s": setup_s,
        "validation_s": round(validation_s, 2), "deploy_s": round(deploy_s, 2),
        "bytes_per_s": machine.bytes_per_s,
        "quantized_slowdown": [train_slowdown, predict_slowdown],
        "weights_gb": round(parts["weights"] / GB, 3),
        "gradients_gb": round(parts["gradients"] / GB, 3),
        "optimizer_gb": round(parts["optimizer"] / GB, 3),
        "activations_gb": round(parts["activations"] / GB, 3),
        "runtime_gb": round(runtime / GB, 3), "trained_params": int(parts["trained_params"]),
        "prompt_tokens_per_request": prompt_len,
        "train_tokens_per_sequence": lengths.train_longest,
        "indexed_texts": lengths.index_texts, "price_per_hour": machine.price_per_hour,
    }
    return Estimate(strategy, peak, total_s, cost, breakdown)


def memory_parts(profile: Profile, model: ModelShape, work: Workload, machine: Machine,
                 lengths: Lengths) -> dict[str, float]:
    """Weights, gradients, optimizer states and the activations at the peak: the larger of a
    training step on the longest sequences and a prediction batch of the longest prompts."""
    b_w = 2.0 if machine.cuda else 4.0
    if profile.train in ("full", "adapter", "head"):
        parts = training_memory(model, profile, work, machine, lengths.train_longest or None)
    else:
        parts = {"weights": weight_bytes(model, b_w, False), "gradients": 0.0, "optimizer": 0.0,
                 "activations": 0.0, "trained_params": 0}
    if profile.model == "encoder":  # sentence-transformers / encoder-ft batches of texts
        batch = ENCODE_BATCH if profile.train != "full" else 2 * work.batch_size
        predicting = prediction_bytes(model, lengths.prompt_longest, batch, b_w)
    else:
        predicting = prediction_bytes(model, lengths.prompt_longest,
                                      work.predict_batch_size or work.batch_size, b_w,
                                      work.n_labels, lengths.generated, work.label_tokens)
    if not machine.cuda:
        predicting *= CPU_INFERENCE_SLACK
    parts["activations"] = max(parts["activations"], predicting)
    return parts


def fmt_bytes_gb(value: float) -> str:
    return f"{value * 1024:.0f} MB" if value < 1 else f"{value:.1f} GB"


def fmt_seconds(value: float) -> str:
    if value < 90:
        return f"{value:.0f} s"
    if value < 5400:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def to_json(est: Estimate) -> dict[str, Any]:
    return {**asdict(est), **est.as_dict()}


def fits_machine(est: Estimate, machine: Machine) -> bool:
    return machine.memory_gb is None or est.peak_memory_gb <= machine.memory_gb
