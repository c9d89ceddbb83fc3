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

The pieces live in modules by theme: training_config (TrainingConfig, TrainPlan),
training_data (prompt -> target sequences), training_loop (the Trainer, early stopping),
training_predict (label scoring, decoding), training_artifact (saving, loading, counting).
This module holds the recipe and re-exports their public names.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Sequence

from strategies.base import RunContext, StrategyError, StrategyOutput
from strategies.prompts import label_names_info
from strategies.training_artifact import (ARTIFACT_MANIFEST, count_parameters,
                                          drop_stale_gguf_quantization, load_artifact,
                                          read_manifest, save_artifact)
from strategies.training_budget import Continuation, rung_share, total_optimizer_steps
from strategies.training_config import LM_TASKS, TrainingConfig, TrainPlan
from strategies.training_data import encode_example, encode_rows, target_loss
from strategies.training_callbacks import TrainResult
from strategies.training_loop import (TRAINER_ARGS_ENV, choose_optimizer,
                                      distributed_trainer_args, mixed_precision, require_cuda_if,
                                      train, upcast_trainable)
from strategies.training_predict import Predictions, predict

# The modules behind this one, by theme; the names below are re-exported so a strategy or a
# caller imports the fine-tuning recipe from one place.
__all__ = [
    "ARTIFACT_MANIFEST", "LM_TASKS", "TRAINER_ARGS_ENV", "Predictions", "TrainPlan",
    "TrainResult", "TrainingConfig", "apply_peft", "choose_optimizer", "count_parameters",
    "distributed_trainer_args", "drop_stale_gguf_quantization", "encode_example", "encode_rows",
    "load_artifact", "mixed_precision", "peft_config_for", "predict", "read_manifest",
    "read_peft_args", "require_cuda_if", "run_finetune", "save_artifact", "target_loss",
    "total_optimizer_steps", "train",
]


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
    continuation = continuation_for(ctx)  # a missing checkpoint fails before the load
    ctx.phase("load")
    model, tokenizer = ctx.load_model(ctx.model_name, "causal-lm", quantization=quantization)
    drop_stale_gguf_quantization(model)
    if ctx.device != "cpu" and quantization is None:
        model.to(ctx.device)
    # a race rung trains on its share of the full run's budget (training_budget.RungShare)
    rung = rung_share(ctx.budget_fraction, ctx.full_train_rows, len(split.train))
    plan = TrainPlan(total_steps=total_optimizer_steps(len(split.train), config, rung),
                     device=ctx.device, seed=seed, train_rows=len(split.train),
                     peft_args=peft_args)
    set_seed(seed)  # adapters initialise randomly: same seed, same start
    model, method_info = build(model, config, plan)
    trainable_dtype = upcast_trainable(model)
    if plan.peft_args and hasattr(model, "peft_config"):
        method_info = {**method_info, "peft_args": plan.peft_args}
    ctx.count_model(model)  # the harness counts the parameters itself, as they train
    trainable, total = count_parameters(model)
    if trainable == 0:
        raise StrategyError(f"{strategy}: no trainable parameters after wrapping the model")

    ctx.phase("adapt")
    optimizer = choose_optimizer(ctx.device, paged_8bit_on_cuda=paged_8bit_on_cuda)
    result = train(model, tokenizer, split, split.train, split.validation, config,
                   device=ctx.device, seed=seed, output_dir=Path(ctx.work_dir) / TRAINER_DIR,
                   on_step=lambda step, total_steps, loss: ctx.progress(
                       "adapt", step, total_steps, loss),
                   optimizer=optimizer, callbacks=callbacks(model),
                   count_batch=ctx.count_train_batch, rung=rung,
                   continuation=continuation)

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
              "device": ctx.device, "quantization": quantization,
              "trainable_dtype": trainable_dtype,
              **label_names_info(split, ctx.options)},
        answer=lambda rows: predict(model, tokenizer, split, rows, config).values,
    )


# Where run_finetune's Trainer writes (its checkpoints too), under the candidate's work_dir.
TRAINER_DIR = "trainer"


def continuation_for(ctx: RunContext) -> Continuation | None:
    """The Continuation a race asks for (RunContext.resume_from / save_checkpoint): the latest
    Trainer checkpoint under the previous rung's work_dir (bench.child hands a multi-seed
    job's seed folder), or None when the run neither resumes nor saves."""
    if not ctx.resume_from and not ctx.save_checkpoint:
        return None
    checkpoint = None
    if ctx.resume_from:
        from transformers.trainer_utils import get_last_checkpoint

        folder = Path(ctx.resume_from) / TRAINER_DIR
        checkpoint = get_last_checkpoint(str(folder)) if folder.is_dir() else None
        if not checkpoint:
            raise StrategyError(f"cannot continue: no training checkpoint under "
                                f"{ctx.resume_from} (the previous rung wrote none)")
    return Continuation(save=ctx.save_checkpoint, checkpoint=checkpoint)


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
