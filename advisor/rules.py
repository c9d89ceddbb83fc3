"""The advisor's rules: data plus pure functions, from answers to ranked candidates with reasons.

    facts = Facts.from_inputs(answers, profile, hardware, params_b=0.135)
    ranking = rank(facts, estimates={"lora": {...}, ...})
    ranking.ranked[0].strategy, ranking.ranked[0].reasons, ranking.excluded

No I/O here: estimates are computed beforehand (advisor.recommend) and passed in, so every rule
is a function of its inputs and trivial to test. Each rule is a `Rule` with an id, the evidence
behind it (from EVIDENCE.md, with the numbers) and a function `facts -> [Effect]`; an effect
moves a set of strategies' scores and says why. Candidates start from a prior that encodes the
consensus "prompt first, then PEFT, then heavier methods"; the rules move them from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

# Every candidate the advisor ranks, by name (strategies.registry names; some register later),
# with its family and the task kinds it supports. Kept here as data so ranking imports nothing.
PLANNED: dict[str, tuple[str, frozenset[str]]] = {}
_ALL = frozenset({"classification", "generation", "qa"})
for _name, _family, _tasks in [
    ("majority", "baseline", {"classification"}),
    ("zero-shot", "prompting", {"classification", "generation", "qa", "preference"}),
    ("few-shot", "prompting", _ALL),
    ("rag", "rag", _ALL),
    ("knn", "rag", {"classification"}),
    ("transfer", "transfer", {"classification"}),
    ("encoder-ft", "transfer", {"classification"}),
    ("setfit", "transfer", {"classification"}),
    ("full", "fine-tuning", _ALL),
    ("freeze", "fine-tuning", _ALL),
    ("lora", "peft", _ALL),
    ("qlora", "peft", _ALL),
    ("dora", "peft", _ALL),
    ("prompt-tuning", "peft", _ALL),
    ("prefix-tuning", "peft", _ALL),
    ("ia3", "peft", _ALL),
    ("loha", "peft", _ALL),
    ("adalora", "peft", _ALL),
    ("sft-chosen", "preference", {"preference"}),
    ("dpo", "preference", {"preference"}),
    ("reward-model", "preference", {"preference"}),
    ("rlhf", "preference", {"preference"}),
]:
    PLANNED[_name] = (_family, frozenset(_tasks))

BASELINES = ("majority", "zero-shot")  # always run, for comparison
TRAINS_LLM = ("full", "freeze", "lora", "qlora", "dora", "prompt-tuning", "prefix-tuning", "ia3",
              "loha", "adalora")
ADAPTERS = ("lora", "qlora", "dora", "ia3", "loha", "adalora", "prompt-tuning", "prefix-tuning")
PROMPTING = ("zero-shot", "few-shot")
RETRIEVAL = ("rag", "knn")

# Starting scores (0-100): the consensus order before anything is known about the case.
PRIOR: dict[str, float] = {
    "majority": 20, "zero-shot": 45, "few-shot": 55, "rag": 45, "knn": 45, "transfer": 50,
    "encoder-ft": 50, "setfit": 50, "full": 40, "freeze": 35, "lora": 55, "qlora": 50, "dora": 48,
    "prompt-tuning": 35, "prefix-tuning": 35, "ia3": 42, "loha": 40, "adalora": 42,
    "sft-chosen": 55, "dpo": 55, "reward-model": 40, "rlhf": 35,
}


@dataclass(frozen=True)
class Reason:
    rule: str
    text: str
    evidence: str
    delta: float = 0.0

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "text": self.text, "evidence": self.evidence}


@dataclass(frozen=True)
class Effect:
    strategies: tuple[str, ...]
    delta: float
    text: str


@dataclass(frozen=True)
class Rule:
    id: str
    evidence: str
    apply: Callable[["Facts"], list[Effect]]


@dataclass
class Facts:
    """Answers, data profile and hardware merged into what the rules read."""

    task: str | None = None
    labeled_examples: int | None = None
    has_labels: bool = True
    has_preference_pairs: bool = False
    has_corpus: bool = False
    knowledge_changes: str = "never"
    domain_vocabulary: str = "low"
    gpu_memory_gb: float | None = None
    cpu_only: bool = True
    memory_gb: float | None = None  # RAM, the limit on a CPU-only machine
    budget_usd: float | None = None
    time_budget_hours: float | None = None
    skill_level: str = "moderate"
    target_metric: float | None = None
    priority: str = "balanced"
    latency_ms: float | None = None
    monthly_requests: int | None = None
    hallucination_risk: str = "medium"
    style_control: str = "medium"
    retraining: str = "one_off"
    params_b: float | None = None  # base model size, billions
    probe_score: float | None = None  # zero-shot score on a validation slice (--probe)

    @classmethod
    def from_inputs(cls, answers: dict[str, Any], profile: dict[str, Any] | None = None,
                    hardware: dict[str, Any] | None = None, *, params_b: float | None = None,
                    probe_score: float | None = None) -> "Facts":
        from advisor.answers import get

        profile, hardware = profile or {}, hardware or {}
        task = get(answers, "task") or profile.get("task")
        labeled = get(answers, "data.labeled_examples")
        if labeled is None:
            labeled = labeled_rows(profile)
        pairs = get(answers, "data.has_preference_pairs")
        corpus = get(answers, "data.corpus") or profile.get("has_corpus")
        gpu = get(answers, "resources.gpu_memory_gb")
        cpu_only = bool(get(answers, "resources.cpu_only", False))
        if gpu is None and not cpu_only and hardware.get("cuda"):
            gpu = hardware.get("gpu_memory_gb")
        return cls(
            task=task,
            labeled_examples=int(labeled) if isinstance(labeled, (int, float)) else None,
            has_labels=bool(get(answers, "data.has_labels", True)),
            has_preference_pairs=bool(pairs if pairs is not None else task == "preference"),
            has_corpus=bool(corpus),
            knowledge_changes=get(answers, "data.knowledge_changes", "never"),
            domain_vocabulary=get(answers, "data.domain_vocabulary", "low"),
            gpu_memory_gb=None if cpu_only else gpu,
            cpu_only=cpu_only or gpu is None,
            memory_gb=hardware.get("memory_gb"),
            budget_usd=get(answers, "resources.budget_usd"),
            time_budget_hours=get(answers, "resources.time_budget_hours"),
            skill_level=get(answers, "resources.skill_level", "moderate"),
            target_metric=get(answers, "goals.target_metric"),
            priority=get(answers, "goals.priority", "balanced"),
            latency_ms=get(answers, "goals.latency_ms"),
            monthly_requests=get(answers, "goals.monthly_requests"),
            hallucination_risk=get(answers, "goals.hallucination_risk", "medium"),
            style_control=get(answers, "goals.style_control", "medium"),
            retraining=get(answers, "goals.retraining", "one_off"),
            params_b=get(answers, "model.params_b", params_b),
            probe_score=probe_score,
        )

    @property
    def model_16bit_gb(self) -> float | None:
        return self.params_b * 2 if self.params_b else None


def labeled_rows(profile: dict[str, Any]) -> int | None:
    """Rows the user can learn from: train + validation of the profile's split (the test rows
    are held out for measuring)."""
    splits = profile.get("splits") or {}
    if splits.get("train") is not None:
        return int(splits["train"]) + int(splits.get("validation") or 0)
    rows = profile.get("rows")
    return int(rows) if isinstance(rows, int) else None


# --------------------------------------------------------------------------- the rules
# Each function reads facts and returns effects; the Rule beside it carries the evidence.

def _prompt_first(f: Facts) -> list[Effect]:
    return [Effect(PROMPTING, +5, "Start with prompting; move on only when evaluation shows it "
                                  "falls short.")]


def _few_labels(f: Facts) -> list[Effect]:
    n = f.labeled_examples
    if n is None or n >= 50 or f.task == "preference":
        return []
    return [Effect(PROMPTING + RETRIEVAL, +15, f"Only {n} labelled examples: prompting with "
                   "demonstrations comes first."),
            Effect(TRAINS_LLM + ("encoder-ft",), -20, f"{n} labelled examples are too few to "
                   "fine-tune reliably (PEFT only overtakes in-context learning from ~50-100).")]


def _moderate_labels(f: Facts) -> list[Effect]:
    n = f.labeled_examples
    if n is None or not 50 <= n <= 1000 or f.task == "preference":
        return []
    effects = [Effect(("lora", "qlora"), +15, f"{n} labelled examples: enough for LoRA/QLoRA to "
                      "beat k-shot prompting with far shorter prompts; benchmark both, with seeds.")]
    if f.task == "classification":
        effects.append(Effect(("encoder-ft", "transfer"), +8, f"{n} labelled examples of a "
                              "closed label set: a small fine-tuned encoder is a strong, cheap "
                              "contender."))
    effects.append(Effect(("full",), -5, "With a few hundred examples full fine-tuning is no "
                          "better than LoRA and forgets more."))
    return effects


def _many_labels(f: Facts) -> list[Effect]:
    n = f.labeled_examples
    if n is None or n <= 1000 or f.task == "preference":
        return []
    return [Effect(("lora", "qlora", "full", "encoder-ft", "dora"), +15, f"{n} labelled "
                   "examples: adapting the weights pays off, and the data can show it."),
            Effect(("few-shot",), -5, "A few demonstrations use little of this much data.")]


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
    return [Effect(("lora", "qlora", "encoder-ft", "full"), +12, f"{why}: a small fine-tuned "
                   "model answers with short prompts, far cheaper per request."),
            Effect(("few-shot", "rag"), -10, f"{why}: long demonstration or retrieval prompts "
                   "cost time and money on every request.")]


def _prompt_tuning_size(f: Facts) -> list[Effect]:
    if f.params_b is None or f.params_b >= 10:
        return []
    return [Effect(("prompt-tuning",), -20, f"Prompt tuning matches fine-tuning only at ~10B+ "
                   f"parameters; this model has {f.params_b:.2g}B."),
            Effect(("prefix-tuning",), -10, "Prefix tuning trails LoRA badly in low-data "
                   "regimes.")]


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


def _probe(f: Facts) -> list[Effect]:
    if f.probe_score is None or f.target_metric is None:
        return []
    if f.probe_score >= f.target_metric:
        return [Effect(TRAINS_LLM + ("encoder-ft",), -20, f"The base model already scores "
                       f"{f.probe_score:.3f} zero-shot, above the {f.target_metric:g} target: "
                       "fine-tuning is not needed first."),
                Effect(PROMPTING, +10, f"Zero-shot already meets the target ({f.probe_score:.3f} "
                       f">= {f.target_metric:g}).")]
    return [Effect(TRAINS_LLM[:5], +5, f"The base model scores {f.probe_score:.3f} zero-shot, "
                   f"below the {f.target_metric:g} target: adaptation is needed.")]


RULES: tuple[Rule, ...] = (
    Rule("prompt-first", "Vendor guides (OpenAI, Azure, Anthropic, Vertex): prompt first, "
         "fine-tune only when evaluation fails (EVIDENCE.md decision rule 1).", _prompt_first),
    Rule("few-labels", "T-Few (Liu et al. 2022): PEFT beat GPT-3 in-context learning from ~50 "
         "examples per task (RAFT 75.8 vs 62.7); LoRA MNLI n=100 63.8 vs full 60.2 (Hu et al. "
         "2021 Table 16); OpenAI: minimum 10, clear gains at 50-100.", _few_labels),
    Rule("moderate-labels", "Hu et al. 2021: LoRA 87.24 vs full FT 86.40 on GLUE with 0.8M of "
         "125M params; Kirstain et al. 2021: a few hundred examples are often worth billions of "
         "parameters; Mosbach et al. 2023: high variance, use several seeds.", _moderate_labels),
    Rule("many-labels", "Hu et al. 2021 Table 16: MNLI 10k examples LoRA 89.2 / full 88.9; "
         "Predibase LoRA Land 2024: 4-bit LoRA +34 points over the base model on average.",
         _many_labels),
    Rule("changing-knowledge", "Ovadia et al. 2023 Table 2 (current events): Mistral-7B base "
         "0.481, +RAG 0.875, fine-tuned 0.504; Soudani et al. 2024: RAG beats FT on less "
         "popular knowledge.", _changing_knowledge),
    Rule("hallucination-risk", "Gekhman et al. 2024: fine-tuning on new knowledge is learned "
         "slowly and increases hallucination; Ovadia et al. 2023: RAG 0.875 vs FT 0.504.",
         _hallucination),
    Rule("preference-pairs", "Rafailov et al. 2023: DPO TL;DR win rate ~61% vs PPO ~57%; "
         "Vertex AI guide: SFT on preferred responses before preference tuning; Ouyang et al. "
         "2022: RLHF made 1.3B preferred over 175B GPT-3.", _preference),
    Rule("memory-qlora", "Dettmers et al. 2023: 65B fine-tuning >780 GB -> <48 GB with QLoRA; "
         "NF4+double quantisation MMLU 53.1 vs BF16 53.0 (EVIDENCE.md rule 9: VRAM < ~2x model "
         "GB -> QLoRA).", _memory),
    Rule("latency-volume", "Liu et al. 2022 (T-Few): 72.4% at 1.1e12 inference FLOPs vs GPT-3 "
         "in-context 66.6% at 1.4e15 (>1000x); Predibase LoRA Land: 25 adapters on one A100.",
         _latency_volume),
    Rule("prompt-tuning-size", "Lester et al. 2021: prompt tuning reaches full fine-tuning only "
         "at ~11B (T5-XXL); Hu et al. 2021 Table 16: n=100 prefix-layer 48.3 vs LoRA 63.8.",
         _prompt_tuning_size),
    Rule("low-resources", "EVIDENCE.md decision rule 14 (inferred): low skill, budget or no GPU "
         "-> prompting or RAG; Azure guide: prompt engineering and RAG first; measured here: a "
         "LoRA step on SmolLM2-135M takes ~4.7 s on 2 CPU cores.", _low_resources),
    Rule("style-control", "Predibase LoRA Land 2024: 310 LoRA fine-tunes, +10 points over GPT-4 "
         "on narrow tasks; Hu et al. 2021: GPT-2 M E2E BLEU 70.4 with LoRA vs 68.2 full.", _style),
    Rule("domain-vocabulary", "Balaguer et al. 2024 (agriculture): fine-tuning +6 points, "
         "cumulative with RAG +5.", _domain),
    Rule("periodic-retraining", "Hu et al. 2021: checkpoint 350 GB -> 35 MB (~10,000x); "
         "Biderman et al. 2024: LoRA forgets less (0.509 vs 0.414 for full FT).", _retraining),
    Rule("probe", "EVIDENCE.md decision rule 1: prompt first and move on only when evaluation "
         "fails; the probe measures the base model zero-shot on a validation slice.", _probe),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}


# --------------------------------------------------------------------------- ranking

@dataclass
class Candidate:
    strategy: str
    family: str
    score: float
    reasons: list[Reason] = field(default_factory=list)
    estimate: dict[str, float] | None = None
    fits: bool = True
    why_not: list[str] = field(default_factory=list)  # why it does not fit
    baseline: bool = False

    def as_dict(self) -> dict[str, Any]:
        reasons = [r.as_dict() for r in self.reasons]
        reasons += [{"rule": "fits", "text": why, "evidence": "advisor.estimate pre-run estimate"}
                    for why in self.why_not]
        return {"strategy": self.strategy, "family": self.family, "score": round(self.score, 1),
                "reasons": reasons,
                "estimate": self.estimate or {"peak_memory_gb": None, "time_s": None,
                                              "cost_usd": None},
                "fits": self.fits}


@dataclass
class Ranking:
    ranked: list[Candidate]
    excluded: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {"ranked": [c.as_dict() for c in self.ranked], "excluded": self.excluded}

    def recommended(self, top: int = 3) -> list[str]:
        """The baselines plus the best `top` fitting candidates: what a run does by default."""
        picked = [c.strategy for c in self.ranked if c.baseline]
        others = [c.strategy for c in self.ranked if c.fits and not c.baseline]
        return picked + others[:top]


def applicable(strategy: str, task: str | None) -> str | None:
    """None if the strategy can serve the task, else why not."""
    family, tasks = PLANNED.get(strategy, ("peft", _ALL))
    if task is not None and task not in tasks:
        return f"does not support {task} (supports {', '.join(sorted(tasks))})"
    return None


def fit_problems(facts: Facts, estimate: dict[str, float] | None) -> list[str]:
    """Why a candidate's estimate exceeds the stated memory, budget or time (empty: it fits)."""
    if not estimate:
        return []
    problems = []
    memory = estimate.get("peak_memory_gb")
    limit = facts.gpu_memory_gb if facts.gpu_memory_gb is not None else facts.memory_gb
    where = "GPU memory" if facts.gpu_memory_gb is not None else "RAM"
    if memory is not None and limit is not None and memory > limit:
        problems.append(f"needs ~{memory:.1f} GB peak memory, more than the {limit:g} GB of {where}")
    cost = estimate.get("cost_usd")
    if cost is not None and facts.budget_usd is not None and cost > facts.budget_usd:
        problems.append(f"costs ~${cost:.2f}, over the ${facts.budget_usd:g} budget")
    seconds = estimate.get("time_s")
    if (seconds is not None and facts.time_budget_hours is not None
            and seconds > facts.time_budget_hours * 3600):
        problems.append(f"takes ~{seconds / 3600:.1f} h, over the {facts.time_budget_hours:g} h "
                        "time budget")
    return problems


def rank(facts: Facts, estimates: dict[str, dict[str, float]] | None = None,
         strategies: Iterable[str] | None = None, rules: Iterable[Rule] = RULES) -> Ranking:
    """Score every candidate for the task, attach reasons and estimates, check fits, and sort:
    fitting candidates first, then by score (ties keep the registry's order)."""
    estimates = estimates or {}
    names = list(strategies) if strategies is not None else list(PLANNED)
    candidates: dict[str, Candidate] = {}
    excluded: list[dict[str, str]] = []
    for name in names:
        why = applicable(name, facts.task)
        if why:
            excluded.append({"strategy": name, "why": why})
            continue
        family = PLANNED.get(name, ("peft", _ALL))[0]
        candidates[name] = Candidate(name, family, PRIOR.get(name, 40.0),
                                     baseline=name in BASELINES)
    for rule in rules:
        for effect in rule.apply(facts):
            for name in effect.strategies:
                if name in candidates:
                    candidates[name].score += effect.delta
                    candidates[name].reasons.append(Reason(rule.id, effect.text, rule.evidence,
                                                           effect.delta))
    for candidate in candidates.values():
        if candidate.baseline:
            candidate.reasons.append(Reason("baseline", "Always run for comparison: a "
                                            "recommendation is only as honest as its baseline.",
                                            "DESIGN.md 'Fair comparisons'", 0.0))
        candidate.score = max(0.0, min(100.0, candidate.score))
        candidate.estimate = estimates.get(candidate.strategy)
        candidate.why_not = fit_problems(facts, candidate.estimate)
        candidate.fits = not candidate.why_not
        # the strongest reasons first, so a table's first line says the most
        candidate.reasons.sort(key=lambda r: -abs(r.delta))
    order = {name: i for i, name in enumerate(names)}
    ranked = sorted(candidates.values(),
                    key=lambda c: (not c.fits, -c.score, order[c.strategy]))
    pairing = ft_rag_candidate(facts, ranked, estimates)
    if pairing is not None:
        order[pairing.strategy] = len(order)
        ranked = sorted([*ranked, pairing],
                        key=lambda c: (not c.fits, -c.score, order[c.strategy]))
    return Ranking(ranked, excluded)


FT_RAG_EVIDENCE = ("Balaguer et al. 2024 (agriculture): fine-tuning +6 points, cumulative with "
                   "RAG +5; Ovadia et al. 2023 Table 2: FT+RAG 0.810-0.830 vs RAG alone 0.875 "
                   "(not reliably cumulative: measure it; EVIDENCE.md decision rule 7).")


def ft_rag_candidate(facts: Facts, ranked: list[Candidate],
                     estimates: dict[str, dict[str, float]]) -> Candidate | None:
    """With a corpus, generation/qa: the best fitting trainable candidate again with retrieval
    (`lora+rag`), just below it. The gains of FT and RAG add up in some studies, not in others,
    so the pair is worth measuring, not assuming."""
    if not facts.has_corpus or facts.task not in ("generation", "qa"):
        return None
    base = next((c for c in ranked if c.fits and c.strategy in TRAINS_LLM), None)
    if base is None:
        return None
    name = f"{base.strategy}+rag"
    paired = Candidate(name, base.family, max(0.0, base.score - 1.0),
                       reasons=[Reason("ft-plus-rag", f"A corpus is available and {base.strategy} "
                                       "is the best trainable candidate: measure it with "
                                       "retrieved passages in the prompt too (FT + RAG).",
                                       FT_RAG_EVIDENCE, 0.0), *base.reasons],
                       estimate=estimates.get(name) or base.estimate)
    paired.why_not = fit_problems(facts, paired.estimate)
    paired.fits = not paired.why_not
    return paired
