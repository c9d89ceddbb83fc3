"""How many optimizer steps a fine-tuning candidate takes: derived from the data, bounded by time.

A candidate is a fair representative of its method only if it trains enough to learn the task;
a fixed step cap (the quick preset once stopped every candidate at 30 steps, whatever the data)
leaves a candidate under-trained on one data set and wastes time on another. So the budget is
counted in passes over the train split:

    wanted = max(epochs * steps_per_epoch, min_steps)     # a small split gets more passes
    steps  = min(wanted, max_steps, what fits in time_budget_s)

The time bound uses a measured step: two forward+backward passes on a batch of median length
(`measure_step_seconds`) and a validation of a few rows, scaled to the validation split, so
"fits" is about this machine, this model and this method, not a guess. A validation that is
dear next to a step (a slow machine, a large validation split) is spaced out under the auto
setting, so validating takes at most a quarter of the time. `StepBudget.info()` goes into the record.

A race rung (bench.race) trains on r of the N train rows and is given r/N of the FULL run's
budget (`RungShare`): the steps the whole split would get, times the fraction, at least
RUNG_MIN_STEPS and never more than the full run's; the time bound is scaled the same way. Planned
on its own r rows, min_steps would give a small rung about as many steps as the full run, and
racing would cost about as much as running every candidate in full.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

from strategies.training_config import TrainingConfig

# The optimizer's update and the data loader add to the measured forward+backward pass.
STEP_OVERHEAD = 1.1
# Validations spread over a run when eval_every is auto (0), and the closest spacing.
AUTO_EVALS_PER_RUN = 10
AUTO_MIN_EVAL_SPACING = 5
# Auto spacing keeps validations under this share of the training time.
MAX_EVAL_SHARE = 0.25
# The fewest optimizer steps a race rung takes (its share of the full run's, when that is less):
# a few updates, so the rung measures a method that has started to learn, not the base model.
RUNG_MIN_STEPS = 8


@dataclass(frozen=True)
class RungShare:
    """A race rung's share of the full run's training budget: `fraction` (its train rows over
    the full split's) of what the full split of `full_train_rows` rows would get."""

    fraction: float
    full_train_rows: int

    def scaled(self, config: TrainingConfig) -> TrainingConfig:
        """`config` with the time bound scaled by the fraction (0, no bound, stays 0)."""
        return dataclasses.replace(config, time_budget_s=config.time_budget_s * self.fraction)


def rung_share(fraction: float | None, full_train_rows: int | None, n_rows: int
               ) -> RungShare | None:
    """The rung share of a job trained on `n_rows` rows with this budget fraction; None for a
    full run (no fraction, a fraction of 1 or more, or the full split unknown)."""
    if fraction is None or not 0 < fraction < 1 or not full_train_rows:
        return None
    return RungShare(float(fraction), max(int(full_train_rows), n_rows))


def rung_steps(full_steps: int, fraction: float) -> int:
    """A rung's steps: `fraction` of the full run's, at least RUNG_MIN_STEPS, at most the full
    run's."""
    return max(1, min(full_steps, max(RUNG_MIN_STEPS, round(fraction * full_steps))))


@dataclass
class StepBudget:
    """The step count of one training run and why it is what it is."""

    steps_per_epoch: int
    wanted_steps: int  # the epochs' steps, raised to min_steps
    steps: int  # what the Trainer runs (early stopping may end sooner)
    # "epochs" | "min_steps" | "max_steps" | "time_budget" | "rung" | "continued" (a final that
    # resumed a rung and trained to the end of the full run's schedule)
    limited_by: str
    eval_every: int  # optimizer steps between validations
    time_budget_s: float = 0.0  # 0 = no bound
    step_s: float | None = None  # measured seconds per optimizer step
    eval_s: float | None = None  # measured seconds per validation
    fitting_s: float = 0.0  # spent measuring (the step and a few validation rows)
    # a race rung: its share of the full run's budget, and the steps of that full run
    rung_fraction: float | None = None
    full_run_steps: int | None = None
    # a run that continues (Continuation): the steps its learning-rate schedule spans (the full
    # run's) and the step it resumed from (0: it started afresh and saves a checkpoint)
    schedule_steps: int | None = None
    resumed_from_step: int | None = None

    @property
    def epochs(self) -> float:
        return round(self.steps / self.steps_per_epoch, 3)

    def info(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        if self.rung_fraction is None:  # a full run's record says nothing of rungs
            fields.pop("rung_fraction")
            fields.pop("full_run_steps")
        if self.schedule_steps is None:  # nor of continuing, when it does not continue
            fields.pop("schedule_steps")
            fields.pop("resumed_from_step")
        return {**fields, "epochs": self.epochs}


@dataclass(frozen=True)
class Continuation:
    """A race rung or final that continues another run (bench.race, ASHA-style): `checkpoint`,
    the Trainer checkpoint of the same candidate's previous rung to resume (weights, optimizer,
    learning-rate schedule, RNG; None: start afresh); `save`, write a checkpoint when training
    ends, for the next rung or the final to resume. Its schedule spans the full run's steps,
    so a candidate trained rung after rung and then to the end has had one full run's
    schedule, while each job trains only its increment."""

    save: bool = False
    checkpoint: str | None = None


def continuing_target(schedule: int, fraction: float | None, done: int) -> int:
    """The step a continuing run trains to: `fraction` of the schedule (rung_steps: at least
    RUNG_MIN_STEPS) or, with no fraction (the final), its end; never past it, at least one
    step past `done` while any is left. advisor.estimate plans a racer's jobs with it too."""
    target = schedule if fraction is None else rung_steps(schedule, fraction)
    return min(schedule, max(target, done + 1))


def continuing_budget(full: StepBudget, fraction: float | None, done: int,
                      n_rows: int, config: TrainingConfig) -> StepBudget:
    """The budget of a run that continues: the schedule spans the full run's steps
    (`full.steps`, after its time bound); it trains from step `done` to `fraction` of them
    (rung_steps: at least RUNG_MIN_STEPS) or, with no fraction (the final), to all of them;
    never past the schedule, at least one step when any is left. Its time bound is the full
    run's (config.time_budget_s, not scaled) times the share of the schedule it trains: of the
    training time the full run had left after `full.fitting_s`, the measuring that planned the
    whole schedule, which the job that measured it (rung 0) pays on top of its share. (Charged
    to its share alone, ~6 s of measuring out of a 33 s share left the time guard of a 15-step
    LoRA rung with about 34 s for 33 s of steps: a guard meant for a mis-measured step
    nearly cut a rung that was on schedule.)"""
    schedule = max(1, full.steps)
    target = continuing_target(schedule, fraction, done)
    share = max(0, target - done) / schedule
    training_s = max(0.0, config.time_budget_s - full.fitting_s)
    bound = training_s * share + full.fitting_s if config.time_budget_s > 0 else 0.0
    return dataclasses.replace(
        full, steps_per_epoch=steps_per_epoch(n_rows, config), wanted_steps=target,
        steps=target, limited_by="rung" if fraction is not None else "continued",
        eval_every=resolve_eval_every(config, max(1, target - done)),
        time_budget_s=round(bound, 3),
        rung_fraction=None if fraction is None else round(fraction, 4),
        full_run_steps=schedule if fraction is not None else None,
        schedule_steps=schedule, resumed_from_step=done)


def steps_per_epoch(n_rows: int, config: TrainingConfig) -> int:
    return max(1, math.ceil(n_rows / config.batch_size / config.grad_accum))


def auto_eval_every(steps: int) -> int:
    """About AUTO_EVALS_PER_RUN validations over the run, at least AUTO_MIN_EVAL_SPACING steps
    apart (a validation costs a few steps' time), and at least one at the end."""
    spacing = max(AUTO_MIN_EVAL_SPACING, math.ceil(steps / AUTO_EVALS_PER_RUN))
    return max(1, min(steps, spacing))


def resolve_eval_every(config: TrainingConfig, steps: int) -> int:
    return auto_eval_every(steps) if config.eval_every == 0 else config.eval_every


def plan_steps(n_rows: int, config: TrainingConfig, rung: RungShare | None = None
               ) -> StepBudget:
    """The budget before the time bound: epochs over the train split, min_steps, max_steps.
    `rung`: a race rung's share of the full split's budget instead (plan_rung_steps)."""
    if rung is not None:
        return plan_rung_steps(n_rows, config, rung)
    per_epoch = steps_per_epoch(n_rows, config)
    from_epochs = math.ceil(per_epoch * config.epochs)
    wanted = max(from_epochs, config.min_steps)
    limited_by = "epochs" if from_epochs >= config.min_steps else "min_steps"
    steps = wanted
    if 0 < config.max_steps < wanted:
        steps, limited_by = config.max_steps, "max_steps"
    return StepBudget(steps_per_epoch=per_epoch, wanted_steps=wanted, steps=steps,
                      limited_by=limited_by, eval_every=resolve_eval_every(config, steps),
                      time_budget_s=config.time_budget_s)


def plan_rung_steps(n_rows: int, config: TrainingConfig, rung: RungShare) -> StepBudget:
    """A race rung on `n_rows` of the split: `rung.fraction` of the steps the full split would
    get (plan_steps on rung.full_train_rows), at least RUNG_MIN_STEPS, never more than the full
    run's; its time bound is the full one scaled by the fraction."""
    full = plan_steps(rung.full_train_rows, config)
    steps = rung_steps(full.steps, rung.fraction)
    return StepBudget(steps_per_epoch=steps_per_epoch(n_rows, config), wanted_steps=steps,
                      steps=steps, limited_by="rung",
                      eval_every=resolve_eval_every(config, steps),
                      time_budget_s=rung.scaled(config).time_budget_s,
                      rung_fraction=round(rung.fraction, 4), full_run_steps=full.steps)


def total_optimizer_steps(n_rows: int, config: TrainingConfig, rung: RungShare | None = None
                          ) -> int:
    """Steps before the time bound (what a method's build function is told: AdaLoRA's
    schedule)."""
    return plan_steps(n_rows, config, rung).steps


def fit_to_time(budget: StepBudget, config: TrainingConfig, *, step_s: float,
                eval_s: float | None, spent_s: float = 0.0) -> StepBudget:
    """`budget` cut to the steps that fit in what is left of config.time_budget_s, counting
    each step's share of the validations. At least one step."""
    budget = dataclasses.replace(budget, step_s=round(step_s, 4),
                                 eval_s=None if eval_s is None else round(eval_s, 4),
                                 fitting_s=round(spent_s, 3),
                                 eval_every=measured_eval_every(config, budget.steps, step_s,
                                                                eval_s))
    if config.time_budget_s <= 0:
        return budget
    every = budget.eval_every
    per_step = step_s * STEP_OVERHEAD + (eval_s or 0.0) / max(1, every)
    fits = max(1, math.floor((config.time_budget_s - spent_s) / max(per_step, 1e-9)))
    if fits >= budget.steps:
        return budget
    return dataclasses.replace(budget, steps=fits, limited_by="time_budget",
                               eval_every=measured_eval_every(config, fits, step_s, eval_s))


def measured_eval_every(config: TrainingConfig, steps: int, step_s: float,
                        eval_s: float | None) -> int:
    """Auto spacing, widened where a validation is dear next to a step (a large validation
    split, a slow machine): validations take at most MAX_EVAL_SHARE of the training time."""
    every = resolve_eval_every(config, steps)
    if config.eval_every > 0 or not eval_s or step_s <= 0:
        return every
    dear = math.ceil(eval_s / (MAX_EVAL_SHARE * step_s * STEP_OVERHEAD))
    return max(1, min(steps, max(every, dear)))


def median_length_batch(encoded: Sequence[dict[str, list[int]]], batch_size: int
                        ) -> list[dict[str, list[int]]]:
    """`batch_size` sequences around the median length: the batches of a length-grouped
    sampler are uniform, and their mean cost is close to that of the median batch."""
    ordered = sorted(encoded, key=lambda e: len(e["input_ids"]))
    start = max(0, len(ordered) // 2 - batch_size // 2)
    return ordered[start : start + batch_size]


def measure_step_seconds(model, batch: Sequence[dict[str, list[int]]], grad_accum: int = 1
                         ) -> float:
    """Seconds of one optimizer step's forward+backward passes on `batch` (the faster of two
    tries: the first pays one-off allocation). Gradients are cleared; no weight changes."""
    import torch

    from strategies.training_data import pad_batch

    device = next(model.parameters()).device
    ids, labels, mask = pad_batch(batch)
    ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
    was_training = model.training
    model.train()
    timings = []
    try:
        for _ in range(2):
            started = time.perf_counter()
            loss = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss
            loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - started)
            model.zero_grad(set_to_none=True)
    finally:
        if not was_training:
            model.eval()
    return min(timings) * grad_accum
