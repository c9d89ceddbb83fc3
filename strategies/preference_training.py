"""What the preference strategies share: their common config fields, LoRA and TRL arguments,
progress reporting, parameter counts, the train-split halves and reward-model training.

The win-rate referee (a judge trained on the train split, and the base model's answers it
compares against) is built once per run as a stage of its own: strategies.preference_judge.
The policy strategies' load -> predict -> save shape is strategies.preference_policy.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from strategies.base import RunContext, StrategyError, option
from strategies.trackers import report_to
from strategies.preference_eval import (EvalSettings, conversational_pairs, fit_messages,
                                        generate_answers, render_prompt)

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
                                       "reward model trained on the train split (built once per "
                                       "run, as the win-rate-judge stage)")
    judge_steps: int = option(30, help="optimizer steps of the run's win-rate judge", full=150)

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


def load_trainable(ctx: RunContext, kind: str, full_weights: bool = False):
    """ctx.model_name as `kind`, ready for a Trainer: a model converted from GGUF (the bundled
    SmolLM2) carries a stale quantization marker that makes the Trainer refuse it.

    In float32 where whole weights train (`full_weights`, and a reward model's new score head,
    which PEFT trains as a full copy): on a GPU models otherwise load in bf16, whose spacing
    rounds small updates away (strategies.training_loop.upcast_trainable); the Trainers' bf16
    autocast still does the matmuls in bf16. A LoRA policy keeps the bf16 base (its adapters
    are float32)."""
    from strategies.training import drop_stale_gguf_quantization

    extra: dict[str, Any] = {"num_labels": 1} if kind == "seq-cls" else {}
    if full_weights or kind == "seq-cls":
        extra["dtype"] = "float32"
    model, tokenizer = ctx.load_model(ctx.model_name, kind, **extra)
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
    from strategies.training_loop import checkpointing_flag

    cuda = ctx.device == "cuda" and torch.cuda.is_available()
    return args_cls(
        output_dir=str(out_dir),
        max_steps=capped_steps(config, n_items),
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant_with_warmup", warmup_steps=2,
        logging_steps=1, save_strategy="no", report_to=report_to(), disable_tqdm=True,
        # fp32 on CPU (bf16 autocast is slow there); checkpointing trades time for memory we have
        bf16=cuda and torch.cuda.is_bf16_supported(), **checkpointing_flag(args_cls, False),
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


# --------------------------------------------------------------------------- shared caches


def digest(*parts: Any) -> str:
    """A short stable key for JSON-able parts (cache file names)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def shared_cache_dir(ctx: RunContext) -> Path:
    """Beside the candidate folders of this run (or where options say), shared by candidates."""
    root = ctx.options.get("preference_cache")
    return Path(root) if root else ctx.work_dir.parent / ".preference-shared"


def train_reward_model(ctx: RunContext, rows: Sequence[dict], config: PreferenceConfig,
                       settings: EvalSettings, out_dir: Path, stage: str = "reward model",
                       phase: str = "adapt", loaded: tuple[Any, Any] | None = None
                       ) -> tuple[Any, Any, dict[str, Any]]:
    """Train a reward model on `rows`; returns (model with LoRA merged, tokenizer, stats).

    `loaded`: the (model, tokenizer) of load_trainable(ctx, "seq-cls"), loaded in the caller's
    load phase; None loads it here (its time then counts where the caller is)."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    model, tokenizer = loaded or load_trainable(ctx, "seq-cls", config.full_weights)
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


def base_answers_key(ctx: RunContext, settings: EvalSettings) -> str:
    """Which base-model answers these are: the model, the test prompts (not the responses, whose
    order the blinded view shuffles per seed) and the generation settings."""
    return digest("base-answers", ctx.model_name, [row["prompt"] for row in ctx.data.test],
                  settings.generation_info())


def base_answers(ctx: RunContext, base_model, tokenizer, settings: EvalSettings,
                 phase: str = "predict") -> list[str]:
    """The base model's greedy answers to the test prompts (the win rate's opponent).

    `base_model` may be a PEFT model: its adapters are switched off while it answers."""
    prompts = [render_prompt(tokenizer, fit_messages(tokenizer, row["prompt"],
                                                     settings.max_prompt_tokens))
               for row in ctx.data.test]

    def report(done, total):
        ctx.progress(phase, done, total, message="base model answers (once per run)")

    if hasattr(base_model, "disable_adapter"):
        with base_model.disable_adapter():
            return generate_answers(base_model, tokenizer, prompts, settings.max_new_tokens,
                                    settings.batch_size, report)[0]
    return generate_answers(base_model, tokenizer, prompts, settings.max_new_tokens,
                            settings.batch_size, report)[0]


def cached_base_answers(ctx: RunContext, base_model, tokenizer, settings: EvalSettings) -> list[str]:
    """base_answers, generated once per run for prompts the referee stage did not answer (a
    tuning trial predicts the validation split), shared by the candidates under a file lock."""
    from filelock import FileLock

    path = shared_cache_dir(ctx) / f"base-answers-{base_answers_key(ctx, settings)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            return json.loads(path.read_text())
        answers = base_answers(ctx, base_model, tokenizer, settings, phase="load")
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
