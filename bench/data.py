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
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import json
import math
import re
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from bench.errors import TunewiseError
from strategies.base import TASK_KINDS, TaskSplit

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SAMPLES: dict[str, Path] = {
    "classification": SAMPLES_DIR / "banking_support",
    "qa": SAMPLES_DIR / "squad_mini",
    "generation": SAMPLES_DIR / "self_instruct_mini",
    "preference": SAMPLES_DIR / "hh_helpful_mini",
}

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json",
                  ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
DOCUMENT_SUFFIXES = (".txt", ".md")
SPLIT_FILE_NAMES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "eval", "evaluation"),
    "corpus": ("corpus", "documents", "docs"),
}

# Column roles and the names that mean them (normalised: lower case, "_" for spaces and dashes).
ROLE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "text": ("text", "sentence", "utterance", "content", "review", "message"),
    "label": ("label", "labels", "category", "intent", "class"),
    "instruction": ("instruction", "prompt", "question"),
    "input": ("input", "context"),
    "output": ("output", "response", "completion", "answer"),
    "question": ("question", "query"),
    "context": ("context", "passage"),
    "answer": ("answer", "answers"),
    "prompt": ("prompt", "instruction", "question"),
    "chosen": ("chosen",),
    "rejected": ("rejected",),
}
# task -> (required roles, optional roles), in the order of the canonical row keys
TASK_ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "classification": (("text", "label"), ()),
    "generation": (("instruction", "output"), ("input",)),
    "qa": (("question", "answer"), ("context",)),
    "preference": (("chosen", "rejected"), ("prompt",)),
}
CORPUS_TEXT_SYNONYMS = ("text", "content", "document", "passage", "body", "contents")

# Rows longer than this many tokens get a warning when no tokenizer tells the real context.
DEFAULT_CONTEXT_TOKENS = 4096
ASSISTANT_MARKER = "\n\nAssistant:"
HASH_CHUNK = 1 << 20
ENCODING_SAMPLE = 1 << 20
MAX_EXAMPLES = 5  # line numbers quoted in a warning


class DataError(TunewiseError):
    """A data problem the user can fix; the message names the file, line/row and column."""


@dataclass
class LoadedData:
    split: TaskSplit  # canonical rows, labels, label names, corpus
    profile: dict  # the data profile (`tunewise data check --json`)
    # per split, the 0-based index of each row among the data rows of the source files read in
    # order train, validation, test (dropped rows keep their index): stored in the manifest
    split_indices: dict[str, list[int]]
    data_hash: str  # sha256 of the input file(s) bytes
    sources: dict[str, str | None]  # {"train": path, "test": path or None, "corpus": ...}


def role_flag(role: str) -> str:
    """The `tunewise` flag that names the column of a role: "label" -> "--label-col"."""
    return f"--{role}-col"


# ============================================================================ reading tables


@dataclass
class _Table:
    """One readable source file (or save_to_disk split): its columns and a row iterator."""

    path: Path
    format: str
    columns: list[str]
    unit: str  # how a position is named in messages: "line", "record" or "row"
    encoding: str | None = None
    _rows: Any = None  # opener of an iterator of (position, row dict)

    def rows(self, wanted: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        return self._rows(wanted)

    def where(self, position: int) -> str:
        return f"{self.path.name} {self.unit} {position}"


def _open_table(path: Path, fmt: str, report: "_Report") -> _Table:
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty")
    if fmt in ("csv", "tsv"):
        return _open_delimited(path, fmt, report)
    if fmt == "jsonl":
        return _open_jsonl(path, report)
    if fmt == "json":
        return _open_json(path, report)
    if fmt == "parquet":
        return _open_parquet(path)
    raise DataError(f"{path}: unsupported format {fmt!r}")


def _detect_encoding(path: Path, report: "_Report") -> str:
    """utf-8 (with or without BOM) silently; another encoding is detected, named and warned."""
    with open(path, "rb") as handle:
        sample = handle.read(ENCODING_SAMPLE)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        report.warn(f"{path.name} is UTF-16 text; read as UTF-16 (UTF-8 is safer to share)")
        return "utf-16"
    if b"\x00" in sample:
        raise DataError(f"{path} looks like a binary file (NUL bytes), not {path.suffix[1:]} text")
    try:
        # final=False: a sample cut inside a multi-byte character is not an error
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError as exc:
        bad_line = sample[:exc.start].count(b"\n") + 1
    from charset_normalizer import from_bytes

    best = _likely_encoding(from_bytes(sample))
    if best is None:
        raise DataError(f"{path} line {bad_line} is not UTF-8 and its encoding cannot be "
                        f"detected; save the file as UTF-8")
    report.warn(f"{path.name} is not UTF-8 (first bad byte on line {bad_line}); read it as "
                f"{best.encoding} (detected): check accented characters, or save it as UTF-8")
    return best.encoding


# Among encodings that decode a sample equally well, the Western ones are the likelier guess.
PREFERRED_ENCODINGS = ("cp1252", "latin_1", "iso8859_15")


def _likely_encoding(matches):
    best = matches.best()
    if best is None:
        return None
    ties = [m for m in matches if m.chaos == best.chaos and m.coherence == best.coherence]
    for name in PREFERRED_ENCODINGS:
        for match in ties:
            if match.encoding == name:
                return match
    return best


def _text_lines(path: Path, encoding: str):
    """Open for reading; decode errors later in the file become a DataError at their line."""
    return open(path, encoding=encoding, newline="")


def _decode_error(path: Path, encoding: str, position: str) -> DataError:
    return DataError(f"{path} {position}: bytes that are not valid {encoding}; "
                     f"save the file as UTF-8")


def _unique_columns(header: list[str], path: Path) -> list[str]:
    columns = []
    for index, name in enumerate(header):
        name = (name or "").strip() or f"column_{index + 1}"
        if name in columns:
            raise DataError(f"{path}: the header names column {name!r} twice; rename one")
        columns.append(name)
    return columns


def _open_delimited(path: Path, fmt: str, report: "_Report") -> _Table:
    encoding = _detect_encoding(path, report)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with _text_lines(path, encoding) as handle:
        try:
            first_line = handle.readline()
        except UnicodeDecodeError:
            raise _decode_error(path, encoding, "line 1") from None
    delimiter = "\t" if fmt == "tsv" else _guess_delimiter(first_line)
    try:
        with _text_lines(path, encoding) as handle:
            header = next(csv.reader(handle, delimiter=delimiter), None)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path} line 1: cannot read the header: {exc}") from None
    if not header or not any(cell.strip() for cell in header):
        raise DataError(f"{path} has no header line: the first line must name the columns")
    columns = _unique_columns(header, path)

    def rows(wanted: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        keep = [(columns.index(name), name) for name in wanted]
        ragged: list[int] = []
        with _text_lines(path, encoding) as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            try:
                next(reader)
                for cells in reader:
                    if not cells:
                        continue  # a blank line is not a row
                    if len(cells) > len(columns):
                        ragged.append(reader.line_num)
                        continue
                    yield reader.line_num, {name: cells[i] if i < len(cells) else None
                                            for i, name in keep}
            except csv.Error as exc:
                raise DataError(f"{path} line {reader.line_num}: malformed {fmt.upper()}: "
                                f"{exc}") from None
            except UnicodeDecodeError:
                raise _decode_error(path, encoding, f"after line {reader.line_num}") from None
        if ragged:
            report.warn(f"{path.name}: {_count(len(ragged), 'line')} with more fields than "
                        f"the header skipped ({_lines(ragged, 'line')}); quote fields that "
                        f"contain the delimiter")

    return _Table(path, fmt, columns, "line", encoding, rows)


def _guess_delimiter(first_line: str) -> str:
    # A header without commas but with semicolons/tabs/pipes is a European or tab export.
    if "," in first_line:
        return ","
    for candidate in (";", "\t", "|"):
        if candidate in first_line:
            return candidate
    return ","


def _parse_json_line(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} line {number}: not valid JSON ({exc.msg} at column "
                        f"{exc.colno}); each line must be one JSON object") from None
    except RecursionError:
        raise DataError(f"{path} line {number}: JSON nested too deeply") from None
    if not isinstance(record, dict):
        raise DataError(f"{path} line {number}: expected a JSON object "
                        f"{{\"column\": value, ...}}, found {type(record).__name__}")
    return record


def _open_jsonl(path: Path, report: "_Report") -> _Table:
    encoding = _detect_encoding(path, report)

    def numbered_lines() -> Iterator[tuple[int, str]]:
        with _text_lines(path, encoding) as handle:
            number = 0
            try:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield number, line
            except UnicodeDecodeError:
                raise _decode_error(path, encoding, f"after line {number}") from None

    # Columns: the union of keys over the first lines (rows missing a key read it as empty).
    columns: list[str] = []
    for count, (number, line) in enumerate(numbered_lines()):
        if count >= 1000:
            break
        for key in _parse_json_line(path, number, line):
            if key not in columns:
                columns.append(key)
    if not columns:
        raise DataError(f"{path} has no JSON objects with columns")

    def rows(wanted: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, line in numbered_lines():
            record = _parse_json_line(path, number, line)
            yield number, {name: record.get(name) for name in wanted}

    return _Table(path, "jsonl", columns, "line", encoding, rows)


def _open_json(path: Path, report: "_Report") -> _Table:
    encoding = _detect_encoding(path, report)
    try:
        with _text_lines(path, encoding) as handle:
            document = json.load(handle)
    except UnicodeDecodeError:
        raise _decode_error(path, encoding, "somewhere") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one object per line: JSON Lines named .json
            report.note(f"{path.name} holds one JSON object per line: read as JSON Lines")
            table = _open_jsonl(path, report)
            table.format = "jsonl"
            return table
        raise DataError(f"{path} line {exc.lineno} column {exc.colno}: not valid JSON "
                        f"({exc.msg})") from None
    records = _json_records(document, path)
    columns: list[str] = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(f"{path} record {number}: expected a JSON object, "
                            f"found {type(record).__name__}")
        for key in record:
            if key not in columns:
                columns.append(key)
    if not columns:
        raise DataError(f"{path} has no records with columns")

    def rows(wanted: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, record in enumerate(records, start=1):
            yield number, {name: record.get(name) for name in wanted}

    return _Table(path, "json", columns, "record", encoding, rows)


def _json_records(document: Any, path: Path) -> list[Any]:
    """An array of records, {"data": [records]}, or {"column": [values], ...} of equal length."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and document:
        lists = {k: v for k, v in document.items() if isinstance(v, list)}
        record_lists = [v for v in lists.values() if v and all(isinstance(r, dict) for r in v)]
        if len(record_lists) == 1:
            return record_lists[0]
        if len(lists) == len(document) and len({len(v) for v in lists.values()}) == 1:
            keys = list(lists)
            return [dict(zip(keys, values)) for values in zip(*lists.values())]
    raise DataError(f"{path}: expected a JSON array of records like [{{\"text\": ..., "
                    f"\"label\": ...}}], or use JSON Lines (.jsonl)")


def _open_parquet(path: Path) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        columns = list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable Parquet file ({_first_line(exc)})") from None

    def rows(wanted: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        number = 0
        try:
            for batch in parquet.iter_batches(columns=wanted, batch_size=10_000):
                for record in batch.to_pylist():
                    number += 1
                    yield number, record
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{path} after row {number}: cannot read the Parquet data "
                            f"({_first_line(exc)})") from None

    return _Table(path, "parquet", _unique_columns(columns, path), "row", None, rows)


def _open_saved_dataset(path: Path) -> dict[str, _Table]:
    """A `datasets.save_to_disk` folder: one table per split (a plain Dataset is 'train')."""
    try:
        import datasets

        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types for a damaged folder
        raise DataError(f"{path} is not a readable datasets.save_to_disk folder "
                        f"({_first_line(exc)})") from None
    parts = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    tables: dict[str, _Table] = {}
    for name, dataset in parts.items():
        split = _split_of_name(name)
        if split is None or split == "corpus":
            raise DataError(f"{path}: split {name!r} is not train, validation or test")

        def rows(wanted: list[str], dataset=dataset) -> Iterator[tuple[int, dict[str, Any]]]:
            number = 0
            for batch in dataset.select_columns(wanted).iter(batch_size=10_000):
                for values in zip(*(batch[c] for c in wanted)):
                    number += 1
                    yield number, dict(zip(wanted, values))

        tables[split] = _Table(path / name, "save_to_disk", list(dataset.column_names), "row",
                               None, rows)
    if "train" not in tables:
        raise DataError(f"{path}: the saved dataset has no train split ({', '.join(parts)})")
    return tables


# ============================================================================ finding the files


@dataclass
class _Sources:
    tables: dict[str, _Table]  # split ("train", "validation", "test") -> table
    corpus: Path | None
    hashed_files: list[Path]  # every file whose bytes make the data hash


def _split_of_name(stem: str) -> str | None:
    stem = stem.lower()
    for split, names in SPLIT_FILE_NAMES.items():
        if stem in names:
            return split
    return None


def _format_of(path: Path) -> str:
    fmt = TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; use "
                        f"CSV, TSV, JSON, JSONL or Parquet, or a datasets.save_to_disk folder")
    return fmt


def _existing(path: Path | str, what: str) -> Path:
    path = Path(path).expanduser()
    if path.exists():
        return path
    hint = ""
    if path.parent.is_dir():
        close = difflib.get_close_matches(path.name, [p.name for p in path.parent.iterdir()],
                                          n=1, cutoff=0.8)
        hint = f" (did you mean {path.parent / close[0]}?)" if close else ""
    raise DataError(f"{what} {path} does not exist{hint}")


def _discover(path: Path, test_path: Path | None, corpus_path: Path | None,
              report: "_Report") -> _Sources:
    tables: dict[str, _Table] = {}
    hashed: list[Path] = []
    corpus = corpus_path
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            tables = _open_saved_dataset(path)
            hashed = sorted(p for p in path.rglob("*") if p.is_file())
        else:
            files, found_corpus = _split_files(path)
            for split, file in files.items():
                tables[split] = _open_table(file, _format_of(file), report)
                hashed.append(file)
            if corpus is None:
                corpus = found_corpus
    else:
        tables["train"] = _open_table(path, _format_of(path), report)
        hashed.append(path)
    if test_path is not None:
        if "test" in tables:
            report.note(f"--test {test_path.name} replaces {tables['test'].path.name}")
            if tables["test"].path in hashed:
                hashed.remove(tables["test"].path)
        if test_path.is_dir():
            raise DataError(f"--test {test_path} is a folder; give the test file")
        tables["test"] = _open_table(test_path, _format_of(test_path), report)
        hashed.append(test_path)
    return _Sources(tables, corpus, hashed)


def _split_files(folder: Path) -> tuple[dict[str, Path], Path | None]:
    """train.* / validation.* / test.* / corpus.* in a folder; a lone data file is the train."""
    files: dict[str, Path] = {}
    corpus: Path | None = None
    unnamed: list[Path] = []
    entries = sorted(folder.iterdir())
    for entry in entries:
        split = _split_of_name(entry.stem if entry.is_file() else entry.name)
        if split == "corpus" and (entry.is_dir() or entry.suffix.lower() in TABLE_SUFFIXES):
            corpus = entry
        elif entry.is_file() and entry.suffix.lower() in TABLE_SUFFIXES:
            if split is None:
                unnamed.append(entry)
            elif split in files:
                raise DataError(f"{folder} holds two {split} files: {files[split].name} and "
                                f"{entry.name}; keep one")
            else:
                files[split] = entry
    if "train" not in files and len(unnamed) == 1 and not files:
        files["train"] = unnamed[0]
    if "train" in files:
        return files, corpus
    documents = [e for e in entries if e.is_file() and e.suffix.lower() in DOCUMENT_SUFFIXES]
    if documents and not unnamed and not files:
        raise DataError(f"{folder} is a folder of documents (a corpus for RAG), not a labelled "
                        f"dataset: pass it as --corpus {folder} next to a file of questions")
    if unnamed or files:
        seen = ", ".join(p.name for p in [*files.values(), *unnamed])
        raise DataError(f"{folder}: cannot tell which file is the training data ({seen}); "
                        f"name it train.jsonl/train.csv (and test.*), or pass the file itself")
    raise DataError(f"{folder} holds no data files: expected train.csv/.jsonl/.json/.parquet "
                    f"(optionally test.* and corpus.*) or a datasets.save_to_disk folder")


# ============================================================================ task detection


def _normalise_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _match_role(role: str, columns: list[str]) -> list[str]:
    wanted = ROLE_SYNONYMS[role]
    return [c for c in columns if _normalise_name(c) in wanted]


def _resolve_roles(columns: list[str], overrides: dict[str, str], path: Path) -> dict[str, Any]:
    """role -> column, or a list of candidate columns when several match (ambiguous)."""
    for role, column in overrides.items():
        if role not in ROLE_SYNONYMS:
            close = difflib.get_close_matches(role, list(ROLE_SYNONYMS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"unknown column role {role!r}{hint}; roles: "
                            f"{', '.join(ROLE_SYNONYMS)}")
        if column not in columns:
            raise DataError(_missing_column_message(path, column, columns, role_flag(role)))
    resolved: dict[str, Any] = {}
    for role in ROLE_SYNONYMS:
        if role in overrides:
            resolved[role] = overrides[role]
            continue
        matches = [c for c in _match_role(role, columns) if c not in overrides.values()]
        exact = [c for c in matches if _normalise_name(c) == role]
        if len(matches) == 1:
            resolved[role] = matches[0]
        elif len(exact) == 1:
            resolved[role] = exact[0]
        elif matches:
            resolved[role] = matches  # ambiguous: decided only if the task needs the role
    return resolved


def _missing_column_message(path: Path, column: str, columns: list[str], flag: str) -> str:
    close = difflib.get_close_matches(column, columns, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (f"{path}: no column {column!r} ({flag}){hint} "
            f"Columns seen: {', '.join(columns)}")


def _task_fits(task: str, resolved: dict[str, Any]) -> bool:
    required, _ = TASK_ROLES[task]
    return all(role in resolved for role in required)


def _detect_task(columns: list[str], task: str | None, overrides: dict[str, str],
                 path: Path, report: "_Report") -> tuple[str, dict[str, str]]:
    resolved = _resolve_roles(columns, overrides, path)
    if task is not None:
        if task not in TASK_KINDS:
            close = difflib.get_close_matches(task, TASK_KINDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"unknown task {task!r}{hint}; one of {', '.join(TASK_KINDS)}")
        return task, _columns_for(task, resolved, columns, path)
    candidates = [t for t in TASK_KINDS if _task_fits(t, resolved)]
    if overrides:  # an explicit --label-col etc. says which task the user means
        candidates = [t for t in candidates if set(overrides) <= set(sum(TASK_ROLES[t], ()))]
    if "preference" in candidates:
        candidates = ["preference"]  # chosen/rejected columns are unmistakable
    if set(candidates) == {"qa", "generation"} and _is_literal_qa(resolved):
        report.note("question/answer columns read as a qa task (pass --task generation to "
                    "treat them as open-ended generation)")
        candidates = ["qa"]
    if len(candidates) == 1:
        return candidates[0], _columns_for(candidates[0], resolved, columns, path)
    seen = ", ".join(columns)
    if candidates:
        options = "; ".join(f"{t} ({', '.join(_describe_roles(t, resolved))})"
                            for t in candidates)
        raise DataError(f"{path}: the columns fit more than one task: {options}. Columns seen: "
                        f"{seen}. Pass --task {' or --task '.join(candidates)}")
    raise DataError(f"{path}: cannot tell the task from the columns ({seen}). "
                    f"{_detection_hints(columns)}")


def _is_literal_qa(resolved: dict[str, Any]) -> bool:
    question, answer = resolved.get("question"), resolved.get("answer")
    return isinstance(question, str) and isinstance(answer, str)


def _describe_roles(task: str, resolved: dict[str, Any]) -> list[str]:
    required, optional = TASK_ROLES[task]
    return [f"{role}={resolved[role]!r}" for role in (*required, *optional)
            if isinstance(resolved.get(role), str)]


def _detection_hints(columns: list[str]) -> str:
    """Which columns look like a role (closest synonym), and the flags to pass."""
    hints = []
    for column in columns:
        name = _normalise_name(column)
        for role, synonyms in ROLE_SYNONYMS.items():
            close = difflib.get_close_matches(name, synonyms, n=1, cutoff=0.75)
            if close and name not in synonyms:
                hints.append(f"{column!r} looks like {close[0]!r} (pass {role_flag(role)} "
                             f"{column})")
                break
    needs = ("classification needs text+label, generation instruction+output, qa "
             "question+answer, preference chosen+rejected; pass --task KIND and the column "
             "flags (--text-col, --label-col, --instruction-col, --output-col, ...)")
    return (("; ".join(hints) + ". ") if hints else "") + needs[0].upper() + needs[1:]


def _columns_for(task: str, resolved: dict[str, Any], columns: list[str],
                 path: Path) -> dict[str, str]:
    required, optional = TASK_ROLES[task]
    mapping: dict[str, str] = {}
    for role in (*required, *optional):
        value = resolved.get(role)
        if isinstance(value, list):
            raise DataError(f"{path}: several columns could be the {role} of a {task} task "
                            f"({', '.join(value)}); pass {role_flag(role)} COLUMN")
        if value is None:
            if role in optional:
                continue
            synonyms = "/".join(ROLE_SYNONYMS[role])
            close = difflib.get_close_matches(role, [_normalise_name(c) for c in columns],
                                              n=1, cutoff=0.6)
            hint = f" ({close[0]!r} is close)" if close else ""
            raise DataError(f"{path}: a {task} task needs a {role} column ({synonyms}){hint}. "
                            f"Columns seen: {', '.join(columns)}. Pass {role_flag(role)} COLUMN")
        mapping[role] = value
    if len(set(mapping.values())) < len(mapping):
        raise DataError(f"{path}: one column serves two roles ({mapping}); pass distinct "
                        f"--*-col flags")
    return mapping


# ============================================================================ canonical rows


@dataclass
class _Report:
    """Warnings (shown, kept in the profile) and notes (how the data was read)."""

    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass
class _RowIssues:
    """Positions of dropped or odd rows in one table, reported once per kind."""

    empty: list[int] = field(default_factory=list)
    missing_label: list[int] = field(default_factory=list)
    identical_pair: list[int] = field(default_factory=list)
    empty_side: list[int] = field(default_factory=list)
    label_types: Counter = field(default_factory=Counter)
    chat_rows: int = 0
    derived_prompts: int = 0
    no_prompt: list[int] = field(default_factory=list)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _is_messages(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, dict) and "content" in m for m in value))


def _messages_text(messages: list[dict[str, Any]]) -> str:
    """Chat messages as plain text, one "Role: content" paragraph per message."""
    return "\n\n".join(f"{str(m.get('role') or 'user').strip().capitalize()}: "
                       f"{_plain(m.get('content'))}" for m in messages)


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, dict) for part in value):
        # multimodal-style content: [{"type": "text", "text": "..."}]
        return " ".join(str(part.get("text", "")) for part in value)
    return str(value)


def _cell_text(value: Any, table: _Table, position: int, column: str,
               issues: _RowIssues) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value.strip()
    if _is_messages(value):
        issues.chat_rows += 1
        return _messages_text(value).strip()
    if isinstance(value, (list, dict)):
        raise DataError(f"{table.where(position)}, column {column!r}: expected text, found a "
                        f"{type(value).__name__}")
    return str(value).strip()


def _label_text(value: Any, table: _Table, position: int, column: str,
                issues: _RowIssues) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, (list, dict)):
        raise DataError(f"{table.where(position)}, column {column!r}: a label must be one "
                        f"value, found a {type(value).__name__} (multi-label data is not "
                        f"supported)")
    if isinstance(value, bool):
        issues.label_types["bool"] += 1
        return str(value).lower()
    if isinstance(value, (int, float)):
        issues.label_types["number"] += 1
        return str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    issues.label_types[_label_kind(text)] += 1
    return sys.intern(text)  # one string per distinct label, not one per row


@lru_cache(maxsize=4096)  # labels repeat: classify each distinct label once
def _label_kind(text: str) -> str:
    try:
        float(text)
        return "number"
    except ValueError:
        return "text"


def _canonical_row(task: str, raw: dict[str, Any], mapping: dict[str, str], table: _Table,
                   position: int, issues: _RowIssues) -> dict[str, Any] | None:
    """The canonical row of the task (strategies.base), or None when it is dropped."""
    def text(role: str) -> str:
        column = mapping.get(role)
        return _cell_text(raw.get(column), table, position, column, issues) if column else ""

    if task == "classification":
        row_text = text("text")
        label = _label_text(raw.get(mapping["label"]), table, position, mapping["label"], issues)
        if not row_text:
            issues.empty.append(position)
            return None
        if label is None:
            issues.missing_label.append(position)
            return None
        return {"text": row_text, "label": label}
    if task == "generation":
        row = {"instruction": text("instruction"), "input": text("input"),
               "output": text("output")}
        if not (row["instruction"] or row["input"]) or not row["output"]:
            issues.empty.append(position)
            return None
        return row
    if task == "qa":
        answer_value = raw.get(mapping["answer"])
        answers = None
        if isinstance(answer_value, dict) and "text" in answer_value:
            # the Hugging Face SQuAD layout: {"text": [...], "answer_start": [...]}
            answer_value = answer_value["text"]
        if isinstance(answer_value, list) and not _is_messages(answer_value):
            # SQuAD style: several gold answers; the first is the reference
            answers = [_plain(a).strip() for a in answer_value if not _is_missing(a)]
            answer_value = answers[0] if answers else None
        row = {"question": text("question"), "context": text("context"),
               "answer": _cell_text(answer_value, table, position, mapping["answer"], issues)}
        if not row["question"] or not row["answer"]:
            issues.empty.append(position)
            return None
        if answers and len(answers) > 1:
            row["answers"] = answers
        return row
    return _preference_row(raw, mapping, table, position, issues)


def _preference_row(raw: dict[str, Any], mapping: dict[str, str], table: _Table,
                    position: int, issues: _RowIssues) -> dict[str, Any] | None:
    prompt_value = raw.get(mapping["prompt"]) if "prompt" in mapping else None
    chosen_value, rejected_value = raw.get(mapping["chosen"]), raw.get(mapping["rejected"])
    for column, value in ((mapping["chosen"], chosen_value), (mapping["rejected"], rejected_value)):
        if isinstance(value, dict) or (isinstance(value, list) and not _is_messages(value)
                                       and value):
            raise DataError(f"{table.where(position)}, column {column!r}: expected text or a "
                            f"list of chat messages, found {type(value).__name__}")
    if any(_is_messages(v) for v in (prompt_value, chosen_value, rejected_value)):
        issues.chat_rows += 1
        prompt, chosen, rejected = _chat_pair(prompt_value, chosen_value, rejected_value)
    elif "prompt" in mapping:
        prompt = _plain(prompt_value).strip()
        chosen, rejected = _plain(chosen_value).strip(), _plain(rejected_value).strip()
        if prompt and chosen.startswith(prompt) and rejected.startswith(prompt):
            # full transcripts next to their prompt (HH-RLHF with a prompt column added)
            chosen, rejected = chosen[len(prompt):].strip(), rejected[len(prompt):].strip()
    else:
        prompt, chosen, rejected = _split_shared_prompt(_plain(chosen_value),
                                                        _plain(rejected_value))
        if prompt:
            issues.derived_prompts += 1
        else:
            issues.no_prompt.append(position)
    if not chosen or not rejected:
        issues.empty_side.append(position)
        return None
    if chosen == rejected:
        issues.identical_pair.append(position)
        return None
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _split_shared_prompt(chosen: str, rejected: str) -> tuple[str, str, str]:
    """HH-RLHF transcripts: the shared prefix up to the last "\\n\\nAssistant:" is the prompt."""
    common = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        common += 1
    cut = chosen.rfind(ASSISTANT_MARKER, 0, common)
    if cut < 0:
        return "", chosen.strip(), rejected.strip()
    cut += len(ASSISTANT_MARKER)
    return chosen[:cut].strip(), chosen[cut:].strip(), rejected[cut:].strip()


def _chat_pair(prompt_value: Any, chosen_value: Any, rejected_value: Any) -> tuple[str, str, str]:
    """Chat-format rows: prompt messages -> "Role: content" text ending in "Assistant:";
    chosen/rejected -> the text of the reply (a copy of the prompt in front is removed)."""
    prompt_messages = prompt_value if _is_messages(prompt_value) else None
    chosen_messages = chosen_value if _is_messages(chosen_value) else None
    rejected_messages = rejected_value if _is_messages(rejected_value) else None
    if prompt_messages is None and chosen_messages and rejected_messages and \
            not isinstance(prompt_value, str):
        shared = 0  # no prompt column: the messages both sides share are the prompt
        for a, b in zip(chosen_messages, rejected_messages):
            if a != b:
                break
            shared += 1
        prompt_messages = chosen_messages[:shared]
    if prompt_messages:
        prompt = _messages_text(prompt_messages) + ASSISTANT_MARKER
    else:
        prompt = _plain(prompt_value).strip()
    return (prompt.strip(), _reply_text(chosen_value, prompt_messages),
            _reply_text(rejected_value, prompt_messages))


def _reply_text(value: Any, prompt_messages: list[dict[str, Any]] | None) -> str:
    if not _is_messages(value):
        return _plain(value).strip()
    messages = list(value)
    if prompt_messages and messages[:len(prompt_messages)] == list(prompt_messages):
        messages = messages[len(prompt_messages):]
    if not messages:
        return ""
    if len(messages) == 1:
        return _plain(messages[0].get("content")).strip()
    text = _messages_text(messages)
    return text.removeprefix("Assistant: ").strip()


def _read_rows(table: _Table, task: str, mapping: dict[str, str], offset: int,
               report: _Report) -> tuple[list[dict[str, Any]], array, int]:
    """Canonical rows, their source indices (offset + data row number, from 0), and how
    many rows the table had."""
    rows: list[dict[str, Any]] = []
    indices = array("q")
    issues = _RowIssues()
    wanted = list(dict.fromkeys(mapping.values()))
    count = 0
    for count, (position, raw) in enumerate(table.rows(wanted), start=1):
        row = _canonical_row(task, raw, mapping, table, position, issues)
        if row is not None:
            rows.append(row)
            indices.append(offset + count - 1)
    _report_issues(table, task, mapping, issues, report)
    if count == 0:
        raise DataError(f"{table.path} has a header but no data rows")
    if not rows:
        raise DataError(f"{table.path}: none of its {count} rows is usable "
                        f"({', '.join(_issue_summary(issues))}); see the columns "
                        f"{', '.join(repr(c) for c in wanted)}")
    return rows, indices, count


def _issue_summary(issues: _RowIssues) -> list[str]:
    parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in (
        ("empty", issues.empty), ("missing_label", issues.missing_label),
        ("identical_pair", issues.identical_pair), ("empty_side", issues.empty_side)) if v]
    return parts or ["no rows"]


def _count(n: int, word: str) -> str:
    """'1 row', '3 rows'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _lines(positions: list[int], unit: str) -> str:
    shown = ", ".join(str(p) for p in positions[:MAX_EXAMPLES])
    more = f", ... {len(positions) - MAX_EXAMPLES} more" if len(positions) > MAX_EXAMPLES else ""
    return f"{unit}s {shown}{more}" if len(positions) > 1 else f"{unit} {shown}"


# The columns whose emptiness makes a row unusable, per task (for the message).
EMPTY_MEANS = {"classification": ("text",), "generation": ("instruction", "input", "output"),
               "qa": ("question", "answer"), "preference": ("chosen", "rejected")}


def _report_issues(table: _Table, task: str, mapping: dict[str, str], issues: _RowIssues,
                   report: _Report) -> None:
    name, unit = table.path.name, table.unit
    needed = "/".join(repr(mapping[r]) for r in EMPTY_MEANS[task] if r in mapping)
    if issues.empty:
        report.dropped["empty"] += len(issues.empty)
        report.warn(f"{name}: {_count(len(issues.empty), 'empty row')} dropped (no text in "
                    f"{needed}; {_lines(issues.empty, unit)})")
    if issues.missing_label:
        report.dropped["missing_label"] += len(issues.missing_label)
        report.warn(f"{name}: {_count(len(issues.missing_label), 'row')} without a label in "
                    f"column {mapping['label']!r} dropped ({_lines(issues.missing_label, unit)})")
    if issues.identical_pair:
        report.dropped["identical_pair"] += len(issues.identical_pair)
        report.warn(f"{name}: {_count(len(issues.identical_pair), 'pair')} where chosen equals "
                    f"rejected dropped ({_lines(issues.identical_pair, unit)})")
    if issues.empty_side:
        report.dropped["empty_side"] += len(issues.empty_side)
        report.warn(f"{name}: {_count(len(issues.empty_side), 'pair')} with an empty chosen or "
                    f"rejected side dropped ({_lines(issues.empty_side, unit)})")
    if len(issues.label_types) > 1:
        kinds = ", ".join(f"{kind}: {n} rows" for kind, n in issues.label_types.most_common())
        report.warn(f"{name}: column {mapping['label']!r} mixes label types ({kinds}); all are "
                    f"read as text labels, so 1 and '1.0' differ: make them consistent")
    if issues.chat_rows:
        report.note(f"{name}: {issues.chat_rows} chat-format rows flattened to text, one "
                    f"'Role: content' paragraph per message")
    if issues.derived_prompts:
        report.note(f"{name}: no prompt column; the prompt of {issues.derived_prompts} pairs is "
                    f"the transcript both sides share, up to the last 'Assistant:'")
    if issues.no_prompt:
        report.warn(f"{name}: {_count(len(issues.no_prompt), 'pair')} share no 'Assistant:' "
                    f"turn, so their prompt is empty ({_lines(issues.no_prompt, unit)}); pass "
                    f"--prompt-col if the prompt is in a column")


# ============================================================================ splitting


def _split_count(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return min(n - 1, max(1, round(n * fraction)))


class _CannotStratify(ValueError):
    """Fewer rows on one side than there are labels: a stratified split is impossible."""


def _stratified_take(pool: list[int], strata: list[str] | None, count: int, seed: int
                     ) -> tuple[list[int], list[int]]:
    """(kept, taken): `count` rows taken at random, in proportion to each label's share when
    `strata` is given (every label keeps at least one row on each side).

    A few lines of numpy instead of scikit-learn's train_test_split: importing scikit-learn
    costs the parent seconds per run, and the split is all it was imported for."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if strata is None:
        order = rng.permutation(len(pool))
        taken = set(order[:count].tolist())
        return ([p for i, p in enumerate(pool) if i not in taken],
                [pool[i] for i in sorted(taken)])
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(strata):
        groups.setdefault(label, []).append(i)
    if (count < len(groups) or len(pool) - count < len(groups)
            or min(len(members) for members in groups.values()) < 2):
        raise _CannotStratify(f"{count} of {len(pool)} rows for {len(groups)} labels")
    names = sorted(groups)
    sizes = np.array([len(groups[n]) for n in names])
    exact = sizes * count / len(pool)
    quota = np.clip(np.floor(exact).astype(int), 1, sizes - 1)
    # Largest remainders first (random among ties) until the quotas add up to `count`.
    while quota.sum() != count:
        room = sizes - 1 - quota
        step = 1 if quota.sum() < count else -1
        allowed = room > 0 if step == 1 else quota > 1
        priority = (exact - quota) * step + rng.random(len(names)) * 1e-9
        priority[~allowed] = -np.inf
        quota[int(np.argmax(priority))] += step
    taken: set[int] = set()
    for name, n in zip(names, quota):
        members = groups[name]
        taken.update(members[j] for j in rng.permutation(len(members))[:n].tolist())
    return ([p for i, p in enumerate(pool) if i not in taken],
            [pool[i] for i in sorted(taken)])


def _carve(positions: list[int], labels: list[str] | None, fraction: float, seed: int,
           report: _Report, what: str) -> tuple[list[int], list[int]]:
    """Split positions into (kept, carved) with about `fraction` carved, stratified by label.

    Labels with fewer than 2 rows cannot be on both sides: they stay on the kept side."""
    count = _split_count(len(positions), fraction)
    if count == 0:
        return list(positions), []
    if labels is None:
        return _stratified_take(list(positions), None, count, seed)
    by_label = Counter(labels[p] for p in positions)
    rare = {label for label, n in by_label.items() if n < 2}
    pool = [p for p in positions if labels[p] not in rare]  # _check_labels warns of these
    count = min(count, len(pool) - 1)
    if count < 1:
        return list(positions), []
    try:
        kept, carved = _stratified_take(pool, [labels[p] for p in pool], count, seed)
    except _CannotStratify:
        report.note(f"the {what} split has fewer rows ({count}) than there are labels "
                    f"({len(set(labels[p] for p in pool))}): split at random, not stratified")
        kept, carved = _stratified_take(pool, None, count, seed)
    rare_rows = [p for p in positions if labels[p] in rare]
    return kept + rare_rows, carved


def _cap_train(train: list[int], labels: list[str] | None, max_rows: int, seed: int,
               report: _Report) -> list[int]:
    """A stratified, seeded subset of `max_rows` train rows (quick presets, learning curves)."""
    if len(train) <= max_rows:
        return train
    report.note(f"train capped at {max_rows} of {len(train)} rows (stratified, seed fixed)")
    stratify = [labels[p] for p in train] if labels is not None else None
    try:
        _, kept = _stratified_take(train, stratify, max_rows, seed)
    except _CannotStratify:  # a cap below the number of labels
        _, kept = _stratified_take(train, None, max_rows, seed)
    return kept


# ============================================================================ corpus


def _load_corpus(path: Path, report: _Report) -> tuple[list[dict[str, Any]], list[Path]]:
    """Documents for RAG: a folder of .txt/.md files, or a table with a text column."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
        if not files:
            raise DataError(f"corpus folder {path} holds no .txt or .md documents")
        docs, empty = [], []
        for file in files:
            try:
                text = file.read_text(encoding="utf-8-sig").strip()
            except UnicodeDecodeError:
                raise DataError(f"corpus document {file} is not UTF-8 text; save it as "
                                f"UTF-8") from None
            if text:
                docs.append({"id": str(file.relative_to(path)), "text": text})
            else:
                empty.append(file.name)
        if empty:
            report.warn(f"corpus: {len(empty)} empty documents skipped ({', '.join(empty[:5])})")
        return docs, files
    table = _open_table(path, _format_of(path), report)
    text_columns = [c for c in table.columns if _normalise_name(c) in CORPUS_TEXT_SYNONYMS]
    if not text_columns:
        raise DataError(_missing_column_message(path, "text", table.columns, "corpus text"))
    text_column = text_columns[0]
    extra = [c for c in table.columns if _normalise_name(c) in ("id", "title")]
    docs, empty = [], []
    for number, raw in table.rows([text_column, *extra]):
        text = _plain(raw.get(text_column)).strip()
        if not text:
            empty.append(number)
            continue
        doc = {"id": str(raw.get(_first(extra, "id")) or number), "text": text}
        title_column = _first(extra, "title")
        if title_column and raw.get(title_column):
            doc["title"] = str(raw[title_column])
        docs.append(doc)
    if empty:
        report.warn(f"corpus {path.name}: {len(empty)} empty documents skipped "
                    f"({_lines(empty, table.unit)})")
    if not docs:
        raise DataError(f"corpus {path} has no non-empty documents")
    return docs, [path]


def _first(columns: list[str], name: str) -> str | None:
    return next((c for c in columns if _normalise_name(c) == name), None)


# ============================================================================ checks


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


# What a model sees and what it must produce, per task: equal inputs in train and test are
# leakage; equal input and target twice is a duplicate.
INPUT_FIELDS = {"classification": ("text",), "generation": ("instruction", "input"),
                "qa": ("question", "context"), "preference": ("prompt",)}
TARGET_FIELDS = {"classification": ("label",), "generation": ("output",), "qa": ("answer",),
                 "preference": ("chosen", "rejected")}


def _key(row: dict[str, Any], fields: tuple[str, ...]) -> int:
    """A 64-bit hash of the normalised fields: a big file's text is not held a second time
    (a collision among 10 million rows has odds of about 1 in 200,000)."""
    if len(fields) == 1:
        return hash(_normalised(row[fields[0]]))
    return hash(_normalised("\x1f".join([row[f] for f in fields])))


def _check_duplicates_and_leakage(task: str, parts: dict[str, list[dict[str, Any]]],
                                  report: _Report) -> tuple[int, int]:
    """Duplicates within each split, conflicting labels, and test inputs seen in training.

    Each row is normalised once (lower case, single spaces): 100k rows take well under a
    second."""
    # arrays of 8-byte hashes, not lists of Python ints: a 10-million-row file stays small
    inputs = {split: array("q", (_key(row, INPUT_FIELDS[task]) for row in rows))
              for split, rows in parts.items()}
    duplicates = 0
    targets_of: dict[int, set[str]] = {}
    for split, rows in parts.items():
        seen: set[int] = set()
        in_split = 0
        for input_key, row in zip(inputs[split], rows):
            target = _key(row, TARGET_FIELDS[task])
            pair = hash((input_key, target))
            in_split += pair in seen
            seen.add(pair)
            if task == "classification":
                targets_of.setdefault(input_key, set()).add(row["label"])
        if in_split:
            report.warn(f"{split}: {_count(in_split, 'duplicate row')} (same input and "
                        f"answer): they weigh double in training and scoring")
        duplicates += in_split
    conflicts = sum(len(labels) > 1 for labels in targets_of.values())
    if conflicts:
        report.warn(f"{_count(conflicts, 'text')} with different labels in different rows: "
                    f"no model can get them all right")
    trained = set(inputs["train"]) | set(inputs["validation"])
    leaked = sum(key in trained for key in inputs["test"])
    if leaked:
        what = "prompts" if task == "preference" else "inputs"
        report.warn(f"leakage: {leaked} of {_count(len(parts['test']), 'test row')} have {what} "
                    f"that also appear in train/validation; their scores overstate quality "
                    f"(remove duplicates before splitting)")
    return duplicates, leaked


def _row_text(row: dict[str, Any]) -> str:
    return "\n".join(str(v) for k, v in row.items() if k != "answers")


def _load_tokenizer(model_name: str | None, report: _Report):
    """A tokenizer for length counts, never model weights; None -> a cheap word count."""
    if not model_name:
        return None
    try:
        from bench import models

        bundled_dirs = {"smollm2-135m": models.cache_dir() / "smollm2-135m-instruct",
                        "tiny-llama": models.cache_dir() / "tiny-llama",
                        "tiny-bert": models.cache_dir() / "tiny-bert"}
        if model_name in bundled_dirs:
            path = bundled_dirs[model_name]  # only once converted: converting loads weights
            if not (path / "tokenizer_config.json").exists():
                raise FileNotFoundError(path)
        elif model_name == "minilm-l6":
            path = models.minilm_dir()
        else:
            path = models.resolve(model_name).path
        return _FastLengthTokenizer.load(Path(path))
    except Exception as exc:  # any failure only costs precision: fall back to word counts
        report.note(f"tokenizer of {model_name!r} not available ({type(exc).__name__}): "
                    f"lengths are word/punctuation counts")
        return None


class _FastLengthTokenizer:
    """Counts tokens with the `tokenizers` library straight from a model's tokenizer.json.

    transformers' AutoTokenizer gives the same ids but importing transformers costs the parent
    process seconds per run (measured: 6 s vs 0.07 s at load 3), and counting is all the parent
    needs a tokenizer for. Models without a tokenizer.json fall back to AutoTokenizer."""

    def __init__(self, encode_batch, model_max_length: int | None):
        self._encode_batch = encode_batch
        self.model_max_length = model_max_length

    @classmethod
    def load(cls, path: Path) -> "_FastLengthTokenizer":
        config_file = path / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
        max_length = config.get("model_max_length")
        if (path / "tokenizer.json").exists():
            from tokenizers import Tokenizer

            fast = Tokenizer.from_file(str(path / "tokenizer.json"))
            return cls(lambda texts: [e.ids for e in fast.encode_batch(texts,
                                                                       add_special_tokens=False)],
                       max_length)
        from transformers import AutoTokenizer

        slow = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        return cls(lambda texts: slow(texts, add_special_tokens=False)["input_ids"],
                   slow.model_max_length)

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict[str, list]:
        return {"input_ids": self._encode_batch(texts)}


def _token_lengths(rows: list[dict[str, Any]], tokenizer) -> array:
    """Tokens (or whitespace words) per row, in chunks so the text is never copied whole."""
    if tokenizer is None:
        return array("q", (len(_row_text(row).split()) for row in rows))
    lengths = array("q")
    for start in range(0, len(rows), 2048):
        texts = [_row_text(row) for row in rows[start:start + 2048]]
        lengths.extend(len(ids) for ids in
                       tokenizer(texts, add_special_tokens=False)["input_ids"])
    return lengths


def _percentile(sorted_values, q: float) -> int:
    """The nearest-rank percentile: a length that some row really has."""
    if not len(sorted_values):
        return 0
    index = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return int(sorted_values[index])


def _check_lengths(rows: list[dict[str, Any]], tokenizer, report: _Report) -> dict[str, int]:
    lengths = _token_lengths(rows, tokenizer)
    import numpy as np

    ordered = np.sort(np.frombuffer(lengths, dtype=np.int64) if len(lengths) else
                      np.zeros(0, dtype=np.int64))
    stats = {"p50": _percentile(ordered, 50), "p90": _percentile(ordered, 90),
             "p99": _percentile(ordered, 99), "max": int(ordered[-1]) if len(ordered) else 0}
    unit = "tokens" if tokenizer is not None else "tokens (word estimate)"
    context = getattr(tokenizer, "model_max_length", None) if tokenizer is not None else None
    if not context or context > 1_000_000:  # tokenizers without a limit report a huge number
        context = DEFAULT_CONTEXT_TOKENS
    too_long = sum(n > context for n in lengths)
    if too_long:
        report.warn(f"{_count(too_long, 'row')} longer than {context} {unit}, the model's context: "
                    f"they will be truncated")
    outlier_limit = max(10 * stats["p50"], 256)
    outliers = sum(n > outlier_limit for n in lengths)
    if outliers and len(lengths) >= 20:
        report.warn(f"{_count(outliers, 'row')} over {outlier_limit} {unit} (10x the median of "
                    f"{stats['p50']}); the longest has {stats['max']}: they dominate time and "
                    f"memory")
    return stats


def _check_labels(parts: dict[str, list[dict[str, Any]]], all_labels: Counter, path: Path,
                  column: str, report: _Report) -> None:
    if len(all_labels) < 2:
        only = next(iter(all_labels), "")
        raise DataError(f"{path}: column {column!r} has a single label ({only!r}); "
                        f"classification needs at least two")
    variants: dict[str, list[str]] = {}
    for label in sorted(all_labels):
        variants.setdefault(label_name(label).lower(), []).append(label)
    clashes = [" / ".join(repr(v) for v in group) for group in variants.values() if len(group) > 1]
    if clashes:
        report.warn(f"labels that differ only in case or punctuation are kept apart: "
                    f"{'; '.join(clashes[:MAX_EXAMPLES])}; merge them if they mean the same")
    # a stratified train/validation/test split needs a row of the label on each side
    rare = sorted(label for label, n in all_labels.items() if n < 3)
    if rare:
        shown = ", ".join(f"{label!r} ({_count(all_labels[label], 'row')})"
                          for label in rare[:MAX_EXAMPLES])
        report.warn(f"{_count(len(rare), 'label')} too small to stratify into train, validation "
                    f"and test: {shown}; add rows or merge it, or its quality goes unmeasured")
    in_split = {split: {row["label"] for row in rows} for split, rows in parts.items()}
    missing_in_train = sorted(set(all_labels) - in_split["train"])
    if missing_in_train:
        report.warn(f"labels in test/validation but never in train: "
                    f"{', '.join(missing_in_train[:MAX_EXAMPLES])}")
    untested = sorted(set(all_labels) - in_split["test"] - set(rare))
    if untested:
        report.warn(f"labels with no test rows, so unmeasured: "
                    f"{', '.join(untested[:MAX_EXAMPLES])}")


def label_name(label: str) -> str:
    """A readable verbalisation for prompts: "card_arrival" -> "card arrival",
    "NotSpam" -> "not spam"."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label)
    text = re.sub(r"[_\-.]+", " ", text).strip()
    text = " ".join(text.split())
    if not text:
        return label
    return text.lower() if text != text.upper() or len(text) > 4 else text


# ============================================================================ the entry points


def _check_arguments(test_size: float, val_size: float, max_rows: int | None) -> None:
    if not 0 < test_size < 1:
        raise DataError(f"--test-size must be between 0 and 1 (got {test_size})")
    if not 0 <= val_size < 1 or test_size + val_size >= 1:
        raise DataError(f"--val-size must be in [0, 1) with test + validation < 1 "
                        f"(got {val_size} and {test_size})")
    if max_rows is not None and max_rows < 1:
        raise DataError(f"--max-rows must be at least 1 (got {max_rows})")


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
                   max_rows: int | None = None, model_name: str | None = None) -> LoadedData:
    """Read, detect, check, split and profile a dataset (see the module docstring)."""
    started = time.perf_counter()
    _check_arguments(test_size, val_size, max_rows)
    report = _Report()
    path = _existing(path, "data path")
    test_file = _existing(test_path, "--test file") if test_path is not None else None
    corpus_file = _existing(corpus_path, "--corpus") if corpus_path is not None else None
    sources = _discover(path, test_file, corpus_file, report)
    first = sources.tables["train"]
    task, mapping = _detect_task(first.columns, task, dict(columns or {}), first.path, report)
    rows, given, source_index = _read_sources(sources, task, mapping, report)

    labels = [row["label"] for row in rows] if task == "classification" else None
    positions = _split_positions(given, labels, seed, test_size, val_size, max_rows, report)
    parts = {split: [rows[p] for p in positions[split]] for split in positions}
    if len(parts["train"]) == 0:
        raise DataError(f"{first.path}: too few rows ({len(rows)}) for a train split")

    label_counts = Counter(labels) if labels is not None else Counter()
    ordered_labels: list[str] = []
    if task == "classification":
        _check_labels(parts, label_counts, first.path, mapping["label"], report)
        ordered_labels = sorted(label_counts)
    duplicates, leakage = _check_duplicates_and_leakage(task, parts, report)
    tokenizer = _load_tokenizer(model_name, report)
    token_length = _check_lengths(rows, tokenizer, report)

    corpus, corpus_files = None, []
    if sources.corpus is not None:
        if task in ("qa", "generation"):
            corpus, corpus_files = _load_corpus(sources.corpus, report)
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
                           label_names={label: label_name(label) for label in ordered_labels},
                           corpus=corpus)
    profile = _profile(task, rows, parts, first, mapping, report, sources=source_paths,
                       token_length=token_length,
                       token_counter=model_name if tokenizer is not None else None,
                       duplicates=duplicates, leakage=leakage, corpus=corpus, seed=seed,
                       data_hash=data_hash, split_source="given" if "test" in given else "carved")
    if task == "classification":
        profile["labels"] = {label: label_counts[label] for label in ordered_labels}
        profile["label_names"] = dict(task_split.label_names)
    profile["path"] = str(path)
    profile["check_seconds"] = round(time.perf_counter() - started, 3)
    return LoadedData(split=task_split, profile=profile, split_indices=split_indices,
                      data_hash=data_hash, sources=source_paths)


def _read_sources(sources: _Sources, task: str, mapping: dict[str, str], report: _Report
                  ) -> tuple[list[dict[str, Any]], dict[str, list[int]], array]:
    """All canonical rows (train, validation, test files in order), the positions of each
    given split in them, and each row's index in the source files."""
    for table in sources.tables.values():
        for role, column in mapping.items():
            if column not in table.columns and role in TASK_ROLES[task][0]:
                raise DataError(_missing_column_message(table.path, column, table.columns,
                                                        role_flag(role)))
    rows: list[dict[str, Any]] = []
    given: dict[str, list[int]] = {}
    source_index = array("q")  # 8 bytes a row until the split picks its rows
    offset = 0
    for split in ("train", "validation", "test"):
        if split not in sources.tables:
            continue
        table = sources.tables[split]
        part, indices, read = _read_rows(table, task, _present(mapping, table), offset, report)
        given[split] = list(range(len(rows), len(rows) + len(part)))
        rows.extend(part)
        source_index.extend(indices)
        offset += read
    return rows, given, source_index


def _profile(task: str, rows: list[dict[str, Any]], parts: dict[str, list[dict[str, Any]]],
             first: _Table, mapping: dict[str, str], report: _Report, *,
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


def _present(mapping: dict[str, str], table: _Table) -> dict[str, str]:
    """Optional roles whose column a given split file lacks read as empty there."""
    return {role: column for role, column in mapping.items() if column in table.columns}


def _path_or_none(table: _Table | None) -> str | None:
    return str(table.path) if table is not None else None


def _split_positions(given: dict[str, list[int]], labels: list[str] | None, seed: int,
                     test_size: float, val_size: float, max_rows: int | None,
                     report: _Report) -> dict[str, list[int]]:
    """Given split files are respected; what is missing is carved, stratified and seeded."""
    train = given["train"]
    test = given.get("test")
    validation = given.get("validation")
    if test is None:
        train, test = _carve(train, labels, test_size, seed, report, "test")
    if validation is None:
        # from one file, validation is val_size of all rows; with a given test, of train
        fraction = val_size / (1 - test_size) if "test" not in given else val_size
        train, validation = _carve(train, labels, fraction, seed, report, "validation")
    if not test:
        raise DataError(f"too few usable rows ({len(train)}) to hold out a test split; "
                        f"add rows or pass --test FILE")
    if max_rows is not None:
        train = _cap_train(train, labels, max_rows, seed, report)
    return {"train": train, "validation": validation, "test": test}


def profile_data(path, **kwargs) -> dict:
    """Just the data profile (the advisor and the TUI use it); same arguments as
    load_task_data."""
    return load_task_data(path, **kwargs).profile


def column_names(path) -> list[str]:
    """The columns of the (train) table at `path`, without detecting a task: what a user picks
    the column roles from when detection cannot tell them (the TUI's data screen)."""
    sources = _discover(_existing(path, "data path"), None, None, _Report())
    return list(sources.tables["train"].columns)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
