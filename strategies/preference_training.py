"""What the preference strategies share: their common config fields, LoRA and TRL arguments,
progress reporting, parameter counts, the train-split halves, reward-model training and the
win-rate judge.

The judge is a reward model trained on the train split only. Where the split has enough pairs,
train is cut into two disjoint halves (seeded): the `rlhf` reward model learns on the "policy"
half, the judge on the "judge" half, so the policy is never scored by the model it optimised
against. The judge and the base model's answers are cached next to the candidate folders of a
run, so every candidate of a run is judged by the same model against the same answers and only
the first one pays for building them (recorded in its info).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from strategies.base import RunContext, StrategyError, option
from strategies.trackers import report_to
from strategies.preference_eval import (EvalSettings, Judge, conversational_pairs,
                                        fit_messages, generate_answers, render_prompt,
                                        settings_from)

# Below this many pairs in each half, the judge is trained on the whole train split instead.
MIN_PAIRS_PER_HALF = 8
# A reward model's LoRA and new scalar head learn faster than a policy's LoRA.
REWARD_LEARNING_RATE = 1e-4


@dataclass
class PreferenceConfig:
    """Fields every preference strategy has (LoRA by default, budgets sized for a CPU)."""

    max_steps: int = option(24, help="optimizer steps; more adapts further and costs time", full=150)
    batch_size: int = option(4, help="pairs (or prompts) per step; larger is steadier and slower",
                             full=8)
    learning_rate: float = option(
        5e-5, help="AdamW learning rate; LoRA wants larger values than full weights")
    full_weights: bool = option(False, help="train every weight instead of a LoRA adapter "
                                             "(more memory, slower, bigger artifact)")
    lora_r: int = option(16, help="LoRA rank; higher increases capacity and memory")
    lora_alpha: int = option(32, help="LoRA scaling (alpha / r multiplies the update)")
    lora_dropout: float = option(0.05, help="dropout on the LoRA path")
    max_prompt_tokens: int = option(192, help="prompt budget; oldest turns are dropped beyond it",
                                    full=384)
    max_response_tokens: int = option(64, help="response budget for training and scoring",
                                      full=128)
    max_new_tokens: int = option(32, help="greedy answer length for the win rate (and for "
                                          "answers sampled in rlhf training)", full=96)
    max_epochs: float = option(2.0, help="cap: no more than this many passes over the train "
                                         "split, whatever the step budget (small data)",
                               full=3.0)
    win_rate: bool = option(True, help="judge greedy answers against the base model's with a "
                                       "reward model trained on the train split")
    judge_steps: int = option(30, help="optimizer steps of the win-rate judge", full=150)

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "lora_r", "max_prompt_tokens",
                     "max_response_tokens", "max_new_tokens", "judge_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_epochs <= 0:
            raise ValueError(f"max_epochs must be positive, got {self.max_epochs}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")


def load_trainable(ctx: RunContext, kind: str):
    """ctx.model_name as `kind`, ready for a Trainer: a model converted from GGUF (the bundled
    SmolLM2) carries a stale quantization marker that makes the Trainer refuse it."""
    from strategies.training import drop_stale_gguf_quantization

    model, tokenizer = ctx.load_model(ctx.model_name, kind, **({"num_labels": 1}
                                                                if kind == "seq-cls" else {}))
    drop_stale_gguf_quantization(model)
    return model, tokenizer


def check_rows(ctx: RunContext) -> None:
    if ctx.data.task != "preference":
        raise StrategyError(f"this strategy needs preference pairs, got a {ctx.data.task} task")
    if not ctx.data.train:
        raise StrategyError("the train split has no preference pairs")


def lora_config(config: PreferenceConfig, task_type: str):
    """LoRA on every linear projection (QLoRA's finding: all layers matter), or None for full."""
    if config.full_weights:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules="all-linear",
                      task_type=task_type)


def capped_steps(config: PreferenceConfig, n_items: int) -> int:
    """config.max_steps, but at most max_epochs passes over n_items (batch_size per step)."""
    per_epoch = math.ceil(max(1, n_items) / config.batch_size)
    return max(1, min(config.max_steps, math.ceil(config.max_epochs * per_epoch)))


def trainer_args(args_cls, config: PreferenceConfig, ctx: RunContext, out_dir: Path,
                 n_items: int, **extra):
    """TRL config with the CPU-friendly choices every preference trainer shares; steps are
    config.max_steps capped at config.max_epochs passes over n_items."""
    import torch

    from strategies.training import distributed_trainer_args

    cuda = ctx.device == "cuda" and torch.cuda.is_available()
    return args_cls(
        output_dir=str(out_dir),
        max_steps=capped_steps(config, n_items),
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant_with_warmup", warmup_steps=2,
        logging_steps=1, save_strategy="no", report_to=report_to(), disable_tqdm=True,
        # fp32 on CPU (bf16 autocast is slow there); checkpointing trades time for memory we have
        bf16=cuda and torch.cuda.is_bf16_supported(), gradient_checkpointing=False,
        use_cpu=not cuda, seed=ctx.seed, data_seed=ctx.seed, dataloader_num_workers=0,
        **{**extra, **distributed_trainer_args()},
    )


def progress_callback(ctx: RunContext, total_steps: int, stage: str, phase: str = "adapt"):
    """Forwards each logged training step (with its loss) to the harness's progress display."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            ctx.progress(phase, state.global_step, total_steps, loss=loss, message=stage)

    return _Progress()


def quiet(trainer):
    """Drop the callback that prints every log dict to stdout; progress goes through ctx."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def param_counts(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def pair_tokens(tokenizer, pairs: Sequence[dict]) -> int:
    """Tokens of prompt + chosen + prompt + rejected for TRL conversational pairs."""
    from strategies.preference_eval import render_conversation

    total = 0
    for pair in pairs:
        for side in ("chosen", "rejected"):
            text = render_conversation(tokenizer, pair["prompt"], pair[side][0]["content"])
            total += len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return total


def steps_tokens(per_example_tokens: float, steps: int, batch_size: int) -> int:
    """Tokens seen while training: steps x batch x mean tokens per example."""
    return int(per_example_tokens * steps * batch_size)


# --------------------------------------------------------------------------- train halves


def train_halves(rows: Sequence[dict], seed: int) -> tuple[list[dict], list[dict], bool]:
    """(policy half, judge half, disjoint). Too few pairs for two halves: both are all rows."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    middle = len(order) // 2
    if middle < MIN_PAIRS_PER_HALF:
        return list(rows), list(rows), False
    return [rows[i] for i in order[:middle]], [rows[i] for i in order[middle:]], True


# --------------------------------------------------------------------------- judge and cache


def _digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def shared_cache_dir(ctx: RunContext) -> Path:
    """Beside the candidate folders of this run (or where options say), shared by candidates."""
    root = ctx.options.get("preference_cache")
    return Path(root) if root else ctx.work_dir.parent / ".preference-shared"


def load_or_train_judge(ctx: RunContext, config: PreferenceConfig,
                        settings: EvalSettings) -> tuple[Judge, dict[str, Any]]:
    """The run's win-rate judge; trained once per run (under a file lock), then loaded.

    Returns the judge and what this candidate spent on it (for its info)."""
    from filelock import FileLock

    _, judge_rows, disjoint = train_halves(ctx.data.train, ctx.seed)
    key = _digest("judge", ctx.model_name, judge_rows, ctx.seed, config.judge_steps, config.max_epochs,
                  config.full_weights, config.lora_r, settings.max_prompt_tokens,
                  settings.max_response_tokens)
    folder = shared_cache_dir(ctx) / f"judge-{key}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    spent: dict[str, Any] = {"judge_trained_here": False}
    with FileLock(str(folder) + ".lock"):
        if not (folder / "config.json").exists():
            ctx.progress("load", message="training the win-rate judge (once per run)")
            started = time.perf_counter()
            judge_config = _judge_config(config)
            model, tokenizer, _ = train_reward_model(ctx, judge_rows, judge_config, settings,
                                                     folder.with_name(folder.name + ".work"),
                                                     stage="win-rate judge", phase="load")
            model.save_pretrained(folder, safe_serialization=True)
            tokenizer.save_pretrained(folder)
            spent = {"judge_trained_here": True,
                     "judge_train_s": round(time.perf_counter() - started, 1)}
    model, tokenizer = ctx.load_model(str(folder), "seq-cls", num_labels=1)
    description = {
        "kind": "reward model (TRL RewardTrainer, LoRA merged)" if not config.full_weights
        else "reward model (TRL RewardTrainer, full weights)",
        "base": ctx.model_name,
        "trained_on": "judge half of the train split" if disjoint else "whole train split",
        "train_pairs": len(judge_rows),
        "steps": capped_steps(_judge_config(config), len(judge_rows)),
        "disjoint_from_rlhf_reward_model": disjoint,
        "cache": folder.name,
    }
    return Judge(model, tokenizer, description), spent


def _judge_config(config: PreferenceConfig) -> PreferenceConfig:
    """The judge is a reward model: the `reward-model` candidate's learning rate, the policy's
    budgets and adapter."""
    return PreferenceConfig(max_steps=config.judge_steps, batch_size=config.batch_size,
                            learning_rate=REWARD_LEARNING_RATE,
                            full_weights=config.full_weights, lora_r=config.lora_r,
                            lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                            max_prompt_tokens=config.max_prompt_tokens,
                            max_response_tokens=config.max_response_tokens,
                            max_epochs=config.max_epochs, win_rate=False)


def train_reward_model(ctx: RunContext, rows: Sequence[dict], config: PreferenceConfig,
                       settings: EvalSettings, out_dir: Path, stage: str = "reward model",
                       phase: str = "adapt") -> tuple[Any, Any, dict[str, Any]]:
    """Train a reward model on `rows`; returns (model with LoRA merged, tokenizer, stats)."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    model, tokenizer = load_trainable(ctx, "seq-cls")
    model.config.pad_token_id = tokenizer.pad_token_id
    pairs = conversational(tokenizer, rows, settings)
    # The filter in RewardTrainer drops pairs over max_length; our budget keeps every pair in.
    max_length = settings.max_prompt_tokens + settings.max_response_tokens + 16
    args = trainer_args(RewardConfig, config, ctx, out_dir, len(pairs), max_length=max_length,
                        center_rewards_coefficient=0.01)
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(pairs),
                            processing_class=tokenizer,
                            peft_config=lora_config(config, "SEQ_CLS"),
                            callbacks=[progress_callback(ctx, args.max_steps, stage, phase)])
    quiet(trainer)
    trainable, total = param_counts(trainer.model)
    result = trainer.train()
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.eval()
    per_pair = pair_tokens(tokenizer, pairs) / max(1, len(pairs))
    stats = {"trainable_params": trainable, "total_params": total,
             "train_tokens": logged_tokens(trainer, int(per_pair * args.max_steps * config.batch_size)),
             "train_loss": float(result.training_loss), "train_pairs": len(pairs), "steps": args.max_steps}
    return model, tokenizer, stats


def cached_base_answers(ctx: RunContext, base_model, tokenizer, settings: EvalSettings) -> list[str]:
    """The base model's greedy answers to the test prompts, generated once per run.

    `base_model` may be a PEFT model: its adapters are switched off while it answers."""
    from filelock import FileLock

    key = _digest("base-answers", ctx.model_name, ctx.data.test, settings.generation_info())
    path = shared_cache_dir(ctx) / f"base-answers-{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            return json.loads(path.read_text())
        prompts = [render_prompt(tokenizer, fit_messages(tokenizer, row["prompt"],
                                                         settings.max_prompt_tokens))
                   for row in ctx.data.test]

        def report(done, total):
            ctx.progress("predict", done, total, message="base model answers (once per run)")

        if hasattr(base_model, "disable_adapter"):
            with base_model.disable_adapter():
                answers, _ = generate_answers(base_model, tokenizer, prompts,
                                              settings.max_new_tokens, settings.batch_size, report)
        else:
            answers, _ = generate_answers(base_model, tokenizer, prompts,
                                          settings.max_new_tokens, settings.batch_size, report)
        path.write_text(json.dumps(answers))
        return answers


def conversational(tokenizer, rows: Sequence[dict], settings: EvalSettings) -> list[dict]:
    pairs = conversational_pairs(tokenizer, rows, settings)
    return [p for p in pairs if p["chosen"][0]["content"] and p["rejected"][0]["content"]]


def logged_tokens(trainer, fallback: int) -> int:
    """Tokens TRL counted while training (its `num_tokens` log), else our estimate, which is
    noted as one so the record does not pass it off as a count."""
    from strategies.base import note_estimate

    for entry in reversed(trainer.state.log_history):
        if "num_tokens" in entry:
            return int(float(entry["num_tokens"]))
    note_estimate("train_tokens", f"{type(trainer).__name__} logged no token count; the "
                                  f"strategy's estimate {fallback} stands in for it")
    return fallback


# --------------------------------------------------------------------------- policy run shape


@dataclass
class PolicySetup:
    """What every policy strategy has after its load phase."""

    model: Any
    tokenizer: Any
    settings: EvalSettings
    base_answers: list[str] | None  # the win-rate opponent, generated before any training
    judge_spent: dict[str, Any]


def load_policy(ctx: RunContext, config: PreferenceConfig) -> PolicySetup:
    """Load phase: the base model, and (for the win rate) the run's judge and the base model's
    greedy answers, both built before training so the opponent is the untouched base model."""
    check_rows(ctx)
    settings = settings_from(config)
    ctx.phase("load")
    base_answers, spent = None, {}
    if config.win_rate:
        judge, spent = load_or_train_judge(ctx, config, settings)
        del judge  # reloaded for prediction; not held in memory while training
    model, tokenizer = load_trainable(ctx, "causal-lm")
    if config.win_rate:
        base_answers = cached_base_answers(ctx, model, tokenizer, settings)
    return PolicySetup(model, tokenizer, settings, base_answers, spent)


def finish_policy(ctx: RunContext, config: PreferenceConfig, setup: PolicySetup, model,
                  trainable: int, total: int, train_tokens: int, info: dict[str, Any]):
    """Predict and save phases shared by sft-chosen, dpo and rlhf."""
    from strategies.base import StrategyOutput
    from strategies.preference_eval import evaluate_policy_full

    ctx.phase("predict")
    judge = load_or_train_judge(ctx, config, setup.settings)[0] if config.win_rate else None
    evaluation = evaluate_policy_full(ctx, model, setup.tokenizer, setup.base_answers, judge,
                                      setup.settings)
    ctx.phase("save")
    artifact = ctx.work_dir / ("adapter" if hasattr(model, "peft_config") else "model")
    model.save_pretrained(artifact, safe_serialization=True)
    setup.tokenizer.save_pretrained(artifact)
    return StrategyOutput(
        predictions=evaluation.predictions, trainable_params=trainable, total_params=total,
        train_tokens=train_tokens, predict_tokens=evaluation.predict_tokens,
        mean_prompt_tokens=evaluation.mean_prompt_tokens, artifact_path=str(artifact),
        info={**info, **evaluation.info, **setup.judge_spent,
              "adapter": "full weights" if config.full_weights else f"LoRA r={config.lora_r}"},
    )
