"""The report in a real browser: headless Chromium loads it with no console message (no script
error, no CSP violation, no blocked injected code), our sorting script runs, and the screenshot
is a real picture (a PNG of many colours, not a blank page).

CI installs Debian's chromium through .ci/run; without it these tests skip and say why.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from reports.html import write_report

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "records"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                       "(apt-get install -y chromium; CI does this in .ci/run)"),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """Every page console line Chromium logged (errors, warnings, CSP violations)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def png_pixels(data: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct pixel colours of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks = 8, {}
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        chunks.setdefault(kind, []).append(data[position + 8:position + 8 + length])
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, "unexpected PNG format"
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride, previous, colours = width * channels, bytearray(width * channels), set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):  # undo the PNG row filter
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        if row % 8 == 0:  # sampling every 8th row is plenty to tell a blank page from a report
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, colours


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    paths = {}
    for name in ("classification_run", "payload_run"):
        shutil.copytree(FIXTURES / name, folder / name)
        paths[name] = write_report(folder / name)
    return paths


@pytest.mark.parametrize("fixture", ["classification_run", "payload_run"])
def test_report_loads_without_console_messages_and_draws(reports, tmp_path, fixture):
    shot = tmp_path / "report.png"
    result = chromium(tmp_path, "--window-size=1280,1600", f"--screenshot={shot}", reports[fixture].as_uri())
    assert shot.exists(), f"no screenshot; chromium said:\n{result.stderr[-2000:]}"
    assert console_messages(result.stderr) == []
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 1600)
    assert len(colours) > 20, "the screenshot is (nearly) a single colour"


def test_the_sorting_script_runs_under_the_content_security_policy(reports, tmp_path):
    result = chromium(tmp_path, "--dump-dom", reports["classification_run"].as_uri())
    assert console_messages(result.stderr) == []
    table = re.search(r'<table class="sortable results".*?</thead>', result.stdout, re.S)
    assert table, "the results table is missing from the rendered DOM"
    # Our script makes every header focusable; if the CSP had blocked it, none would be.
    assert table.group(0).count('tabindex="0"') >= 10
