"""The self-contained HTML report of a run folder, and results.csv beside it.

    from reports.html import write_report
    path = write_report("runs/20261126-1904-banking")      # runs/<id>/report.html (+ results.csv)

It reads manifest.json and results.jsonl only; it never runs a model. One file, no network:
CSS and the small sorting script are inline, plots are inline SVG. All text from the data, the
records and the advice goes through Jinja2 autoescaping, and a Content-Security-Policy allows
only our own script (by its hash), so even a missed escape could not run injected code.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, FileSystemLoader
from markupsafe import Markup

from reports import analysis as an
from reports import format as fmt
from reports import plots
from reports.race import race_summary
from reports.reproduce import reproduce_command
from reports.run_data import RunData, error_first_samples, load_run, save_advice
from reports.tables import results_grid

TEMPLATES = Path(__file__).resolve().parent / "templates"
SAMPLE_TEXT_LIMIT = 600  # characters of a sample input/prediction shown before eliding
DEFAULT_REQUESTS = 10_000  # serving volume for the quality-vs-cost plot when none was stated


def write_report(run_dir: str | Path, out: str | Path | None = None, advice: dict | None = None) -> Path:
    """Render `run_dir`'s report to `out` (default RUN_DIR/report.html); write results.csv beside
    it. `advice` (the advisor's ranked JSON, optionally with "answers") overrides the one stored
    with the run, and is saved as RUN_DIR/advice.json for later renders."""
    if advice is not None:
        load_run(run_dir)  # the clear error for a folder that is not a run, before writing into it
        save_advice(run_dir, advice)
    run = load_run(run_dir)
    out_path = Path(out) if out else run.run_dir / "report.html"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render_report(run, advice), encoding="utf-8")
    write_results_csv(run.records, out_path.parent / "results.csv", run.manifest)
    return out_path


def render_report(run: RunData, advice: dict | None = None) -> str:
    advice = advice if advice is not None else run.manifest.get("advice")
    advice = advice if isinstance(advice, dict) else None
    script = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    context = build_context(run, advice)
    context.update(
        css=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
        script=Markup(script),
        script_hash=base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode(),
    )
    return _environment().get_template("report.html.j2").render(**context)


def _environment() -> Environment:
    # autoescape=True for every template, whatever its file name.
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(metric=fmt.fmt_metric, mb=fmt.fmt_mb, seconds=fmt.fmt_seconds, ms=fmt.fmt_ms,
                       count=fmt.fmt_count, usd=fmt.fmt_usd, percent=fmt.fmt_percent,
                       value=fmt.fmt_value, ci=fmt.fmt_ci)
    return env


# ---------------------------------------------------------------- the context

def build_context(run: RunData, advice: dict | None) -> dict[str, Any]:
    records, manifest = run.records, run.manifest
    metric = an.primary_metric(records, manifest)
    grid = results_grid(records, manifest)  # the table the terminal and the TUI draw too
    ranked = an.measured_ranking(records, metric)
    ordered = ranked + an.unfinished_records(records)
    verdict = an.verdict(records, manifest, advice)
    return {
        "run_id": manifest.get("run_id") or run.run_dir.name,
        "created": manifest.get("created"),
        "task": an.run_task(records, manifest),
        "metric": metric,
        "verdict": verdict,
        "priority_stated": an.user_priority(advice, manifest)[1],
        "columns": grid.columns,
        "table_rows": grid.rows,
        "counts": {"total": len(records), "ok": len(ranked)},
        "unfinished": [_unfinished_row(r) for r in an.unfinished_records(records)],
        "stages": [_stage_row(r) for r in run.stages],
        "totals": an.run_totals(records, run.stages),
        "plots": _plots(run, advice, metric, ranked),
        "estimates": an.estimate_rows(records, advice),
        "ranking": an.ranking_comparison(records, manifest, advice) if advice else [],
        "excluded": [e for e in an.as_list(an.dig(advice, "excluded")) if isinstance(e, dict)],
        "has_advice": advice is not None,
        "advisor_pick": an.advisor_pick(advice),
        "probes": probe_section(advice, records),
        "candidates": [_candidate(r, run.run_dir) for r in ordered],
        "forgetting_rows": an.forgetting_rows(records),
        "profile": _profile(manifest),
        "environment": _environment_facts(manifest, records),
        "command": reproduce_command(manifest, records),
        "notes": run.notes,
        "race": _race(records),
        "model_comparison": an.model_comparison(records, manifest, metric),
        "prompt": _prompt_facts(manifest),
        "tracking": _tracking(run),
        "has_deploy": an.has_deploy_facts(records),
    }


def _race(records: list[dict]) -> dict | None:
    """The race's table and its plot: validation score by train rows, one line per entrant."""
    race = race_summary(records)
    if race is None:
        return None
    race["plot"] = (plots.learning_curve(race["series"], f"validation {race['metric']} (0–1)",
                                         "the race, rung by rung") if race["series"] else None)
    return race


def probe_section(advice: dict | None, records: list[dict]) -> dict | None:
    """What the advisor's probes measured on the validation split before the advice (kept in
    the advice, advisor.probes), beside what the same candidate scored on test in this run."""
    probes = an.dig(advice, "probes")
    if not isinstance(probes, dict):
        return None
    metric = str(probes.get("metric") or "score")
    on_test = {r.get("strategy"): (r.get("metrics") or {}).get(metric) for r in records
               if r.get("status") == "ok"}
    rows = [{"strategy": s.get("strategy"), "value": s.get("value"), "noise": s.get("noise"),
             "rows": s.get("rows"), "seconds": s.get("seconds"),
             # cross-validated probes (knn, transfer): train rows out of fold + validation rows
             "cv_rows": s.get("cv_rows"), "validation_rows": s.get("validation_rows"),
             "validation_value": s.get("validation_value"),
             # the second stage's training candidate: a short budget, a lower bound
             "short_steps": s.get("steps") if s.get("budget") == "short" else None,
             "test": on_test.get(s.get("strategy"))}
            for s in an.as_list(probes.get("scores")) if isinstance(s, dict)]
    rows.sort(key=lambda row: -(row["value"] if isinstance(row["value"], (int, float)) else 0))
    failed = probes.get("failed") if isinstance(probes.get("failed"), dict) else {}
    return {"metric": metric, "rows": rows, "failed": failed,
            "validation_rows": probes.get("validation_rows"), "seconds": probes.get("seconds")}


def _prompt_facts(manifest: dict) -> list[tuple[str, str]]:
    """The prompt every LM candidate was given (bench.plan.apply_prompt), when recorded."""
    prompt = manifest.get("prompt") if isinstance(manifest.get("prompt"), dict) else {}
    source = "yours (--instruction)" if prompt.get("instruction_source") == "user" else "the default"
    facts = [(f"instruction, {source}", prompt.get("instruction")),
             ("prompt template", prompt.get("template") or "the built-in layout")]
    return [(k, _clip(fmt.fmt_value(v))) for k, v in facts if prompt and v not in (None, "")]


def _tracking(run: RunData) -> dict | None:
    """Where --report-to made the Trainers log, relative to the report, and how to open it."""
    kind = run.manifest.get("report_to")
    folders = {"tensorboard": "tracking/tensorboard", "mlflow": "tracking/mlruns"}
    if kind not in folders:
        return None
    folder = folders[kind]
    where = run.run_dir / folder
    opener = (f"tensorboard --logdir {where}" if kind == "tensorboard"
              else f"mlflow ui --backend-store-uri {where.resolve().as_uri()}")
    return {"kind": kind, "folder": folder, "exists": where.is_dir(), "command": opener}
def _stage_row(record: dict) -> dict:
    """A shared stage (bench.stages): what it built, for whom, and what it cost."""
    info = record.get("info") or {}
    used_by = info.get("used_by")
    return {"stage": record.get("strategy"), "status": record.get("status") or "unknown",
            "what": info.get("stage") or "", "error": record.get("error"),
            "used_by": ", ".join(map(str, used_by)) if isinstance(used_by, list) else "",
            "load": an.time_part(record, "load"), "adapt": an.time_part(record, "adapt"),
            "predict": an.time_part(record, "predict"), "total": an.time_part(record, "total"),
            "peak_mb": an.peak_memory_mb(record),
            "cost": (an.cost_part(record, "adapt") or 0.0) + (an.cost_part(record, "predict") or 0.0)}


def _unfinished_row(record: dict) -> dict:
    return {"strategy": record.get("strategy"), "family": record.get("family") or "",
            "status": record.get("status") or "unknown",
            "reason": record.get("error") or "no reason was recorded", "log": record.get("log")}


def _plots(run: RunData, advice: dict | None, metric: str, ranked: list[dict]) -> dict[str, Any]:
    answers = an.advice_answers(advice, run.manifest)
    requests = int(fmt.as_number(an.dig(answers, "goals", "monthly_requests")) or DEFAULT_REQUESTS)
    cost_points, memory_points = [], []
    for record in ranked:
        quality = an.metric_value(record, metric)
        if quality is None:
            continue
        name, family = str(record.get("strategy")), str(record.get("family") or "")
        adapt, per_1k = an.cost_part(record, "adapt"), an.cost_part(record, "per_1k_requests")
        if adapt is not None or per_1k is not None:
            total = (adapt or 0.0) + (per_1k or 0.0) * requests / 1000
            cost_points.append(plots.Point(total, quality, name, family))
        memory = an.peak_memory_mb(record)
        if memory is not None:
            memory_points.append(plots.Point(memory, quality, name, family))
    memory_kind = "CUDA" if an.has_cuda_memory(ranked) else "process RSS"
    best_classifier = next((r for r in ranked if _confusion(r)), None)
    return {
        "requests": requests,
        "requests_stated": an.dig(answers, "goals", "monthly_requests") is not None,
        "quality_cost": plots.scatter_with_front(
            cost_points, an.pareto_front([(p.x, p.y, p.label) for p in cost_points]),
            f"cost to adapt + serve {requests:,} requests (USD)", f"{metric} (0–1)",
            f"{metric} vs cost"),
        "quality_memory": plots.scatter_with_front(
            memory_points, an.pareto_front([(p.x, p.y, p.label) for p in memory_points]),
            f"peak memory, {memory_kind} (MB)", f"{metric} (0–1)", f"{metric} vs peak memory"),
        "time": plots.time_breakdown(
            [(str(r.get("strategy")), {p: an.time_part(r, p) or 0.0 for p in ("load", "adapt", "predict")})
             for r in ranked], "time per phase"),
        "curve": _learning_curve(run, metric),
        "forgetting": _forgetting_plot(ranked, metric),
        "confusion": plots.confusion_matrix(*_confusion(best_classifier), "confusion matrix")
        if best_classifier else None,
        "confusion_of": best_classifier.get("strategy") if best_classifier else None,
    }


def _forgetting_plot(ranked: list[dict], metric: str) -> Markup | None:
    """Quality vs forgetting for the trained candidates that were probed (bench.forgetting);
    None when no record has a forgetting measurement (the figure is left out)."""
    points = []
    for record in ranked:
        quality, change = an.metric_value(record, metric), an.dig(record, "forgetting", "change")
        interval = an.forgetting_interval(record)
        if quality is None or not isinstance(change, (int, float)) or interval is None:
            continue
        points.append(plots.ForgettingPoint(str(record.get("strategy")),
                                            str(record.get("family") or ""), quality,
                                            100 * change, 100 * interval[0], 100 * interval[1]))
    if not points:
        return None
    return plots.forgetting(points, f"{metric} (0–1)", f"{metric} vs forgetting")


def _confusion(record: dict | None) -> tuple[list[str], list[list[float]]] | None:
    matrix = an.dig(record, "confusion_matrix")
    labels, rows = an.dig(matrix, "labels"), an.dig(matrix, "matrix")
    if not isinstance(labels, list) or not isinstance(rows, list) or not labels:
        return None
    try:
        return [str(label) for label in labels], [[float(v) for v in row] for row in rows]
    except (TypeError, ValueError):
        return None


def _learning_curve(run: RunData, metric: str) -> Markup | None:
    series: dict[str, list[tuple[float, float]]] = {}
    for record in run.curve_records:
        rows = fmt.as_number(record.get("train_rows") or an.dig(record, "info", "train_rows")
                             or an.dig(record, "config", "max_train_rows"))
        value = an.metric_value(record, metric) if record.get("status", "ok") == "ok" else None
        if value is None:
            value = fmt.as_number(record.get(metric))
        if rows is not None and value is not None:
            series.setdefault(str(record.get("strategy")), []).append((rows, value))
    for record in run.records:  # a curve stored inside the full-data record
        points = an.dig(record, "info", "learning_curve")
        if isinstance(points, list):
            for point in points:
                rows, value = fmt.as_number(an.dig(point, "train_rows")), fmt.as_number(an.dig(point, metric))
                if rows is not None and value is not None:
                    series.setdefault(str(record.get("strategy")), []).append((rows, value))
    if not series:
        return None
    _add_full_data_points(series, run, metric)
    return plots.learning_curve({k: sorted(set(v)) for k, v in series.items()}, f"{metric} (0–1)",
                                "data-efficiency curve")


def _add_full_data_points(series: dict[str, list[tuple[float, float]]], run: RunData, metric: str) -> None:
    """Close each curve with the candidate's main run on the whole train split, when known."""
    train_rows = an.train_rows(run.manifest)
    if train_rows is None:
        return
    for record in an.ok_records(run.records):
        name, value = str(record.get("strategy")), an.metric_value(record, metric)
        if name in series and value is not None and all(x < train_rows for x, _ in series[name]):
            series[name].append((train_rows, value))


# Facts the candidate section draws instead of listing (the loss curves are plotted).
PLOTTED_INFO = ("train_curve", "val_curve")


def _candidate(record: dict, run_dir: Path) -> dict:
    finished = record.get("status") == "ok"
    samples = error_first_samples(run_dir, record) if finished else None
    info = record.get("info") if isinstance(record.get("info"), dict) else {}
    confusion = _confusion(record)
    return {"strategy": record.get("strategy"), "family": record.get("family") or "",
            "status": record.get("status") or "unknown", "error": record.get("error") or "",
            "config": _config_items(record),
            "info": _flat_items({k: v for k, v in info.items() if k not in PLOTTED_INFO}),
            "samples": [_sample(row, samples.score_key) for row in samples.rows] if samples else [],
            "sample_summary": _sample_summary(samples) if samples else "",
            "sample_score": samples.score_key if samples and samples.score_key != "correct" else None,
            "per_class": _per_class_rows(record),
            "confusion": plots.confusion_matrix(*confusion, f"confusion matrix of {record.get('strategy')}")
            if confusion and finished else None,
            "loss": _loss_plot(record) if finished else None,
            "log": record.get("log"), "predictions": record.get("predictions"),
            "seeds": record.get("seeds") or ([record["seed"]] if "seed" in record else []),
            "total_params": record.get("total_params"),
            "model": record.get("model") if isinstance(record.get("model"), str) else None,
            "deploy": _deploy_items(record)}


def _deploy_items(record: dict) -> list[tuple[str, str]]:
    """Latency at batch 1 and serving memory as measured, or why they were not."""
    deploy = record.get("deploy") if isinstance(record.get("deploy"), dict) else {}
    if deploy.get("error"):
        return [("deployment", str(deploy["error"]))]
    if an.deploy_value(record, "p50_ms") is None:
        return []
    memory = f"{fmt.fmt_mb(deploy.get('serving_mb'))} ({deploy.get('memory_kind') or 'peak'})"
    return [("latency p50 / p95, batch 1", f"{fmt.fmt_ms(deploy.get('p50_ms'))} / "
             f"{fmt.fmt_ms(deploy.get('p95_ms'))} over {deploy.get('requests')} requests"),
            ("serving memory", memory)]


def _sample(row: dict, score_key: str | None) -> dict:
    score = fmt.as_number(row.get(score_key)) if score_key else None
    correct = row.get("correct")
    if score_key and score_key != "correct":
        correct = None if score is None else score >= 1.0
    return {key: _clip(fmt.fmt_value(row.get(key))) for key in ("input", "prediction", "reference")} | {
        "correct": None if correct is None else bool(correct),
        "score": fmt.fmt_metric(score) if score_key and score_key != "correct" else ""}


def _sample_summary(samples) -> str:
    if samples.wrong is None:
        return f"{len(samples.rows)} of {samples.total} test rows (they carry no per-row score)."
    where = ("every test prediction" if samples.source == "predictions"
             else "the rows kept in the record")
    what = "wrong" if samples.score_key == "correct" else f"below a perfect {samples.score_key}"
    return (f"{samples.wrong} of {samples.total} predictions {what}; the wrong ones come first "
            f"(lowest score first), then right ones, chosen from {where}.")


def _per_class_rows(record: dict) -> list[dict]:
    rows = []
    for row in record.get("per_class") or []:
        if isinstance(row, dict) and row.get("label") is not None:
            rows.append({"label": str(row["label"]), **{key: fmt.as_number(row.get(key))
                         for key in ("precision", "recall", "f1", "support", "predicted")}})
    return rows


def _loss_plot(record: dict) -> Markup | None:
    """Train and validation loss by optimizer step, from the curves the training loop logged."""
    series = {}
    for name, key in (("train", "train_curve"), ("validation", "val_curve")):
        points = []
        for point in an.as_list(an.dig(record, "info", key)):
            step, loss = fmt.as_number(an.dig(point, "step")), fmt.as_number(an.dig(point, "loss"))
            if step is not None and loss is not None:
                points.append((step, loss))
        if points:
            series[name] = points
    if not series:
        return None
    return plots.loss_curve(series, f"loss of {record.get('strategy')}",
                            fmt.as_number(an.dig(record, "info", "best_step")))


def _config_items(record: dict) -> list[tuple[str, str]]:
    """The config as recorded; a seed of -1 ("use the run's seed") shows the seed it became."""
    items = _flat_items(record.get("config"))
    configured = fmt.as_number(an.dig(record, "config", "seed"))
    if configured is None or configured >= 0:
        return items
    used = an.dig(record, "info", "seed")
    used = used if isinstance(used, int) and not isinstance(used, bool) else record.get("seed")
    if used is None:
        return items
    return [(key, f"{used} (config {value}: the run's seed)" if key == "seed" else value)
            for key, value in items]


def _clip(text: str) -> str:
    return text if len(text) <= SAMPLE_TEXT_LIMIT else text[:SAMPLE_TEXT_LIMIT - 1] + "…"


def _flat_items(mapping: Any) -> list[tuple[str, str]]:
    if not isinstance(mapping, dict):
        return []
    return [(str(key), _clip(fmt.fmt_value(value))) for key, value in mapping.items()]


def _profile(manifest: dict) -> dict:
    data = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    # The harness keeps the profile at the top level; older manifests kept it under data.
    profile = next((p for p in (manifest.get("profile"), data.get("profile")) if isinstance(p, dict)), {})
    warnings = [str(w) for w in profile.get("warnings") or data.get("warnings") or []]
    notes = [str(n) for n in profile.get("notes") or []]
    labels = profile.get("labels") if isinstance(profile.get("labels"), dict) else {}
    shown = ("warnings", "notes", "labels", "label_names", "column_map", "columns", "splits", "token_length",
             "task", "rows", "sources", "path", "data_hash", "seed", "domain")
    split = manifest.get("split") if isinstance(manifest.get("split"), dict) else {}
    used = split.get("sizes") if isinstance(split.get("sizes"), dict) else split
    facts = [("data", data.get("path")), ("test file", data.get("test")), ("corpus", data.get("corpus")),
             ("task", data.get("task") or profile.get("task") or manifest.get("task")),
             ("rows", data.get("rows") or profile.get("rows")), ("sha256", data.get("hash")),
             ("columns", profile.get("columns")), ("splits in the file", profile.get("splits")),
             ("split used by every candidate", {k: v for k, v in used.items() if not isinstance(v, (list, dict))}),
             ("token length", profile.get("token_length")), *_domain_facts(profile.get("domain"))]
    facts += [(key.replace("_", " "), value) for key, value in profile.items() if key not in shown]
    return {"facts": [(k, _clip(fmt.fmt_value(v))) for k, v in facts if v not in (None, "", [], {})],
            "warnings": warnings, "notes": notes, "labels": sorted(labels.items(), key=lambda kv: str(kv[0]))}


def _domain_facts(domain: Any) -> list[tuple[str, str]]:
    """The domain measurement (bench.domain), if the profile has one: each measure beside the
    same measure on general text."""
    if not isinstance(domain, dict):
        return []
    facts = []
    if isinstance(domain.get("perplexity_ratio"), (int, float)):
        facts.append(("domain: perplexity", f"{domain.get('perplexity')} on {domain.get('rows')} train "
                      f"inputs vs {domain.get('reference_perplexity')} on general text: "
                      f"{domain['perplexity_ratio']}x ({domain.get('model')})"))
    if isinstance(domain.get("similarity_to_reference"), (int, float)):
        facts.append(("domain: similarity", f"{domain['similarity_to_reference']} to the general "
                      f"text's centroid vs {domain.get('reference_self_similarity')} for the general "
                      f"text itself ({domain.get('encoder')})"))
    return facts


def _environment_facts(manifest: dict, records: list[dict]) -> dict:
    hardware = manifest.get("hardware")
    if not isinstance(hardware, dict):
        hardware = next((r["hardware"] for r in records if isinstance(r.get("hardware"), dict)), {})
    packages = manifest.get("packages") if isinstance(manifest.get("packages"), dict) else {}
    facts = [("run id", manifest.get("run_id")), ("created", manifest.get("created")),
             ("model" if len(an.as_list(manifest.get("models"))) < 2 else "models",
              manifest.get("models") if len(an.as_list(manifest.get("models"))) > 1
              else manifest.get("model")), ("encoder", manifest.get("encoder")),
             ("preset", manifest.get("preset")), ("seed", manifest.get("seed")),
             ("seeds", manifest.get("seeds")), ("git commit", _git_commit(manifest)),
             ("python", manifest.get("python"))]
    return {"facts": [(k, fmt.fmt_value(v)) for k, v in facts if v not in (None, "")],
            "hardware": [(str(k), fmt.fmt_value(v)) for k, v in hardware.items()],
            "packages": sorted((str(k), str(v)) for k, v in packages.items())}


def _git_commit(manifest: dict) -> str | None:
    git = manifest.get("git")
    if isinstance(git, dict) and git.get("commit"):
        return f"{git['commit']}{' (with local changes)' if git.get('dirty') else ''}"
    return manifest.get("git_hash")


# ---------------------------------------------------------------- results.csv

CSV_TEXT_FIELDS = ("strategy", "family", "status", "error")


def write_results_csv(records: list[dict], path: Path, manifest: dict | None = None) -> Path:
    """One row per candidate with the table's raw numbers (not formatted) and CI bounds."""
    manifest = manifest or {}
    columns = an.table_columns(records, manifest)
    quality = [c.key for c in columns if c.group == "quality"]
    header = list(CSV_TEXT_FIELDS) + [c.key for c in columns]
    header += [f"{m}_ci_low" for m in quality] + [f"{m}_ci_high" for m in quality]
    header += ["peak_memory_mb", "load_s", "total_s", "cost_predict_usd", "cost_projected"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for record in records:
            intervals = [an.metric_ci(record, m) for m in quality]
            row = [_csv_text(record.get(key)) for key in CSV_TEXT_FIELDS]
            row += [_csv_number(c.get(record)) for c in columns]
            row += [_csv_number(i[0] if i else None) for i in intervals]
            row += [_csv_number(i[1] if i else None) for i in intervals]
            row += [_csv_number(an.peak_memory_mb(record)), _csv_number(an.time_part(record, "load")),
                    _csv_number(an.time_part(record, "total")), _csv_number(an.cost_part(record, "predict")),
                    json.dumps(bool(record.get("cost_projected")))]
            writer.writerow(row)
    return path


def _csv_number(value: Any) -> str:
    number = fmt.as_number(value)
    return "" if number is None else repr(number)


def _csv_text(value: Any) -> str:
    """Text cells that a spreadsheet would run as a formula (=, +, -, @) get a leading quote."""
    text = "" if value is None else " ".join(str(value).split())
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
