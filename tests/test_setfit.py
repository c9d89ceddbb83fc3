"""`setfit`: contrastive fine-tuning of the encoder + logistic regression (setfit package).

Plumbing on the tiny random BERT (seconds); quality on the real MiniLM and the bundled banking
sample only in the `integration` test.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from strategies import registry
from strategies.base import StrategyError, TaskSplit
from tests.conftest import make_context, tiny_split

# A few steps are enough to exercise both SetFit phases on the tiny encoder.
TINY = {"num_iterations": 2, "batch_size": 4, "max_steps": 3}


def run_setfit(ctx, **overrides):
    spec = registry.get("setfit")
    return spec.run(ctx, spec.make_config("quick", {**TINY, **overrides}))


def test_setfit_predicts_labels_announces_phases_and_saves_a_loadable_model(tmp_path):
    from setfit import SetFitModel

    split = tiny_split("classification")
    ctx = make_context("classification", tmp_path / "setfit", split=split)
    phases, progress = [], []
    ctx.on_phase, ctx.on_progress = phases.append, progress.append

    output = run_setfit(ctx)

    assert phases == ["load", "adapt", "save", "predict"]
    assert len(output.predictions) == len(split.test)
    assert set(output.predictions) <= set(split.labels)
    adapt_steps = [p.step for p in progress if p.phase == "adapt"]
    assert adapt_steps == [1, 2, 3], "one progress report per optimizer step"
    assert output.info["steps"] == 3
    assert output.info["pairs_seen"] == 3 * TINY["batch_size"]
    # the whole encoder trains, and the head's weights on top of it
    assert output.trainable_params == output.total_params > 0
    assert output.train_tokens > 0 and output.predict_tokens > 0
    assert 0.0 <= output.info["validation_accuracy"] <= 1.0

    saved = SetFitModel.from_pretrained(output.artifact_path, local_files_only=True)
    texts = [row["text"] for row in split.test]
    assert [str(p) for p in saved.predict(texts, show_progress_bar=False)] == output.predictions
    assert saved.model_body.max_seq_length == 64  # the quick preset's max_length, kept on disk
    assert not (ctx.work_dir / "checkpoints").exists()


def test_setfit_moves_the_encoder(tmp_path):
    """The contrastive phase changes the body: its embeddings differ from the untouched one."""
    from bench.models import load_model
    from setfit import SetFitModel

    split = tiny_split("classification")
    output = run_setfit(make_context("classification", tmp_path, split=split))
    texts = [row["text"] for row in split.test]
    before = load_model("tiny-bert", "sentence-encoder")[0].encode(texts)
    after = SetFitModel.from_pretrained(output.artifact_path, local_files_only=True) \
        .model_body.encode(texts)
    assert not np.allclose(before, after, atol=1e-4)


def test_setfit_is_seeded(tmp_path):
    split = tiny_split("classification")
    first = run_setfit(make_context("classification", tmp_path / "a", split=split, seed=3))
    second = run_setfit(make_context("classification", tmp_path / "b", split=split, seed=3))
    assert first.predictions == second.predictions
    assert first.info == second.info


def test_setfit_refuses_bad_options_and_single_label_data(tmp_path):
    spec = registry.get("setfit")
    for bad in ({"max_steps": 0}, {"batch_size": 0}, {"learning_rate": 0},
                {"num_iterations": 0}):
        with pytest.raises(StrategyError):
            spec.make_config("quick", bad)
    rows = [{"text": f"text {i}", "label": "only"} for i in range(4)]
    split = TaskSplit("classification", train=rows, validation=[], test=rows[:1],
                      labels=["only", "other"])
    with pytest.raises(StrategyError, match="at least two labels"):
        run_setfit(make_context("classification", tmp_path, split=split))


def test_full_preset_trains_longer_than_quick():
    spec = registry.get("setfit")
    quick, full = spec.make_config("quick"), spec.make_config("full")
    assert quick.max_steps > 0 and full.max_steps == -1  # quick is capped, full is not
    assert full.num_iterations > quick.num_iterations


# --------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_setfit_beats_majority_on_banking_with_minilm(tmp_path):
    from bench.data import SAMPLES, load_task_data
    from sklearn.metrics import accuracy_score

    split = load_task_data(SAMPLES["classification"]).split
    gold = [row["label"] for row in split.test]
    majority = max(gold.count(label) for label in set(gold)) / len(gold)
    ctx = make_context("classification", tmp_path, encoder_name="minilm-l6", split=split)
    spec = registry.get("setfit")
    started = time.perf_counter()
    output = spec.run(ctx, spec.make_config("quick"))
    seconds = time.perf_counter() - started
    accuracy = accuracy_score(gold, output.predictions)
    print(f"setfit on banking_support (quick, minilm-l6): accuracy {accuracy:.3f} "
          f"(majority {majority:.3f}), {output.info['steps']} steps, {seconds:.0f} s")
    assert accuracy > majority + 0.2
