"""Time of a candidate, for the pre-run estimator (advisor.estimate): FLOPs over the machine's
effective FLOP/s, with the constants measured on this project's CPU.
"""

from __future__ import annotations

from advisor.estimate_lengths import Lengths, lengths_for
from advisor.estimate_machine import Machine
from advisor.estimate_shapes import ModelShape
from advisor.estimate_workload import LABEL_TOKENS, Workload, profile_for
from strategies.profile import Profile

# Fixed costs the FLOP count misses: the child process start, imports and model load (~10 s on
# an idle 2-core CPU; far more when the machine is shared).
SETUP_S = 10.0
# A candidate without a model (majority) never imports torch (measured on the idle demo runs
# of 2026-11-27: 0.2 s).
NO_MODEL_SETUP_S = 0.3
# Training on a CPU, measured with benchmarks/train_memory.py (SmolLM2-135M, batch 8 x 112
# tokens, idle 2-core EPYC, 2026-11-27): full fine-tuning 8.46 s per step, i.e. 0.88 of the
# FLOP/s that cpu_flops() reports; LoRA 8.90 s, no faster than full: the frozen base
# saves the weight gradients' FLOPs, but the adapters' many small matmuls and their dropout cost
# as much again on a CPU, so an adapter step counts 6.3 FLOPs per parameter and token, not 4.
CPU_TRAIN_EFFICIENCY = 0.88
CPU_ADAPTER_TRAIN_MULT = 6.3
# The Trainer's fixed costs in the adapt phase: dataset preparation, the first step's
# allocations, the best-weights copy (22-32 s beyond the step time in the idle demo runs of
# 2026-11-27; the estimate takes the lower end).
CPU_TRAINER_SETUP_S = 20.0
# NF4 weights are dequantised before every matmul. On a CPU (bitsandbytes' CPU backend, float32
# compute) that makes QLoRA 2.5x slower than LoRA, training and prediction alike (measured on
# SmolLM2-135M, idle 2-core EPYC, 2026-11-27: 18.8 vs 7.4 s per step at batch 8; session 2's
# prediction 329 vs 142 s). On a GPU the dequantisation is fused and cheap; the extra time is
# gradient checkpointing's second forward pass (the adapter's train multiplier goes from 4 to 6).
QUANTIZED_CPU_SLOWDOWN = 2.5


# A generated token costs this many prompt tokens' FLOPs on a CPU: each decoding step reads
# every weight for a handful of tokens, where the prompt pass reads them once for hundreds.
# Chosen so that the bundled self_instruct_mini's zero-shot keeps its session-2 time (12 % off
# with the earlier "answer as long as the prompt" rule); to be re-measured on an idle machine.
DECODE_TOKEN_COST = 4.0


def inference_tokens(profile: Profile, work: Workload,
                     lengths: Lengths | None = None) -> tuple[float, int]:
    """(tokens through the model to predict the test split, longest prompt per request): the
    prompt as its run builds it (demonstrations, passages, truncation: advisor.estimate_lengths),
    then each label's few tokens (label scoring) or the generated answer."""
    if profile.inference == "none":
        return 0.0, 0
    lengths = lengths or lengths_for(profile, work)
    per_row = lengths.prompt_mean
    if work.n_labels and profile.model == "llm":  # label scoring: the prompt, then each label
        per_row += work.n_labels * LABEL_TOKENS
    elif lengths.generated:
        per_row += lengths.generated * DECODE_TOKEN_COST
    return float(work.test_rows * per_row), lengths.prompt_longest


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


def step_time_s(strategy: str, shape: ModelShape, tokens: int, machine: Machine) -> float:
    """Seconds for one training step (or one forward pass for untrained strategies) over
    `tokens` tokens: the unit the calibration runs measured."""
    profile = profile_for(strategy)
    slowdown = quantized_slowdown(profile, machine)[0 if profile.train else 1]
    flops = machine.flops * train_efficiency(profile, machine)
    return (train_multiplier(profile, machine) * shape.matmul_params * tokens
            * profile.time_factor * slowdown / flops)
