"""The settings every trainable LM candidate shares (TrainingConfig), the facts of one run a
method's build function may need (TrainPlan), and the step count they give."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strategies.base import option

LM_TASKS = frozenset({"classification", "generation", "qa"})


@dataclass
class TrainingConfig:
    """Settings every trainable LM candidate shares; strategies subclass it to add their own
    and to change the defaults that suit them (PEFT methods want larger learning rates)."""

    learning_rate: float = option(5e-5, help="peak learning rate (linear warmup, linear decay)")
    epochs: float = option(3.0, full=5.0, help="passes over the train split: the step budget "
                           "(early stopping may end sooner; time_budget_s may cut it)")
    min_steps: int = option(40, help="the least optimizer steps: a small train split gets more "
                            "passes to reach it, and early stopping never stops sooner")
    max_steps: int = option(300, full=-1, help="cap on optimizer steps; -1 = none. The budget "
                            "comes from epochs, min_steps and time_budget_s; the quick preset "
                            "also stops at 300 steps, where a GPU would not hit its time bound")
    time_budget_s: float = option(300.0, full=0.0, help="seconds of training, validations "
                                  "included, one candidate may take: the steps are cut to what "
                                  "fits, from a measured step time, and training stops if it "
                                  "runs 25% over; 0 = no bound")
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
    eval_every: int = option(0, help="validate every N optimizer steps; 0 = auto: about 10 "
                             "validations over the run, at least 5 steps apart, and further "
                             "apart where a validation costs more than a few steps")
    patience: int = option(3, help="stop after this many validations without a better score "
                           "(once min_steps and one pass are done); 0 = never stop early")
    select_by: str = option("auto", choices=("auto", "label_accuracy", "loss"),
                            help="the validation score that keeps the best weights and stops "
                                 "early: auto = label_accuracy for classification (label-scoring "
                                 "accuracy, ties broken by the right label's log-likelihood "
                                 "averaged per class), loss (target tokens) otherwise")
    max_eval_rows: int = option(256, full=-1, help="validate on at most this many validation "
                                "rows (a seeded sample); -1 = all")
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
        if self.weight_decay < 0 or self.patience < 0 or self.min_steps < 0:
            raise ValueError("weight_decay, patience and min_steps must be >= 0")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be 0 (auto) or > 0, got {self.eval_every}")
        if self.time_budget_s < 0:
            raise ValueError(f"time_budget_s must be >= 0 (0 = no bound), got {self.time_budget_s}")
        if self.max_eval_rows == 0 or self.max_eval_rows < -1:
            raise ValueError(f"max_eval_rows must be -1 (all) or > 0, got {self.max_eval_rows}")
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
