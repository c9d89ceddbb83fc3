"""README: every table of measured numbers says when they were measured (issue 16 item 6).

A table whose cells hold a measurement — seconds, minutes, GB, MB, a ratio like 1.23x, or a
score like 0.975 — must have a date (YYYY-MM-DD) in the table itself, in the two blocks of text
before it (its caption, and the command block a caption often precedes) or in the paragraph
after it. Tables of flags, rules and constants hold none of these and are not checked. Prose
numbers are not checked here: too many of them are settings, not measurements."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURED = re.compile(r"\d(?:[\d.,]*\d)?\s?(?:s|min|GB|MB|x)(?![\w/])|\b0\.\d{3}\b")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def tables(lines: list[str]) -> list[tuple[int, int]]:
    """(first, end) line indices of each Markdown table (consecutive lines starting with |)."""
    found, i = [], 0
    while i < len(lines):
        if lines[i].startswith("|"):
            end = i
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            found.append((i, end))
            i = end
        else:
            i += 1
    return found


def blocks_around(lines: list[str], start: int, step: int, count: int) -> str:
    """The text of `count` blank-line-separated blocks from `start` on, going by `step`;
    another table ends the search."""
    taken, k = [], start
    for _ in range(count):
        while 0 <= k < len(lines) and not lines[k].strip():
            k += step
        while 0 <= k < len(lines) and lines[k].strip() and not lines[k].startswith("|"):
            taken.append(lines[k])
            k += step
    return " ".join(taken)


def undated_tables(text: str) -> list[str]:
    lines = text.splitlines()
    missing = []
    for first, end in tables(lines):
        table = "\n".join(lines[first:end])
        if not MEASURED.search(table):
            continue
        context = " ".join([blocks_around(lines, first - 1, -1, 2), table,
                            blocks_around(lines, end, 1, 1)])
        if not DATE.search(context):
            missing.append(f"README.md:{first + 1}: {lines[first][:80]}")
    return missing


def test_every_table_of_measurements_in_readme_is_dated():
    assert undated_tables((ROOT / "README.md").read_text(encoding="utf-8")) == []


def test_the_check_finds_an_undated_table_and_skips_tables_of_settings():
    text = "\n".join([
        "Some run:", "", "| candidate | accuracy | wall |", "|---|---|---|",
        "| knn | 0.975 | 12 s |", "", "Flags:", "", "| flag | default |", "|---|---|",
        "| `--timeout S` | 1800 |", "", "Measured on 2026-12-03 with `tunewise bench ...`:", "",
        "| candidate | peak |", "|---|---|", "| lora | 4.35 GB |", ""])
    assert undated_tables(text) == ["README.md:3: | candidate | accuracy | wall |"]
