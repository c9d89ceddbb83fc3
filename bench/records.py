"""A candidate's record: what happened to it, scored and measured, in bench.schema's shape.

    base_record(job, "skipped", "needs a CUDA GPU")      # a record with nothing measured
    unfinished_record(job, outcomes)                    # failed / timeout / cancelled
    finished_record(job, outcomes)                      # scored on the split, measured, priced
    stage_record(job, outcomes)                         # a shared stage: measured, priced

`finished_record` scores the predictions of every seed on the job's evaluation split (test,
or validation for a tuning trial), writes predictions/<candidate>.jsonl, and adds time,
memory, parameters, artifact size and cost. Predictions that cannot be scored make the
candidate failed, with the reason, even though its process finished cleanly.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import journal
from bench.errors import TunewiseError
from bench.plan import CandidateJob
from bench.schema import PRIMARY_METRIC, SCHEMA_VERSION

SAMPLE_ROWS = 5  # test rows copied into each record for the report
INPUT_KEY = {"classification": "text", "generation": "instruction", "qa": "question",
             "preference": "prompt"}


@dataclass
class ChildOutcome:
    """How one seed's child process ended (bench.launch)."""

    status: str  # ok | failed | skipped | timeout | cancelled
    error: str | None = None
    payload: dict[str, Any] | None = None
    wall_s: float = 0.0
    sampled_peak_mb: float = 0.0


def _read_split(path: str) -> dict[str, Any]:
    return journal.read_json(Path(path))


def base_record(job: CandidateJob, status: str, error: str | None) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": job.run_id,
        "strategy": job.strategy,
        "family": job.family,
        "task": job.task,
        "status": status,
        "error": error,
        "primary_metric": PRIMARY_METRIC[job.task],
        "metrics": {},
        "metrics_ci": {},
        "seeds": list(job.seeds),
        "peak_memory_mb": {"cpu_rss": 0.0, "cuda": None},
        "time_s": {"load": 0.0, "adapt": 0.0, "predict": 0.0, "total": 0.0},
        "tokens_per_s": None,
        "trainable_params": 0,
        "total_params": 0,
        "artifact_mb": 0.0,
        "cost_usd": {"adapt": 0.0, "predict": 0.0, "per_1k_requests": 0.0},
        "cost_projected": bool(job.price_row.get("projected")),
        "hardware": {**job.hardware, "price_row": job.price_row["name"],
                     "price_per_hour": job.price_row["usd_per_hour"], "device": job.device},
        "seed": job.seed,
        "config": job.config,
        "info": dict(job.extra_info),
        "estimate": job.estimate,
        "log": str(Path(job.log_path).relative_to(job.run_dir)),
        **_model_facts(job),
        **({"kind": job.kind} if job.kind != "candidate" else {}),
        **({"augmentation": dict(job.options["augmentation"])}  # --augment (bench.augment)
           if job.options.get("augmentation") else {}),
    }


def _model_facts(job: CandidateJob) -> dict[str, Any]:
    """The base model an LLM candidate ran on, its name in a run of several models and the
    prompt it was given."""
    facts: dict[str, Any] = {}
    if job.uses_llm:
        facts["model"] = job.model
    if job.per_model and job.variant:
        facts["variant"] = job.variant
    if job.prompt:
        facts["prompt"] = dict(job.prompt)
    return facts


def unfinished_record(job: CandidateJob, outcomes: list[ChildOutcome]) -> dict[str, Any]:
    last = outcomes[-1]
    status = "failed" if last.status == "cancelled" else last.status
    error = last.error or status
    if len(job.seeds) > 1:
        error = f"seed {job.seeds[len(outcomes) - 1]}: {error}"
    record = base_record(job, status, error)
    record["peak_memory_mb"]["cpu_rss"] = round(max(o.sampled_peak_mb for o in outcomes), 1)
    record["time_s"]["total"] = round(sum(o.wall_s for o in outcomes), 3)
    if last.status == "cancelled":
        record["info"]["cancelled"] = True
    return record


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _prediction_rows(task, test_rows, references, predictions_per_seed, seeds, row_scores):
    input_key = INPUT_KEY[task]
    for seed, predictions in zip(seeds, predictions_per_seed):
        for i, (row, reference, prediction) in enumerate(zip(test_rows, references, predictions)):
            entry = {"index": i, "seed": seed, "input": row.get(input_key),
                     "prediction": prediction, "reference": reference}
            if seed == seeds[0] and i < len(row_scores):
                entry.update(row_scores[i])
            yield entry


def score_record(job: CandidateJob, record: dict[str, Any], payloads: list[dict]) -> None:
    from bench.metrics import (collapse_over_seeds, compute_extra_metric, load_extra_metric,
                               metrics_without_ci, per_class_scores, reference_of, score_seeds)
    from bench.split_view import eval_rows, unblind_predictions

    split = _read_split(job.split_path)
    test_rows = eval_rows(split[job.eval_split], job.eval_subset)
    references = [reference_of(job.task, row) for row in test_rows]
    # The child saw the test inputs only (bench.split_view): map its answers back to the pairs.
    predictions_per_seed = [unblind_predictions(job.task, p["predictions"], job.seed)
                            for p in payloads]
    scored = score_seeds(job.task, predictions_per_seed, references,
                         labels=split.get("labels") or None, seed=job.seed)
    metrics, ci = dict(scored.metrics), dict(scored.ci)
    for name in job.metrics:
        metric = load_extra_metric(name)
        values = [compute_extra_metric(metric, name, job.task, predictions, references,
                                       split.get("labels"))
                  for predictions in predictions_per_seed]
        metrics.update({k: _mean([v[k] for v in values]) for k in values[0]})
    evaluate_names = set(metrics) - set(scored.metrics)
    for key in {k for p in payloads for k in p["extra_metrics"]}:
        metrics.setdefault(key, _mean([p["extra_metrics"][key] for p in payloads
                                       if key in p["extra_metrics"]]))
    record["metrics"] = {k: round(v, 6) for k, v in metrics.items()}
    record["metrics_ci"] = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in ci.items()}
    record["metrics_without_ci"] = metrics_without_ci(record["metrics"], ci, evaluate_names)
    if len(payloads) > 1:
        record["metrics_std"] = {k: round(v, 6) for k, v in scored.std.items()}
    if scored.confusion is not None:
        record["confusion_matrix"] = scored.confusion
    if job.family != "baseline":  # the majority vote answers one label by design
        record.update(collapse_over_seeds(job.task, predictions_per_seed, references))
    if job.task == "classification":
        record["per_class"] = per_class_scores(predictions_per_seed, references,
                                               split.get("labels") or None)
    record["samples"] = [
        {"input": row.get(INPUT_KEY[job.task]),
         "prediction": predictions_per_seed[0][i], "reference": references[i],
         **scored.row_scores[i]}
        for i, row in enumerate(test_rows[:SAMPLE_ROWS])
    ]
    path = journal.write_predictions(
        Path(job.run_dir), job.variant or job.strategy,
        _prediction_rows(job.task, test_rows, references, predictions_per_seed, job.seeds,
                         scored.row_scores))
    record["predictions"] = str(path.relative_to(job.run_dir))
    record["_test_rows"] = len(test_rows)


def measure_record(job: CandidateJob, record: dict[str, Any], outcomes: list[ChildOutcome]):
    from bench.cost import PriceRow, candidate_cost

    payloads = [o.payload for o in outcomes]
    phases = {name: _mean([p["phases"].get(name, 0.0) for p in payloads])
              for name in {k for p in payloads for k in p["phases"]}}
    # The forgetting probe and the deployment-latency measurement run after the candidate's
    # work (bench.forgetting, bench.deploy): their seconds are recorded with them
    # (forgetting.seconds, deploy.measure_s), not in the candidate's time.
    total = _mean([o.wall_s - probe_seconds(p) - deploy_seconds(p)
                   for o, p in zip(outcomes, payloads)])
    record["time_s"] = {"load": round(phases.get("load", 0.0), 3),
                        "adapt": round(phases.get("adapt", 0.0), 3),
                        "predict": round(phases.get("predict", 0.0), 3),
                        "total": round(total, 3)}
    busy = phases.get("adapt", 0.0) + phases.get("predict", 0.0)
    tokens = _mean([p["train_tokens"] + p["predict_tokens"] for p in payloads])
    record["tokens_per_s"] = round(tokens / busy, 2) if tokens and busy > 0 else None
    record["peak_memory_mb"] = {
        "cpu_rss": round(max(max(p["peak_rss_mb"], o.sampled_peak_mb)
                             for p, o in zip(payloads, outcomes)), 1),
        "cuda": (round(max(p["peak_cuda_mb"] for p in payloads), 1)
                 if any(p["peak_cuda_mb"] is not None for p in payloads) else None),
    }
    first = payloads[0]
    record["trainable_params"] = first["trainable_params"]
    record["total_params"] = first["total_params"]
    record["artifact_mb"] = round(journal.size_on_disk_mb(first["artifact_path"]), 3)
    record["config"] = first["config"] or job.config
    if first.get("deploy"):  # measured in the first seed's child (bench.deploy)
        record["deploy"] = first["deploy"]
    row = PriceRow(job.price_row["name"], job.price_row["usd_per_hour"],
                   projected=job.price_row["projected"])
    # Priced from the recorded (rounded) seconds, so a reader can recompute every dollar.
    cost = candidate_cost(adapt_s=record["time_s"]["adapt"], predict_s=record["time_s"]["predict"],
                          test_rows=record.pop("_test_rows", 0), row=row)
    record["cost_usd"] = {k: round(v, 8) for k, v in cost.items()}
    info = dict(first["info"])
    info.update({
        "mean_prompt_tokens": first["mean_prompt_tokens"],
        "train_tokens": first["train_tokens"],
        "predict_tokens": first["predict_tokens"],
        "phases_s": {k: round(v, 3) for k, v in phases.items()},
        # spawn + imports + record: what the harness adds around the strategy's own work
        "harness_overhead_s": round(_mean([o.wall_s - probe_seconds(p) - p["child_s"]
                                           for o, p in zip(outcomes, payloads)]), 3),
    })
    if first["artifact_path"]:
        info["artifact_path"] = os.path.relpath(first["artifact_path"], job.run_dir)
    if len(outcomes) > 1:
        info["time_s_per_seed"] = [round(o.wall_s, 3) for o in outcomes]
    if row.projected:
        info["cost_note"] = (f"projected with the {row.name} price row; the seconds were "
                             "measured on this machine")
    record["info"] = info
    if first.get("forgetting"):
        record["forgetting"] = forgetting_over_seeds(payloads)


def probe_seconds(payload: dict[str, Any]) -> float:
    """Seconds the forgetting probe took in this seed's child (0 when it did not run)."""
    return float((payload.get("forgetting") or {}).get("seconds", 0.0))


def deploy_seconds(payload: dict[str, Any]) -> float:
    """Seconds the deployment-latency measurement took in this seed's child (0 when it did not
    run: other seeds, or an error recorded instead)."""
    return float((payload.get("deploy") or {}).get("measure_s", 0.0))


def forgetting_over_seeds(payloads: list[dict]) -> dict[str, Any]:
    """The first seed's forgetting record; with several seeds, each seed's change beside it."""
    forgetting = dict(payloads[0]["forgetting"])
    changes = [p.get("forgetting", {}).get("change") for p in payloads]
    if len(payloads) > 1 and all(c is not None for c in changes):
        forgetting["change_per_seed"] = changes
    return forgetting


def stage_record(job: CandidateJob, outcomes: list[ChildOutcome]) -> dict[str, Any]:
    """A finished once-per-run stage (bench.stages): measured and priced like a candidate, with
    nothing to score (it predicts no test rows, so it has no serving cost)."""
    record = base_record(job, "ok", None)
    measure_record(job, record, outcomes)
    record["info"].update(job.extra_info)
    return record


def finished_record(job: CandidateJob, outcomes: list[ChildOutcome]) -> dict[str, Any]:
    record = base_record(job, "ok", None)
    try:
        score_record(job, record, [o.payload for o in outcomes])
    except (ValueError, KeyError, TunewiseError) as exc:
        # A strategy that returned the wrong number or shape of predictions failed, even
        # though its process finished cleanly.
        failed = unfinished_record(job, [dataclasses.replace(outcomes[-1], status="failed")])
        failed["error"] = f"its predictions could not be scored: {exc}"
        return failed
    if record["primary_metric"] not in record["metrics"]:
        # e.g. preference predictions without chosen/rejected log-probabilities
        failed = unfinished_record(job, [dataclasses.replace(outcomes[-1], status="failed")])
        failed["error"] = (f"its predictions gave no {record['primary_metric']} "
                           f"(metrics: {', '.join(record['metrics']) or 'none'})")
        return failed
    measure_record(job, record, outcomes)
    record["info"].update(job.extra_info)
    return record
