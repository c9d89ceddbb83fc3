"""Reading tables: CSV/TSV, JSON, JSON Lines, Parquet and `datasets.save_to_disk` folders,
each opened as a `Table` of columns and a row iterator (rows are streamed, never held twice)."""

from __future__ import annotations

import codecs
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from bench.data.messages import DataError, Report, first_line_of, list_positions, plural

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json",
                  ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
DOCUMENT_SUFFIXES = (".txt", ".md")
SPLIT_FILE_NAMES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "eval", "evaluation"),
    "corpus": ("corpus", "documents", "docs"),
}
ENCODING_SAMPLE = 1 << 20


@dataclass
class Table:
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


def open_table(path: Path, fmt: str, report: Report) -> Table:
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


def _detect_encoding(path: Path, report: Report) -> str:
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


def _open_delimited(path: Path, fmt: str, report: Report) -> Table:
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
            report.warn(f"{path.name}: {plural(len(ragged), 'line')} with more fields than "
                        f"the header skipped ({list_positions(ragged, 'line')}); quote fields that "
                        f"contain the delimiter")

    return Table(path, fmt, columns, "line", encoding, rows)


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


def _open_jsonl(path: Path, report: Report) -> Table:
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

    return Table(path, "jsonl", columns, "line", encoding, rows)


def _open_json(path: Path, report: Report) -> Table:
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

    return Table(path, "json", columns, "record", encoding, rows)


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


def _open_parquet(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        columns = list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable Parquet file ({first_line_of(exc)})") from None

    def rows(wanted: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        number = 0
        try:
            for batch in parquet.iter_batches(columns=wanted, batch_size=10_000):
                for record in batch.to_pylist():
                    number += 1
                    yield number, record
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{path} after row {number}: cannot read the Parquet data "
                            f"({first_line_of(exc)})") from None

    return Table(path, "parquet", _unique_columns(columns, path), "row", None, rows)


def open_saved_dataset(path: Path) -> dict[str, Table]:
    """A `datasets.save_to_disk` folder: one table per split (a plain Dataset is 'train')."""
    try:
        import datasets

        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types for a damaged folder
        raise DataError(f"{path} is not a readable datasets.save_to_disk folder "
                        f"({first_line_of(exc)})") from None
    parts = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    tables: dict[str, Table] = {}
    for name, dataset in parts.items():
        split = split_of_name(name)
        if split is None or split == "corpus":
            raise DataError(f"{path}: split {name!r} is not train, validation or test")

        def rows(wanted: list[str], dataset=dataset) -> Iterator[tuple[int, dict[str, Any]]]:
            number = 0
            for batch in dataset.select_columns(wanted).iter(batch_size=10_000):
                for values in zip(*(batch[c] for c in wanted)):
                    number += 1
                    yield number, dict(zip(wanted, values))

        tables[split] = Table(path / name, "save_to_disk", list(dataset.column_names), "row",
                               None, rows)
    if "train" not in tables:
        raise DataError(f"{path}: the saved dataset has no train split ({', '.join(parts)})")
    return tables


def split_of_name(stem: str) -> str | None:
    stem = stem.lower()
    for split, names in SPLIT_FILE_NAMES.items():
        if stem in names:
            return split
    return None
