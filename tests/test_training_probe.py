"""The probes' second stage: one LLM-training candidate measured on a short budget when the
cheap probes leave room (advisor.probes), and the unprobed siblings placed against it
(advisor.rules.measured). Pure: scripted executors and fake harnesses, no training."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from advisor.probes import (SHORT_BUDGET, SHORT_STEPS, SLICE_ROWS, leaves_room, run_probes,
                            summary_line, validation_slice)
from advisor.rules import Facts, ProbeScore, rank
from advisor.rules.measured import RULE_POINTS_PER_LOGIT, noise

# the banking-like profile of tests/test_probes.py: the rules level the encoder classifiers
# with LoRA, and put QLoRA 5 points below LoRA
from tests.test_probes import CPU, PROFILE
from tests.test_probes import ESTIMATES as PROBE_ESTIMATES

ESTIMATES = {**PROBE_ESTIMATES,
             "qlora": {"peak_memory_gb": 3.0, "time_s": 260.0, "cost_usd": 0.006}}


def _write(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _classification(tmp_path: Path, count: int = 800) -> Path:
    return _write(tmp_path / "data", [{"text": f"message {i} about topic {i % 4}",
                                       "label": f"topic{i % 4}"} for i in range(count)])


def _qa(tmp_path: Path, count: int = 400) -> Path:
    return _write(tmp_path / "data", [{"question": f"what is item {i}?",
                                       "context": f"item {i} is thing {i % 7}",
                                       "answer": f"thing {i % 7}"} for i in range(count)])


class ScriptedExecutor:
    """A record per job at the scripted score of its strategy; keeps the jobs it was given."""

    def __init__(self, scores: dict[str, float], metric: str = "accuracy",
                 degenerate: tuple[str, ...] = ()) -> None:
        self.scores, self.metric, self.degenerate = scores, metric, degenerate
        self.jobs = []

    def run(self, jobs, on_event, cancel):
        for job in jobs:
            self.jobs.append(job)
            value = self.scores.get(job.strategy, 0.25)
            record = {"strategy": job.strategy, "family": job.family, "task": job.task,
                      "status": "ok", "error": None, "primary_metric": self.metric,
                      "metrics": {self.metric: value},
                      "metrics_ci": {self.metric: [value - 0.05, value + 0.05]},
                      "time_s": {"total": 2.0}, "info": {}}
            if job.strategy in self.degenerate:
                record.update(degenerate=True, degenerate_why="predicts the label 'topic0' for "
                                                              "40 of 40 test rows")
            elif job.family != "baseline" and job.strategy not in ("knn", "transfer"):
                record["info"] = {"steps": 24, "budget": {"steps": 24}}
            yield record


def _probe(data: Path, tmp_path: Path, executor, **kwargs):
    return run_probes(str(data), executor=executor, out=str(tmp_path / "runs"), **kwargs)


# --------------------------------------------------------------------------- when it runs


def test_with_room_the_named_candidate_trains_on_a_short_budget(tmp_path):
    """knn 0.75 on 80 validation rows (±0.09) leaves room: lora is measured too, through the
    harness (its own job, the plan's per-strategy overrides in its config), on every
    validation row."""
    executor = ScriptedExecutor({"knn": 0.75, "transfer": 0.7, "zero-shot": 0.5, "lora": 0.9})
    measured = _probe(_classification(tmp_path), tmp_path, executor, task="classification",
                      training_candidate="lora")
    jobs = {job.strategy: job for job in executor.jobs}
    assert set(jobs) == {"majority", "knn", "transfer", "zero-shot", "lora"}
    lora = jobs["lora"]
    assert lora.eval_split == "validation" and lora.eval_subset is None
    assert lora.overrides == SHORT_BUDGET
    assert lora.config["max_steps"] == SHORT_STEPS and lora.config["time_budget_s"] == 120.0
    score = measured.scores["lora"]
    assert score.value == 0.9 and score.budget == "short" and score.steps == 24
    assert score.rows == measured.validation_rows
    assert measured.as_dict()["scores"][-1]["budget"] == "short"
    assert "lora 0.900 ±" in summary_line(measured.as_dict())
    assert "short budget: 24 steps, a lower bound" in summary_line(measured.as_dict())
    # the cheap probes' scores carry no budget mark
    assert measured.scores["knn"].budget is None and "budget" not in measured.scores[
        "knn"].as_dict()


def test_the_quick_presets_step_floor_does_not_force_more_than_the_short_budget():
    from strategies import registry
    from strategies.training_budget import plan_steps

    config = registry.get("lora").make_config("quick", SHORT_BUDGET)
    assert config.min_steps > SHORT_STEPS  # the floor is there...
    budget = plan_steps(2000, config)
    assert budget.steps == SHORT_STEPS and budget.limited_by == "max_steps"  # ...and capped


def test_without_room_no_candidate_trains(tmp_path):
    """knn at 0.975 on 80 validation rows: 1 - 2 x its noise is below it, nothing to find."""
    executor = ScriptedExecutor({"knn": 0.975, "transfer": 0.95, "zero-shot": 0.5})
    measured = _probe(_classification(tmp_path), tmp_path, executor, task="classification",
                      training_candidate="lora")
    assert "lora" not in {job.strategy for job in executor.jobs}
    assert "lora" not in measured.scores and "lora" not in measured.failed
    assert not leaves_room(measured.scores["knn"], "accuracy")


def test_without_a_named_candidate_the_stage_does_not_run(tmp_path):
    executor = ScriptedExecutor({"knn": 0.5})
    measured = _probe(_classification(tmp_path), tmp_path, executor, task="classification")
    assert {job.strategy for job in executor.jobs} == {"majority", "knn", "transfer",
                                                       "zero-shot"}
    assert set(measured.scores) == {"majority", "knn", "transfer", "zero-shot"}


def test_the_stage_measures_the_candidate_it_is_given(tmp_path):
    executor = ScriptedExecutor({"knn": 0.6, "dora": 0.7})
    measured = _probe(_classification(tmp_path), tmp_path, executor, task="classification",
                      training_candidate="dora")
    assert executor.jobs[-1].strategy == "dora" and "lora" not in measured.scores
    assert measured.scores["dora"].budget == "short"


def test_qa_trains_the_candidate_and_scores_the_prompting_probes_slice(tmp_path):
    executor = ScriptedExecutor({"zero-shot": 0.15, "lora": 0.3}, metric="token_f1")
    measured = _probe(_qa(tmp_path), tmp_path, executor, task="qa", training_candidate="lora")
    jobs = {job.strategy: job for job in executor.jobs}
    assert set(jobs) == {"zero-shot", "few-shot", "lora"}  # no corpus: no rag probe
    assert jobs["lora"].eval_subset == jobs["zero-shot"].eval_subset == validation_slice(
        measured.validation_rows, "qa")
    assert measured.scores["lora"].rows == SLICE_ROWS["qa"]


def test_a_collapsed_short_run_is_not_a_measurement(tmp_path):
    executor = ScriptedExecutor({"knn": 0.6, "lora": 0.25}, degenerate=("lora",))
    measured = _probe(_classification(tmp_path), tmp_path, executor, task="classification",
                      training_candidate="lora")
    assert "lora" not in measured.scores
    assert "collapsed, not used as a measurement" in measured.failed["lora"]
    assert "predicts the label 'topic0'" in measured.failed["lora"]


def test_a_stage_that_cannot_run_keeps_the_cheap_probes(tmp_path):
    """A fake harness: the cheap plan scores, the short-budget plan is refused."""
    from bench.errors import TunewiseError

    plans = []

    def benchmark(plan, on_event=None, executor=None):
        plans.append(plan)
        if plan.strategies == ["lora"]:
            raise TunewiseError("no such option")
        return SimpleNamespace(records=[{"strategy": "knn", "status": "ok",
                                         "metrics": {"accuracy": 0.5}, "time_s": {"total": 1}}])

    measured = run_probes(str(_classification(tmp_path)), task="classification",
                          strategies=("knn",), benchmark=benchmark, training_candidate="lora")
    assert [p.strategies for p in plans] == [["knn"], ["lora"]]
    assert plans[1].overrides == {"lora": SHORT_BUDGET} and plans[1].preset == "quick"
    assert measured.scores["knn"].value == 0.5
    assert measured.failed == {"lora": "short-budget training probe did not run: no such option"}


def test_the_stages_time_counts_in_the_probes_seconds(tmp_path):
    """A fake harness whose short run takes 0.3 s and stops at step 17 (its time budget)."""
    import time

    def benchmark(plan, on_event=None, executor=None):
        if plan.strategies == ["lora"]:
            time.sleep(0.3)
            return SimpleNamespace(records=[{
                "strategy": "lora", "status": "ok", "metrics": {"accuracy": 0.8},
                "time_s": {"total": 0.3},
                "info": {"steps": 17, "budget": {"steps": 24, "limited_by": "max_steps"}}}])
        return SimpleNamespace(records=[{"strategy": "knn", "status": "ok",
                                         "metrics": {"accuracy": 0.5}, "time_s": {"total": 1}}])

    measured = run_probes(str(_classification(tmp_path)), task="classification",
                          strategies=("knn",), benchmark=benchmark, training_candidate="lora")
    assert measured.seconds >= 0.3
    assert measured.scores["lora"].steps == 17 and measured.scores["lora"].budget == "short"


def test_lower_is_better_leaves_no_room():
    assert not leaves_room(ProbeScore("x", 0.1, rows=100), "cost_usd")
    assert not leaves_room(ProbeScore("x", 0.1, rows=100), "perplexity")  # not known
    assert leaves_room(ProbeScore("x", 0.5, rows=100), "accuracy")


# --------------------------------------------------------------------------- the ranking


def _ranking(measured: dict[str, ProbeScore]):
    facts = Facts.from_inputs({"task": "classification"}, PROFILE, CPU, params_b=0.135,
                              probes=measured, probe_metric="accuracy")
    return rank(facts, ESTIMATES)


def _candidate(result, name):
    return next(c for c in result.ranked if c.strategy == name)


def _uci_like() -> dict[str, ProbeScore]:
    """The UCI sentiment case: transfer 0.80 measured; lora 0.93 on a short budget."""
    return {"majority": ProbeScore("majority", 0.5, rows=24, seconds=1.0),
            "knn": ProbeScore("knn", 0.76, rows=24, seconds=10.0),
            "transfer": ProbeScore("transfer", 0.80, rows=24, seconds=10.0),
            "zero-shot": ProbeScore("zero-shot", 0.55, rows=24, seconds=20.0),
            "lora": ProbeScore("lora", 0.93, rows=24, seconds=90.0, budget="short", steps=24)}


def test_a_probed_lora_that_beats_transfer_ranks_first():
    result = _ranking(_uci_like())
    order = [c.strategy for c in result.ranked]
    assert order[0] == "lora" and order.index("lora") < order.index("transfer")
    lora = _candidate(result, "lora")
    assert lora.measured and lora.expected == 0.93
    assert "short-budget probe (24 steps): a lower bound" in lora.reasons[0].text


def test_an_unprobed_sibling_is_placed_against_the_probed_one_by_the_rules_alone():
    result = _ranking(_uci_like())
    lora, qlora = _candidate(result, "lora"), _candidate(result, "qlora")
    rules_only = _ranking({})  # no probes: the rule scores
    gap = _candidate(rules_only, "qlora").score - _candidate(rules_only, "lora").score
    assert gap < 0  # the rules put qlora below lora
    chance = 1 / (1 + math.exp(-gap / RULE_POINTS_PER_LOGIT))
    spread = noise(_uci_like()["lora"])
    assert qlora.chance == pytest.approx(chance)
    assert qlora.expected == pytest.approx(0.93 + (chance - 0.5) * 2 * spread)
    assert qlora.expected < lora.expected
    text = qlora.reasons[0].text
    assert text.startswith("Not probed; its sibling lora was: accuracy 0.930")
    assert "(short budget: 24 steps)" in text and "by the rules' view alone" in text.lower()
    assert f"{abs(gap):.0f} points below lora" in text


def test_candidates_without_a_probed_sibling_keep_the_room_model():
    result = _ranking(_uci_like())
    for name in ("encoder-ft", "setfit"):
        reason = _candidate(result, name).reasons[0]
        assert reason.rule == "chance-to-beat"
        assert "Not probed: a" in reason.text and "beat lora's measured accuracy 0.930" in \
            reason.text


def test_without_a_probed_sibling_lora_keeps_the_room_model_too():
    measured = {k: v for k, v in _uci_like().items() if k != "lora"}
    qlora = _candidate(_ranking(measured), "qlora")
    assert "beat transfer's measured accuracy 0.800" in qlora.reasons[0].text


def test_knn_at_0975_leaves_no_room_and_ranks_first():
    """The banking case: no stage (no room), knn and transfer first, lora by the room model."""
    measured = {"knn": ProbeScore("knn", 0.975, rows=40, seconds=10.0),
                "transfer": ProbeScore("transfer", 0.975, rows=40, seconds=10.0),
                "zero-shot": ProbeScore("zero-shot", 0.4, rows=40, seconds=20.0)}
    assert not leaves_room(measured["knn"], "accuracy")
    result = _ranking(measured)
    order = [c.strategy for c in result.ranked]
    assert order[:2] == ["knn", "transfer"]
    assert _candidate(result, "lora").chance < 0.5


# --------------------------------------------------------------------------- the front door


def test_recommend_names_the_rules_top_training_candidate(monkeypatch):
    """advisor.recommend ranks by the rules first, hands the fitting LLM-training candidate they
    rank highest to the probes, then ranks again with what they measured."""
    from advisor import probes as probes_module
    from advisor.probes import Probes
    from advisor.recommend import recommend

    asked = []

    def fake(data, **kwargs):
        asked.append(kwargs.get("training_candidate"))
        return Probes("accuracy", _uci_like(), {}, 24, 120.0)

    monkeypatch.setattr(probes_module, "run_probes", fake)
    answers = {"task": "classification", "data": {"path": "not-read"}}
    result = recommend(answers, profile=PROFILE, hardware=CPU, measure=False, probe=True)
    assert asked == ["lora"]
    assert result.ranking.ranked[0].strategy == "lora"
    assert result.ranking.probes["seconds"] == 120.0
    rules_only = recommend(answers, profile=PROFILE, hardware=CPU, measure=False, probe=False)
    assert asked == ["lora"] and rules_only.ranking.probes is None



def test_on_a_tie_the_measured_then_the_rules_view_then_the_cost():
    """Expected scores that round equal: a measured candidate first, then the guesses by the
    rules' score, the cheaper only when that ties too (rag over lora by cost alone was how a
    saturated chance once put rag first on a generation set)."""
    from advisor.rules.ranking import Candidate, measured_order

    def guess(name, score, rule, seconds, measured=False):
        return Candidate(name, "f", score, estimate={"time_s": seconds}, expected=score / 100,
                         measured=measured, rule_score=rule)

    candidates = [guess("rag", 50.2, 55, 131.0), guess("lora", 49.9, 85, 381.0),
                  guess("few-shot", 49.6, 60, 160.0, measured=True),
                  guess("dora", 50.0, 85, 300.0), guess("full", 60.0, 40, 900.0)]
    ranked = sorted(candidates, key=lambda c: measured_order(c, 0))
    assert [c.strategy for c in ranked] == ["full", "few-shot", "dora", "lora", "rag"]
    unfit = guess("qlora", 90.0, 90, 10.0)
    unfit.fits = False
    assert sorted([unfit, *candidates], key=lambda c: measured_order(c, 0))[-1] is unfit


def test_a_short_run_of_too_few_steps_is_not_a_measurement(tmp_path):
    """The time bound let it take 3 steps (a busy machine): not evidence about training."""
    from advisor.probes import SHORT_MIN_STEPS

    def benchmark(plan, on_event=None, executor=None):
        records = []
        for name in plan.strategies:
            record = {"strategy": name, "status": "ok", "metrics": {"accuracy": 0.6},
                      "time_s": {"total": 1.0}}
            if name == "lora":
                record["info"] = {"steps": SHORT_MIN_STEPS - 5,
                                  "budget": {"steps": 24, "limited_by": "time_budget"}}
            records.append(record)
        return type("Result", (), {"records": records})()

    measured = run_probes(str(_classification(tmp_path)), task="classification",
                          strategies=("knn",), benchmark=benchmark, training_candidate="lora")
    assert "lora" not in measured.scores and "knn" in measured.scores
    assert "took 3 step(s)" in measured.failed["lora"] and "too few" in measured.failed["lora"]


def test_overlap_metrics_give_unprobed_candidates_no_room_only_the_rules_view():
    """ROUGE-L 0.28 from zero-shot is not 72 points of room: an unprobed candidate the rules
    rank a little below the best probe is expected below it, not a noise above."""
    from advisor.rules.measured import expectations

    best = ProbeScore("zero-shot", 0.28, 0.17, 0.42, rows=12, seconds=10.0)
    lora = ProbeScore("lora", 0.265, 0.13, 0.42, rows=12, seconds=150.0, budget="short",
                      steps=24)
    rules = {"zero-shot": 60.0, "rag": 55.0, "lora": 85.0}

    def facts(metric):
        return Facts(task="generation", probes={"zero-shot": best, "lora": lora},
                     probe_metric=metric)

    rouge = expectations(facts("rouge_l"), rules, {})
    assert rouge["rag"].chance == pytest.approx(1 / (1 + math.exp(0.5)))
    assert rouge["rag"].expected < lora.value < best.value
    assert "no reachable ceiling" in rouge["rag"].text
    # the same numbers as accuracy: room counts, and rag is expected above the best probe
    accuracy = expectations(facts("accuracy"), rules, {})
    assert accuracy["rag"].expected > best.value and "points of room" in accuracy["rag"].text
