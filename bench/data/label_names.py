"""`--label-names FILE`: a description for each label, the words the LM candidates use for it.

Labels like "ABBR" or "TNRR" mean nothing to a language model; every LM candidate (zero-shot,
few-shot, rag, and the fine-tuned LMs, through strategies.prompts) lists, scores and learns a
label by its name, so a description ("abbreviation", "transfer not received") gives prompting
a chance and training a head start. Predictions stay the data's own labels.

    {"ABBR": "abbreviation", "HUM": "a person or group"}        # JSON: label -> description
    label,description                                             # CSV (the header is optional)
    ABBR,abbreviation

A label the data does not have, an empty description, two labels with the same description
(label scoring could not tell them apart) or an unreadable file is a DataError naming the file.
Labels the file leaves out keep their automatic name (bench.data.checks.label_name).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from bench.data.checks import label_name
from bench.data.messages import DataError, Report

FLAG = "--label-names"
HEADER_FIRST_CELLS = ("label", "labels", "class", "code")


def read_label_names(path) -> dict[str, str]:
    """{label: description} from a .json or .csv/.tsv file, checked for shape, not yet against
    the data's labels (`names_for_labels` does that)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{FLAG} {path}: no such file")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{FLAG} {path}: cannot read it ({exc})") from None
    if suffix == ".json":
        pairs = _json_pairs(path, text)
    elif suffix in (".csv", ".tsv"):
        pairs = _csv_pairs(path, text, "\t" if suffix == ".tsv" else ",")
    else:
        raise DataError(f"{FLAG} {path}: expected a .json file (an object label -> description) "
                        "or a .csv file (label,description rows)")
    return _checked(path, pairs)


def _json_pairs(path: Path, text: str) -> list[tuple[Any, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{FLAG} {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise DataError(f"{FLAG} {path}: expected a JSON object mapping each label to its "
                        f'description, e.g. {{"ABBR": "abbreviation"}}; got a {type(data).__name__}')
    return list(data.items())


def _csv_pairs(path: Path, text: str, delimiter: str) -> list[tuple[Any, Any]]:
    rows = [row for row in csv.reader(text.splitlines(), delimiter=delimiter)
            if any(cell.strip() for cell in row)]
    if rows and rows[0] and rows[0][0].strip().lower() in HEADER_FIRST_CELLS:
        rows = rows[1:]
    pairs = []
    for line, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise DataError(f"{FLAG} {path}: row {line} has {len(row)} columns; expected two: "
                            "label,description (quote a description that has a comma)")
        pairs.append((row[0], row[1]))
    return pairs


def _checked(path: Path, pairs: list[tuple[Any, Any]]) -> dict[str, str]:
    if not pairs:
        raise DataError(f"{FLAG} {path}: no labels in the file")
    names: dict[str, str] = {}
    for label, description in pairs:
        if not isinstance(label, str) or not isinstance(description, str):
            raise DataError(f"{FLAG} {path}: {label!r}: label and description must both be "
                            "text")
        label, description = label.strip(), " ".join(description.split())
        if not label or not description:
            raise DataError(f"{FLAG} {path}: label {label!r} has an empty description")
        if label in names:
            raise DataError(f"{FLAG} {path}: label {label!r} is described twice")
        names[label] = description
    return names


def names_for_labels(names: dict[str, str], labels: Sequence[str], path, report: Report | None
                     = None) -> dict[str, str]:
    """Every label's name for prompts: the file's description, else the automatic name. A label
    the data does not have, or two labels named alike, is a DataError; labels the file leaves
    out are a warning in `report`."""
    unknown = sorted(set(names) - set(labels))
    if unknown:
        raise DataError(f"{FLAG} {path}: {_listed(unknown)} not among the data's labels "
                        f"({_listed(sorted(labels))})")
    full = {label: names.get(label) or label_name(label) for label in labels}
    seen: dict[str, str] = {}
    for label, text in full.items():
        other = seen.setdefault(text.lower(), label)
        if other != label:
            raise DataError(f"{FLAG} {path}: labels {other!r} and {label!r} would both read "
                            f"{text!r}; label scoring needs a distinct name for each")
    missing = [label for label in labels if label not in names]
    if missing and report is not None:
        report.warn(f"{FLAG} {Path(path).name} leaves out {_listed(missing)}: "
                    "their automatic names are used")
    return full


def _listed(labels: Sequence[str], shown: int = 12) -> str:
    text = ", ".join(repr(label) for label in labels[:shown])
    return text + (f", ... {len(labels) - shown} more" if len(labels) > shown else "")
