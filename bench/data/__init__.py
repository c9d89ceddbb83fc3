"""The data layer: read a dataset, tell its task kind, check it, split it, profile it.

    from bench.data import load_task_data, profile_data, SAMPLES
    loaded = load_task_data("tickets.csv")                      # task detected from the columns
    loaded = load_task_data("qa.jsonl", task="qa", corpus_path="docs/")
    loaded = load_task_data(SAMPLES["classification"], max_rows=60, seed=1)
    loaded.split.train[0]   # {"text": "...", "label": "card_arrival"}
    loaded.profile          # what `tunewise data check PATH --json` prints
    profile_data("pairs.parquet", columns={"prompt": "query"})

Inputs: CSV, TSV, JSON (an array of records, {"data": [records]} or columns of equal length),
JSONL, Parquet, a `datasets.save_to_disk` folder, or a folder holding train.* / validation.* /
test.* / corpus.* files (given splits are respected; validation is carved from train when
absent). A folder of .txt/.md files is a corpus of documents for RAG (`corpus_path`).

Every problem a user can cause raises `DataError` naming the file, the line or row and the
column, and what to pass instead; `tunewise data check` prints it and exits with 2. Problems the
run survives (dropped rows, duplicates, leakage, rare labels, long rows) become warnings in the
profile, which the report shows.

Large files: rows are streamed and only the columns the task needs are kept, once, as the
canonical rows; the file hash is computed in chunks. Nothing holds the file twice.

The modules, each importing only those listed before it: messages (DataError, the report of
warnings and notes), readers (one table per file format), sources (which files are the
splits), columns (column roles, task detection), rows (canonical rows), split, corpus, checks
(duplicates, leakage, labels), lengths (token lengths), label_names (--label-names files),
load (the entry points).
"""

from __future__ import annotations

from pathlib import Path

from bench.data.checks import label_name
from bench.data.columns import ROLE_SYNONYMS, TASK_ROLES, role_flag
from bench.data.load import LoadedData, column_names, load_task_data, profile_data
from bench.data.messages import DataError
from bench.data.split import cap_train

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
SAMPLES: dict[str, Path] = {
    "classification": SAMPLES_DIR / "banking_support",
    "qa": SAMPLES_DIR / "squad_mini",
    "generation": SAMPLES_DIR / "self_instruct_mini",
    "preference": SAMPLES_DIR / "hh_helpful_mini",
}

__all__ = ["DataError", "LoadedData", "ROLE_SYNONYMS", "SAMPLES", "SAMPLES_DIR", "TASK_ROLES",
           "cap_train", "column_names", "label_name", "load_task_data", "profile_data",
           "role_flag"]
