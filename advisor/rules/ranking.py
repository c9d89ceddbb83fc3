"""Ranking: every candidate scored by the rules, with reasons, estimates and whether it fits.

    ranking = rank(facts, estimates={"lora": {...}, ...})
    ranking.ranked[0].strategy, ranking.ranked[0].reasons, ranking.excluded

Candidates start from the catalogue's prior ("prompt first, then PEFT, then heavier methods");
each rule's effects move them from there, or level them with others; then the estimates say
whether each fits the stated memory, budget and time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from advisor.evidence import describe
from advisor.rules.base import BASELINES, TRAINS_LLM, Effect, Facts, Reason, Rule
from advisor.rules.measured import MEASURED_EVIDENCE, expectations
from advisor.rules.rulebook import RULES
from strategies import catalogue


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
    # with probes (advisor.rules.measured): the score it is expected to reach on the metric,
    # measured or not; an unprobed one's chance to beat the best probe
    expected: float | None = None
    chance: float | None = None
    measured: bool = False
    rule_score: float | None = None  # with probes: the rules' score before the expectation

    def as_dict(self) -> dict[str, Any]:
        reasons = [r.as_dict() for r in self.reasons]
        reasons += [{"rule": "fits", "text": why, "evidence": ESTIMATE_EVIDENCE}
                    for why in self.why_not]
        found = {"strategy": self.strategy, "family": self.family, "score": round(self.score, 1),
                 "reasons": reasons,
                 "estimate": self.estimate or {"peak_memory_gb": None, "time_s": None,
                                               "cost_usd": None},
                 "fits": self.fits}
        if self.expected is not None:
            found.update(expected=round(self.expected, 4), measured=self.measured,
                         chance=None if self.chance is None else round(self.chance, 3))
        return found


ESTIMATE_EVIDENCE = ("pre-run estimate from the model's shape: memory from weights, gradients, "
                     "optimizer state and activations, time from FLOPs over this machine's "
                     "measured throughput (advisor/estimate.py)")


@dataclass
class Ranking:
    ranked: list[Candidate]
    excluded: list[dict[str, str]]
    notes: list[str] = field(default_factory=list)  # what the ranking had to set aside, and why
    probes: dict[str, Any] | None = None  # what the probes measured (advisor.probes), if any

    def as_dict(self) -> dict[str, Any]:
        found = {"ranked": [c.as_dict() for c in self.ranked], "excluded": self.excluded}
        if self.notes:
            found["notes"] = list(self.notes)
        if self.probes is not None:
            found["probes"] = self.probes
        return found

    def recommended(self, top: int = 3) -> list[str]:
        """The baselines plus the best `top` fitting candidates: what a run does by default."""
        picked = [c.strategy for c in self.ranked if c.baseline]
        others = [c.strategy for c in self.ranked if c.fits and not c.baseline]
        return picked + others[:top]


def applicable(strategy: str, task: str | None) -> str | None:
    """None if the strategy can serve the task, else why not."""
    entry = catalogue.entry(strategy)
    if entry is None:
        return "unknown strategy"
    if task is not None and task not in entry.tasks:
        return f"does not support {task} (supports {', '.join(sorted(entry.tasks))})"
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
    names = list(strategies) if strategies is not None else catalogue.names()
    candidates: dict[str, Candidate] = {}
    excluded: list[dict[str, str]] = []
    for name in names:
        why = applicable(name, facts.task)
        if why:
            excluded.append({"strategy": name, "why": why})
            continue
        entry = catalogue.entry(name)
        candidates[name] = Candidate(name, entry.family, entry.prior,
                                     baseline=name in BASELINES)
    levels: list[tuple[Rule, Effect]] = []
    for rule in rules:
        for effect in rule.apply(facts):
            if effect.level_with:
                levels.append((rule, effect))  # once every delta is in
            for name in effect.strategies:
                if name in candidates and not effect.level_with:
                    candidates[name].score += effect.delta
                    candidates[name].reasons.append(Reason(rule.id, effect.text,
                                                           rule.evidence_text, effect.delta,
                                                           rule.evidence))
    for rule, effect in levels:
        _level(candidates, rule, effect)
    for candidate in candidates.values():
        if candidate.baseline:
            candidate.reasons.append(Reason("baseline", "Always run for comparison: a "
                                            "recommendation is only as honest as its baseline, "
                                            "and prompting can fall below the majority vote.",
                                            describe(BASELINE_EVIDENCE), 0.0,
                                            BASELINE_EVIDENCE))
        candidate.score = max(0.0, min(100.0, candidate.score))
        candidate.estimate = estimates.get(candidate.strategy)
        candidate.why_not = fit_problems(facts, candidate.estimate)
        candidate.fits = not candidate.why_not
        # the strongest reasons first, so a table's first line says the most
        candidate.reasons.sort(key=lambda r: -abs(r.delta))
    notes = _rank_despite_budget(facts, list(candidates.values()))
    measured = _apply_probes(facts, candidates)
    order = {name: i for i, name in enumerate(names)}

    def sort_key(c: Candidate):
        if measured:
            return measured_order(c, order[c.strategy])
        return (not c.fits, -c.score, order[c.strategy])

    ranked = sorted(candidates.values(), key=sort_key)
    # with the budget set aside above, the FT + RAG pair is judged the same way
    pairing = ft_rag_candidate(replace(facts, budget_usd=None) if notes else facts, ranked,
                               estimates)
    if pairing is not None:
        order[pairing.strategy] = len(order)
        ranked = sorted([*ranked, pairing], key=sort_key)
    return Ranking(ranked, excluded, notes)


def measured_order(candidate: Candidate, position: int) -> tuple:
    """The sort key with probes: fitting first, by expected score to the point; on a tie a
    measured candidate first (a known score beats a guess of the same size), then the rules'
    view, then the cheaper to find out, then the catalogue's order. Without the rules' view,
    unprobed candidates whose chance saturates (a low best probe: a rouge of 0.28 leaves "72
    points of room" that no candidate may reach) tie, and the cheapest would win whatever the
    rules say."""
    c = candidate
    return (not c.fits, -round(c.score), not c.measured, -round(c.rule_score or 0.0),
            _seconds(c), position)


def _apply_probes(facts: Facts, candidates: dict[str, Candidate]) -> bool:
    """With probes: each candidate's score becomes 100 x its expected score (measured, or from
    its chance to beat the best probe), the reason first. False when there is none."""
    found = expectations(facts, {n: c.score for n, c in candidates.items()},
                         {n: c.estimate for n, c in candidates.items()})
    for name, expectation in found.items():
        candidate = candidates[name]
        score = max(0.0, min(100.0, 100 * expectation.expected))
        candidate.reasons.insert(0, Reason("measured" if expectation.chance is None
                                           else "chance-to-beat", expectation.text,
                                           describe(MEASURED_EVIDENCE), score - candidate.score,
                                           MEASURED_EVIDENCE))
        candidate.rule_score, candidate.score = candidate.score, score
        candidate.expected, candidate.chance = expectation.expected, expectation.chance
        candidate.measured = expectation.chance is None
    return bool(found)


def _seconds(candidate: Candidate) -> float:
    seconds = (candidate.estimate or {}).get("time_s")
    return seconds if seconds is not None else float("inf")


BASELINE_EVIDENCE = ("li-flanigan-2023", "bucher-martini-2024")


def _level(candidates: dict[str, Candidate], rule: Rule, effect: Effect) -> None:
    """Raise each of the effect's candidates to the best score among `level_with` (ties keep
    the registry's order, which lists the cheaper candidates first)."""
    peers = [candidates[n].score for n in effect.level_with if n in candidates]
    if not peers:
        return
    for name in effect.strategies:
        candidate = candidates.get(name)
        if candidate is None or name in effect.level_with:
            continue
        raise_by = max(max(peers) - candidate.score, 0.0)
        candidate.score += raise_by
        candidate.reasons.append(Reason(rule.id, effect.text, rule.evidence_text, raise_by,
                                        rule.evidence))


def _rank_despite_budget(facts: Facts, candidates: list[Candidate]) -> list[str]:
    """A budget that every candidate beyond the baselines breaks would leave no pick: rank them
    as if there were no budget instead, and say so with what the cheapest one costs."""
    contenders = [c for c in candidates if not c.baseline]
    if facts.budget_usd is None or not contenders or any(c.fits for c in contenders):
        return []
    unbudgeted = replace(facts, budget_usd=None)
    problems = {id(c): fit_problems(unbudgeted, c.estimate) for c in candidates}
    if not any(not problems[id(c)] for c in contenders):
        return []  # memory or time rule them out anyway: the budget is not what blocks them
    for candidate in candidates:
        candidate.why_not = problems[id(candidate)]
        candidate.fits = not candidate.why_not
    priced = [c for c in contenders if c.fits and (c.estimate or {}).get("cost_usd") is not None]
    cheapest = min(priced, key=lambda c: c.estimate["cost_usd"], default=None)
    costs = (f"; the cheapest, {cheapest.strategy}, costs ~${cheapest.estimate['cost_usd']:.4f}"
             if cheapest else "")
    return [f"no candidate beyond the baselines fits the ${facts.budget_usd:g} budget, so they "
            f"are ranked as if there were none{costs}"]


FT_RAG_EVIDENCE = ("balaguer-2024", "ovadia-2023")  # cumulative in one study, not in the other


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
                                       describe(FT_RAG_EVIDENCE), 0.0, FT_RAG_EVIDENCE),
                                *base.reasons],
                       estimate=estimates.get(name) or base.estimate)
    paired.why_not = fit_problems(facts, paired.estimate)
    paired.fits = not paired.why_not
    return paired
