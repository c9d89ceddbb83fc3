"""Cross-validated accuracy on the train rows, for the cheap encoder candidates (knn, transfer).

A validation split of a few dozen rows cannot tell 0.96 from 0.85 (UCI sentiment sentences:
knn 0.875 on 24 validation rows, 0.762 on 80 test rows); the train rows can. When asked
(`cv_folds` > 0 in the strategy's config; the advisor's probes ask), knn predicts each train row
from its k nearest OTHER train rows (leave-one-out) and transfer each row from a head fitted on
the other folds (stratified k-fold), both on the embeddings the strategy computed anyway, and
the record's info carries

    info["cv"] = {"metric": "accuracy", "rows": 216, "correct": 190, "method": "leave-one-out"}

At most CV_MAX_ROWS train rows (a seeded sample) are predicted, so large data stays cheap.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

# Train rows predicted at most: a 95% interval on 2000 rows is about ±2 points, below what the
# probes need, and leave-one-out / 5 head fits on 2000 rows take seconds.
CV_MAX_ROWS = 2000


def cv_positions(rows: int, seed: int, cap: int = CV_MAX_ROWS) -> list[int]:
    """The train positions that are predicted: all of them, or a seeded sample of `cap`."""
    if rows <= cap:
        return list(range(rows))
    return sorted(random.Random(seed).sample(range(rows), cap))


def cv_info(predictions: Sequence[str], gold: Sequence[str], method: str) -> dict[str, Any]:
    """What the record's info.cv says: accuracy's parts, so that a reader can pool them with
    other rows (advisor.probes pools them with the validation rows)."""
    correct = sum(str(p) == str(g) for p, g in zip(predictions, gold, strict=True))
    return {"metric": "accuracy", "rows": len(gold), "correct": int(correct), "method": method}
