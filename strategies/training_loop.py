"""The training loop of the fine-tuning candidates: TRL's SFTTrainer with the loss on the
target tokens, a step budget from the data and the clock (strategies.training_budget),
validation with the best weights kept in memory and early stopping (training_select,
training_callbacks), optimizer and precision choices, and the Trainer arguments a distributed
launch sets."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from strategies.base import StrategyError, StrategySkipped, TaskSplit
from strategies.trackers import report_to
from strategies.training_budget import (Continuation, RungShare, StepBudget, continuing_budget,
                                        fit_to_time, measure_step_seconds, median_length_batch,
                                        plan_steps)
from strategies.training_callbacks import TrainResult, trainer_callbacks
from strategies.training_config import TrainingConfig
from strategies.training_data import encode_rows, target_loss
from strategies.training_select import (ValidationScore, label_validator, selection_mode,
                                        validation_sample)


def _loss_only_sft_trainer(sft_trainer_cls):
    """SFTTrainer with the Trainer's own loss: the model's cross-entropy over the target tokens.

    TRL 1.16's SFTTrainer computes the loss through a fused, chunked LM head that also works out
    every token's entropy and top-1 accuracy over the vocabulary for its logs; tunewise reads
    only the loss, so those are skipped. The trained-token count (attention masks of the
    training batches, summed over every rank) is kept as SFTTrainer keeps it."""
    from transformers import Trainer

    class LossOnlySFTTrainer(sft_trainer_cls):
        # The harness's token counter (RunContext.count_train_batch), handed every training batch
        count_batch: Callable[[Any], None] | None = None

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            if self.model.training and self.count_batch is not None:
                self.count_batch(inputs)
            if self.model.training and "attention_mask" in inputs:
                tokens = self.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum()
                self._total_train_tokens += int(tokens) // getattr(self, "_tp_size", 1)
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return LossOnlySFTTrainer


def checkpointing_flag(args_cls, on: bool) -> dict[str, bool]:
    """The Trainer arguments' activation-recompute switch under the name the installed
    transformers knows: `activation_checkpointing` in the pinned 5.24 (where the old name is
    deprecated), `gradient_checkpointing` in 5.17 (a GPU machine's image had that one)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(args_cls)}
    return {"activation_checkpointing" if "activation_checkpointing" in names
            else "gradient_checkpointing": on}


def upcast_trainable(model) -> str:
    """Trainable parameters in float32, frozen ones as loaded; returns the trainable dtype.

    On a GPU models load in bf16 (bench.models). Trained in bf16, a weight drops every update
    smaller than half its spacing: at |w| ~ 0.02 bf16's spacing is 1.2e-4, and AdamW's step is
    about the learning rate (2e-5 for full fine-tuning) — most updates would round away. So the
    optimizer updates float32 weights and the Trainer's bf16 autocast does the matmuls (mixed
    precision, as LLaMA-Factory does for full and freeze unless told `pure_bf16`). PEFT keeps
    its adapters in float32 already; a tied embedding stays tied (its Parameter is kept)."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.float()
    dtypes = {str(p.dtype).replace("torch.", "") for p in model.parameters() if p.requires_grad}
    return "/".join(sorted(dtypes))


def choose_optimizer(device: str, *, paged_8bit_on_cuda: bool) -> str:
    """transformers `optim` name: paged 8-bit AdamW on CUDA (the QLoRA recipe; its pages absorb
    memory spikes), plain torch AdamW elsewhere (bitsandbytes' 8-bit optimizers need CUDA)."""
    if device == "cuda" and paged_8bit_on_cuda:
        return "paged_adamw_8bit"
    return "adamw_torch"


def mixed_precision(device: str, precision: str = "auto") -> dict[str, bool]:
    """Trainer autocast flags. auto: bf16 where the GPU supports it, else fp16; fp32 on CPU
    (CPU autocast is slower than fp32 here). An explicit bf16/fp16 without CUDA is a skip."""
    if precision in ("bf16", "fp16"):
        require_cuda_if(True, device, f"{precision} mixed-precision training (precision={precision})")
        return {"bf16": precision == "bf16", "fp16": precision == "fp16"}
    if device != "cuda" or precision == "fp32":
        return {"bf16": False, "fp16": False}
    import torch

    if torch.cuda.is_bf16_supported():
        return {"bf16": True, "fp16": False}
    return {"bf16": False, "fp16": True}


def _is_distributed() -> bool:
    """One rank of several (bench.distributed sets the Trainer arguments and the world size)."""
    return bool(os.environ.get(TRAINER_ARGS_ENV)) or int(os.environ.get("WORLD_SIZE", "1")) > 1


def _validator(tokenizer, split: TaskSplit, rows, config: TrainingConfig, mode: str
               ) -> Callable[[Any], ValidationScore]:
    if mode == "label_accuracy":
        return label_validator(tokenizer, split, rows, config)
    encoded = encode_rows(tokenizer, split, rows, config.max_length)
    return lambda m: ValidationScore(loss=target_loss(m, encoded, config.predict_batch_size))


# Validation rows timed to estimate a whole validation's cost (one prediction batch's worth).
TIMED_VALIDATION_ROWS = 16


def _fit_budget(model, tokenizer, split: TaskSplit, encoded_train, val_rows,
                config: TrainingConfig, mode: str, budget: StepBudget,
                distributed: bool) -> StepBudget:
    """Under a time budget, the budget cut to what fits: one step's forward+backward and a
    validation of a few rows are timed (a validation costs in proportion to its rows). A
    distributed rank skips it: every rank must take the same steps."""
    if distributed or config.time_budget_s <= 0:
        return budget
    started = time.perf_counter()
    eval_s = None
    if val_rows:
        timed = val_rows[:TIMED_VALIDATION_ROWS]
        validate_some = _validator(tokenizer, split, timed, config, mode)
        validate_some(model)
        eval_s = (time.perf_counter() - started) * len(val_rows) / len(timed)
    step_s = measure_step_seconds(model, median_length_batch(encoded_train, config.batch_size),
                                  config.grad_accum)
    return fit_to_time(budget, config, step_s=step_s, eval_s=eval_s,
                       spent_s=time.perf_counter() - started)


def _continuing_budget(model, tokenizer, split: TaskSplit, encoded_train, val_rows,
                      config: TrainingConfig, mode: str, rung: RungShare | None,
                      continuation: Continuation, distributed: bool) -> StepBudget:
    """The budget of a run that continues (training_budget.continuing_budget). Afresh: the
    full run's steps are planned on the full split and fitted to the full time bound (one
    measured step), and the schedule spans them. Resumed: the schedule and the steps done are
    the checkpoint's (its trainer state), nothing is measured again."""
    n_rows = len(encoded_train)
    fraction = rung.fraction if rung is not None else None
    if continuation.checkpoint:
        state = read_trainer_state(continuation.checkpoint)
        schedule = StepBudget(steps_per_epoch=1, wanted_steps=state["max_steps"],
                              steps=state["max_steps"], limited_by="continued", eval_every=1,
                              time_budget_s=config.time_budget_s)
        return continuing_budget(schedule, fraction, state["global_step"], n_rows, config)
    full = plan_steps(rung.full_train_rows if rung is not None else n_rows, config)
    fitted = _fit_budget(model, tokenizer, split, encoded_train, val_rows, config, mode, full,
                         distributed)
    return continuing_budget(fitted, fraction, 0, n_rows, config)


def read_trainer_state(checkpoint: str) -> dict[str, int]:
    """{global_step, max_steps} of a Trainer checkpoint folder (its trainer_state.json)."""
    path = Path(checkpoint) / "trainer_state.json"
    try:
        state = json.loads(path.read_text())
        return {"global_step": int(state["global_step"]), "max_steps": int(state["max_steps"])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StrategyError(f"cannot continue from {checkpoint}: its trainer state cannot be "
                            f"read ({type(exc).__name__}: {exc})") from None


def train(model, tokenizer, split: TaskSplit, train_rows: Sequence[dict[str, Any]],
          val_rows: Sequence[dict[str, Any]], config: TrainingConfig, *, device: str, seed: int,
          output_dir: Path, on_step: Callable[[int, int, float | None], None] = lambda *a: None,
          optimizer: str | None = None, callbacks: Sequence[Any] = (),
          count_batch: Callable[[Any], None] | None = None,
          rung: RungShare | None = None,
          continuation: Continuation | None = None) -> TrainResult:
    """Fine-tune `model` (plain or peft-wrapped) in place with TRL's SFTTrainer and return what
    happened. The steps come from the data and the time budget (training_budget); the weights
    left in `model` are those of the best validation score (training_select). `count_batch`
    (the harness's RunContext.count_train_batch) is handed every training batch. `rung`: a
    race rung, given its share of the full run's steps and time bound (training_budget).
    `continuation`: a rung or final that resumes a checkpoint and/or saves one; its schedule
    spans the full run's steps and it trains only its increment (training_budget)."""
    import datasets
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    datasets.disable_progress_bars()  # progress goes through ctx.progress, not stdout

    if not train_rows:
        raise StrategyError("the train split is empty: nothing to fine-tune on")
    planned = plan_steps(len(train_rows), config, rung)  # a rung: its share of the full run's
    full_config = config
    if rung is not None:
        config = rung.scaled(config)  # its share of the time bound, the guard's included
    optimizer = optimizer or choose_optimizer(device, paged_8bit_on_cuda=False)
    precision_flags = mixed_precision(device, config.precision)
    distributed = _is_distributed()
    result = TrainResult(train_tokens=0, steps=0, epochs_run=0.0, optimizer=optimizer,
                         precision=next((k for k, on in precision_flags.items() if on), "fp32"))
    encoded_train = encode_rows(tokenizer, split, train_rows, config.max_length)
    val_rows = validation_sample(val_rows, config.max_eval_rows, seed)
    mode = selection_mode(split, config)
    if distributed and mode == "label_accuracy":
        mode = "loss"  # the Trainer's own evaluation is the one that spans the ranks
    if continuation is not None:  # the time bound is the full run's share of its increment
        # (the full run's plan counts the validations its final will make)
        budget = _continuing_budget(model, tokenizer, split, encoded_train, val_rows,
                                    full_config, mode, rung, continuation, distributed)
    else:
        budget = _fit_budget(model, tokenizer, split, encoded_train,
                             [] if rung is not None else val_rows, config, mode, planned,
                             distributed)
    if rung is not None:
        # A race rung is scored once, on the validation split at its end (bench.race): its
        # last weights are the ones scored and the ones the next rung continues. Validating
        # inside a rung of a few dozen steps would cost a few steps' time each time and keep
        # the best of weights a few updates apart.
        val_rows = []
    result.selected_by = mode if val_rows else None
    result.budget = budget.info()
    by_trainer = val_rows and mode == "loss"  # else validated by ValidateByLabels, or not at all
    val_set = (Dataset.from_list(encode_rows(tokenizer, split, val_rows, config.max_length))
               if by_trainer else None)
    eval_strategy, eval_steps = ("no", None) if val_set is None else ("steps", budget.eval_every)
    resume = continuation.checkpoint if continuation is not None else None

    args = SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.predict_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        # the budget, in steps (it overrides the epochs); a run that continues has the full
        # run's schedule and stops itself at its step (StopAtStepAndCheckpoint)
        max_steps=budget.schedule_steps or budget.steps,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio in transformers 5
        lr_scheduler_type="linear",
        weight_decay=config.weight_decay,
        optim=optimizer,
        seed=seed,
        data_seed=seed,
        eval_strategy=eval_strategy,
        eval_steps=eval_steps,
        # a resumed run validates the weights it resumes (as ValidateByLabels does)
        eval_on_start=val_set is not None and resume is not None,
        save_strategy="no",  # the best weights are kept in memory (KeepBestAndStopEarly)
        # a resumed run starts a fresh pass over its (larger) train subset instead of skipping
        # the batches the checkpoint's step would have seen in an epoch of another size
        ignore_data_skip=continuation is not None,
        # Early stopping reads the validation loss only: without this the Trainer runs a second
        # forward per evaluation batch and keeps every batch's vocabulary-sized logits.
        prediction_loss_only=True,
        logging_steps=1,
        report_to=report_to(),
        disable_tqdm=True,
        use_cpu=device != "cuda",
        **checkpointing_flag(SFTConfig, config.gradient_checkpointing),
        # Rows of similar length share a batch: less padding, dynamic padding per batch.
        train_sampling_strategy="group_by_length",
        max_length=config.max_length,
        dataset_num_proc=None,
        **precision_flags,
        **distributed_trainer_args(),
    )
    keep_best_cls, by_labels_cls, time_guard_cls, progress_cls, stop_at_cls = trainer_callbacks()
    # Never stopped before min_steps nor before one pass over the train split: on opaque labels
    # the validation accuracy can sit at chance for the whole first pass before it climbs.
    no_stop_before = max(config.min_steps, budget.steps_per_epoch)
    if val_rows and mode == "label_accuracy":
        validate = _validator(tokenizer, split, val_rows, config, mode)
        keep_best = by_labels_cls(config.patience, result, no_stop_before, validate,
                                  budget.eval_every)
    else:
        keep_best = keep_best_cls(config.patience, result, no_stop_before)
    time_guard = time_guard_cls(0.0 if distributed else
                                max(0.0, budget.time_budget_s - budget.fitting_s), result)
    stop_at = ([stop_at_cls(budget.steps, continuation.save)] if continuation is not None
               else [])  # last: it reads the stops the others set
    trainer = _loss_only_sft_trainer(SFTTrainer)(
        model=model, args=args, train_dataset=Dataset.from_list(encoded_train),
        eval_dataset=val_set, processing_class=tokenizer,
        callbacks=[keep_best, time_guard, progress_cls(on_step, result), *callbacks, *stop_at])
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
    trainer.count_batch = count_batch
    try:
        trainer.train(resume_from_checkpoint=resume)
    except (ValueError, RuntimeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StrategyError(f"training failed: {message}") from exc
    keep_best.restore_best(trainer.model)
    if trainer.args.world_size > 1:
        result.parallel = "fsdp" if getattr(trainer, "is_fsdp_enabled", False) else "ddp"
    result.steps = result.stopped_at = trainer.state.global_step
    result.stop_reason = result.stop_reason or "budget"
    result.epochs_run = round(trainer.state.epoch or 0.0, 4)
    # SFTTrainer sums the attention masks of the training batches: real tokens, no padding.
    result.train_tokens = int(getattr(trainer, "_total_train_tokens", 0))
    return result


# Set by bench.distributed in every rank of a candidate spread over several GPUs: JSON Trainer
# arguments (DDP backend, FSDP config). Strategies sit below bench in the layering, so the name
# is repeated here; tests/test_distributed.py checks the two agree.
TRAINER_ARGS_ENV = "TUNEWISE_TRAINER_ARGS"


def distributed_trainer_args() -> dict[str, Any]:
    """The launcher's Trainer arguments for this rank ({} in a one-process candidate)."""
    raw = os.environ.get(TRAINER_ARGS_ENV)
    return json.loads(raw) if raw else {}


def require_cuda_if(needed: bool, device: str, why: str) -> None:
    if needed and device != "cuda":
        raise StrategySkipped(f"needs CUDA: {why}")
