"""What the report concludes from the records: columns, best values, Pareto fronts, the winner.

Pure functions over plain dicts (no I/O, no HTML), so every conclusion the report draws can be
tested on its own. Records may be old or partial: every getter tolerates missing keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bench.schema import HIGHER_IS_BETTER
from reports import format as fmt
# the record getters, here too: the report's sections read them as analysis.<name>
from reports.facts import (DEGENERATE_MARK, FAILED_STATUSES, TASK_METRICS, dig, as_list,
                           ok_records, is_degenerate, unfinished_records, run_task,
                           primary_metric, quality_metrics, metric_value, metric_ci,
                           higher_is_better, peak_memory_mb, time_part, cost_part, test_rows,
                           train_rows, seconds_per_request, has_cuda_memory, deploy_value,
                           has_deploy_facts)

PRIORITIES = ("quality", "cost", "latency", "balanced")


# ---------------------------------------------------------------- several base models

def run_models(records: list[dict], manifest: dict) -> list[str]:
    """The base models the run compared, in the order given (one entry: nothing compared)."""
    models = [str(m) for m in as_list(manifest.get("models")) if m]
    for record in records:
        model = record.get("model")
        if isinstance(model, str) and model and model not in models:
            models.append(model)
    return models


def base_name(record: dict) -> str:
    """The strategy of a record, without the variant (`lora@SmolLM2-135M` -> `lora`)."""
    return str(record.get("base_strategy") or record.get("strategy"))


@dataclass(frozen=True)
class ModelComparison:
    """The LLM candidates side by side: one row per strategy, one cell per base model."""

    models: list[str]
    rows: list[dict]  # {"strategy", "cells": [{"text", "ci", "best", "status", "candidate"}]}


def model_comparison(records: list[dict], manifest: dict, metric: str) -> ModelComparison | None:
    """None unless the run compared several base models."""
    models = run_models(records, manifest)
    if len(models) < 2:
        return None
    by_strategy: dict[str, dict[str, dict]] = {}
    for record in records:
        if isinstance(record.get("model"), str):
            by_strategy.setdefault(base_name(record), {})[record["model"]] = record
    rows = []
    for strategy, per_model in by_strategy.items():
        values = [metric_value(r, metric) for r in per_model.values() if r.get("status") == "ok"]
        values = [v for v in values if v is not None]
        best = (max(values) if higher_is_better(metric) else min(values)) \
            if len(set(values)) > 1 else None
        cells = []
        for model in models:
            record = per_model.get(model)
            value = metric_value(record, metric) if record and record.get("status") == "ok" else None
            cells.append({"text": fmt.fmt_metric(value) if value is not None
                          else (record or {}).get("status", "not run"),
                          "ci": fmt.fmt_ci(metric_ci(record, metric)) if value is not None else "",
                          "best": value is not None and value == best,
                          "p50": fmt.fmt_ms(deploy_value(record, "p50_ms"))
                          if record and deploy_value(record, "p50_ms") is not None else "",
                          "candidate": (record or {}).get("strategy")})
        rows.append({"strategy": strategy, "cells": cells})
    return ModelComparison(models, rows)


# ---------------------------------------------------------------- the measured table

@dataclass(frozen=True)
class Column:
    key: str  # stable id, also the results.csv header
    label: str  # header text in the report
    unit: str  # shown under the header
    get: Callable[[dict], Any]  # raw value from a record (None when missing)
    show: Callable[[Any], str]  # formatted text
    better: str | None  # "higher" | "lower" | None (not compared)
    group: str  # quality | memory | time | size | cost


def _better(schema_key: str) -> str:
    return "higher" if HIGHER_IS_BETTER.get(schema_key, True) else "lower"


def table_columns(records: list[dict], manifest: dict) -> list[Column]:
    columns = [Column(m, m.replace("_", " "), "95% CI" if any(metric_ci(r, m) for r in records) else "",
                      lambda r, m=m: metric_value(r, m), fmt.fmt_metric,
                      "higher" if higher_is_better(m) else "lower", "quality")
               for m in quality_metrics(records, manifest)]
    memory = "peak_memory_mb"
    columns.append(Column("peak_rss_mb", "peak memory (RSS)", "MB",
                          lambda r: fmt.as_number(dig(r, memory, "cpu_rss")), fmt.fmt_mb,
                          _better(memory), "memory"))
    if has_cuda_memory(records):
        columns.append(Column("peak_cuda_mb", "peak memory (CUDA)", "MB",
                              lambda r: fmt.as_number(dig(r, memory, "cuda")), fmt.fmt_mb,
                              _better(memory), "memory"))
    columns += [
        Column("adapt_s", "adapt time", "s", lambda r: time_part(r, "adapt"), fmt.fmt_seconds,
               _better("time_s"), "time"),
        Column("predict_s", "predict time", "s", lambda r: time_part(r, "predict"), fmt.fmt_seconds,
               _better("time_s"), "time"),
        Column("tokens_per_s", "tokens/s", "tok/s", lambda r: fmt.as_number(r.get("tokens_per_s")),
               fmt.fmt_rate, _better("tokens_per_s"), "time"),
        Column("trainable_params", "trainable params", "count",
               lambda r: fmt.as_number(r.get("trainable_params")), fmt.fmt_count,
               _better("trainable_params"), "size"),
        Column("artifact_mb", "artifact", "MB", lambda r: fmt.as_number(r.get("artifact_mb")),
               fmt.fmt_mb, _better("artifact_mb"), "size"),
        Column("cost_adapt_usd", "adapt cost", "USD", lambda r: cost_part(r, "adapt"),
               fmt.fmt_usd, _better("cost_usd"), "cost"),
        Column("cost_per_1k_usd", "cost per 1k requests", "USD",
               lambda r: cost_part(r, "per_1k_requests"), fmt.fmt_usd, _better("cost_usd"), "cost"),
    ]
    if has_deploy_facts(records):  # measured at batch 1 after evaluation (bench.deploy)
        columns += [
            Column("latency_p50_ms", "latency p50", "ms, batch 1",
                   lambda r: deploy_value(r, "p50_ms"), fmt.fmt_ms, "lower", "time"),
            Column("latency_p95_ms", "latency p95", "ms, batch 1",
                   lambda r: deploy_value(r, "p95_ms"), fmt.fmt_ms, "lower", "time"),
            Column("serving_mb", "serving memory", "MB",
                   lambda r: deploy_value(r, "serving_mb"), fmt.fmt_mb, "lower", "memory"),
        ]
    return columns


def best_values(records: list[dict], columns: list[Column]) -> dict[str, float]:
    """Per column, the best value among finished candidates (ties are all marked best)."""
    best = {}
    for column in columns:
        values = [v for v in (fmt.as_number(column.get(r)) for r in ok_records(records)
                              if not is_degenerate(r)) if v is not None]  # a collapse earns no ★
        # A column where every candidate ties tells the reader nothing: mark no best there.
        if column.better and len(set(values)) > 1:
            best[column.key] = max(values) if column.better == "higher" else min(values)
    return best


def measured_ranking(records: list[dict], metric: str) -> list[dict]:
    """Finished candidates, best primary metric first; cheaper serving breaks ties."""
    sign = -1 if higher_is_better(metric) else 1

    def key(record):
        value = metric_value(record, metric)
        per_1k = cost_part(record, "per_1k_requests")
        return (value is None, sign * (value or 0.0), per_1k if per_1k is not None else float("inf"))

    return sorted(ok_records(records), key=key)


# ---------------------------------------------------------------- Pareto front

def pareto_front(points: list[tuple[float, float, Any]]) -> list[Any]:
    """Ids of points (x lower-better, y higher-better, id) that no other point dominates."""
    front = []
    for x, y, ident in points:
        dominated = any(ox <= x and oy >= y and (ox < x or oy > y) for ox, oy, _ in points)
        if not dominated:
            front.append(ident)
    return front


# ---------------------------------------------------------------- the advisor's answers

def advice_answers(advice: dict | None, manifest: dict) -> dict:
    """The answers the advice was made for, wherever this advice/manifest version keeps them."""
    for source in (advice or {}, manifest):
        answers = source.get("answers") if isinstance(source, dict) else None
        if isinstance(answers, dict):
            return answers
    return {}


def user_priority(advice: dict | None, manifest: dict) -> tuple[str, bool]:
    """(priority, stated): the user's priority, 'quality' when none was given."""
    answers = advice_answers(advice, manifest)
    for value in (dig(advice, "priority"), dig(advice, "goals", "priority"),
                  dig(answers, "goals", "priority")):
        if isinstance(value, str) and value in PRIORITIES:
            return value, True
    return "quality", False


def advisor_pick(advice: dict | None) -> str | None:
    """The advisor's top recommendation: the best-ranked candidate that fits."""
    ranked = [c for c in as_list(dig(advice, "ranked")) if isinstance(c, dict) and c.get("strategy")]
    fitting = [c for c in ranked if c.get("fits", True)]
    chosen = fitting or ranked
    return str(chosen[0]["strategy"]) if chosen else None


def constraint_violations(record: dict, answers: dict, manifest: dict) -> list[str]:
    """The stated limits (budget, latency, GPU memory) this candidate's measurements break."""
    problems = []
    budget = fmt.as_number(dig(answers, "resources", "budget_usd"))
    adapt_cost = cost_part(record, "adapt")
    if budget is not None and adapt_cost is not None and adapt_cost > budget:
        problems.append(f"budget: adapting cost {fmt.fmt_usd(adapt_cost)} measured, "
                        f"limit {fmt.fmt_usd(budget)}")
    latency_ms = fmt.as_number(dig(answers, "goals", "latency_ms"))
    per_request = seconds_per_request(record, manifest)
    if latency_ms is not None and per_request is not None and per_request * 1000 > latency_ms:
        problems.append(f"latency: {per_request * 1000:.0f} ms per request measured, "
                        f"limit {latency_ms:.0f} ms")
    gpu_gb = fmt.as_number(dig(answers, "resources", "gpu_memory_gb"))
    cuda_mb = fmt.as_number(dig(record, "peak_memory_mb", "cuda"))
    if gpu_gb is not None and cuda_mb is not None and cuda_mb > gpu_gb * 1024:
        problems.append(f"GPU memory: peak {fmt.fmt_mb(cuda_mb)} measured, limit {gpu_gb:g} GB")
    return problems


# ---------------------------------------------------------------- the winner and the verdict

@dataclass
class Verdict:
    sentence: str
    winner: str | None
    priority: str
    distinguishable: bool | None  # None when there is no runner-up or no interval to compare


def intervals_overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool | None:
    if a is None or b is None:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def _describe(record: dict, metric: str) -> str:
    interval = metric_ci(record, metric)
    ci = f", 95% CI {interval[0]:.3f}–{interval[1]:.3f}" if interval else ""
    return f"{fmt.fmt_metric(metric_value(record, metric))}{ci}"


def _costs(record: dict) -> str:
    return (f"{fmt.fmt_usd(cost_part(record, 'adapt'))} to adapt and "
            f"{fmt.fmt_usd(cost_part(record, 'per_1k_requests'))} per 1,000 requests")


def _advisor_clause(winner: str, advice: dict | None, by_name: dict[str, dict], metric: str) -> str:
    pick = advisor_pick(advice)
    if pick is None:
        return "no advisor ranking was recorded for this run"
    if pick == winner:
        return "it is the advisor's top recommendation"
    record = by_name.get(pick)
    if record is None:
        return f"the advisor had ranked {pick} first, but it was not run"
    race = dig(record, "info", "race")
    if isinstance(race, dict) and race.get("outcome") == "stopped":
        rungs = as_list(race.get("rungs"))
        last = rungs[-1] if rungs and isinstance(rungs[-1], dict) else {}
        return (f"the advisor had ranked {pick} first, but the race stopped it at rung "
                f"{len(rungs)} (validation {metric} {fmt.fmt_metric(last.get('validation'))} on "
                f"{last.get('train_rows')} train rows)")
    if record.get("status") != "ok":
        what = {"failed": "failed", "skipped": "was skipped", "timeout": "timed out"}.get(
            str(record.get("status")), "did not finish")
        return f"the advisor had ranked {pick} first, but it {what} (see below)"
    if is_degenerate(record):
        return (f"the advisor had ranked {pick} first, but its predictions collapsed to one "
                "answer, so this run did not measure its method")
    return f"the advisor had ranked {pick} first (measured {metric} {fmt.fmt_metric(metric_value(record, metric))})"


def _eligible(ranked: list[dict], metric: str, target: float | None) -> list[dict]:
    """Candidates good enough to trade quality for cost or speed: they reach the stated target,
    or (no target) their interval overlaps the best one's, so they are not measurably worse."""
    if target is not None:
        reaching = [r for r in ranked if (metric_value(r, metric) or 0) >= target]
        if reaching:
            return reaching
    best_ci = metric_ci(ranked[0], metric)
    return [ranked[0]] + [r for r in ranked[1:] if intervals_overlap(metric_ci(r, metric), best_ci)]


def _pick_by_priority(eligible: list[dict], priority: str, manifest: dict) -> dict:
    def per_1k(r):
        value = cost_part(r, "per_1k_requests")
        return value if value is not None else float("inf")

    def latency(r):
        value = seconds_per_request(r, manifest) or time_part(r, "predict")
        return value if value is not None else float("inf")

    if priority == "cost":
        return min(eligible, key=per_1k)
    if priority == "latency":
        return min(eligible, key=latency)
    # balanced: the best sum of ranks on quality (eligible is already quality-ordered), serving
    # cost and latency; quality breaks ties.
    cost_rank = {id(r): i for i, r in enumerate(sorted(eligible, key=per_1k))}
    latency_rank = {id(r): i for i, r in enumerate(sorted(eligible, key=latency))}
    return min(enumerate(eligible), key=lambda p: (p[0] + cost_rank[id(p[1])] + latency_rank[id(p[1])], p[0]))[1]


def verdict(records: list[dict], manifest: dict, advice: dict | None = None) -> Verdict:
    """One sentence: who wins under the user's priority, by how much, at what cost, and whether
    the advisor had recommended it. In a preference run only policies compete: a reward model
    scores answers but writes none, so it is named after the verdict instead of ranked in it."""
    policies, scorers = split_reward_models(records, manifest)
    result = _verdict(policies, manifest, advice)
    collapsed = [r for r in ok_records(policies) if is_degenerate(r)]
    if collapsed:
        named = "; ".join(f"{r['strategy']} {r.get('degenerate_why') or 'collapsed'}"
                          for r in collapsed)
        result.sentence += (f" Left out of the comparison because their predictions collapsed "
                            f"to one answer: {named}. A candidate that did not learn the task "
                            "with this budget is no evidence that its method loses.")
    aside = set_aside(policies, manifest, advice)
    if aside:
        them = "it" if len(aside) == 1 else "they"
        result.sentence += (f" Set aside because {them} broke your stated limits: "
                            + "; ".join(f"{name} ({', '.join(problems)})" for name, problems in aside)
                            + ".")
    forgets = forgetting_note(policies, manifest, result.winner)
    if forgets:
        result.sentence += f" {forgets}"
    if scorers:
        named = ", ".join(f"{r['strategy']} (reward accuracy "
                          f"{fmt.fmt_metric((r.get('metrics') or {}).get('reward_accuracy'))})"
                          for r in scorers)
        result.sentence += (f" Not ranked here: {named}, a reward model, which scores answers but "
                            "gives none; its preference accuracy in the table is its reward accuracy.")
    return result


# ---------------------------------------------------------------- forgetting (bench.forgetting)

FORGETS_MUCH = 0.10  # 10% more perplexed by general text than the runner-up: worth a sentence
LLM_UNTOUCHED = ("baseline", "prompting", "rag", "transfer")  # families that train no LLM


def forgetting_change(record: dict) -> float | None:
    """perplexity / base perplexity - 1 on the general probe; 0 for a candidate that leaves
    the LLM untouched; None when a trained candidate was not probed."""
    change = dig(record, "forgetting", "change")
    if isinstance(change, (int, float)):
        return float(change)
    return 0.0 if record.get("family") in LLM_UNTOUCHED else None


def forgetting_interval(record: dict) -> tuple[float, float] | None:
    interval = dig(record, "forgetting", "interval")
    if (isinstance(interval, list) and len(interval) == 2
            and all(isinstance(v, (int, float)) for v in interval)):
        return float(interval[0]), float(interval[1])
    return None


def forgetting_rows(records: list[dict]) -> list[dict]:
    """The report's forgetting table: every finished candidate with a forgetting record."""
    rows = []
    for record in ok_records(records):
        forgetting = record.get("forgetting")
        if not isinstance(forgetting, dict):
            continue
        numbers = {key: forgetting.get(key) for key in ("base_perplexity", "perplexity", "change")}
        measured = all(isinstance(v, (int, float)) for v in numbers.values())
        seconds = forgetting.get("seconds")
        rows.append({"strategy": record.get("strategy"), "family": record.get("family"),
                     "base": numbers["base_perplexity"], "perplexity": numbers["perplexity"],
                     "change": numbers["change"], "interval": forgetting_interval(record),
                     "seconds": seconds if isinstance(seconds, (int, float)) else None,
                     "why_not": None if measured else str(forgetting.get("skipped")
                                                          or forgetting.get("error")
                                                          or "no measurement recorded")})
    return rows


def forgetting_note(records: list[dict], manifest: dict, winner: str | None) -> str | None:
    """A sentence when the winner forgets much more than the runner-up: general text is at
    least FORGETS_MUCH more perplexing to it, and its interval lies above the runner-up's
    change."""
    metric = primary_metric(records, manifest)
    ranked = [r for r in measured_ranking(records, metric) if not is_degenerate(r)]
    names = [str(r.get("strategy")) for r in ranked]
    if winner not in names or len(ranked) < 2:
        return None
    best = ranked[names.index(winner)]
    runner_up = next(r for r in ranked if r is not best)
    mine, theirs = forgetting_change(best), forgetting_change(runner_up)
    interval = forgetting_interval(best)
    if mine is None or theirs is None or interval is None:
        return None
    if mine - theirs < FORGETS_MUCH or interval[0] <= theirs:
        return None
    untouched = " (it leaves the base model untouched)" if "forgetting" not in runner_up else ""
    return (f"But {winner} forgets more: general text is {mine:.0%} more perplexing to it than "
            f"to the base model (95% interval {interval[0]:+.0%} to {interval[1]:+.0%}), vs "
            f"{theirs:+.0%} for the runner-up {runner_up.get('strategy')}{untouched}.")


def set_aside(records: list[dict], manifest: dict, advice: dict | None) -> list[tuple[str, list[str]]]:
    """(name, the limits it broke) for every finished candidate whose measurements break a limit
    the user stated; the verdict ranks the others."""
    answers = advice_answers(advice, manifest)
    metric = primary_metric(records, manifest)
    return [(str(r.get("strategy")), problems) for r in measured_ranking(records, metric)
            if (problems := constraint_violations(r, answers, manifest))]


def split_reward_models(records: list[dict], manifest: dict) -> tuple[list[dict], list[dict]]:
    """(the records that compete in the verdict, the finished reward models set beside it).
    Only a preference run with at least one finished policy sets reward models aside."""
    if run_task(records, manifest) != "preference":
        return records, []
    scorers = [r for r in ok_records(records) if "reward_accuracy" in (r.get("metrics") or {})]
    policies = [r for r in records if r not in scorers]
    if not scorers or not ok_records(policies):
        return records, []
    return policies, scorers


def _verdict(records: list[dict], manifest: dict, advice: dict | None) -> Verdict:
    metric = primary_metric(records, manifest)
    priority, stated = user_priority(advice, manifest)
    answers = advice_answers(advice, manifest)
    by_name = {str(r.get("strategy")): r for r in records}
    # a collapsed candidate neither wins nor stands as the runner-up its method lost to
    ranked = [r for r in measured_ranking(records, metric) if not is_degenerate(r)]
    if not ranked and ok_records(records):
        return Verdict("Every finished candidate's predictions collapsed to one answer, so there "
                       "is no winner.", None, priority, None)
    if not ranked:
        return Verdict("No candidate finished successfully, so there is no winner; the reasons are "
                       "listed under “Candidates that did not finish”.", None, priority, None)
    within = [r for r in ranked if not constraint_violations(r, answers, manifest)]
    if ranked and not any(r.get("family") != "baseline" for r in within) and \
            any(r.get("family") != "baseline" for r in ranked):
        # Crowning the majority vote because everything else broke a limit would mislead:
        # say that no real candidate met the limits, and what the best one broke.
        # What each one broke is named after the verdict (set_aside).
        best = next(r for r in ranked if r.get("family") != "baseline")
        return Verdict(f"No candidate beyond the baselines met your stated limits: the best on {metric}, "
                       f"{best['strategy']} ({_describe(best, metric)}), broke them, at "
                       f"{_costs(best)}; {_advisor_clause(str(best['strategy']), advice, by_name, metric)}.",
                       None, priority, None)
    if within:
        ranked = within  # the ones that broke a limit are named after the verdict (set_aside)
    best = ranked[0]
    if len(ranked) == 1:
        name = best["strategy"]
        return Verdict(f"{name} is the only candidate that finished within your limits: "
                       f"{metric} {_describe(best, metric)}, at {_costs(best)}; "
                       f"{_advisor_clause(name, advice, by_name, metric)}.", name, priority, None)
    if priority == "quality":
        return _quality_verdict(ranked, metric, advice, by_name, stated)
    target = fmt.as_number(dig(answers, "goals", "target_metric"))
    winner = _pick_by_priority(_eligible(ranked, metric, target), priority, manifest)
    if winner is best:
        return _quality_verdict(ranked, metric, advice, by_name, True, priority)
    name = winner["strategy"]
    reason = {"cost": f"the cheapest to serve ({fmt.fmt_usd(cost_part(winner, 'per_1k_requests'))} "
                      f"per 1,000 requests vs {fmt.fmt_usd(cost_part(best, 'per_1k_requests'))} for {best['strategy']})",
              "latency": f"the fastest to answer ({fmt.fmt_seconds(seconds_per_request(winner, manifest) or time_part(winner, 'predict'))} "
                         f"vs {fmt.fmt_seconds(seconds_per_request(best, manifest) or time_part(best, 'predict'))} "
                         f"{'per request' if test_rows(manifest) else 'for the test set'} for {best['strategy']})",
              "balanced": "the best balance of quality, serving cost and latency (sum of ranks)"}[priority]
    good_enough = (f"reaching your target {metric} of {target:g}" if target is not None
                   else f"with {metric} not distinguishable from the best")
    sentence = (f"Under your {priority} priority, {name} wins: {reason} among the candidates "
                f"{good_enough} — {metric} {_describe(winner, metric)} vs {_describe(best, metric)} for "
                f"{best['strategy']}, at {_costs(winner)}; {_advisor_clause(name, advice, by_name, metric)}.")
    return Verdict(sentence, name, priority, None)


def _quality_verdict(ranked, metric, advice, by_name, stated, priority="quality") -> Verdict:
    best, runner_up = ranked[0], ranked[1]
    name, other = best["strategy"], runner_up["strategy"]
    overlap = intervals_overlap(metric_ci(best, metric), metric_ci(runner_up, metric))
    delta = (metric_value(best, metric) or 0.0) - (metric_value(runner_up, metric) or 0.0)
    lead = f"Under your {priority} priority, " if stated else ""
    advisor = _advisor_clause(name, advice, by_name, metric)
    if overlap:
        sentence = (f"{lead}{name} scores the highest {metric} ({_describe(best, metric)}), but it is "
                    f"not distinguishable from the runner-up {other} ({_describe(runner_up, metric)}; the 95% "
                    f"intervals overlap), at {_costs(best)} vs {_costs(runner_up)} for {other}; {advisor}.")
    else:
        certainty = "" if overlap is False else " (no confidence intervals were recorded to test the gap)"
        sentence = (f"{lead}{name} wins on {metric} with {_describe(best, metric)}, {abs(delta):.3f} "
                    f"{'above' if higher_is_better(metric) else 'below'} the runner-up {other} "
                    f"({_describe(runner_up, metric)}){certainty}, at {_costs(best)}; {advisor}.")
    return Verdict(sentence[0].upper() + sentence[1:], name, priority,
                   None if overlap is None else not overlap)


# ---------------------------------------------------------------- advisor vs measurement

def estimate_rows(records: list[dict], advice: dict | None) -> list[dict]:
    """Estimate vs measured peak memory and total time, with the relative error."""
    advised = {str(c.get("strategy")): c.get("estimate") for c in as_list(dig(advice, "ranked"))
               if isinstance(c, dict)}
    rows = []
    for record in ok_records(records):
        estimate = record.get("estimate") or advised.get(str(record.get("strategy")))
        if not isinstance(estimate, dict):
            continue
        memory_mb = peak_memory_mb(record)
        est_memory_gb = fmt.as_number(estimate.get("peak_memory_gb"))
        measured_gb = memory_mb / 1024 if memory_mb is not None else None
        est_time, measured_time = fmt.as_number(estimate.get("time_s")), time_part(record, "total")
        rows.append({
            "strategy": record.get("strategy"),
            "memory_estimate_gb": est_memory_gb, "memory_measured_gb": measured_gb,
            "memory_error": _relative_error(est_memory_gb, measured_gb),
            "time_estimate_s": est_time, "time_measured_s": measured_time,
            "time_error": _relative_error(est_time, measured_time),
            "cost_estimate_usd": fmt.as_number(estimate.get("cost_usd")),
            "cost_measured_usd": _sum(cost_part(record, "adapt"), cost_part(record, "predict")),
        })
    return rows


def _relative_error(estimate: float | None, measured: float | None) -> float | None:
    if estimate is None or not measured:
        return None
    return (estimate - measured) / measured


def _sum(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def ranking_comparison(records: list[dict], manifest: dict, advice: dict | None) -> list[dict]:
    """The advisor's prior ranking beside the measured one, one row per candidate."""
    metric = primary_metric(records, manifest)
    measured = {r["strategy"]: i + 1 for i, r in enumerate(measured_ranking(records, metric))}
    by_name = {r.get("strategy"): r for r in records}
    rows, seen = [], set()
    for rank, entry in enumerate(as_list(dig(advice, "ranked")), 1):
        if not isinstance(entry, dict) or not entry.get("strategy"):
            continue
        name = str(entry["strategy"])
        seen.add(name)
        rows.append(_comparison_row(name, rank, entry, by_name.get(name), measured, metric))
    for name, record in by_name.items():
        if name not in seen:
            rows.append(_comparison_row(name, None, {}, record, measured, metric))
    return rows


def _comparison_row(name, rank, entry, record, measured, metric) -> dict:
    reasons = [r for r in as_list(entry.get("reasons")) if isinstance(r, dict)]
    return {
        "strategy": name, "advisor_rank": rank,
        "family": entry.get("family") or (record or {}).get("family") or "", "score": fmt.as_number(entry.get("score")),
        "fits": entry.get("fits"), "reasons": reasons,
        "measured_rank": measured.get(name),
        "status": record.get("status") if record else "not run",
        "value": metric_value(record, metric) if record else None,
    }


def run_totals(records: list[dict], stages: list[dict]) -> dict[str, float]:
    """What the whole run cost: every candidate's and every shared stage's measured seconds
    and adapt + predict dollars (a stage is billed to no candidate, so it is added here)."""
    rows = list(records) + list(stages)
    return {"time_s": sum(time_part(r, "total") or 0.0 for r in rows),
            "cost_usd": sum((cost_part(r, "adapt") or 0.0) + (cost_part(r, "predict") or 0.0)
                            for r in rows),
            "stages_cost_usd": sum((cost_part(r, "adapt") or 0.0) + (cost_part(r, "predict") or 0.0)
                                   for r in stages)}
