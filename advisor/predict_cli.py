"""`tunewise predict EXPORT --input FILE [--output FILE]`: an exported candidate answers new rows.

    tunewise export runs/<run-id> knn out/knn
    tunewise predict out/knn --input new.csv --output predictions.jsonl

The input is CSV, TSV, JSON, JSONL or Parquet (bench.data's readers) with the column the task
reads: classification `text`, generation `instruction` (and optional `input`), qa `question`
(and optional `context`); the usual synonyms are found (`message`, `query`, ...), or name the
column with --text-col and friends. Each output line is {"index", "input", "prediction"}.

Predictions go through the very functions the candidate used in the harness (knn, transfer and
encoder-ft's `predict_texts`, rag's `retrieve_and_predict`, the fine-tuned LMs'
`strategies.training.predict`), so the run's own test inputs get the predictions it scored.
Runs on the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.errors import TunewiseError

# task -> (required input roles, optional ones); labels/answers are not needed to predict.
INPUT_ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "classification": (("text",), ()),
    "generation": (("instruction",), ("input",)),
    "qa": (("question",), ("context",)),
}
ALL_ROLES = ("text", "instruction", "input", "question", "context")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export_dir", metavar="EXPORT", help="a folder written by tunewise export")
    parser.add_argument("--input", required=True, metavar="FILE",
                        help="rows to answer: CSV, TSV, JSON, JSONL or Parquet")
    parser.add_argument("--output", metavar="FILE",
                        help="JSONL predictions to write (default: standard output)")
    for role in ALL_ROLES:
        parser.add_argument(f"--{role}-col", dest=f"{role}_col", metavar="COLUMN",
                            help=f"the column holding the {role} (default: found by name)")


def run(args: argparse.Namespace) -> int:
    export = Path(args.export_dir)
    manifest = read_export(export)
    task = manifest.get("task")
    if task not in INPUT_ROLES:
        raise TunewiseError(f"tunewise predict answers classification, generation and qa "
                            f"exports; this one is for {task!r}")
    overrides = {role: getattr(args, f"{role}_col") for role in ALL_ROLES
                 if getattr(args, f"{role}_col")}
    rows = read_input_rows(Path(args.input), task, overrides)
    predictions = PREDICTORS[manifest["kind"]](export, manifest, rows)
    lines = [json.dumps({"index": i, "input": row[INPUT_ROLES[task][0][0]], "prediction": p},
                        ensure_ascii=False)
             for i, (row, p) in enumerate(zip(rows, predictions))]
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        print(f"wrote {len(lines)} predictions to {args.output}", file=sys.stderr)
    else:
        print("\n".join(lines))
    return 0


def read_export(export: Path) -> dict[str, Any]:
    from bench.export import EXPORT_MANIFEST

    path = export / EXPORT_MANIFEST
    if not path.exists():
        raise TunewiseError(f"{export} is not a tunewise export (no {EXPORT_MANIFEST}); make one "
                            "with: tunewise export RUN_DIR CANDIDATE OUT")
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- input rows


def read_input_rows(path: Path, task: str, overrides: dict[str, str]) -> list[dict[str, str]]:
    """The input file as rows with the task's canonical keys (missing optional roles: "")."""
    from bench.data.messages import DataError, Report
    from bench.data.readers import TABLE_SUFFIXES, open_table
    from bench.data.rows import plain_text

    if not path.is_file():
        raise TunewiseError(f"{path} is not a file")
    fmt = TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise TunewiseError(f"{path}: unsupported file type {path.suffix!r}; use one of "
                            f"{', '.join(sorted(TABLE_SUFFIXES))}")
    try:
        table = open_table(path, fmt, Report())
        required, optional = INPUT_ROLES[task]
        mapping = {role: column_of(role, table.columns, overrides, path, needed=True)
                   for role in required}
        mapping.update({role: column for role in optional
                        if (column := column_of(role, table.columns, overrides, path,
                                                needed=False))})
        rows = [{role: plain_text(raw.get(mapping.get(role))) if role in mapping else ""
                 for role in required + optional}
                for _, raw in table.rows(list(mapping.values()))]
    except DataError as exc:
        raise TunewiseError(str(exc)) from None
    if not rows:
        raise TunewiseError(f"{path} has no rows to answer")
    return rows


def column_of(role: str, columns: list[str], overrides: dict[str, str], path: Path, *,
              needed: bool) -> str | None:
    """The column of a role: --ROLE-col, else the role's own name, else one synonym."""
    from bench.data.columns import ROLE_SYNONYMS, normalise_name, role_flag

    if role in overrides:
        if overrides[role] not in columns:
            raise TunewiseError(f"{path} has no column {overrides[role]!r} "
                                f"(its columns: {', '.join(columns)})")
        return overrides[role]
    exact = [c for c in columns if normalise_name(c) == role]
    matches = exact or [c for c in columns if normalise_name(c) in ROLE_SYNONYMS[role]]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise TunewiseError(f"{path}: several columns could be the {role} "
                            f"({', '.join(matches)}); pick one with {role_flag(role)}")
    if needed:
        raise TunewiseError(f"{path} has no {role} column (its columns: {', '.join(columns)}); "
                            f"name it with {role_flag(role)}")
    return None


# --------------------------------------------------------------------------- predictors
# Each: (export folder, manifest, input rows) -> one prediction per row.


def _config(manifest: dict[str, Any]):
    from strategies import registry

    return registry.get(manifest["strategy"]).make_config("quick", manifest.get("config") or {})


def _encoder(export: Path, manifest: dict[str, Any]):
    from bench.export import ENCODER_DIR
    from bench.models import load_model

    encoder, _ = load_model(str(export / manifest["files"].get("encoder", ENCODER_DIR)),
                            "sentence-encoder")
    return encoder


def predict_knn(export: Path, manifest: dict[str, Any], rows: list[dict]) -> list[str]:
    from strategies.knn import load_knn, predict_texts

    index, train_labels = load_knn(export)
    return predict_texts(index, _encoder(export, manifest), train_labels,
                         [row["text"] for row in rows], _config(manifest))


def predict_transfer(export: Path, manifest: dict[str, Any], rows: list[dict]) -> list[str]:
    import joblib

    from strategies.transfer import predict_texts

    head = joblib.load(export / manifest["files"]["head"])
    return predict_texts(head, _encoder(export, manifest), [row["text"] for row in rows])


def predict_encoder_ft(export: Path, manifest: dict[str, Any], rows: list[dict]) -> list[str]:
    from bench.models import load_model
    from strategies.encoder_ft import predict_texts

    model, tokenizer = load_model(str(export), "seq-cls",
                                  num_labels=len(manifest["labels"]) or None)
    labels = manifest["labels"] or [model.config.id2label[i]
                                    for i in range(model.config.num_labels)]
    return predict_texts(model, tokenizer, [row["text"] for row in rows], labels,
                         _config(manifest))


def _context(manifest: dict[str, Any], rows: list[dict], train: list[dict] | None = None):
    """A RunContext whose test split is the input rows, for the LM prediction functions."""
    import tempfile

    from bench.models import load_model
    from strategies.base import RunContext, TaskSplit

    split = TaskSplit(task=manifest["task"], train=train or [], validation=[], test=rows,
                      labels=list(manifest.get("labels") or []),
                      label_names=dict(manifest.get("label_names") or {}),
                      instruction=manifest.get("instruction"))
    return RunContext(data=split, model_name=manifest.get("base_model_name") or "",
                      encoder_name=manifest.get("encoder_name") or "", load_model=load_model,
                      device="cpu", seed=manifest.get("seed") or 0,
                      work_dir=Path(tempfile.gettempdir()))


def predict_rag(export: Path, manifest: dict[str, Any], rows: list[dict]) -> list[str]:
    from strategies.prompting import load_frozen_lm
    from strategies.rag import load_rag, retrieve_and_predict

    index, chunks = load_rag(export)
    train = ([{"text": c["text"], "label": c["label"]} for c in chunks]
             if manifest["task"] == "classification" else None)
    ctx = _context(manifest, rows, train)
    model, tokenizer = load_frozen_lm(ctx)  # the base LLM, by the name the run loaded it with
    output, _, _ = retrieve_and_predict(ctx, model, tokenizer, _encoder(export, manifest), index,
                                        [c["text"] for c in chunks], _config(manifest))
    return output.predictions


def predict_trained_lm(export: Path, manifest: dict[str, Any], rows: list[dict]) -> list[str]:
    from bench.models import load_model
    from strategies.training import load_artifact, predict

    model, tokenizer = load_artifact(export, load_model)
    ctx = _context(manifest, rows)
    return predict(model, tokenizer, ctx.data, rows, _config(manifest)).values


PREDICTORS = {
    "knn": predict_knn,
    "transfer": predict_transfer,
    "seq-cls": predict_encoder_ft,
    "rag": predict_rag,
    "adapter": predict_trained_lm,
    "full": predict_trained_lm,
}
