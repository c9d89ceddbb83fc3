"""The entry points: `load_task_data` reads, detects, checks, splits and profiles a dataset;
`profile_data` returns only its profile."""

from __future__ import annotations

import hashlib
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data.checks import check_duplicates_and_leakage, check_labels, label_name
from bench.data.columns import TASK_ROLES, detect_task, missing_column_message, role_flag
from bench.data.corpus import load_corpus
from bench.data.label_names import names_for_labels, read_label_names
from bench.data.lengths import check_lengths, load_tokenizer
from bench.data.messages import DataError, Report
from bench.data.readers import Table
from bench.data.rows import read_rows
from bench.data.sources import Sources, discover_sources, existing_path
from bench.data.split import split_positions
from strategies.base import TaskSplit

HASH_CHUNK = 1 << 20


@dataclass
class LoadedData:
    split: TaskSplit  # canonical rows, labels, label names, corpus
    profile: dict  # the data profile (`tunewise data check --json`)
    # per split, the 0-based index of each row among the data rows of the source files read in
    # order train, validation, test (dropped rows keep their index): stored in the manifest
    split_indices: dict[str, list[int]]
    data_hash: str  # sha256 of the input file(s) bytes
    sources: dict[str, str | None]  # {"train": path, "test": path or None, "corpus": ...}


def _check_arguments(test_size: float, val_size: float, max_rows: int | None) -> None:
    if not 0 < test_size < 1:
        raise DataError(f"--test-size must be between 0 and 1 (got {test_size})")
    if not 0 <= val_size < 1 or test_size + val_size >= 1:
        raise DataError(f"--val-size must be in [0, 1) with test + validation < 1 "
                        f"(got {val_size} and {test_size})")
    if max_rows is not None and max_rows < 1:
        raise DataError(f"--max-train-rows must be at least 1 (got {max_rows})")


def _file_hash(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def load_task_data(path, *, task: str | None = None, test_path=None, corpus_path=None,
                   columns: dict[str, str] | None = None, seed: int = 0,
                   test_size: float = 0.2, val_size: float = 0.1,
                   max_rows: int | None = None, model_name: str | None = None,
                   label_names=None) -> LoadedData:
    """Read, detect, check, split and profile a dataset (see the docstring of bench.data).
    `label_names`: a --label-names file (bench.data.label_names), classification only."""
    started = time.perf_counter()
    _check_arguments(test_size, val_size, max_rows)
    given_names = read_label_names(label_names) if label_names is not None else None
    report = Report()
    path = existing_path(path, "data path")
    test_file = existing_path(test_path, "--test file") if test_path is not None else None
    corpus_file = existing_path(corpus_path, "--corpus") if corpus_path is not None else None
    sources = discover_sources(path, test_file, corpus_file, report)
    first = sources.tables["train"]
    task, mapping = detect_task(first.columns, task, dict(columns or {}), first.path, report)
    rows, given, source_index = _read_sources(sources, task, mapping, report)

    labels = [row["label"] for row in rows] if task == "classification" else None
    positions = split_positions(given, labels, seed, test_size, val_size, max_rows, report)
    parts = {split: [rows[p] for p in positions[split]] for split in positions}
    if len(parts["train"]) == 0:
        raise DataError(f"{first.path}: too few rows ({len(rows)}) for a train split")

    label_counts = Counter(labels) if labels is not None else Counter()
    ordered_labels: list[str] = []
    if task == "classification":
        check_labels(parts, label_counts, first.path, mapping["label"], report)
        ordered_labels = sorted(label_counts)
    elif given_names is not None:
        raise DataError(f"--label-names {label_names}: label names are for classification "
                        f"data; this is a {task} task")
    names = ({label: label_name(label) for label in ordered_labels} if given_names is None else
             names_for_labels(given_names, ordered_labels, label_names, report))
    duplicates, leakage = check_duplicates_and_leakage(task, parts, report)
    tokenizer = load_tokenizer(model_name, report)
    token_length = check_lengths(rows, tokenizer, report)

    corpus, corpus_files = None, []
    if sources.corpus is not None:
        if task in ("qa", "generation"):
            corpus, corpus_files = load_corpus(sources.corpus, report)
        else:
            report.warn(f"corpus {sources.corpus.name} ignored: a {task} task has no use for it")

    data_hash = _file_hash(sources.hashed_files + corpus_files)
    split_indices = {split: [source_index[p] for p in positions[split]] for split in positions}
    source_paths = {"train": str(first.path),
                    "validation": _path_or_none(sources.tables.get("validation")),
                    "test": _path_or_none(sources.tables.get("test")),
                    "corpus": str(sources.corpus) if corpus is not None else None}
    task_split = TaskSplit(task=task, train=parts["train"], validation=parts["validation"],
                           test=parts["test"], labels=ordered_labels,
                           label_names=names,
                           corpus=corpus)
    profile = _profile(task, rows, parts, first, mapping, report, sources=source_paths,
                       token_length=token_length,
                       token_counter=model_name if tokenizer is not None else None,
                       duplicates=duplicates, leakage=leakage, corpus=corpus, seed=seed,
                       data_hash=data_hash, split_source="given" if "test" in given else "carved")
    if task == "classification":
        profile["labels"] = {label: label_counts[label] for label in ordered_labels}
        profile["label_names"] = dict(task_split.label_names)
        if label_names is not None:
            profile["label_names_file"] = str(label_names)
    profile["path"] = str(path)
    profile["check_seconds"] = round(time.perf_counter() - started, 3)
    return LoadedData(split=task_split, profile=profile, split_indices=split_indices,
                      data_hash=data_hash, sources=source_paths)


def _read_sources(sources: Sources, task: str, mapping: dict[str, str], report: Report
                  ) -> tuple[list[dict[str, Any]], dict[str, list[int]], array]:
    """All canonical rows (train, validation, test files in order), the positions of each
    given split in them, and each row's index in the source files."""
    for table in sources.tables.values():
        for role, column in mapping.items():
            if column not in table.columns and role in TASK_ROLES[task][0]:
                raise DataError(missing_column_message(table.path, column, table.columns,
                                                        role_flag(role)))
    rows: list[dict[str, Any]] = []
    given: dict[str, list[int]] = {}
    source_index = array("q")  # 8 bytes a row until the split picks its rows
    offset = 0
    for split in ("train", "validation", "test"):
        if split not in sources.tables:
            continue
        table = sources.tables[split]
        part, indices, read = read_rows(table, task, _present(mapping, table), offset, report)
        given[split] = list(range(len(rows), len(rows) + len(part)))
        rows.extend(part)
        source_index.extend(indices)
        offset += read
    return rows, given, source_index


def _profile(task: str, rows: list[dict[str, Any]], parts: dict[str, list[dict[str, Any]]],
             first: Table, mapping: dict[str, str], report: Report, *,
             sources: dict[str, str | None], token_length: dict[str, int],
             token_counter: str | None, duplicates: int, leakage: int,
             corpus: list[dict[str, Any]] | None, seed: int, data_hash: str,
             split_source: str) -> dict[str, Any]:
    """The data profile: the keys DESIGN.md fixes for scripts, and what the checks found."""
    return {
        "task": task,
        "rows": len(rows),
        "columns": list(first.columns),
        "column_map": mapping,
        "format": first.format,
        "encoding": first.encoding,
        "warnings": list(report.warnings),
        "notes": list(report.notes),
        "splits": {split: len(part) for split, part in parts.items()},
        "split_source": split_source,
        "token_length": token_length,
        "token_counter": token_counter or "words",
        "duplicates": duplicates,
        "leakage": leakage,
        "dropped": dict(report.dropped),
        "has_corpus": corpus is not None,
        "corpus_docs": len(corpus) if corpus is not None else 0,
        "sources": sources,
        "data_hash": data_hash,
        "seed": seed,
        "check_seconds": 0.0,
    }


def _present(mapping: dict[str, str], table: Table) -> dict[str, str]:
    """Optional roles whose column a given split file lacks read as empty there."""
    return {role: column for role, column in mapping.items() if column in table.columns}


def _path_or_none(table: Table | None) -> str | None:
    return str(table.path) if table is not None else None


def profile_data(path, **kwargs) -> dict:
    """Just the data profile (the advisor and the TUI use it); same arguments as
    load_task_data."""
    return load_task_data(path, **kwargs).profile


def column_names(path) -> list[str]:
    """The columns of the (train) table at `path`, without detecting a task: what a user picks
    the column roles from when detection cannot tell them (the TUI's data screen)."""
    sources = discover_sources(existing_path(path, "data path"), None, None, Report())
    return list(sources.tables["train"].columns)
