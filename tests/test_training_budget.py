"""Training budgets from the data and the clock, and early stopping on a validation score that
tracks the metric (issue 15, item 8 a-b). Pure functions first, then the tiny random Llama."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from strategies import catalogue, registry
from strategies.base import make_config
from strategies.training_budget import (RUNG_MIN_STEPS, RungShare, auto_eval_every,
                                        continuing_budget,
                                        fit_to_time, median_length_batch, plan_steps, rung_share,
                                        total_optimizer_steps)
from strategies.training_config import TrainingConfig
from strategies.training_select import (EarlyStopping, ValidationScore, label_choice_score,
                                        selection_mode, validation_sample)
from tests.conftest import make_context, tiny_split


def _config(**values):
    return make_config(TrainingConfig, "quick", values)


# ------------------------------------------------------------------------------ budget


def test_the_budget_is_passes_over_the_train_split():
    budget = plan_steps(400, _config(epochs=3, min_steps=0, batch_size=8))
    assert (budget.steps_per_epoch, budget.steps, budget.limited_by) == (50, 150, "epochs")
    assert budget.epochs == 3.0
    # grad_accum counts: an optimizer step takes batch_size * grad_accum rows
    assert plan_steps(400, _config(epochs=1, min_steps=0, grad_accum=2)).steps == 25


def test_a_small_train_split_gets_more_passes_up_to_min_steps():
    budget = plan_steps(40, _config(epochs=2, min_steps=40, batch_size=8))
    assert (budget.wanted_steps, budget.steps, budget.limited_by) == (40, 40, "min_steps")
    assert budget.epochs == 8.0


def test_max_steps_caps_the_budget():
    budget = plan_steps(400, _config(epochs=3, max_steps=30))
    assert (budget.wanted_steps, budget.steps, budget.limited_by) == (150, 30, "max_steps")


def test_a_race_rung_gets_its_share_of_the_full_runs_steps_and_time():
    """A rung on 27 of 108 rows (squad_mini's split): planned on its own rows, min_steps (40)
    gave it about the full run's 42 steps; as a share of the full run it gets a quarter."""
    config = _config()  # quick: 3 epochs, min_steps 40, batch 8, 300 s
    full = plan_steps(108, config)
    assert (full.steps, full.limited_by) == (42, "epochs")
    assert plan_steps(27, config).steps == 40  # on its own rows: the floor, a full run's cost
    rung = plan_steps(27, config, RungShare(0.25, 108))
    assert rung.steps == round(42 / 4) == 10 and rung.limited_by == "rung"
    assert (rung.rung_fraction, rung.full_run_steps) == (0.25, 42)
    assert rung.time_budget_s == 75.0 and RungShare(0.25, 108).scaled(config).time_budget_s == 75
    assert rung.steps_per_epoch == 4 and rung.epochs == 2.5  # passes over its own 27 rows
    assert rung.info()["rung_fraction"] == 0.25 and rung.info()["limited_by"] == "rung"
    assert "rung_fraction" not in full.info()  # a full run's record says nothing of rungs
    assert total_optimizer_steps(27, config, RungShare(0.25, 108)) == 10  # AdaLoRA's schedule
    # half the rows, half the steps; a capped full run is shared from its cap
    assert plan_steps(54, config, RungShare(0.5, 108)).steps == 21
    capped = _config(max_steps=30)
    assert plan_steps(54, capped, RungShare(0.5, 108)).steps == 15


def test_a_rung_trains_at_least_the_floor_and_never_more_than_the_full_run():
    config = _config()
    tiny = plan_steps(5, config, RungShare(5 / 108, 108))  # 2 of 42 steps: raised to the floor
    assert tiny.steps == RUNG_MIN_STEPS == 8
    short = _config(epochs=1, min_steps=0)  # the full split of 10 rows takes 2 steps
    assert plan_steps(10, short).steps == 2
    assert plan_steps(5, short, RungShare(0.5, 10)).steps == 2  # not the floor's 8
    # the time bound is scaled; no bound stays no bound
    assert RungShare(0.1, 100).scaled(_config(time_budget_s=0)).time_budget_s == 0


def test_only_a_share_below_the_whole_split_is_a_rung():
    assert rung_share(0.25, 108, 27) == RungShare(0.25, 108)
    assert rung_share(None, 108, 27) is None and rung_share(1.0, 108, 108) is None
    assert rung_share(0.25, None, 27) is None  # the full split unknown: its own budget


def test_the_time_bound_cuts_the_steps_to_what_fits():
    config = _config(epochs=3, min_steps=0, time_budget_s=100.0, eval_every=10)
    budget = plan_steps(400, config)  # 150 steps wanted
    # 1 s a step (+10% optimizer), a 2 s validation every 10 steps -> 1.3 s a step
    fitted = fit_to_time(budget, config, step_s=1.0, eval_s=2.0, spent_s=9.0)
    assert fitted.steps == math.floor((100.0 - 9.0) / 1.3) == 70
    assert fitted.limited_by == "time_budget" and fitted.step_s == 1.0 and fitted.eval_s == 2.0
    # when everything fits, nothing is cut; no budget = no bound
    assert fit_to_time(budget, config, step_s=0.01, eval_s=0.1).steps == 150
    unbounded = dataclasses.replace(config, time_budget_s=0.0)
    assert fit_to_time(budget, unbounded, step_s=100.0, eval_s=None).steps == 150
    # at least one step, even when nothing fits
    assert fit_to_time(budget, config, step_s=1000.0, eval_s=None).steps == 1


def test_auto_validation_spacing():
    assert auto_eval_every(150) == 15  # ~10 validations
    assert auto_eval_every(30) == 5  # never closer than 5 steps
    assert auto_eval_every(3) == 3  # a short run is validated at its end
    assert plan_steps(400, _config(epochs=3, min_steps=0)).eval_every == 15
    assert plan_steps(400, _config(epochs=3, eval_every=7)).eval_every == 7  # as told


def test_a_dear_validation_is_spaced_out_under_auto():
    config = _config(epochs=3, min_steps=0, time_budget_s=0.0, eval_every=0)  # auto
    budget = plan_steps(400, config)  # 150 steps, auto spacing 15
    # a validation costing 10 steps' time (1.1 s each): 40 steps apart keeps validating
    # under a quarter of the time
    assert fit_to_time(budget, config, step_s=1.0, eval_s=11.0).eval_every == 40
    assert fit_to_time(budget, config, step_s=1.0, eval_s=1000.0).eval_every == 150  # at the end
    assert fit_to_time(budget, config, step_s=1.0, eval_s=2.2).eval_every == 15  # cheap: auto
    explicit = dataclasses.replace(config, eval_every=10)
    assert fit_to_time(budget, explicit, step_s=1.0, eval_s=44.0).eval_every == 10  # as told


def test_the_step_is_timed_on_a_median_length_batch():
    encoded = [{"input_ids": [1] * n, "labels": [1] * n} for n in (5, 1, 9, 3, 7, 2, 8)]
    batch = median_length_batch(encoded, 3)
    assert sorted(len(e["input_ids"]) for e in batch) == [3, 5, 7]


def test_the_presets_budget_by_epochs_and_the_quick_one_by_time():
    quick = registry.get("lora").make_config("quick")
    full = registry.get("lora").make_config("full")
    assert quick.epochs >= 2 and 0 < quick.time_budget_s <= 600
    # the quick step cap is a bound for fast machines, not the budget: 3 passes over a few
    # hundred rows fit under it
    assert quick.max_steps >= 3 * 400 / quick.batch_size
    assert full.time_budget_s == 0 and full.max_steps == -1 and full.epochs >= quick.epochs


@pytest.mark.parametrize("bad", [{"eval_every": -1}, {"time_budget_s": -1}, {"min_steps": -1},
                                 {"max_eval_rows": 0}, {"select_by": "f1"}])
def test_bad_budget_settings_are_clean_errors(bad):
    from strategies.base import StrategyError

    with pytest.raises(StrategyError):
        registry.get("lora").make_config("quick", bad)


# ------------------------------------------------------------------------------ selection


def test_label_choice_score_is_accuracy_and_the_per_class_right_label_loglik():
    # two labels; rows 0-2 are class 0, row 3 is class 1
    scores = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]]))
    score = label_choice_score(scores, [0, 0, 0, 1])
    assert score.accuracy == 0.75
    class0 = np.mean(np.log([0.9, 0.6, 0.2]))
    expected = (class0 + np.log(0.7)) / 2  # per class, then over classes
    assert score.label_loglik == pytest.approx(expected)
    assert score.loss == pytest.approx(-expected)


def test_ties_in_accuracy_are_broken_by_the_label_loglik_and_exact_ties_are_no_progress():
    stopping = EarlyStopping(patience=2, min_steps=0)
    assert stopping.observe(10, 0.5, ValidationScore(loss=1.0, accuracy=0.5, label_loglik=-1.0))
    # same accuracy, the right labels more likely: progress (resets patience)
    assert stopping.observe(20, 1.0, ValidationScore(loss=0.9, accuracy=0.5, label_loglik=-0.9))
    # exactly the same score: no progress
    assert not stopping.observe(30, 1.5, ValidationScore(loss=0.9, accuracy=0.5,
                                                         label_loglik=-0.9))
    # a lower loglik but a higher accuracy: progress (accuracy is the metric)
    assert stopping.observe(40, 2.0, ValidationScore(loss=1.2, accuracy=0.6, label_loglik=-1.2))
    assert stopping.best_step == 40


def test_patience_never_stops_before_min_steps():
    stopping = EarlyStopping(patience=1, min_steps=50)
    stopping.observe(10, 0.1, ValidationScore(loss=0.5))
    stopping.observe(20, 0.2, ValidationScore(loss=0.7))  # worse: patience used up...
    assert not stopping.should_stop(20)  # ...but min_steps are not done
    stopping.observe(50, 0.5, ValidationScore(loss=0.8))
    assert stopping.should_stop(50)
    assert EarlyStopping(patience=0, min_steps=0).should_stop(10) is False  # 0 = never


def test_classification_selects_by_label_accuracy_unless_told():
    split = tiny_split("classification")
    assert selection_mode(split, _config()) == "label_accuracy"
    assert selection_mode(split, _config(select_by="loss")) == "loss"
    assert selection_mode(tiny_split("generation"), _config()) == "loss"


def test_a_large_validation_split_is_sampled_with_its_seed():
    rows = [{"i": i} for i in range(1000)]
    sample = validation_sample(rows, 100, seed=3)
    assert len(sample) == 100 and sample == validation_sample(rows, 100, seed=3)
    assert [r["i"] for r in sample] == sorted(r["i"] for r in sample)  # the split's order kept
    assert validation_sample(rows, -1, seed=3) == rows


# ------------------------------------------------------------------------------ tiny model


def test_a_run_records_its_budget_its_best_step_and_where_it_stopped(tmp_path):
    ctx = make_context("classification", tmp_path / "c")
    spec = registry.get("lora")
    config = spec.make_config("quick", {"epochs": 1, "min_steps": 4, "eval_every": 2,
                                        "patience": 0, "batch_size": 4})
    output = spec.run(ctx, config)
    info = output.info
    assert info["budget"]["limited_by"] == "min_steps" and info["budget"]["steps"] == 4
    assert info["budget"]["step_s"] > 0  # the quick preset's time bound measured a step
    assert info["stopped_at"] == info["steps"] == 4 and info["stop_reason"] == "budget"
    assert [p["step"] for p in info["val_curve"]] == [2, 4]
    assert all("accuracy" in p and "label_loglik" in p for p in info["val_curve"])
    assert info["best_step"] in (2, 4) and info["selected_by"] == "label_accuracy"
    assert info["best_val_score"]["accuracy"] == max(p["accuracy"] for p in info["val_curve"])


def test_a_race_rung_trains_its_share_and_says_so(tmp_path):
    """The harness hands a rung job's fraction and the full split's size to the strategy
    (RunContext.budget_fraction / full_train_rows, bench.child); run_finetune trains that share
    of the full run's steps under that share of its time bound, and the record says why."""
    ctx = dataclasses.replace(make_context("classification", tmp_path / "c"),
                              budget_fraction=0.25, full_train_rows=160)
    spec = registry.get("lora")
    config = spec.make_config("quick", {"epochs": 2, "min_steps": 0, "batch_size": 4,
                                        "patience": 0})
    output = spec.run(ctx, config)
    budget = output.info["budget"]
    # the full split: 160 rows / 4 a step x 2 epochs = 80 steps; a quarter of them
    assert (budget["full_run_steps"], budget["steps"]) == (80, 20)
    assert budget["limited_by"] == "rung" and budget["rung_fraction"] == 0.25
    assert budget["time_budget_s"] == 75.0  # a quarter of the quick preset's 300 s
    assert output.info["steps"] == 20 and output.info["stop_reason"] == "budget"
    # scored once, by the race, on the validation split at its end: never inside the rung
    assert output.info["val_curve"] == [] and output.info["selected_by"] is None
    assert budget["eval_s"] is None  # nor timed for a time bound that has none to count


def test_a_tiny_time_budget_cuts_training_and_says_so(tmp_path):
    ctx = make_context("classification", tmp_path / "c")
    spec = registry.get("lora")
    output = spec.run(ctx, spec.make_config("quick", {"epochs": 5, "time_budget_s": 1e-4,
                                                      "batch_size": 4}))
    assert output.info["budget"]["limited_by"] == "time_budget"
    assert output.info["steps"] == output.info["budget"]["steps"] == 1


def test_early_stopping_by_label_accuracy_stops_a_run_that_does_not_improve(tmp_path):
    """A zero learning rate never changes the weights: every validation ties the first, so
    patience runs out as soon as min_steps are done."""
    ctx = make_context("classification", tmp_path / "c")
    spec = registry.get("lora")
    output = spec.run(ctx, spec.make_config("quick", {
        "learning_rate": 1e-12, "epochs": 20, "min_steps": 6, "eval_every": 2, "patience": 2,
        "batch_size": 4, "time_budget_s": 0}))
    info = output.info
    assert info["stopped_early"] and info["stop_reason"] == "patience"
    assert info["stopped_at"] == 6 < info["budget"]["steps"] and info["best_step"] == 2


def test_generation_keeps_the_validation_loss(tmp_path):
    ctx = make_context("generation", tmp_path / "g")
    spec = registry.get("lora")
    output = spec.run(ctx, spec.make_config("quick", {"max_steps": 2, "eval_every": 1,
                                                      "max_new_tokens": 2}))
    assert output.info["selected_by"] == "loss"
    assert [p["step"] for p in output.info["val_curve"]] == [1, 2]
    assert all("accuracy" not in p for p in output.info["val_curve"])


# ------------------------------------------------------------------------------ continuing


def test_a_continuing_budget_trains_its_increment_of_the_full_schedule():
    config = _config(epochs=2, min_steps=0, batch_size=4, time_budget_s=100)
    full = plan_steps(160, config)  # 80 steps
    first = continuing_budget(full, 0.25, 0, 40, config)
    assert (first.schedule_steps, first.steps, first.resumed_from_step) == (80, 20, 0)
    assert first.limited_by == "rung" and first.time_budget_s == 25.0
    second = continuing_budget(full, 0.5, 20, 80, config)
    assert second.steps == 40 and second.time_budget_s == 25.0  # 20 more steps of 80
    final = continuing_budget(full, None, 40, 160, config)
    assert (final.steps, final.limited_by, final.time_budget_s) == (80, "continued", 50.0)
    assert final.info()["schedule_steps"] == 80 and "rung_fraction" not in final.info()
    # a rung already past its share (RUNG_MIN_STEPS) still takes one step; none past the end
    assert continuing_budget(full, 0.1, 9, 16, config).steps == 10
    assert continuing_budget(full, None, 80, 160, config).time_budget_s == 0.0
    # the measuring that planned the whole schedule is paid on top of rung 0's share: its
    # training time (the bound less the measuring, what the time guard counts) is a quarter of
    # the full run's after the measuring, not a quarter of the bound less all of the measuring
    fitted = dataclasses.replace(full, fitting_s=20.0)
    first = continuing_budget(fitted, 0.25, 0, 40, config)
    assert first.time_budget_s - first.fitting_s == pytest.approx((100 - 20) * 0.25)
    assert continuing_budget(fitted, 0.25, 0, 40, _config(epochs=2, min_steps=0, batch_size=4,
                                                          time_budget_s=0)).time_budget_s == 0
    assert "schedule_steps" not in full.info()  # a plain run says nothing of continuing


def test_a_rung_saves_a_checkpoint_the_next_rung_and_the_final_continue(tmp_path):
    """Rung 0 trains afresh on a quarter of the full run's schedule and leaves a checkpoint;
    rung 1 resumes it (the same schedule, the optimizer and the step count carried) and trains
    to half; the final resumes rung 1 and trains to the end of the schedule. Each job trains
    only its increment, and the weights carry over: rung 1 starts from rung 0's."""
    spec = registry.get("lora")
    config = spec.make_config("quick", {"epochs": 2, "min_steps": 0, "batch_size": 4,
                                        "patience": 0, "time_budget_s": 0})

    def job(name, fraction, resume_from=None, save=True):
        ctx = dataclasses.replace(make_context("classification", tmp_path / name),
                                  budget_fraction=fraction or 1.0, full_train_rows=160,
                                  resume_from=resume_from, save_checkpoint=save)
        return spec.run(ctx, config).info

    rung0 = job("r0", 0.25)
    assert rung0["budget"]["schedule_steps"] == 80 and rung0["steps"] == 20
    assert rung0["val_curve"] == []  # a rung is scored at its end, by the race
    assert rung0["budget"]["resumed_from_step"] == 0
    assert (tmp_path / "r0" / "trainer" / "checkpoint-20" / "optimizer.pt").is_file()
    rung1 = job("r1", 0.5, resume_from=str(tmp_path / "r0"))
    assert rung1["budget"]["resumed_from_step"] == 20 and rung1["steps"] == 40
    assert rung1["budget"]["schedule_steps"] == 80
    assert [p["step"] for p in rung1["train_curve"]][0] == 21  # it went on from step 20
    final = job("final", None, resume_from=str(tmp_path / "r1"), save=False)
    assert final["steps"] == 80 and final["budget"]["limited_by"] == "continued"
    assert final["val_curve"] and final["selected_by"] == "label_accuracy"  # the final validates
    assert not list((tmp_path / "final").glob("trainer/checkpoint-*"))  # the final keeps none


def test_continuing_without_a_checkpoint_is_a_clear_error(tmp_path):
    from strategies.base import StrategyError

    spec = registry.get("lora")
    ctx = dataclasses.replace(make_context("classification", tmp_path / "c"),
                              budget_fraction=0.5, full_train_rows=160,
                              resume_from=str(tmp_path / "nowhere"))
    with pytest.raises(StrategyError, match="no training checkpoint"):
        spec.run(ctx, spec.make_config("quick", {}))


RESUMABLE = [name for name in catalogue.with_trait("resumable") if name != "qlora"]  # NF4: CUDA


@pytest.mark.parametrize("strategy", RESUMABLE)
def test_every_resumable_method_continues_its_rung(tmp_path, strategy):
    """Each method the catalogue marks resumable saves a rung's checkpoint and its final
    resumes it: full and freeze (whole weights), every PEFT adapter (peft's own files)."""
    spec = registry.get(strategy)
    config = spec.make_config("quick", {"epochs": 2, "min_steps": 0, "batch_size": 4,
                                        "patience": 0, "time_budget_s": 0})
    base = make_context("classification", tmp_path / "r0")
    rung = spec.run(dataclasses.replace(base, budget_fraction=0.5, full_train_rows=32,
                                        save_checkpoint=True), config).info
    assert (rung["steps"], rung["budget"]["schedule_steps"]) == (8, 16)
    final = spec.run(dataclasses.replace(make_context("classification", tmp_path / "f"),
                                         full_train_rows=32, resume_from=str(tmp_path / "r0")),
                     config).info
    assert final["budget"]["resumed_from_step"] == 8 and final["steps"] == 16


def test_a_final_whose_rung_reached_the_end_of_the_schedule_takes_no_step(tmp_path):
    """RUNG_MIN_STEPS can carry a rung to the end of a short schedule: the final resumes it and
    has nothing left to train; its weights are the rung's."""
    spec = registry.get("lora")
    config = spec.make_config("quick", {"epochs": 1, "min_steps": 0, "batch_size": 4,
                                        "patience": 0, "time_budget_s": 0})
    base = make_context("classification", tmp_path / "r0")
    rung = spec.run(dataclasses.replace(base, budget_fraction=0.5, full_train_rows=32,
                                        save_checkpoint=True), config).info
    assert rung["steps"] == RUNG_MIN_STEPS == rung["budget"]["schedule_steps"]
    final = spec.run(dataclasses.replace(make_context("classification", tmp_path / "f"),
                                         full_train_rows=32, resume_from=str(tmp_path / "r0")),
                     config).info
    assert final["steps"] == RUNG_MIN_STEPS and final["budget"]["time_budget_s"] == 0.0
    from safetensors.torch import load_file

    resumed = load_file(tmp_path / "r0" / "trainer" / "checkpoint-8" / "adapter_model.safetensors")
    saved = load_file(tmp_path / "f" / "adapter" / "adapter_model.safetensors")
    assert resumed.keys() == saved.keys()
    assert all(np.array_equal(resumed[k].numpy(), saved[k].numpy()) for k in resumed)


@pytest.mark.parametrize("task", ["classification", "generation"])
def test_the_final_validates_the_weights_it_resumes_and_stops_early_from_them(tmp_path, task):
    """A learning rate of ~0 leaves the weights as the rung left them: the final's validation
    of the resumed step is never beaten, so early stopping (patience 2, every 2 steps) ends it
    two validations later, at step 20, keeping the rung's weights, where counting from the
    final's own first validation (step 18) it would have run to step 22."""
    spec = registry.get("lora")
    config = spec.make_config("quick", {
        "epochs": 4, "min_steps": 0, "batch_size": 4, "patience": 2, "eval_every": 2,
        "time_budget_s": 0, "learning_rate": 1e-12, "max_new_tokens": 2})
    rung = spec.run(dataclasses.replace(make_context(task, tmp_path / "r0"),
                                        budget_fraction=0.5, full_train_rows=32,
                                        save_checkpoint=True), config).info
    assert (rung["steps"], rung["budget"]["schedule_steps"], rung["val_curve"]) == (16, 32, [])
    final = spec.run(dataclasses.replace(make_context(task, tmp_path / "f"),
                                         full_train_rows=32, resume_from=str(tmp_path / "r0")),
                     config).info
    assert [p["step"] for p in final["val_curve"]] == [16, 18, 20]
    assert final["best_step"] == 16 and final["stop_reason"] == "patience"
    assert final["stopped_at"] == 20
