"""`rlhf`: the RLHF pipeline (Ouyang et al. 2022) on preference pairs: a reward model trained on
the train split, then online policy optimisation against it with a KL penalty to the reference.

    tunewise bench data/ --strategies rlhf
    tunewise bench data/ --strategies rlhf --set algorithm=rloo

Algorithm, named truthfully: TRL 1.x ships no PPOTrainer. The policy is optimised with TRL's
GRPOTrainer (default) or RLOOTrainer: for each prompt the policy samples `num_generations`
answers, the reward model scores them, and each answer's advantage is its reward relative to
its group (GRPO: minus the group mean, over the group std; RLOO: minus the mean of the others).
The update is PPO's clipped surrogate objective (clip `epsilon`) with a KL penalty `kl_beta`
to the reference policy, but with no learned value network — this is not PPO with a critic.
With LoRA the reference is the base model with the adapter switched off.

Where the train split has enough pairs, the reward model learns on one seeded half and the
win-rate judge on the other, so the policy is never judged by the reward it optimised.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from strategies.base import RunContext, StrategyOutput, StrategySpec, option
from strategies.preference_eval import fit_messages
from strategies.preference_judge import halves_seed
from strategies.preference_policy import finish_policy, load_policy
from strategies.preference_training import (PreferenceConfig, logged_tokens, lora_config,
                                            param_counts, progress_callback, quiet,
                                            train_halves, trainer_args)


@dataclass
class Config(PreferenceConfig):
    algorithm: str = option("grpo", help="online policy optimiser from TRL: grpo (GRPOTrainer) "
                                         "or rloo (RLOOTrainer); both PPO-clipped, no critic",
                            choices=("grpo", "rloo"))
    max_steps: int = option(12, help="policy optimisation steps (each samples, scores and "
                                     "updates); the slow part on a CPU", full=100)
    learning_rate: float = option(5e-5, help="AdamW learning rate of the policy (LoRA)")
    reward_steps: int = option(30, help="reward model training steps", full=150)
    reward_learning_rate: float = option(1e-4, help="reward model learning rate")
    num_generations: int = option(4, help="answers sampled per prompt (the group that sets "
                                          "each answer's baseline); more is steadier and slower")
    prompts_per_step: int = option(2, help="prompts per optimisation step")
    kl_beta: float = option(0.04, help="KL penalty to the reference policy; higher stays "
                                       "closer to the base model")
    epsilon: float = option(0.2, help="PPO clip range of the probability ratio")
    temperature: float = option(1.0, help="sampling temperature while training")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_generations < 2:
            raise ValueError("num_generations must be at least 2 (advantages are relative "
                             "to the group)")
        for name in ("reward_steps", "prompts_per_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.kl_beta < 0 or self.temperature <= 0:
            raise ValueError("kl_beta must be >= 0 and temperature > 0")


def run(ctx: RunContext, config: Config) -> StrategyOutput:
    from datasets import Dataset

    from strategies.reward_model import train_reward_model

    setup = load_policy(ctx, config)
    ctx.phase("adapt")
    reward_rows, _, disjoint = train_halves(ctx.data.train, halves_seed(ctx))
    reward_config = replace(config, max_steps=config.reward_steps,
                            learning_rate=config.reward_learning_rate)
    reward_model, reward_tokenizer, reward_stats = train_reward_model(
        ctx, reward_rows, reward_config, setup.settings, ctx.work_dir / "reward-trainer",
        stage="rlhf reward model")

    trainer_cls, args_cls = _trainer_classes(config.algorithm)
    prompts = [{"prompt": fit_messages(setup.tokenizer, row["prompt"],
                                       setup.settings.max_prompt_tokens)}
               for row in ctx.data.train]
    args = trainer_args(
        args_cls, replace(config, batch_size=config.prompts_per_step * config.num_generations),
        ctx, ctx.work_dir / "policy-trainer", len(prompts) * config.num_generations,
        # sampled answers are as long as the greedy answers the judge will score
        num_generations=config.num_generations, max_completion_length=config.max_new_tokens,
        beta=config.kl_beta, epsilon=config.epsilon, temperature=config.temperature,
        top_p=1.0, top_k=0, log_completions=False)
    trainer = quiet(trainer_cls(
        model=setup.model, reward_funcs=[reward_model], args=args,
        train_dataset=Dataset.from_list(prompts), processing_class=setup.tokenizer,
        reward_processing_classes=[reward_tokenizer], peft_config=lora_config(config, "CAUSAL_LM"),
        callbacks=[progress_callback(ctx, args.max_steps, f"{config.algorithm} policy")]))
    trainable, total = param_counts(trainer.model)
    result = trainer.train()
    rewards = [float(e["reward"]) for e in trainer.state.log_history if "reward" in e]
    del reward_model  # not part of the served policy; frees memory for prediction
    policy_tokens = logged_tokens(trainer, 0)
    info = {
        "algorithm": _ALGORITHM_TEXT[config.algorithm],
        "trainer": f"trl.{trainer_cls.__name__}",
        "kl_beta": config.kl_beta, "epsilon": config.epsilon,
        "num_generations": config.num_generations, "sampling_temperature": config.temperature,
        "reference": "base model (adapter disabled)" if not config.full_weights
        else "frozen copy of the base weights",
        "policy_steps": args.max_steps,
        "reward_model": {"trainer": "trl.RewardTrainer", "steps": reward_stats["steps"],
                         "train_pairs": reward_stats["train_pairs"],
                         "trained_on": "policy half of the train split" if disjoint
                         else "whole train split", "train_loss": reward_stats["train_loss"]},
        "policy_train_loss": float(result.training_loss),
        "mean_reward_first_steps": _mean(rewards[:3]), "mean_reward_last_steps": _mean(rewards[-3:]),
    }
    output = finish_policy(ctx, config, setup, trainer.model, trainable,
                           total + reward_stats["total_params"],
                           reward_stats["train_tokens"] + policy_tokens, info)
    output.trainable_params += reward_stats["trainable_params"]
    return output


_ALGORITHM_TEXT = {
    "grpo": "GRPO (group-relative advantages, PPO-style clipped surrogate, KL penalty to the "
            "reference, no value network); TRL 1.x has no PPOTrainer",
    "rloo": "RLOO (leave-one-out baseline advantages, PPO-style clipped surrogate, KL penalty "
            "to the reference, no value network); TRL 1.x has no PPOTrainer",
}


def _trainer_classes(algorithm: str):
    if algorithm == "rloo":
        from trl import RLOOConfig, RLOOTrainer

        return RLOOTrainer, RLOOConfig
    from trl import GRPOConfig, GRPOTrainer

    return GRPOTrainer, GRPOConfig


def _mean(values):
    return sum(values) / len(values) if values else None


SPEC = StrategySpec(
    name="rlhf", family="preference", tasks=frozenset({"preference"}),
    config_cls=Config, run=run, trainable=True,
    description="RLHF: reward model (TRL RewardTrainer) then online policy optimisation against "
                "it with a KL penalty, by GRPO or RLOO (PPO-clipped, no value network; TRL 1.x "
                "has no PPO)",
)
