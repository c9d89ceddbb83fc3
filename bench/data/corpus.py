"""The corpus for RAG: a folder of .txt/.md documents, or a table with a text column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.data.columns import missing_column_message, normalise_name
from bench.data.messages import DataError, Report, list_positions
from bench.data.readers import DOCUMENT_SUFFIXES, open_table
from bench.data.rows import plain_text
from bench.data.sources import format_of

CORPUS_TEXT_SYNONYMS = ("text", "content", "document", "passage", "body", "contents")


def load_corpus(path: Path, report: Report) -> tuple[list[dict[str, Any]], list[Path]]:
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
    table = open_table(path, format_of(path), report)
    text_columns = [c for c in table.columns if normalise_name(c) in CORPUS_TEXT_SYNONYMS]
    if not text_columns:
        raise DataError(missing_column_message(path, "text", table.columns, "corpus text"))
    text_column = text_columns[0]
    extra = [c for c in table.columns if normalise_name(c) in ("id", "title")]
    docs, empty = [], []
    for number, raw in table.rows([text_column, *extra]):
        text = plain_text(raw.get(text_column)).strip()
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
                    f"({list_positions(empty, table.unit)})")
    if not docs:
        raise DataError(f"corpus {path} has no non-empty documents")
    return docs, [path]


def _first(columns: list[str], name: str) -> str | None:
    return next((c for c in columns if normalise_name(c) == name), None)
