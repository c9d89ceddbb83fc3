"""The probes' measurements as facts: what a probed candidate scored is what it is expected to
score; an unprobed candidate is ranked by its chance to beat the best probe, and by what it
costs to find out.

    expectations(facts, rule_scores={"lora": 91, "knn": 91, ...}, estimates={...})
    -> {"knn": Expectation(expected=0.975, chance=None, ...),
        "lora": Expectation(expected=0.93, chance=0.27, ...), ...}

Pure: the rule scores (after every other rule) and the estimates come in, the expectations go
out; advisor.rules.ranking turns them into scores (100 x expected) and reasons.

The chance model, stated so that it can be argued with (no study gives these numbers):
- room: how far the best probe is from a perfect score (1 - its value);
- noise: its 95% interval's half-width on the validation rows it was scored on (what a
  measured gain must exceed to be told from luck), at least the Wilson interval's and
  MIN_NOISE;
- the rules' view: the candidate's rule score minus the best probed candidate's, in logits of
  RULE_POINTS_PER_LOGIT points (10 points ahead: about 3 to 1 for the candidate);
- chance = logistic(rules' view + (room - noise) / noise): ample room makes a gain likely,
  room inside the probe's own noise makes one hard to find, and to show;
- expected = best + (chance - 0.5) x 2 x noise: an even chance ranks level with the best
  probe, a sure one a noise above it, a hopeless one a noise below (it may still land there).
- a training candidate probed on a short budget (advisor.probes' second stage, `budget`
  "short") is expected to score what it measured, a lower bound of its full run;
- an unprobed LLM-training candidate (TRAINS_LLM) whose sibling was probed is placed against
  that sibling's measurement by the rules' view alone: chance = logistic(rule-score gap to the
  sibling / RULE_POINTS_PER_LOGIT), expected = sibling + (chance - 0.5) x 2 x the sibling's
  noise. The room term is left out: the sibling measured what training the LLM gives on this
  data, and the rules say how the sibling methods differ (qlora a little below lora).
  Candidates with no probed sibling (encoder-ft, setfit) keep the room model above.
- room counts only on metrics whose perfect score a candidate can reach (ROOM_METRICS: a label
  per row, accuracy or macro-F1). Token F1 and ROUGE-L against free-text references have no
  such ceiling (on self_instruct the best candidate reached ROUGE-L 0.21 on test): 1 - best
  there would credit every unprobed candidate with tens of points of room it cannot have (rag,
  unmeasured, ranked above a measured LoRA at zero-shot's ROUGE-L 0.28), so on those metrics
  an unprobed candidate is placed against the best probe by the rules' view alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from advisor.rules.base import TRAINS_LLM, Facts, ProbeScore

RULE_POINTS_PER_LOGIT = 10.0
ROOM_METRICS = ("accuracy", "macro_f1")  # a perfect score is reachable: room means something
MIN_NOISE = 0.02  # two points: below this a validation split cannot tell candidates apart
Z95 = 1.96
MEASURED_EVIDENCE = ("vendor-guides", "measured-banking")


@dataclass(frozen=True)
class Expectation:
    strategy: str
    expected: float  # on the metric's scale (0-1)
    chance: float | None  # an unprobed candidate's chance to beat the best probe
    text: str  # the reason a user reads


def noise(score: ProbeScore) -> float:
    """Half the probe's 95% interval, at least half the Wilson interval of a proportion at its
    value on its rows: a bootstrap interval of 24 right answers out of 24 is [1, 1], but 24
    rows cannot tell 1.0 from 0.9."""
    half = 0.0
    if score.low is not None and score.high is not None:
        half = (score.high - score.low) / 2
    if score.rows:
        half = max(half, wilson_half_width(score.value, score.rows))
    return max(half, MIN_NOISE)


def wilson_half_width(value: float, rows: int) -> float:
    """Half the width of the Wilson score interval (95%) for a proportion `value` on `rows`."""
    p = min(max(value, 0.0), 1.0)
    z2 = Z95 * Z95
    return Z95 * math.sqrt(p * (1 - p) / rows + z2 / (4 * rows * rows)) / (1 + z2 / rows)


def chance_to_beat(rule_gap: float, room: float, spread: float) -> float:
    """The chance an unprobed candidate beats the best probe (see the module docstring)."""
    z = rule_gap / RULE_POINTS_PER_LOGIT + (room - spread) / spread
    return 1.0 / (1.0 + math.exp(-z))


def best_probe(facts: Facts) -> ProbeScore | None:
    """The best measured probe (ties: the quicker one)."""
    return best_probe_of(facts.probes)


def best_probe_of(scores: dict[str, ProbeScore] | None) -> ProbeScore | None:
    if not scores:
        return None
    return max(scores.values(), key=lambda s: (s.value, -s.seconds))


def probed_sibling(facts: Facts, name: str) -> ProbeScore | None:
    """For an LLM-training candidate: the best-measured other LLM-training candidate that was
    probed (None for any other candidate, or when none was)."""
    if name not in TRAINS_LLM:
        return None
    return best_probe_of({n: s for n, s in facts.probes.items()
                          if n != name and n in TRAINS_LLM})


def expectations(facts: Facts, rule_scores: dict[str, float],
                 estimates: dict[str, dict[str, Any] | None]) -> dict[str, Expectation]:
    """Each candidate's expected score with the probes, and why; {} without probes."""
    best = best_probe(facts)
    if best is None:
        return {}
    metric = facts.probe_metric or "score"
    spread = noise(best)
    room = max(1.0 - best.value, 0.0)
    best_rule_score = rule_scores.get(best.strategy, max(rule_scores.values(), default=0.0))
    found: dict[str, Expectation] = {}
    for name, rule_score in rule_scores.items():
        measured = facts.probes.get(name)
        if measured is not None:
            found[name] = Expectation(name, measured.value, None,
                                      _measured_text(measured, metric) + _short_note(measured))
            continue
        sibling = probed_sibling(facts, name)
        if sibling is not None:
            found[name] = _from_sibling(name, rule_score, sibling, metric,
                                        rule_scores.get(sibling.strategy, rule_score))
            continue
        gap = rule_score - best_rule_score
        bounded = metric in ROOM_METRICS
        chance = (chance_to_beat(gap, room, spread) if bounded
                  else 1.0 / (1.0 + math.exp(-gap / RULE_POINTS_PER_LOGIT)))
        expected = best.value + (chance - 0.5) * 2 * spread
        found[name] = Expectation(name, expected, chance,
                                  _chance_text(chance, best, metric, room if bounded else None,
                                               spread, estimates.get(name)))
    return found


def _from_sibling(name: str, rule_score: float, sibling: ProbeScore, metric: str,
                  sibling_rule_score: float) -> Expectation:
    """An LLM-training candidate placed against its probed sibling by the rules' view alone."""
    gap = rule_score - sibling_rule_score
    chance = 1.0 / (1.0 + math.exp(-gap / RULE_POINTS_PER_LOGIT))
    spread = noise(sibling)
    expected = sibling.value + (chance - 0.5) * 2 * spread
    where = (f"{abs(gap):.0f} points {'above' if gap > 0 else 'below'}" if round(gap)
             else "level with")
    return Expectation(name, expected, chance, (
        f"Not probed; its sibling {sibling.strategy} was: {metric} {sibling.value:.3f} "
        f"±{spread:.2f}{_short_note(sibling, brief=True)}. By the rules' view alone (they rank "
        f"it {where} {sibling.strategy}), a {chance:.0%} chance to beat it: expected "
        f"{expected:.3f}."))


def _short_note(score: ProbeScore, brief: bool = False) -> str:
    """What a short-budget probe's measurement is: a lower bound of the full run."""
    if score.budget != "short":
        return ""
    steps = f"{score.steps} steps" if score.steps is not None else "a few steps"
    if brief:
        return f" (short budget: {steps})"
    return (f" A short-budget probe ({steps}): a lower bound of what its full run reaches.")


def _measured_text(score: ProbeScore, metric: str) -> str:
    rows = f"on {score.rows} validation rows"
    if score.cv_rows:
        rows = (f"cross-validated on {score.cv_rows} train rows + {score.validation_rows} "
                "validation rows" + ("" if score.validation_value is None else
                                     f" (validation alone {score.validation_value:.3f})"))
    return (f"Measured before the advice: {metric} {score.value:.3f} ±{noise(score):.2f} (95%) "
            f"{rows} in {score.seconds:.0f} s; its expected score is what it measured.")


def _chance_text(chance: float, best: ProbeScore, metric: str, room: float | None,
                 spread: float, estimate: dict[str, Any] | None) -> str:
    cost = ""
    if estimate and estimate.get("time_s") is not None:
        minutes = estimate["time_s"] / 60
        spent = f"~{minutes:.0f} min" if minutes >= 1 else f"~{estimate['time_s']:.0f} s"
        dollars = estimate.get("cost_usd")
        cost = f"; finding out costs {spent}" + (f" (${dollars:.3f})" if dollars is not None
                                                  else "")
    if room is None:  # an overlap metric: no ceiling to count room against
        return (f"Not probed: a {chance:.0%} chance to beat {best.strategy}'s measured {metric} "
                f"{best.value:.3f} by the rules' view alone ({metric} against free-text "
                f"references has no reachable ceiling to count room against), ±"
                f"{spread * 100:.1f} points of noise in the probe{cost}.")
    return (f"Not probed: a {chance:.0%} chance to beat {best.strategy}'s measured {metric} "
            f"{best.value:.3f}, with {room * 100:.1f} points of room above it and ±"
            f"{spread * 100:.1f} points of noise in the probe{cost}.")
