"""The settings every trainable LM candidate shares (TrainingConfig), the facts of one run a
method's build function may need (TrainPlan), and the step count they give."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from strategies.base import option

LM_TASKS = frozenset({"classification", "generation", "qa"})


@dataclass
class TrainingConfig:
    """Settings every trainable LM candidate shares; strategies subclass it to add their own
    and to change the defaults that suit them (PEFT methods want larger learning rates)."""

    learning_rate: float = option(5e-5, help="peak learning rate (linear warmup, linear decay)")
    epochs: float = option(1.0, full=5.0, help="passes over the train split (an upper bound: "
                           "early stopping and max_steps may end training sooner)")
    max_steps: int = option(30, full=-1, help="cap on optimizer steps; -1 = no cap. The quick "
                            "preset caps it so one candidate finishes in minutes on a CPU")
    batch_size: int = option(8, help="rows per forward pass; higher is faster per row and uses "
                             "more memory")
    grad_accum: int = option(1, help="forward passes per optimizer step (effective batch = "
                             "batch_size * grad_accum)")
    max_length: int = option(256, full=512, help="tokens per training sequence; the prompt is "
                             "cut from the left so the target always fits")
    warmup_ratio: float = option(0.1, help="fraction of the steps spent warming the learning "
                                 "rate up")
    weight_decay: float = option(0.0, help="AdamW weight decay")
    seed: int = option(-1, help="training seed; -1 uses the run's seed")
    eval_every: int = option(10, full=0, help="evaluate the validation loss every N optimizer "
                             "steps; 0 = once per epoch")
    patience: int = option(2, full=3, help="stop after this many evaluations without a better "
                           "validation loss; 0 = never stop early")
    gradient_checkpointing: bool = option(False, help="recompute activations in the backward "
                                          "pass: less memory, ~30% slower")
    max_new_tokens: int = option(48, full=128, help="generation / qa: tokens generated per "
                                 "answer (greedy)")
    predict_batch_size: int = option(16, help="rows per forward pass when predicting")
    precision: str = option("auto", choices=("auto", "fp32", "bf16", "fp16"),
                            help="training precision: auto = bf16 autocast on GPUs that support "
                                 "it, else fp16 on CUDA, fp32 on CPU; bf16/fp16 need CUDA")
    label_score: str = option("mean", choices=("mean", "sum"),
                              help="classification: rank labels by mean (as the prompting "
                                   "candidates do) or summed token log-probability")

    def __post_init__(self) -> None:
        positive = {"learning_rate": self.learning_rate, "epochs": self.epochs,
                    "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "max_length": self.max_length, "max_new_tokens": self.max_new_tokens,
                    "predict_batch_size": self.predict_batch_size}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (no cap) or > 0, got {self.max_steps}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0 or self.eval_every < 0 or self.patience < 0:
            raise ValueError("weight_decay, eval_every and patience must be >= 0")
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8 tokens, got {self.max_length}")


@dataclass
class TrainPlan:
    """Facts about this training run that a method's build function may need (AdaLoRA needs
    the total step count; QLoRA the device)."""

    total_steps: int
    device: str
    seed: int
    train_rows: int
    # --peft-args: peft's own config arguments, applied on top of the method's settings by
    # `peft_config_for` (every PEFT method reads them; full and freeze have no peft config)
    peft_args: dict[str, Any] = field(default_factory=dict)


def total_optimizer_steps(n_rows: int, config: TrainingConfig) -> int:
    steps_per_epoch = max(1, math.ceil(n_rows / config.batch_size / config.grad_accum))
    total = math.ceil(steps_per_epoch * config.epochs)
    return min(total, config.max_steps) if config.max_steps > 0 else total
