"""What the Trainer reports back while a fine-tuning candidate trains (TrainResult), and the
callbacks that fill it: validation with the best weights kept and early stopping
(strategies.training_select decides), the time guard, and progress."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from strategies.training_select import EarlyStopping, ValidationScore

# Training stops when it runs this much over its time budget (the measured step was too short).
TIME_OVERRUN = 1.25


@dataclass
class TrainResult:
    train_tokens: int  # real (non-pad) tokens in the training batches, all epochs
    steps: int  # optimizer steps taken
    epochs_run: float
    optimizer: str
    # the Trainer's autocast: "bf16" | "fp16" (CUDA), "fp32" (CPU, or precision=fp32)
    precision: str = "fp32"
    best_step: int | None = None  # step of the kept weights (best validation score)
    best_epoch: float | None = None
    best_val_loss: float | None = None  # the kept weights' validation loss (see select_by)
    best_val_score: dict[str, float] | None = None  # {loss, accuracy, label_loglik}
    selected_by: str | None = None  # "label_accuracy" | "loss"; None: no validation split
    stopped_early: bool = False
    stopped_at: int | None = None  # the last optimizer step taken
    stop_reason: str | None = None  # "budget" | "patience" | "time_budget"
    budget: dict[str, Any] = field(default_factory=dict)  # training_budget.StepBudget.info()
    # How the Trainer wrapped the model across processes: None (one process), "ddp", "fsdp"
    parallel: str | None = None
    # [{step, epoch, loss, accuracy?, label_loglik?}]
    val_curve: list[dict[str, float]] = field(default_factory=list)
    train_curve: list[dict[str, float]] = field(default_factory=list)  # [{step, loss}]

    def info(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def trainer_callbacks():
    """Callback classes, built lazily so importing this module stays free of transformers."""
    from transformers import TrainerCallback

    class KeepBestAndStopEarly(TrainerCallback):
        """Keep a CPU copy of the trainable weights at the best validation score, restore them
        at the end, and stop after `patience` validations without a better one (never before
        `min_steps`). Fed the Trainer's own validation loss (`on_evaluate`) or, through
        `consider`, a score measured by a subclass.

        In memory instead of transformers' checkpoint folders: no disk writes of full models per
        evaluation, and only the trainable tensors are copied (small for PEFT methods)."""

        def __init__(self, patience: int, result: TrainResult, min_steps: int = 0):
            self.result = result
            self.stopping = EarlyStopping(patience, min_steps)
            self.best_state: dict[str, Any] | None = None

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            loss = (metrics or {}).get("eval_loss")
            if loss is None or model is None:
                return
            self.consider(model, state, control, ValidationScore(loss=float(loss)))

        def consider(self, model, state, control, score: ValidationScore) -> None:
            step, epoch = state.global_step, round(state.epoch or 0.0, 4)
            self.result.val_curve.append({"step": step, "epoch": epoch, **score.as_dict()})
            if self.stopping.observe(step, epoch, score):
                self.result.best_step, self.result.best_epoch = step, epoch
                self.result.best_val_loss = float(score.loss)
                self.result.best_val_score = score.as_dict()
                self.best_state = {name: p.detach().to("cpu", copy=True)
                                   for name, p in model.named_parameters() if p.requires_grad}
            elif self.stopping.should_stop(step):
                self.result.stopped_early = True
                self.result.stop_reason = "patience"
                control.should_training_stop = True

        def restore_best(self, model) -> None:
            if self.best_state is None:
                return
            import torch

            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in self.best_state:
                        p.copy_(self.best_state[name].to(p.device, p.dtype))

    class ValidateByLabels(KeepBestAndStopEarly):
        """Validation by label scoring (strategies.training_select.label_validator) every
        `eval_every` optimizer steps and after the last step."""

        def __init__(self, patience: int, result: TrainResult, min_steps: int,
                     validate: Callable[[Any], ValidationScore], eval_every: int):
            super().__init__(patience, result, min_steps)
            self.validate, self.eval_every = validate, eval_every
            self.last_step: int | None = None

        def _run(self, state, control, model) -> None:
            if model is None or self.last_step == state.global_step:
                return
            self.last_step = state.global_step
            self.consider(model, state, control, self.validate(model))

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            # A run that resumes a race rung's checkpoint (the race's final) validates the
            # weights it resumes: early stopping then counts from them, as a run that had
            # trained straight through would, instead of from the final's first validation.
            if state.global_step > 0:
                self._run(state, control, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % self.eval_every == 0:
                self._run(state, control, model)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            self._run(state, control, model)  # the last weights get their chance too

    class StopAtTimeBudget(TrainerCallback):
        """Stop when training runs TIME_OVERRUN times over the seconds it had left."""

        def __init__(self, seconds: float, result: TrainResult):
            self.seconds, self.result = seconds, result
            self.started = time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if self.seconds > 0 and time.perf_counter() - self.started > self.seconds * TIME_OVERRUN:
                self.result.stop_reason = "time_budget"
                control.should_training_stop = True

    class StopAtStepAndCheckpoint(TrainerCallback):
        """A run that continues (training_budget.Continuation): its schedule spans the full
        run's steps, so it stops itself at `target`; with `save`, whatever stops it (this
        target, the time guard, early stopping), the Trainer writes a checkpoint of that step
        (the last weights, the optimizer, the schedule) for the next rung to resume. List it
        after the other callbacks: it reads the stop they set."""

        def __init__(self, target: int, save: bool):
            self.target, self.save = target, save

        def on_train_begin(self, args, state, control, **kwargs):
            # A resumed state brings the checkpoint's logging and validation spacing (a rung
            # validates never); this run's own arguments set them.
            state.compute_steps(args, state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= self.target:
                control.should_training_stop = True
            self._checkpoint_if_stopping(control)

        def on_evaluate(self, args, state, control, **kwargs):
            self._checkpoint_if_stopping(control)  # early stopping decides on a validation

        def _checkpoint_if_stopping(self, control) -> None:
            if self.save and control.should_training_stop:
                control.should_save = True

    class ReportProgress(TrainerCallback):
        def __init__(self, on_step: Callable[[int, int, float | None], None], result: TrainResult):
            self.on_step, self.result = on_step, result

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                loss = float(logs["loss"])
                self.result.train_curve.append({"step": state.global_step, "loss": loss})
                self.on_step(state.global_step, state.max_steps, loss)

    return (KeepBestAndStopEarly, ValidateByLabels, StopAtTimeBudget, ReportProgress,
            StopAtStepAndCheckpoint)
