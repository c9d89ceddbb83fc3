"""Integration (issue 15, item 8): on a closed label set with opaque labels, LoRA under the
quick preset's budget learns the task and clearly beats zero-shot, through the harness, on one
split. The set is benchmarks/opaque_labels.py's (6 BANKING77 intents renamed to four-letter
codes); it needs the public BANKING77 file beside the project (skipped without it).

Minutes of real training on 2 CPU cores: marked slow. The quick preset's time bound is lifted
(`time_budget_s=0`) so a busy test machine does not cut the training it means to check; the
budget is then its 3 passes over the train split. Measured 2026-12-03 on a busy 2-core CPU
(README "Opaque labels, measured"): zero-shot 0.167 (collapsed), lora 0.700, 41 minutes."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_DATA

BANKING77 = SHARED_DATA / "banking77" / "train.jsonl"


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not BANKING77.exists(), reason="needs the public BANKING77 train file")
def test_lora_quick_beats_zero_shot_on_opaque_labels(tmp_path):
    from benchmarks.opaque_labels import build_dataset, run

    data = build_dataset(BANKING77, tmp_path / "data", rows_per_class=50)
    records = {r["strategy"]: r for r in run(data, ["zero-shot", "lora"], str(tmp_path / "runs"),
                                             sets={"lora": {"time_budget_s": "0"}})}
    zero_shot = records["zero-shot"]["metrics"]["accuracy"]
    lora = records["lora"]
    assert lora["status"] == "ok"
    assert lora["metrics"]["accuracy"] >= zero_shot + 0.2, (lora["metrics"], zero_shot)
    assert lora.get("degenerate") is not True
    assert lora["info"]["selected_by"] == "label_accuracy" and lora["info"]["best_step"]
