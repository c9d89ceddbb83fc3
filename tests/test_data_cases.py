"""The malformed-file corpus (tests/data_cases): through the CLI, each file gives exit 2 with a
one-line message, or exit 0 with a warning; never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.cli import main

CASES_DIR = Path(__file__).resolve().parent / "data_cases"

# file -> exit code, and a fragment of the error (exit 2) or of a warning (exit 0)
CASES = {
    "empty.csv": (2, "is empty"),
    "header_only.csv": (2, "has a header but no data rows"),
    "binary.csv": (2, "looks like a binary file"),
    "random_bytes.parquet": (2, "is not a readable Parquet file"),
    "unsupported.xlsx": (2, "unsupported file type '.xlsx'"),
    "broken_line.jsonl": (2, "broken_line.jsonl line 3: not valid JSON"),
    "not_object.jsonl": (2, "line 2: expected a JSON object"),
    "list_label.jsonl": (2, "line 1, column 'label': a label must be one value"),
    "single_class.csv": (2, "has a single label ('only')"),
    "misnamed.csv": (2, "'lable' looks like 'label' (pass --label-col lable)"),
    "no_known_columns.csv": (2, "cannot tell the task from the columns (alpha, beta)"),
    "ambiguous.csv": (2, "Pass --task classification or --task generation"),
    "duplicate_header.csv": (2, "names column 'text' twice"),
    "documents_only": (2, "pass it as --corpus"),
    "does_not_exist.csv": (2, "does not exist"),
    "latin1.csv": (0, "not UTF-8 (first bad byte on line 2); read it as cp1252"),
    "empty_rows.csv": (0, "2 empty rows dropped (no text in 'text'; lines 10, 11)"),
    "missing_labels.csv": (0, "2 rows without a label in column 'label' dropped (lines 10, 11)"),
    "rare_class.csv": (0, "too small to stratify into train, validation and test: 'rare'"),
    "mixed_labels.jsonl": (0, "mixes label types (number: 6 rows, text: 6 rows)"),
    "duplicates.csv": (0, "duplicate row"),
    "conflicting_labels.csv": (0, "with different labels in different rows"),
    "leakage": (0, "leakage: 2 of 3 test rows"),
    "long_rows.csv": (0, "1 row over 256 tokens"),
    "ragged.csv": (0, "1 line with more fields than the header skipped (line 10)"),
    "preference_bad_pairs.jsonl": (0, "1 pair where chosen equals rejected dropped (line 11)"),
}
# odd but valid files: exit 0 and no warning at all
CLEAN = ["bom.csv", "semicolon.csv", "chat_preference.jsonl", "hh_transcripts.jsonl"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_file_gives_a_clean_message(name, capsys):
    expected_code, fragment = CASES[name]
    code = main(["data", "check", str(CASES_DIR / name), "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == expected_code, err
    if code == 2:
        assert err.startswith("tunewise: error: ") and err.count("\n") == 1
        assert fragment in err
    else:
        warnings = json.loads(out)["warnings"]
        assert any(fragment in warning for warning in warnings), warnings


@pytest.mark.parametrize("name", CLEAN)
def test_odd_but_valid_files_check_without_warnings(name, capsys):
    assert main(["data", "check", str(CASES_DIR / name), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_every_case_file_has_an_expectation():
    names = {p.name for p in CASES_DIR.iterdir() if p.name != "README.md"}
    assert names == (set(CASES) | set(CLEAN)) - {"does_not_exist.csv"}


def test_an_empty_directory_and_a_bad_flag_value(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path)]) == 2
    assert "holds no data files" in capsys.readouterr().err
    assert main(["data", "check", str(CASES_DIR / "bom.csv"), "--test-size", "1.5"]) == 2
    assert "--test-size must be between 0 and 1" in capsys.readouterr().err
    assert main(["data", "check", str(CASES_DIR / "bom.csv"), "--text-col", "txet"]) == 2
    assert "did you mean 'text'" in capsys.readouterr().err


def test_the_table_shows_warnings(capsys):
    assert main(["data", "check", str(CASES_DIR / "missing_labels.csv")]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "without a label" in out and "classification" in out
