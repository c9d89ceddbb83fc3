"""Which loggers the Hugging Face Trainers report to: `report_to=report_to()` in every
TrainingArguments a strategy builds.

The harness (bench.tracking) sets TUNEWISE_REPORT_TO in the candidate's process from
`--report-to`, with the folders the Trainers' callbacks log to; unset, nothing is reported.
Strategies sit below bench in the layering, so the variable's name is repeated here
(tests/test_tracking.py checks the two agree).
"""

from __future__ import annotations

import os

REPORT_TO_ENV = "TUNEWISE_REPORT_TO"


def report_to() -> str:
    """"none", "tensorboard" or "mlflow" (transformers' own names)."""
    return os.environ.get(REPORT_TO_ENV) or "none"
