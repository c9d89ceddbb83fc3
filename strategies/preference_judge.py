"""`win-rate-judge`: the run's win-rate referee, built once per run as a stage of its own.

The preference policies (sft-chosen, dpo, rlhf) report a win rate: a judge scores each policy's
greedy answer and the base model's greedy answer to the same test prompt. The judge (a reward
model, TRL RewardTrainer, trained on the train split only) and the base model's answers are
the same for every candidate of a run, so the harness builds them once, before the candidates,
as a stage (bench.stages) with a record of its own: phases, peak memory, time and cost, kept in
stages.jsonl and shown in the report, billed to no candidate. A candidate finds the stage's
folder in ctx.options[OPTION] and only loads from it.

    the stage's folder (work/win-rate-judge/)
      judge/              the reward model, LoRA merged (config, weights, tokenizer)
      base_answers.json   the base model's greedy answers to the test prompts, in test order
      referee.json        what the judge was trained on, and which prompts were answered how

Where the train split has enough pairs it is cut into two seeded halves: the judge learns on
one, `rlhf`'s reward model on the other (the halves' seed travels with the option, so every
candidate and seed cuts the same halves) and a policy is never judged by the reward it optimised.

A strategy run outside a benchmark (a test, a notebook) has no stage: it builds the referee
itself, in its load phase (outside a run there is no record to bill).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from strategies.base import RunContext, StrategyOutput, StrategySpec, option
from strategies.preference_eval import EvalSettings, Judge, settings_from
from strategies.preference_training import (REWARD_LEARNING_RATE, base_answers,
                                            base_answers_key, capped_steps, check_rows,
                                            load_trainable, train_halves, train_reward_model)

STAGE_NAME = "win-rate-judge"
STAGE_TARGET = "strategies.preference_judge:STAGE"
OPTION = "win_rate_judge"  # RunContext.options key: {"folder", "stage", "halves_seed"}
JUDGE_FOLDER = "judge"
ANSWERS_FILE = "base_answers.json"
REFEREE_FILE = "referee.json"

# A candidate's config fields that shape its referee -> the judge config's field. The rest of
# the judge's config (adapter, batch, learning rate) is its own: a candidate tuned to another
# LoRA rank or batch size is still judged by the same referee as the others.
CARRIED_FIELDS = {"judge_steps": "max_steps", "max_epochs": "max_epochs",
                  "max_prompt_tokens": "max_prompt_tokens",
                  "max_response_tokens": "max_response_tokens", "max_new_tokens": "max_new_tokens"}


@dataclass
class JudgeConfig:
    """The referee: a reward model (LoRA by default) and the base model's greedy answers."""

    max_steps: int = option(30, help="optimizer steps of the judge (the candidates' "
                                     "judge_steps)", full=150)
    batch_size: int = option(4, help="pairs per step", full=8)
    learning_rate: float = option(REWARD_LEARNING_RATE, help="AdamW learning rate (LoRA + the "
                                                             "new reward head)")
    full_weights: bool = option(False, help="train every weight instead of a LoRA adapter")
    lora_r: int = option(16, help="LoRA rank")
    lora_alpha: int = option(32, help="LoRA scaling (alpha / r multiplies the update)")
    lora_dropout: float = option(0.05, help="dropout on the LoRA path")
    max_prompt_tokens: int = option(192, help="prompt budget, as the candidates'", full=384)
    max_response_tokens: int = option(64, help="response budget, as the candidates'", full=128)
    max_new_tokens: int = option(32, help="length of the base model's greedy answers",
                                 full=96)
    max_epochs: float = option(2.0, help="cap on passes over the judge's half", full=3.0)

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "lora_r", "max_prompt_tokens",
                     "max_response_tokens", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_epochs <= 0 or not 0 < self.learning_rate < 1:
            raise ValueError("max_epochs must be positive and learning_rate in (0, 1)")


# --------------------------------------------------------------------------- the harness's side


def stage_overrides(task: str, candidate_config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The judge config (as overrides) that a candidate with this config is judged by; None
    when it wants no win rate. Candidates with equal overrides share one stage."""
    if task != "preference" or not candidate_config.get("win_rate"):
        return None
    return {field: candidate_config[source] for source, field in CARRIED_FIELDS.items()
            if source in candidate_config}


def option_for(folder: str | Path, stage: str, seed: int) -> dict[str, Any]:
    """What a candidate is handed (ctx.options[OPTION]) to find its stage's referee."""
    return {"folder": str(folder), "stage": stage, "halves_seed": seed}


def stage_finished(folder: str | Path) -> bool:
    """The stage left a complete referee in `folder` (written last, after the judge)."""
    return (Path(folder) / REFEREE_FILE).exists()


def halves_seed(ctx: RunContext) -> int:
    """The seed the train split's halves are cut with: the referee stage's, for every candidate
    and seed of the run (else rlhf's reward half could overlap the judge's)."""
    given = ctx.options.get(OPTION)
    return int(given["halves_seed"]) if given else ctx.seed


# --------------------------------------------------------------------------- building it


def build_referee(ctx: RunContext, config: JudgeConfig, folder: Path,
                  phase=None, progress_phase: str | None = None) -> dict[str, Any]:
    """Train the judge on the judge half, answer the test prompts with the base model, and
    write both to `folder` (referee.json last). Returns referee.json's content plus the judge's
    training figures. `phase` announces load/adapt/predict/save (the stage's own phases)."""
    announce = phase or (lambda name: None)
    settings = settings_from(config)
    _, judge_rows, disjoint = train_halves(ctx.data.train, halves_seed(ctx))
    folder.mkdir(parents=True, exist_ok=True)
    announce("load")
    loaded = load_trainable(ctx, "seq-cls", config.full_weights)
    announce("adapt")
    model, tokenizer, stats = train_reward_model(
        ctx, judge_rows, config, settings, folder / "trainer", stage="win-rate judge",
        phase=progress_phase or "adapt", loaded=loaded)
    announce("predict")  # the opponent's answers: the untouched base model, greedy
    base_model, base_tokenizer = ctx.load_model(ctx.model_name, "causal-lm")
    answers = base_answers(ctx, base_model, base_tokenizer, settings,
                           phase=progress_phase or "predict")
    del base_model
    announce("save")
    model.save_pretrained(folder / JUDGE_FOLDER, safe_serialization=True)
    tokenizer.save_pretrained(folder / JUDGE_FOLDER)
    (folder / ANSWERS_FILE).write_text(json.dumps(answers), encoding="utf-8")
    referee = {
        "judge": {"kind": "reward model (TRL RewardTrainer, LoRA merged)" if not config.full_weights
                  else "reward model (TRL RewardTrainer, full weights)",
                  "base": ctx.model_name,
                  "trained_on": "judge half of the train split" if disjoint
                  else "whole train split",
                  "train_pairs": len(judge_rows),
                  "steps": capped_steps(config, len(judge_rows)),
                  "disjoint_from_rlhf_reward_model": disjoint},
        "base_answers_key": base_answers_key(ctx, settings),
        "generation": settings.generation_info(),
    }
    (folder / REFEREE_FILE).write_text(json.dumps(referee, indent=1), encoding="utf-8")
    return {**referee, **stats}


def run_stage(ctx: RunContext, config: JudgeConfig) -> StrategyOutput:
    """The stage's run: the harness measures it like a candidate, scores nothing."""
    check_rows(ctx)
    built = build_referee(ctx, config, Path(ctx.work_dir), phase=ctx.phase)
    return StrategyOutput(
        predictions=[], trainable_params=built["trainable_params"],
        total_params=built["total_params"], train_tokens=built["train_tokens"],
        artifact_path=str(Path(ctx.work_dir) / JUDGE_FOLDER),
        info={"stage": "the win-rate referee every preference policy of the run is judged by",
              "judge": built["judge"], "generation": built["generation"],
              "train_loss": built["train_loss"], "base_answers": "base model, greedy"})


STAGE = StrategySpec(
    name=STAGE_NAME, family="preference", tasks=frozenset({"preference"}),
    config_cls=JudgeConfig, run=run_stage, trainable=False,
    description="the run's win-rate referee: a reward model trained on the train split and the "
                "base model's greedy answers, built once before the preference candidates",
)


# --------------------------------------------------------------------------- a candidate's side


@dataclass
class Referee:
    """What a policy is judged with: the folder holding the judge, and the opponent's answers
    (None when they answer other prompts than this candidate predicts)."""

    folder: Path
    answers: list[str] | None
    info: dict[str, Any]

    def load_judge(self, ctx: RunContext) -> Judge:
        model, tokenizer = ctx.load_model(str(self.folder / JUDGE_FOLDER), "seq-cls", num_labels=1)
        return Judge(model, tokenizer, self.info["judge"])


def judge_config_for(ctx: RunContext, candidate_config: Any) -> JudgeConfig:
    """The judge config a run's stage would get for this candidate (bench.stages)."""
    import dataclasses

    from strategies.base import make_config

    overrides = stage_overrides("preference", dataclasses.asdict(candidate_config)) or {}
    return make_config(JudgeConfig, ctx.preset, overrides)


def referee_for(ctx: RunContext, candidate_config: Any,
                settings: EvalSettings) -> tuple[Referee | None, dict[str, Any]]:
    """The run's referee for a candidate, and what its record's info says about it.

    In a benchmark run the stage built it (ctx.options[OPTION]); if that stage did not finish
    the candidate is not judged (info says why). Outside a run (no option: bench.stages always
    hands one to a candidate that wants a win rate) the candidate builds it here."""
    given = ctx.options.get(OPTION)
    if given is None:
        folder = Path(ctx.work_dir) / STAGE_NAME
        build_referee(ctx, judge_config_for(ctx, candidate_config), folder, progress_phase="load")
        info = {"judge_stage": "built inside this candidate (it ran outside a benchmark run)"}
    else:
        folder = Path(given["folder"])
        if not stage_finished(folder):
            return None, {"win_rate_not_measured": f"the run's {given['stage']} stage did not "
                                                    "finish (its record is in stages.jsonl)"}
        info = {"judge_stage": given["stage"]}
    referee = json.loads((folder / REFEREE_FILE).read_text(encoding="utf-8"))
    answers = None
    if referee["base_answers_key"] == base_answers_key(ctx, settings):
        answers = json.loads((folder / ANSWERS_FILE).read_text(encoding="utf-8"))
    return Referee(folder, answers, referee), info
