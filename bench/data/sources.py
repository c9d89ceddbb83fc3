"""Finding the files: a data file, a folder of train.* / validation.* / test.* / corpus.*
files, or a saved dataset, plus an optional --test file and --corpus."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from bench.data.messages import DataError, Report
from bench.data.readers import (DOCUMENT_SUFFIXES, TABLE_SUFFIXES, Table, open_saved_dataset,
                                open_table, split_of_name)


@dataclass
class Sources:
    tables: dict[str, Table]  # split ("train", "validation", "test") -> table
    corpus: Path | None
    hashed_files: list[Path]  # every file whose bytes make the data hash


def format_of(path: Path) -> str:
    fmt = TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; use "
                        f"CSV, TSV, JSON, JSONL or Parquet, or a datasets.save_to_disk folder")
    return fmt


def existing_path(path: Path | str, what: str) -> Path:
    path = Path(path).expanduser()
    if path.exists():
        return path
    hint = ""
    if path.parent.is_dir():
        close = difflib.get_close_matches(path.name, [p.name for p in path.parent.iterdir()],
                                          n=1, cutoff=0.8)
        hint = f" (did you mean {path.parent / close[0]}?)" if close else ""
    raise DataError(f"{what} {path} does not exist{hint}")


def discover_sources(path: Path, test_path: Path | None, corpus_path: Path | None,
              report: Report) -> Sources:
    tables: dict[str, Table] = {}
    hashed: list[Path] = []
    corpus = corpus_path
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            tables = open_saved_dataset(path)
            hashed = sorted(p for p in path.rglob("*") if p.is_file())
        else:
            files, found_corpus = _split_files(path)
            for split, file in files.items():
                tables[split] = open_table(file, format_of(file), report)
                hashed.append(file)
            if corpus is None:
                corpus = found_corpus
    else:
        tables["train"] = open_table(path, format_of(path), report)
        hashed.append(path)
    if test_path is not None:
        if "test" in tables:
            report.note(f"--test {test_path.name} replaces {tables['test'].path.name}")
            if tables["test"].path in hashed:
                hashed.remove(tables["test"].path)
        if test_path.is_dir():
            raise DataError(f"--test {test_path} is a folder; give the test file")
        tables["test"] = open_table(test_path, format_of(test_path), report)
        hashed.append(test_path)
    return Sources(tables, corpus, hashed)


def _split_files(folder: Path) -> tuple[dict[str, Path], Path | None]:
    """train.* / validation.* / test.* / corpus.* in a folder; a lone data file is the train."""
    files: dict[str, Path] = {}
    corpus: Path | None = None
    unnamed: list[Path] = []
    entries = sorted(folder.iterdir())
    for entry in entries:
        split = split_of_name(entry.stem if entry.is_file() else entry.name)
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
