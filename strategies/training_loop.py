"""The training loop of the fine-tuning candidates: TRL's SFTTrainer with the loss on the
target tokens, early stopping on the validation split with the best weights kept in memory,
optimizer and precision choices, and the Trainer arguments a distributed launch sets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from strategies.base import StrategyError, StrategySkipped, TaskSplit
from strategies.training_config import TrainingConfig, total_optimizer_steps
from strategies.training_data import encode_rows


@dataclass
class TrainResult:
    train_tokens: int  # real (non-pad) tokens in the training batches, all epochs
    steps: int  # optimizer steps taken
    epochs_run: float
    optimizer: str
    best_step: int | None = None  # step of the kept weights (best validation loss)
    best_epoch: float | None = None
    best_val_loss: float | None = None
    stopped_early: bool = False
    # How the Trainer wrapped the model across processes: None (one process), "ddp", "fsdp"
    parallel: str | None = None
    val_curve: list[dict[str, float]] = field(default_factory=list)  # [{step, epoch, loss}]
    train_curve: list[dict[str, float]] = field(default_factory=list)  # [{step, loss}]

    def info(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _trainer_callbacks():
    """Callback classes, built lazily so importing this module stays free of transformers."""
    from transformers import TrainerCallback

    class KeepBestAndStopEarly(TrainerCallback):
        """Keep a CPU copy of the trainable weights at the best validation loss, restore them at
        the end, and stop after `patience` evaluations without improvement.

        In memory instead of transformers' checkpoint folders: no disk writes of full models per
        evaluation, and only the trainable tensors are copied (small for PEFT methods)."""

        def __init__(self, patience: int, result: TrainResult):
            self.patience, self.result = patience, result
            self.best_state: dict[str, Any] | None = None
            self.bad_evals = 0

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            loss = (metrics or {}).get("eval_loss")
            if loss is None or model is None:
                return
            self.result.val_curve.append({"step": state.global_step,
                                          "epoch": round(state.epoch or 0.0, 4),
                                          "loss": float(loss)})
            if self.result.best_val_loss is None or loss < self.result.best_val_loss:
                self.result.best_val_loss = float(loss)
                self.result.best_step = state.global_step
                self.result.best_epoch = round(state.epoch or 0.0, 4)
                self.best_state = {name: p.detach().to("cpu", copy=True)
                                   for name, p in model.named_parameters() if p.requires_grad}
                self.bad_evals = 0
            else:
                self.bad_evals += 1
                if self.patience and self.bad_evals >= self.patience:
                    self.result.stopped_early = True
                    control.should_training_stop = True

        def restore_best(self, model) -> None:
            if self.best_state is None:
                return
            import torch

            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in self.best_state:
                        p.copy_(self.best_state[name].to(p.device, p.dtype))

    class ReportProgress(TrainerCallback):
        def __init__(self, on_step: Callable[[int, int, float | None], None], result: TrainResult):
            self.on_step, self.result = on_step, result

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                loss = float(logs["loss"])
                self.result.train_curve.append({"step": state.global_step, "loss": loss})
                self.on_step(state.global_step, state.max_steps, loss)

    return KeepBestAndStopEarly, ReportProgress


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


def train(model, tokenizer, split: TaskSplit, train_rows: Sequence[dict[str, Any]],
          val_rows: Sequence[dict[str, Any]], config: TrainingConfig, *, device: str, seed: int,
          output_dir: Path, on_step: Callable[[int, int, float | None], None] = lambda *a: None,
          optimizer: str | None = None, callbacks: Sequence[Any] = (),
          count_batch: Callable[[Any], None] | None = None) -> TrainResult:
    """Fine-tune `model` (plain or peft-wrapped) in place with TRL's SFTTrainer and return what
    happened. The weights left in `model` are those of the best validation loss. `count_batch`
    (the harness's RunContext.count_train_batch) is handed every training batch."""
    import datasets
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    datasets.disable_progress_bars()  # progress goes through ctx.progress, not stdout

    if not train_rows:
        raise StrategyError("the train split is empty: nothing to fine-tune on")
    optimizer = optimizer or choose_optimizer(device, paged_8bit_on_cuda=False)
    precision_flags = mixed_precision(device, config.precision)
    train_set = Dataset.from_list(encode_rows(tokenizer, split, train_rows, config.max_length))
    val_set = (Dataset.from_list(encode_rows(tokenizer, split, val_rows, config.max_length))
               if val_rows else None)
    if val_set is None:
        eval_strategy, eval_steps = "no", None
    elif config.eval_every:
        eval_strategy, eval_steps = "steps", config.eval_every
    else:
        eval_strategy, eval_steps = "epoch", None

    args = SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.predict_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        # The Trainer lets max_steps override the epochs; the config means whichever ends first.
        max_steps=total_optimizer_steps(len(train_rows), config),
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio in transformers 5
        lr_scheduler_type="linear",
        weight_decay=config.weight_decay,
        optim=optimizer,
        seed=seed,
        data_seed=seed,
        eval_strategy=eval_strategy,
        eval_steps=eval_steps,
        save_strategy="no",  # the best weights are kept in memory (KeepBestAndStopEarly)
        # Early stopping reads the validation loss only: without this the Trainer runs a second
        # forward per evaluation batch and keeps every batch's vocabulary-sized logits.
        prediction_loss_only=True,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        use_cpu=device != "cuda",
        activation_checkpointing=config.gradient_checkpointing,
        # Rows of similar length share a batch: less padding, dynamic padding per batch.
        train_sampling_strategy="group_by_length",
        max_length=config.max_length,
        dataset_num_proc=None,
        **precision_flags,
        **distributed_trainer_args(),
    )
    result = TrainResult(train_tokens=0, steps=0, epochs_run=0.0, optimizer=optimizer)
    keep_best_cls, progress_cls = _trainer_callbacks()
    keep_best = keep_best_cls(config.patience, result)
    trainer = _loss_only_sft_trainer(SFTTrainer)(
        model=model, args=args, train_dataset=train_set, eval_dataset=val_set,
        processing_class=tokenizer, callbacks=[keep_best, progress_cls(on_step, result), *callbacks])
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
    trainer.count_batch = count_batch
    try:
        trainer.train()
    except (ValueError, RuntimeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StrategyError(f"training failed: {message}") from exc
    keep_best.restore_best(trainer.model)
    if trainer.args.world_size > 1:
        result.parallel = "fsdp" if getattr(trainer, "is_fsdp_enabled", False) else "ddp"
    result.steps = trainer.state.global_step
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
    import os

    raw = os.environ.get(TRAINER_ARGS_ENV)
    return json.loads(raw) if raw else {}


def require_cuda_if(needed: bool, device: str, why: str) -> None:
    if needed and device != "cuda":
        raise StrategySkipped(f"needs CUDA: {why}")
