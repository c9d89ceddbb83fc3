"""Which weights a fine-tuning candidate keeps, and when it stops training.

Classification is scored by label accuracy, so the weights are chosen by label accuracy on the
validation split, measured the way the test split will be (label log-likelihood scoring,
strategies.scoring). The target-token loss does not track it: on opaque labels ("ABBR",
"ENTY") the loss can sit flat while the accuracy climbs, and early stopping on the loss then
stops a candidate before it has learnt anything.

A validation split can be tiny (48 rows: one row is two points of accuracy), so:
- ties in accuracy are broken by the right label's log-likelihood among the labels, averaged
  per class (a smooth score that moves before the accuracy does, and that a large class cannot
  dominate);
- only a strictly better score counts as progress; `patience` validations without one stop
  training, but never before `min_steps`;
- the step-0 validation is recorded (where training started from) but is not a candidate for
  the kept weights: the candidate ships a trained model.

Generation and qa keep the target-token loss (`select_by=loss` chooses it for classification).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from strategies.base import TaskSplit
from strategies.prompts import label_texts, prompt_for
from strategies.training_config import TrainingConfig


@dataclass(frozen=True)
class ValidationScore:
    """One validation: label accuracy and the right label's log-likelihood (classification), or
    the target-token loss. For classification, `loss` is the right label's mean negative
    log-likelihood among the labels (what the report's validation curve draws)."""

    loss: float
    accuracy: float | None = None
    label_loglik: float | None = None  # mean log P(right label | the labels), per class

    def key(self) -> tuple[float, ...]:
        """Larger is better, compared in order."""
        if self.accuracy is not None:
            return (self.accuracy, self.label_loglik if self.label_loglik is not None else -np.inf)
        return (-self.loss,)

    def as_dict(self) -> dict[str, float]:
        return {name: round(float(value), 6) for name, value in
                (("loss", self.loss), ("accuracy", self.accuracy),
                 ("label_loglik", self.label_loglik)) if value is not None}


def selection_mode(split: TaskSplit, config: TrainingConfig) -> str:
    if config.select_by != "auto":
        return config.select_by
    return "label_accuracy" if split.task == "classification" else "loss"


def label_choice_score(scores: np.ndarray, gold: Sequence[int]) -> ValidationScore:
    """From label scores [rows, labels] (the ones prediction ranks by) and the right label of
    each row: accuracy, and log P(right label) under a softmax over the labels, averaged within
    each class and then over the classes."""
    scores = np.asarray(scores, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.int64)
    accuracy = float((scores.argmax(axis=1) == gold).mean())
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    right = log_probs[np.arange(len(gold)), gold]
    per_class = [right[gold == label].mean() for label in np.unique(gold)]
    loglik = float(np.mean(per_class))
    return ValidationScore(loss=-loglik, accuracy=accuracy, label_loglik=loglik)


def validation_sample(rows: Sequence[dict[str, Any]], max_rows: int, seed: int
                      ) -> list[dict[str, Any]]:
    """At most `max_rows` validation rows (-1: all), a seeded sample in the split's order."""
    if max_rows < 0 or len(rows) <= max_rows:
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), max_rows))
    return [rows[i] for i in keep]


def label_validator(tokenizer, split: TaskSplit, rows: Sequence[dict[str, Any]],
                    config: TrainingConfig) -> Callable[[Any], ValidationScore]:
    """model -> its label-scoring ValidationScore on `rows` (prompts rendered once)."""
    from strategies.scoring import label_logprobs

    prompts = [prompt_for(tokenizer, split, row) for row in rows]
    texts = label_texts(split)
    position = {label: j for j, label in enumerate(split.labels)}
    gold = [position[str(row["label"])] for row in rows]

    def validate(model) -> ValidationScore:
        scores = label_logprobs(model, tokenizer, prompts, texts,
                                batch_size=config.predict_batch_size,
                                max_prompt_tokens=config.max_length)
        ranked = scores.mean_logp() if config.label_score == "mean" else scores.sum_logp
        return label_choice_score(ranked, gold)

    return validate


class EarlyStopping:
    """Keeps the best score seen and says when to stop (pure: no model, no Trainer)."""

    def __init__(self, patience: int, min_steps: int):
        self.patience, self.min_steps = patience, min_steps
        self.best: ValidationScore | None = None
        self.best_step: int | None = None
        self.best_epoch: float | None = None
        self.bad_evals = 0

    def observe(self, step: int, epoch: float, score: ValidationScore) -> bool:
        """Record a validation; True when it is the best so far (strictly better)."""
        if self.best is None or score.key() > self.best.key():
            self.best, self.best_step, self.best_epoch = score, step, epoch
            self.bad_evals = 0
            return True
        self.bad_evals += 1
        return False

    def should_stop(self, step: int) -> bool:
        return bool(self.patience) and self.bad_evals >= self.patience and step >= self.min_steps
