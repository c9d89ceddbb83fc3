"""The rules that read the answers about the setting: what the knowledge does over time, the
cost of a wrong answer, preference pairs, memory, latency and volume, the model's size, the
user's resources and skills, style control, vocabulary and retraining.

Each function reads facts and returns effects; the Rule beside it (SETTING_RULES) carries the
evidence (advisor.evidence). advisor.rules.rulebook puts every rule in its order.
"""

from __future__ import annotations

from advisor.rules.base import ADAPTERS, PROMPTING, RETRIEVAL, TRAINS_LLM, Effect, Facts, Rule

def _prompt_first(f: Facts) -> list[Effect]:
    return [Effect(PROMPTING, +5, "Start with prompting; move on only when evaluation shows it "
                                  "falls short.")]


def _changing_knowledge(f: Facts) -> list[Effect]:
    changes = f.knowledge_changes in ("monthly", "weekly", "daily")
    if not (changes or f.has_corpus) or f.task == "preference":
        return []
    why = (f"The knowledge changes {f.knowledge_changes}" if changes else
           "A document corpus is available")
    effects = [Effect(("rag",), +25 if changes else +15, f"{why}: retrieve it at answer time "
                      "rather than train it into the weights.")]
    if changes:
        effects.append(Effect(TRAINS_LLM, -10, "Facts trained into weights go stale and need "
                              "retraining at every change; fine-tuning learns new facts poorly."))
    return effects


def _hallucination(f: Facts) -> list[Effect]:
    if f.hallucination_risk != "high" or f.task == "preference":
        return []
    return [Effect(("rag",), +10, "Wrong answers are costly: ground them in retrieved documents."),
            Effect(("full",), -5, "Fine-tuning on new knowledge increases hallucination.")]


def _preference(f: Facts) -> list[Effect]:
    if not f.has_preference_pairs:
        return []
    return [Effect(("sft-chosen",), +20, "Preference pairs: first SFT on the chosen answers..."),
            Effect(("dpo",), +25, "...then DPO on the pairs: as good as or better than PPO-based "
                   "RLHF and much simpler to run."),
            Effect(("rlhf",), -5, "RLHF (reward model + online RL) is the heaviest option; try "
                   "it only if DPO falls short."),
            Effect(("reward-model",), +5, "A reward model measures preference accuracy and "
                   "judges outputs; needed for RLHF.")]


def _memory(f: Facts) -> list[Effect]:
    gb, need = f.gpu_memory_gb, f.model_16bit_gb
    if gb is None or need is None:
        return []
    if gb < 2 * need:
        return [Effect(("qlora",), +20, f"{gb:g} GB of GPU memory is under twice the model's "
                       f"16-bit weights ({need:.1f} GB): QLoRA (4-bit NF4) fits and matches "
                       "16-bit quality."),
                Effect(("full", "lora", "dora"), -10, f"16-bit training of a {need:.1f} GB model "
                       f"is tight in {gb:g} GB.")]
    return []


def _latency_volume(f: Facts) -> list[Effect]:
    high_volume = (f.monthly_requests or 0) >= 1_000_000
    tight = f.latency_ms is not None and f.latency_ms <= 300
    if not (high_volume or tight or f.priority == "latency"):
        return []
    why = "; ".join(x for x in [f"{f.monthly_requests:,} requests a month" if high_volume else "",
                                f"latency limit {f.latency_ms:g} ms" if tight else "",
                                "latency is the priority" if f.priority == "latency" else ""] if x)
    return [Effect(("lora", "qlora", "encoder-ft", "full", "knn", "transfer", "setfit"), +12,
                   f"{why}: a small fine-tuned model or an encoder classifier answers with "
                   "short inputs, far cheaper per request than long prompts."),
            Effect(("few-shot", "rag"), -10, f"{why}: long demonstration or retrieval prompts "
                   "cost time and money on every request.")]


def _prompt_tuning_size(f: Facts) -> list[Effect]:
    if f.params_b is None or f.params_b >= 10:
        return []
    return [Effect(("prompt-tuning",), -20, f"Prompt tuning matches fine-tuning only at ~10B+ "
                   f"parameters; this model has {f.params_b:.2g}B."),
            Effect(("prefix-tuning",), -10, "Prefix tuning trailed LoRA badly with ~100 "
                   "examples (its own paper found it strong in low data: measure it).")]


def _low_resources(f: Facts) -> list[Effect]:
    low_skill = f.skill_level == "low"
    tiny_budget = f.budget_usd is not None and f.budget_usd < 5
    if not (low_skill or f.cpu_only or tiny_budget):
        return []
    why = ", ".join(x for x in ["little ML engineering experience" if low_skill else "",
                                "no GPU" if f.cpu_only else "",
                                f"a ${f.budget_usd:g} budget" if tiny_budget else ""] if x)
    effects = [Effect(PROMPTING + RETRIEVAL, +15 if low_skill else +10, f"With {why}, prompting "
                      "and retrieval are the practical first candidates.")]
    if low_skill:
        effects.append(Effect(TRAINS_LLM, -10, f"With {why}, training and serving a fine-tuned "
                              "LLM is harder to get right and to operate."))
    effects.append(Effect(("full", "rlhf"), -10, f"With {why}, the heaviest training is slow "
                          "or hard to operate."))
    if f.cpu_only and not low_skill and (f.params_b or 0) <= 0.5:
        effects.append(Effect(("lora", "qlora", "encoder-ft", "transfer"), +5, "The model is "
                              "small enough that adapter training on the CPU takes minutes."))
    return effects


def _style(f: Facts) -> list[Effect]:
    if f.style_control != "high" or f.task == "classification":
        return []
    return [Effect(("lora", "qlora", "sft-chosen"), +10, "Strict output style or format: LoRA "
                   "teaches it reliably, more than instructions alone.")]


def _domain(f: Facts) -> list[Effect]:
    if f.domain_vocabulary != "high":
        return []
    return [Effect(("lora", "qlora", "full", "encoder-ft"), +8, "Specialised vocabulary: adapting "
                   "the weights to the domain adds a few points, cumulative with RAG.")]


def _retraining(f: Facts) -> list[Effect]:
    if f.retraining != "periodic":
        return []
    return [Effect(ADAPTERS, +4, "Periodic retraining: adapters are small to retrain, store and "
                   "swap, and forget less of the base model."),
            Effect(("full",), -5, "Periodic full fine-tuning multiplies compute and storage.")]


SETTING_RULES: tuple[Rule, ...] = (
    Rule("prompt-first", ("vendor-guides",), _prompt_first),
    Rule("changing-knowledge", ("ovadia-2023", "soudani-2024"), _changing_knowledge),
    Rule("hallucination-risk", ("gekhman-2024", "ovadia-2023"), _hallucination),
    Rule("preference-pairs", ("rafailov-2023-dpo", "vendor-guides", "ouyang-2022"), _preference),
    Rule("memory-qlora", ("dettmers-2023-qlora", "biderman-2024"), _memory),
    Rule("latency-volume", ("liu-2022-tfew", "lora-land-2024", "setfit-2022"), _latency_volume),
    Rule("prompt-tuning-size", ("lester-2021", "hu-2021-low-data", "li-liang-2021"),
         _prompt_tuning_size),
    Rule("low-resources", ("vendor-guides", "cpu-training-cost"), _low_resources),
    Rule("style-control", ("lora-land-2024", "hu-2021-lora"), _style),
    Rule("domain-vocabulary", ("balaguer-2024",), _domain),
    Rule("periodic-retraining", ("hu-2021-lora", "biderman-2024"), _retraining),
)
