"""What the harness itself costs around a candidate (issue 16.7): the parent's memory sampling
looks for the child's children once a second, not at every poll, and scoring a record imports no
sklearn."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import psutil

from bench.launch import RssSampler


class FakeProcess:
    """A psutil.Process stand-in: a fixed RSS, children that can appear, calls counted."""

    def __init__(self, rss_mb: float, children=()) -> None:
        self.rss = int(rss_mb * 2**20)
        self.kids = list(children)
        self.children_calls = 0
        self.gone = False

    def memory_info(self):
        if self.gone:
            raise psutil.NoSuchProcess(0)
        return SimpleNamespace(rss=self.rss)

    def children(self, recursive=False):
        self.children_calls += 1
        return list(self.kids)


def test_the_childs_rss_every_sample_its_children_once_per_interval():
    child = FakeProcess(100)
    sample = RssSampler(child, interval_s=3600)
    assert sample() == 100 and child.children_calls == 1  # looked at once, at the start
    child.rss = int(150 * 2**20)
    child.kids.append(FakeProcess(40))
    assert [sample() for _ in range(5)] == [150] * 5  # own RSS read each time, no new lookups
    assert child.children_calls == 1


def test_children_are_counted_once_looked_up_and_a_gone_one_is_skipped():
    rank = FakeProcess(40)
    child = FakeProcess(100, [rank])
    sample = RssSampler(child, interval_s=0.0)  # look every time
    assert sample() == 140
    rank.gone = True
    assert sample() == 100
    child.gone = True
    assert sample() == 0.0


def test_scoring_a_classification_record_does_not_import_sklearn():
    """Importing sklearn (and scipy with it) cost the parent ~0.9 s of CPU after every run, for
    figures numpy computes from the confusion matrix (tests/test_metrics.py checks they agree)."""
    import subprocess
    import sys

    code = ("import sys; from bench import metrics; "
            "metrics.score('classification', ['a', 'b', 'b'], ['a', 'a', 'b'], labels=['a', 'b']); "
            "metrics.per_class_scores([['a', 'b', 'b']], ['a', 'a', 'b'], labels=['a', 'b']); "
            "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))")
    root = Path(__file__).resolve().parent.parent  # this checkout's bench, not an installed one
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "[]"
