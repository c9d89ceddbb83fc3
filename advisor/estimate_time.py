"""Time of a candidate, for the pre-run estimator (advisor.estimate): FLOPs over the machine's
effective FLOP/s, with the constants measured on this project's CPU.
"""

from __future__ import annotations

import math
from dataclasses import replace

from advisor.estimate_lengths import Lengths, lengths_for
from advisor.estimate_machine import Machine
from advisor.estimate_memory import kv_cache_bytes, weight_bytes
from advisor.estimate_shapes import ModelShape
from advisor.estimate_workload import LABEL_TOKENS, Workload, profile_for
from strategies.profile import Profile

# Fixed costs the FLOP count misses: the child process start, its imports and the model load,
# by what the candidate imports (the memory side's runtime_bytes splits them the same way).
# Measured in fresh processes, CPU time on one thread, the least of two (2026-12-03, Intel Xeon
# 2-vCPU VM at load 5; `python -c "from bench.models import load_model; ..."` under
# getrusage): torch + transformers + loading SmolLM2 3.5 s; sentence-transformers + FAISS +
# loading MiniLM alone 5.4 s, beside SmolLM2 2.1 s more; PEFT + TRL's SFTTrainer 1.3 s more.
# Each is rounded up by ~0.5 s for the child's start, its split and the harness. To be
# re-measured on an idle machine (imports run on one thread, so load slows them as it does the
# rest).
SETUP_S = 4.0  # a causal LM (or encoder-ft's classifier, loaded the same way)
ENCODER_SETUP_S = 6.0  # a sentence encoder alone (knn, transfer)
RETRIEVAL_SETUP_S = 2.0  # the retriever's encoder beside the LM (rag, `+rag`)
TRAINER_IMPORT_S = 1.5  # PEFT and TRL, for the LM trainers
# A candidate without a model (majority) never imports torch: its child's start and record.
# Fitted on the bundled banking_support's idle run (`python benchmarks/estimator_runs.py`,
# 2026-12-03 11:37 UTC, load 2.0): 0.238 s; the held-out runs of that session measured 0.240 s
# twice. (Earlier figures: 0.1-0.2 s in the idle demo runs of 2026-11-27, 0.34-0.57 s at load
# 9-15.)
NO_MODEL_SETUP_S = 0.24
# Training on a CPU, measured with benchmarks/train_memory.py (SmolLM2-135M, batch 8 x 112
# tokens, idle 2-core EPYC, 2026-11-27): full fine-tuning 8.46 s per step, i.e. 0.88 of the
# FLOP/s that cpu_flops() reports; LoRA 8.90 s, no faster than full: the frozen base
# saves the weight gradients' FLOPs, but the adapters' many small matmuls and their dropout cost
# as much again on a CPU, so an adapter step counts 6.3 FLOPs per parameter and token, not 4.
# Checked on this project's Intel Xeon (benchmarks/estimator_terms.py, 2026-12-03, a LoRA step
# at 8 x 64 tokens, one thread, CPU time against the matmul probe's): 1.12-1.13x the estimate
# at CPU_EFFICIENCY 0.9, ~1.04x at today's 0.83.
CPU_TRAIN_EFFICIENCY = 0.88
CPU_ADAPTER_TRAIN_MULT = 6.3
# The Trainer's fixed costs in the adapt phase: dataset preparation, the Trainer's setup, the
# first step's allocations, the best-weights copy. The idle demo runs of 2026-11-27 spent 22-32
# s beyond their step time, but that held the time budget's two timed forward+backward passes
# (~8 s each on that EPYC), now counted apart (training_extras_s), leaving 6-16 s; the 6-step
# LoRA run on uci_sentiment of 2026-12-03 (load ~5 by its step times) spent 42 s beyond its
# steps, ~8 s at idle speed, ~4 s once the timed passes and its validations are taken out.
# The estimate takes 6 s; to be re-measured on an idle machine.
CPU_TRAINER_SETUP_S = 6.0
# NF4 weights are dequantised before every matmul. On a CPU (bitsandbytes' CPU backend, float32
# compute) that makes QLoRA 2.5x slower than LoRA, training and prediction alike (measured on
# SmolLM2-135M, idle 2-core EPYC, 2026-11-27: 18.8 vs 7.4 s per step at batch 8; session 2's
# prediction 329 vs 142 s). On a GPU the dequantisation is fused and cheap; the extra time is
# gradient checkpointing's second forward pass (the adapter's train multiplier goes from 4 to 6).
QUANTIZED_CPU_SLOWDOWN = 2.5
# On a GPU a small model's training step is bound by launching its kernels, not by its FLOPs.
# Seconds per step and decoder layer, measured on an H200 at batch 1 (where the FLOPs take a
# tenth of the step) with `bash benchmarks/gpu_check.sh run` (benchmarks/finetune_gpu_memory.py,
# random weights, sequence 512, 2026-12-04): full fine-tuning 4.2 ms (135M shape, 30 layers)
# and 5.4 ms (1.7B, 24 layers); LoRA 8.4 and 7.8 ms (its adapters' extra kernels); QLoRA 16.0
# and 18.9 ms (dequantisation and checkpointing's second forward). Launching and computing
# overlap only in part: a step takes the root of the sum of their squares (math.hypot), which
# put measured over estimated tokens/s at 0.90-1.10 from 135M to 7B at batch 1 and 8 (the
# larger of the two: 0.73-1.09), where FLOPs alone had put small models' steps up to 400x too
# short.
GPU_STEP_S_PER_LAYER = {"full": 0.0048, "adapter": 0.0081, "quantized": 0.0175}


# Label scoring (strategies.scoring._score_batch_shared) runs each prompt once, then repeats its
# KV cache once per label (repeat_interleave) and forwards the labels' remaining tokens on top:
# appending to the cache copies it (DynamicCache's torch.cat) and attention expands the grouped
# keys and values to every head (repeat_kv), about ten passes over the repeated cache by the
# code. Measured with benchmarks/estimator_terms.py (2026-12-03, SmolLM2-135M, 8 prompts of 300
# tokens, 12 labels of up to 9 tokens, one thread, CPU time, three runs at load 2.8-4): beyond
# the label tokens' FLOPs, 2.0-3.0 CPU-s, i.e. 12.4, 9.7 and 17.8 copies of the repeated cache
# at each run's copy probe speed (4 labels: too small an extra to read). The estimate takes 13.
# To be re-measured on an idle machine.
LABEL_CACHE_PASSES = 13.0
# A greedy decoding step (model.generate, strategies.lm_predict.generate_texts) reads every
# weight for a handful of rows, runs each layer's many small ops for each of them, and
# DynamicCache's torch.cat reads and writes the whole growing cache. Measured with
# benchmarks/estimator_terms.py (2026-12-03, SmolLM2-135M, one thread, CPU time, three runs at
# load 2.8-4): 57 / 88 / 117, 54 / 88 / 115 and 53 / 87 / 108 ms a step at 1 x 64, 4 x 64 and
# 4 x 512 tokens. A step at one row took one read of the weights at the copy probe's speed in
# the least loaded run (0.97; the loaded runs' copy probe was slowed by other jobs' traffic, the
# steps were not); each further row 10-11 ms, 7-9 prompt tokens' FLOPs at the matmul probe's
# speed; the longer cache about two passes over it (2.1 and 2.5). To be re-measured on an idle
# machine. (This replaces "a generated token costs 4 prompt tokens' FLOPs", which at 4 rows
# counted a quarter of a measured step.)
DECODE_WEIGHT_READS = 1.0
DECODE_ROW_COST = 8.0
DECODE_CACHE_PASSES = 2.0
# Adapters stay unmerged when a trained candidate predicts (strategies.training_predict): every
# adapted layer adds its small matmuls. Measured with benchmarks/estimator_terms.py (2026-12-03,
# LoRA r 8 on every linear layer of SmolLM2-135M, 16 x 64 tokens, one thread, CPU time, load
# 2.8-4, three runs): 1.17x, 1.27x and 1.21x the plain model's forward.
ADAPTER_PREDICT_COST = 1.2
# Under a time budget the trainer first times two forward+backward passes on a median batch and
# a validation of this many rows (strategies.training_loop._fit_budget, TIMED_VALIDATION_ROWS).
BUDGET_TIMED_STEPS = 2
BUDGET_TIMED_VALIDATION_ROWS = 16
# Classification candidates validate by label scoring (strategies.training_select, select_by
# auto) on at most this many validation rows (TrainingConfig.max_eval_rows under quick).
MAX_EVAL_ROWS = 256


def setup_seconds(profile: Profile, retrieval: bool) -> float:
    """The child's start, imports and model loads before the candidate's own work."""
    if profile.model == "none":
        return NO_MODEL_SETUP_S
    if profile.model == "encoder":  # a sentence encoder (knn, transfer) or encoder-ft's model
        return ENCODER_SETUP_S if profile.train != "full" else SETUP_S
    seconds = SETUP_S + (RETRIEVAL_SETUP_S if retrieval else 0.0)
    if profile.train in ("full", "adapter"):
        seconds += TRAINER_IMPORT_S
    return seconds


def label_positions(work: Workload) -> int:
    """Tokens forwarded per label after the prompt: the longest label's tokens but the first
    (its first token is read off the prompt's last logits), about one per word of the longest
    label name; 0 for one-token labels."""
    tokens = work.label_tokens or LABEL_TOKENS
    return max(tokens - 1, 0) if work.n_labels > 1 else 0


def inference_tokens(profile: Profile, work: Workload,
                     lengths: Lengths | None = None) -> tuple[float, int]:
    """(tokens through the model's matmuls to predict the test split, longest prompt per
    request): the prompt as its run builds it (demonstrations, passages, truncation:
    advisor.estimate_lengths), then each label's tokens (label scoring) or DECODE_ROW_COST
    tokens per row and decoding step (generation; the weight reads are decoding_traffic_s's)."""
    if profile.inference == "none":
        return 0.0, 0
    lengths = lengths or lengths_for(profile, work)
    per_row = lengths.prompt_mean
    if work.n_labels and profile.model == "llm":  # label scoring: the prompt, then each label
        per_row += work.n_labels * label_positions(work)
    elif lengths.generated:  # each decoding step's small ops for this row
        per_row += lengths.generated * DECODE_ROW_COST
    return float(work.test_rows * per_row), lengths.prompt_longest


def label_scoring_traffic_s(shape: ModelShape, work: Workload, prompt_tokens: float,
                            rows: float, machine: Machine) -> float:
    """Seconds label scoring spends copying the prompts' KV cache once per label, for `rows`
    prompts of `prompt_tokens` tokens (0 for one-token labels: the prompt's logits score them)."""
    if not shape.causal_lm or not label_positions(work):
        return 0.0
    b_w = 2.0 if machine.cuda else 4.0
    repeated = kv_cache_bytes(shape, prompt_tokens, rows * work.n_labels, b_w)
    return LABEL_CACHE_PASSES * repeated / machine.bytes_per_s


def decoding_traffic_s(shape: ModelShape, work: Workload, lengths: Lengths, rows: float,
                       machine: Machine, quantized: bool = False) -> float:
    """Seconds greedy decoding spends on memory for `rows` rows: each batch runs one step per
    generated token (up to max_new_tokens: the batch stops only when every row has), and each
    step reads the weights once and the batch's growing cache twice."""
    if not lengths.generated or not shape.causal_lm or rows <= 0:
        return 0.0
    b_w = 2.0 if machine.cuda else 4.0
    batch = max(1, work.predict_batch_size or work.batch_size)
    batches = math.ceil(rows / batch)
    mean_cache = kv_cache_bytes(shape, lengths.prompt_mean + lengths.generated / 2,
                                min(batch, rows), b_w)
    per_step = (DECODE_WEIGHT_READS * weight_bytes(shape, b_w, quantized)
                + DECODE_CACHE_PASSES * mean_cache)
    return batches * lengths.generated * per_step / machine.bytes_per_s


def prompt_attention_flops(shape: ModelShape, prompt_tokens: float) -> float:
    """FLOPs of one prompt's attention scores and weighted values (2 x 2 x tokens^2 x hidden per
    layer, the full square: PyTorch's CPU attention with a padding mask computes it all), beside
    the matmul parameters' 2 x params per token. Measured with benchmarks/estimator_terms.py
    (2026-12-03): a 4 x 512-token prompt pass of SmolLM2 took 1.29x its 2 x params x tokens at
    the matmul probe's speed, 8 x 64 tokens 1.09x; the 0.9 efficiency and this term give 1.25x
    and 1.13x."""
    if not shape.causal_lm:
        return 0.0
    return 4 * prompt_tokens ** 2 * shape.hidden_size * shape.layers


def prediction_s(profile: Profile, shape: ModelShape, work: Workload, lengths: Lengths,
                 machine: Machine, rows: float) -> float:
    """Seconds to predict `rows` rows (the test split, or a validation): the prompt pass and
    label or generated tokens at the FLOP rate (an unmerged adapter's extra matmuls included),
    plus label scoring's cache copies or decoding's memory traffic."""
    if profile.inference == "none" or rows <= 0:
        return 0.0
    tokens = inference_tokens(profile, replace(work, test_rows=1), lengths)[0] * rows
    cost = ADAPTER_PREDICT_COST if profile.train == "adapter" and profile.model == "llm" else 1.0
    seconds = (2 * shape.matmul_params * tokens * cost
               + prompt_attention_flops(shape, lengths.prompt_mean) * rows) / machine.flops
    if profile.model != "llm":
        return seconds
    if work.n_labels:
        return seconds + label_scoring_traffic_s(shape, work, lengths.prompt_mean, rows, machine)
    return seconds + decoding_traffic_s(shape, work, lengths, rows, machine, profile.quantized)


def deploy_seconds(per_request_s: float, test_rows: int) -> float:
    """bench.deploy's latency measurement after predicting (kept out of the candidate's time,
    as the record keeps it): one untimed warm-up request, then one test row at a time until MAX_REQUESTS are timed or
    BUDGET_S (warm-up included) has passed, but at least MIN_REQUESTS."""
    from bench.deploy import BUDGET_S, MAX_REQUESTS, MIN_REQUESTS

    if per_request_s <= 0 or test_rows <= 0:
        return 0.0
    spent, timed = per_request_s, 0
    while timed < min(MAX_REQUESTS, test_rows):
        if timed >= MIN_REQUESTS and spent >= BUDGET_S:
            break
        spent += per_request_s
        timed += 1
    return spent


def request_seconds(profile: Profile, shape: ModelShape, work: Workload, lengths: Lengths,
                    machine: Machine) -> float:
    """One request at batch 1, as bench.deploy times it: one row's prediction (a generated
    answer reads the weights at every step for that row alone)."""
    alone = replace(work, predict_batch_size=1, test_rows=1)
    return prediction_s(profile, shape, alone, lengths, machine, 1)


def training_extras_s(profile: Profile, shape: ModelShape, work: Workload, lengths: Lengths,
                      machine: Machine) -> float:
    """The trainer's work beside its optimizer steps: under a time budget, the two timed
    forward+backward passes and a timed validation of a few rows; then every validation
    (classification: label scoring of the validation rows, which selects the weights and stops
    early; otherwise the target tokens' loss, a forward pass)."""
    if profile.train not in ("full", "adapter"):
        return 0.0
    seconds = 0.0
    val_rows = min(work.validation_rows, MAX_EVAL_ROWS)
    steps = work.trained_steps
    evaluations = work.evaluated_rows / work.validation_rows if work.validation_rows else 0.0
    if work.time_budget_s > 0:
        if steps:
            seconds += BUDGET_TIMED_STEPS * step_time_s(
                "", shape, int(work.batch_size * lengths.train_mean), machine, profile)
        timed_rows = min(val_rows, BUDGET_TIMED_VALIDATION_ROWS)
        evaluations += timed_rows / val_rows if val_rows else 0.0
    if not val_rows or not evaluations:
        return seconds
    if work.n_labels:  # validated by label accuracy: a prediction of the validation rows
        return seconds + evaluations * prediction_s(profile, shape, work, lengths, machine,
                                                    val_rows)
    return seconds + evaluations * 2 * shape.matmul_params * val_rows * lengths.train_mean \
        / machine.flops


def retrieval_flops(encoder: ModelShape, lengths: Lengths) -> float:
    """The encoder's forward passes of a retrieval run: the index's texts (corpus chunks or
    train rows) once, then every query (test rows; `+rag` also train and validation rows)."""
    tokens = lengths.index_tokens + lengths.queries * lengths.query_tokens
    return 2 * encoder.matmul_params * tokens


def train_multiplier(profile: Profile, machine: Machine) -> float:
    """FLOPs per parameter and token of one training step (forward 2, backward 2 or 4)."""
    if profile.train == "adapter" and not machine.cuda:
        return CPU_ADAPTER_TRAIN_MULT
    return {"full": 6, "adapter": 4, "head": 2, None: 2}[profile.train]


def train_efficiency(profile: Profile, machine: Machine) -> float:
    """Share of the measured matmul FLOP/s a training step reaches."""
    return CPU_TRAIN_EFFICIENCY if profile.train in ("full", "adapter") and not machine.cuda else 1.0


def quantized_slowdown(profile: Profile, machine: Machine) -> tuple[float, float]:
    """(training, prediction) time multipliers of NF4 weights over the plain FLOP count."""
    if not profile.quantized:
        return 1.0, 1.0
    if not machine.cuda:  # measured with checkpointing included
        return QUANTIZED_CPU_SLOWDOWN, QUANTIZED_CPU_SLOWDOWN
    return (1.5 if profile.checkpointing else 1.0), 1.0


def gpu_step_floor_s(profile: Profile, shape: ModelShape, machine: Machine) -> float:
    """The least seconds a training step takes on a GPU, whatever its FLOPs: launching its
    kernels, per decoder layer (GPU_STEP_S_PER_LAYER). 0 on a CPU, which is FLOP-bound."""
    if not machine.cuda or profile.train not in ("full", "adapter"):
        return 0.0
    kind = "quantized" if profile.quantized else profile.train
    return shape.layers * GPU_STEP_S_PER_LAYER[kind]


def step_time_s(strategy: str, shape: ModelShape, tokens: int, machine: Machine,
                profile: Profile | None = None) -> float:
    """Seconds for one training step (or one forward pass for untrained strategies) over
    `tokens` tokens: the unit the calibration runs measured; on a GPU at least the step's
    launch floor. `profile`: the strategy's, when known (`<trainable>+rag` derives its own)."""
    profile = profile or profile_for(strategy)
    slowdown = quantized_slowdown(profile, machine)[0 if profile.train else 1]
    flops = machine.flops * train_efficiency(profile, machine)
    return math.hypot(train_multiplier(profile, machine) * shape.matmul_params * tokens
                      * profile.time_factor * slowdown / flops,
                      gpu_step_floor_s(profile, shape, machine))
