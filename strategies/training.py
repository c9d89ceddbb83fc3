"""Shared pieces of the fine-tuning candidates (full, freeze, LoRA, QLoRA and every PEFT method).

Every trainable LM candidate runs the same recipe, so a difference between them is the method's:

    load  -> the base causal LM (NF4 for QLoRA) and the method's wrapping (peft, layer freezing)
    adapt -> TRL's SFTTrainer on prompt -> target pairs, loss on the target tokens only,
             early stopping on the validation split with the best weights kept
    predict -> classification: label log-likelihood (strategies.scoring, the prompting
               candidates' scoring); generation / qa: batched greedy decoding
    save  -> the adapter (peft save_pretrained) or the full model, in ctx.work_dir

A strategy module only says how to wrap the model:

    def build(model, config, plan):            # plan: TrainPlan (steps, device, ...)
        return get_peft_model(model, LoraConfig(...)), {"r": config.r}
    SPEC = StrategySpec("lora", "peft", ..., run=lambda ctx, cfg: run_finetune(ctx, cfg, build, ...))

`train(...)` and `predict(...)` take an explicit config and explicit rows, so tuning and
learning curves can re-run them on subsets.

CUDA path (device placement, bf16/fp16 autocast, paged 8-bit AdamW) is real code but untested
on the machines this was written on (CPU only).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from strategies.base import (
    RunContext,
    StrategyError,
    StrategyOutput,
    StrategySkipped,
    TaskSplit,
    option,
)
from strategies.prompts import label_texts, prompt_for, target_text
from strategies.trackers import report_to

ARTIFACT_MANIFEST = "tunewise_artifact.json"
LM_TASKS = frozenset({"classification", "generation", "qa"})


# --------------------------------------------------------------------------------- config


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


# --------------------------------------------------------------------------------- data


def encode_example(tokenizer, split: TaskSplit, row: dict[str, Any], max_length: int
                   ) -> dict[str, list[int]]:
    """One training sequence: prompt tokens (no loss) + target tokens + EOS (loss).

    Prompt and target are tokenised separately, exactly as label scoring and generation see
    them, so training and prediction agree token for token. EOS is appended explicitly and
    its label kept: SmolLM2's pad token *is* its EOS, so masking "padding" by token id would
    silently stop the model learning to end its answer; padding is masked by position in the
    collator instead.
    """
    prompt_ids = tokenizer(prompt_for(tokenizer, split, row), add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target_text(split, row), add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        target_ids = target_ids + [tokenizer.eos_token_id]
    target_ids = target_ids[: max(1, max_length // 2)]  # a long target may use half the window
    prompt_ids = prompt_ids[-(max_length - len(target_ids)):]  # the prompt's end matters most
    return {"input_ids": prompt_ids + target_ids,
            "labels": [-100] * len(prompt_ids) + target_ids}


def encode_rows(tokenizer, split: TaskSplit, rows: Sequence[dict[str, Any]], max_length: int):
    return [encode_example(tokenizer, split, row, max_length) for row in rows]


def target_loss(model, encoded: Sequence[dict[str, list[int]]], batch_size: int = 8) -> float:
    """Mean cross-entropy over the target tokens of `encoded` (the quantity training lowers)."""
    import torch

    device = next(model.parameters()).device
    total_loss, total_tokens = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start : start + batch_size]
            width = max(len(e["input_ids"]) for e in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, e in enumerate(batch):
                n = len(e["input_ids"])
                ids[i, :n], labels[i, :n], mask[i, :n] = (
                    torch.tensor(e["input_ids"]), torch.tensor(e["labels"]), 1)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            logits = logits[:, -width:]  # prompt tuning prepends virtual tokens' positions
            shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(device)
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                ignore_index=-100, reduction="sum")
            total_loss += float(loss)
            total_tokens += int((shift_labels != -100).sum())
    if was_training:
        model.train()
    return total_loss / max(1, total_tokens)


# --------------------------------------------------------------------------------- train


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
        report_to=report_to(),
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


# --------------------------------------------------------------------------------- predict


@dataclass
class Predictions:
    values: list[Any]
    predict_tokens: int
    mean_prompt_tokens: float


def predict(model, tokenizer, split: TaskSplit, rows: Sequence[dict[str, Any]],
            config: TrainingConfig, on_batch: Callable[[int, int], None] = lambda d, t: None
            ) -> Predictions:
    if split.task == "classification":
        return predict_labels(model, tokenizer, split, rows, config, on_batch)
    if split.task in ("generation", "qa"):
        return predict_generations(model, tokenizer, split, rows, config, on_batch)
    raise StrategyError(f"fine-tuning candidates do not predict task kind {split.task!r}")


def predict_labels(model, tokenizer, split, rows, config, on_batch) -> Predictions:
    """Label log-likelihood, the same prompt and scoring as the prompting candidates."""
    from strategies.scoring import label_logprobs

    prompts = [prompt_for(tokenizer, split, row) for row in rows]
    scores = label_logprobs(model, tokenizer, prompts, label_texts(split),
                            batch_size=config.predict_batch_size,
                            max_prompt_tokens=config.max_length, on_batch=on_batch)
    ranked = scores.mean_logp() if config.label_score == "mean" else scores.sum_logp
    values = [split.labels[j] for j in ranked.argmax(axis=1)]
    return Predictions(values, scores.prompt_tokens, scores.prompt_tokens / max(1, len(rows)))


def predict_generations(model, tokenizer, split, rows, config, on_batch) -> Predictions:
    """Greedy decoding in batches, prompts left-padded so every answer starts at one column."""
    import torch

    device = next(model.parameters()).device
    prompts = [prompt_for(tokenizer, split, row) for row in rows]
    values: list[str] = []
    prompt_tokens = generated_tokens = 0
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(prompts), config.predict_batch_size):
            batch = prompts[start : start + config.predict_batch_size]
            encoded = tokenizer(batch, add_special_tokens=False, return_tensors="pt",
                                padding=True, truncation=True, max_length=config.max_length)
            prompt_tokens += int(encoded["attention_mask"].sum())
            with torch.inference_mode():
                output = model.generate(
                    input_ids=encoded["input_ids"].to(device),
                    attention_mask=encoded["attention_mask"].to(device),
                    max_new_tokens=config.max_new_tokens, do_sample=False,
                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            new_tokens = output[:, encoded["input_ids"].shape[1]:]
            for seq in new_tokens:
                seq = seq.tolist()
                if tokenizer.eos_token_id in seq:
                    seq = seq[: seq.index(tokenizer.eos_token_id)]
                generated_tokens += len(seq) + 1
                values.append(tokenizer.decode(seq, skip_special_tokens=True).strip())
            on_batch(min(start + len(batch), len(prompts)), len(prompts))
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return Predictions(values, prompt_tokens + generated_tokens,
                       prompt_tokens / max(1, len(rows)))


# --------------------------------------------------------------------------------- params


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total): peft's own count for peft models (it counts 4-bit weights by their
    unpacked size), the same convention for plain models."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        if p.__class__.__name__ == "Params4bit":
            n *= 2  # packed two 4-bit values per byte, as peft counts them
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


# --------------------------------------------------------------------------------- artifact


def save_artifact(model, tokenizer, work_dir: Path, *, strategy: str, base_model: str,
                  split: TaskSplit, quantization: str | None, config: TrainingConfig) -> Path:
    """The adapter (peft models) or the full model, with the tokenizer and a manifest that
    `load_artifact` and `tunewise export` read."""
    is_adapter = hasattr(model, "peft_config")
    folder = Path(work_dir) / ("adapter" if is_adapter else "model")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    manifest = {
        "strategy": strategy,
        "kind": "adapter" if is_adapter else "full",
        "base_model": base_model,
        "quantization": quantization,
        "task": split.task,
        "labels": list(split.labels),
        "label_names": dict(split.label_names),
        "instruction": split.instruction,
        "config": dataclasses.asdict(config),
    }
    (folder / ARTIFACT_MANIFEST).write_text(json.dumps(manifest, indent=2))
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / ARTIFACT_MANIFEST
    if not path.exists():
        raise StrategyError(f"{folder} is not a tunewise artifact (no {ARTIFACT_MANIFEST})")
    return json.loads(path.read_text())


def load_artifact(folder: Path, load_model, *, device: str = "cpu"):
    """(model, tokenizer) from a saved artifact: the base model plus the adapter, or the full
    model. `load_model` is the harness's loader (bench.models.load_model)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manifest = read_manifest(folder)
    if manifest["kind"] == "full":
        model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if device != "cpu":
            model.to(device)
        return model, tokenizer
    from peft import PeftModel

    base, tokenizer = load_model(manifest["base_model"], "causal-lm",
                                 quantization=manifest.get("quantization"))
    drop_stale_gguf_quantization(base)
    if device != "cpu" and not manifest.get("quantization"):
        base.to(device)
    return PeftModel.from_pretrained(base, str(folder)), tokenizer


# --------------------------------------------------------------------------------- recipe


def drop_stale_gguf_quantization(model) -> None:
    """A model converted from GGUF keeps `quantization_config: {quant_method: gguf}` in its
    config although transformers dequantised its weights to float on load; the Trainer then
    refuses to train it ("GGUF does not support training"). The weights are plain tensors, so
    the stale marker is removed (and not written into saved artifacts)."""
    quant = getattr(model.config, "quantization_config", None)
    method = quant.get("quant_method") if isinstance(quant, dict) else getattr(quant, "quant_method", None)
    if str(getattr(method, "value", method)).lower() != "gguf":
        return
    del model.config.quantization_config
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    model.is_quantized = False


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


def run_finetune(ctx: RunContext, config: TrainingConfig,
                 build: Callable[[Any, TrainingConfig, TrainPlan], tuple[Any, dict[str, Any]]],
                 *, strategy: str, quantization: str | None = None,
                 paged_8bit_on_cuda: bool = False,
                 callbacks: Callable[[Any], Sequence[Any]] = lambda model: ()) -> StrategyOutput:
    """load -> wrap (the method) -> train -> predict -> save. The harness times each phase."""
    split = ctx.data
    if split.task not in LM_TASKS:
        raise StrategyError(f"{strategy} supports {', '.join(sorted(LM_TASKS))}, "
                            f"not {split.task!r}")
    mixed_precision(ctx.device, config.precision)  # a GPU-only setting skips before loading
    peft_args = read_peft_args(ctx.options)  # and a malformed --peft-args fails before it
    seed = config.seed if config.seed >= 0 else ctx.seed
    from transformers import set_seed

    set_seed(seed)
    ctx.phase("load")
    model, tokenizer = ctx.load_model(ctx.model_name, "causal-lm", quantization=quantization)
    drop_stale_gguf_quantization(model)
    if ctx.device != "cpu" and quantization is None:
        model.to(ctx.device)
    plan = TrainPlan(total_steps=total_optimizer_steps(len(split.train), config),
                     device=ctx.device, seed=seed, train_rows=len(split.train),
                     peft_args=peft_args)
    set_seed(seed)  # adapters initialise randomly: same seed, same start
    model, method_info = build(model, config, plan)
    if plan.peft_args and hasattr(model, "peft_config"):
        method_info = {**method_info, "peft_args": plan.peft_args}
    ctx.count_model(model)  # the harness counts the parameters itself, as they train
    trainable, total = count_parameters(model)
    if trainable == 0:
        raise StrategyError(f"{strategy}: no trainable parameters after wrapping the model")

    ctx.phase("adapt")
    optimizer = choose_optimizer(ctx.device, paged_8bit_on_cuda=paged_8bit_on_cuda)
    result = train(model, tokenizer, split, split.train, split.validation, config,
                   device=ctx.device, seed=seed, output_dir=Path(ctx.work_dir) / "trainer",
                   on_step=lambda step, total_steps, loss: ctx.progress(
                       "adapt", step, total_steps, loss),
                   optimizer=optimizer, callbacks=callbacks(model),
                   count_batch=ctx.count_train_batch)

    ctx.phase("predict")
    predictions = predict(model, tokenizer, split, split.test, config,
                          on_batch=lambda done, n: ctx.progress("predict", done, n))

    ctx.phase("save")
    artifact = save_artifact(model, tokenizer, ctx.work_dir, strategy=strategy,
                             base_model=ctx.model_name, split=split,
                             quantization=quantization, config=config)
    return StrategyOutput(
        predictions=predictions.values,
        trainable_params=trainable,
        total_params=total,
        train_tokens=result.train_tokens,
        predict_tokens=predictions.predict_tokens,
        mean_prompt_tokens=predictions.mean_prompt_tokens,
        artifact_path=str(artifact),
        info={**result.info(), "method": method_info, "seed": seed,
              "device": ctx.device, "quantization": quantization},
        answer=lambda rows: predict(model, tokenizer, split, rows, config).values,
    )


def read_peft_args(options: dict[str, Any]) -> dict[str, Any]:
    """--peft-args from RunContext.options: a JSON object (text from the CLI, a dict from code)."""
    raw = options.get("peft_args") or {}
    if isinstance(raw, dict):
        return dict(raw)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StrategyError(f"--peft-args is not valid JSON ({exc.msg} at char {exc.pos}): "
                            f"{raw!r}") from None
    if not isinstance(parsed, dict):
        raise StrategyError(f"--peft-args must be a JSON object of keyword arguments, got {raw!r}")
    return parsed


def peft_config_for(config_cls, method: str, peft_args: dict[str, Any], **settings):
    """`config_cls(task_type=CAUSAL_LM, **settings)` with --peft-args on top: the method's
    settings come from its tunewise config, and the user's peft arguments (peft's own names,
    e.g. lora_dropout, init_lora_weights) override them. An argument the config does not take is
    a StrategyError that lists the ones it does."""
    from peft import TaskType

    try:
        return config_cls(task_type=TaskType.CAUSAL_LM, **{**settings, **peft_args})
    except TypeError as exc:
        accepted = sorted(f.name for f in dataclasses.fields(config_cls)
                          if f.name not in ("peft_type", "task_type", "auto_mapping"))
        raise StrategyError(f"{method}: {exc}. Accepted arguments: {', '.join(accepted)}") from None
    except ValueError as exc:
        raise StrategyError(f"{method}: {exc}") from None


def apply_peft(model, peft_config, method: str):
    """get_peft_model with a user-facing error (bad target module, unsupported model, ...)."""
    from peft import get_peft_model

    try:
        return get_peft_model(model, peft_config)
    except (ValueError, TypeError, NotImplementedError, KeyError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StrategyError(f"cannot apply {method} to this model: {message}") from None
