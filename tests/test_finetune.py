"""Fine-tuning candidates on the tiny random Llama: learning, saving, reloading, counting,
exporting, and the user errors. (The conformance matrix runs each one end to end as well.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from strategies import registry
from strategies.base import StrategyError, StrategySkipped
from strategies.training import (
    ARTIFACT_MANIFEST,
    TrainPlan,
    count_parameters,
    encode_example,
    encode_rows,
    load_artifact,
    save_artifact,
    target_loss,
    train,
)
from tests.conftest import make_context, tiny_split

FINETUNE = ["full", "freeze", "lora", "qlora", "dora", "prompt-tuning", "prefix-tuning", "ia3",
            "loha", "adalora"]
# A few steps on the fixed tiny batch, no validation-driven stopping.
FAST = {"max_steps": 6, "batch_size": 8, "eval_every": 0, "patience": 0, "epochs": 10}


def _tiny_model(quantization=None):
    from bench.models import load_model

    return load_model("tiny-llama", "causal-lm", quantization=quantization)


def _module_of(name):
    import importlib

    return importlib.import_module(registry.target_of(name).split(":")[0])


def _build(name, config, quantization=None):
    model, tokenizer = _tiny_model(quantization)
    plan = TrainPlan(total_steps=config.max_steps, device="cpu", seed=0, train_rows=8)
    model, _ = _module_of(name).build(model, config, plan)
    return model, tokenizer


def _quantization(name):
    return "nf4" if name == "qlora" else None


# ------------------------------------------------------------------------------------ data


def test_encoding_trains_on_the_target_and_its_eos_only():
    _, tokenizer = _tiny_model()
    split = tiny_split("classification")
    row = split.train[0]
    encoded = encode_example(tokenizer, split, row, max_length=256)
    target = tokenizer(row["label"], add_special_tokens=False)["input_ids"]
    trained = [t for t in encoded["labels"] if t != -100]
    # The label tokens, then EOS — which for SmolLM2's tokenizer is also the pad token, and
    # must still be trained on or the model never learns to stop.
    assert trained == target + [tokenizer.eos_token_id]
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert encoded["input_ids"][-len(trained):] == trained
    assert len(encoded["input_ids"]) == len(encoded["labels"])


def test_long_prompts_are_cut_from_the_left_and_keep_the_target():
    _, tokenizer = _tiny_model()
    split = tiny_split("classification")
    row = {"text": "word " * 500, "label": "positive"}
    encoded = encode_example(tokenizer, split, row, max_length=64)
    assert len(encoded["input_ids"]) == 64
    assert [t for t in encoded["labels"] if t != -100][-1] == tokenizer.eos_token_id


def test_generation_prompts_keep_their_end_like_training():
    """A prompt longer than max_length is cut at its start when predicting, as in training:
    the question and the assistant turn at its end must reach the model."""
    from strategies.prompts import prompt_for
    from strategies.training_predict import encode_prompts

    _, tokenizer = _tiny_model()
    split = tiny_split("qa")
    long_row = {**split.test[0], "context": "filler words here. " * 200}
    prompts = [prompt_for(tokenizer, split, long_row), prompt_for(tokenizer, split, split.test[1])]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        encoded = encode_prompts(tokenizer, prompts, 64)
    finally:
        tokenizer.padding_side = old_side
    full = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    assert len(full[0]) > 64 and encoded["input_ids"].shape[1] == min(64, max(map(len, full)))
    for row, (ids, mask) in enumerate(zip(encoded["input_ids"].tolist(),
                                          encoded["attention_mask"].tolist())):
        kept = [t for t, m in zip(ids, mask) if m]
        assert kept == full[row][-64:]  # the end of the prompt, whole
        assert mask[-1] == 1  # left-padded: every prompt ends in the last column
    # the training sequence of the same row ends its prompt part with the same tokens
    trained = encode_example(tokenizer, split, {**long_row, "answer": "Madrid"}, max_length=64)
    prompt_part = [t for t, y in zip(trained["input_ids"], trained["labels"]) if y == -100]
    assert full[0][-len(prompt_part):] == prompt_part


# ------------------------------------------------------------------------------------ learning


@pytest.mark.parametrize("name", FINETUNE)
def test_loss_falls_on_a_fixed_tiny_batch(name, tmp_path):
    split = tiny_split("classification")
    # AdaLoRA starts from a zero singular-value vector and moves slowest in a few steps.
    overrides = {**FAST, "learning_rate": 2e-2} if name == "adalora" else FAST
    config = registry.get(name).make_config("quick", overrides)
    model, tokenizer = _build(name, config, _quantization(name))
    batch = encode_rows(tokenizer, split, split.train, config.max_length)
    before = target_loss(model, batch)
    result = train(model, tokenizer, split, split.train, [], config, device="cpu", seed=0,
                   output_dir=tmp_path / "trainer",
                   callbacks=_module_of(name).rank_allocation_callback(model)
                   if name == "adalora" else ())
    after = target_loss(model, batch)
    assert result.steps == config.max_steps
    assert result.train_tokens == sum(len(e["input_ids"]) for e in batch) * config.max_steps
    assert after < before - 1e-3, f"{name}: loss {before:.4f} -> {after:.4f}"


def test_early_stopping_keeps_the_best_weights():
    """Validation losses 1.0, 0.5, 0.7, 0.8 with patience 2: training stops at the fourth
    evaluation and the weights of the second (the best) are put back."""
    import torch
    from transformers import TrainerControl, TrainerState

    from strategies.training_callbacks import TrainResult, trainer_callbacks

    keep_best_cls, *_ = trainer_callbacks()
    result = TrainResult(train_tokens=0, steps=0, epochs_run=0.0, optimizer="adamw_torch")
    callback = keep_best_cls(patience=2, result=result)
    model = torch.nn.Linear(2, 1)
    frozen = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
    model.register_parameter("frozen", frozen)
    state, control = TrainerState(), TrainerControl()
    weights_at = {}
    for step, loss in enumerate([1.0, 0.5, 0.7, 0.8], start=1):
        with torch.no_grad():
            model.weight.fill_(float(step))
        weights_at[step] = model.weight.detach().clone()
        state.global_step, state.epoch = step, step / 4
        callback.on_evaluate(None, state, control, metrics={"eval_loss": loss}, model=model)
        assert control.should_training_stop == (step == 4)
    callback.restore_best(model)
    assert torch.equal(model.weight, weights_at[2])
    assert result.best_step == 2 and result.best_val_loss == 0.5 and result.stopped_early
    assert [p["loss"] for p in result.val_curve] == [1.0, 0.5, 0.7, 0.8]
    assert "frozen" not in callback.best_state  # only trainable tensors are copied


# ------------------------------------------------------------------------------------ counts


def test_lora_trainable_count_matches_the_formula_and_peft():
    """r * (in + out) for every linear layer of the tiny Llama (hidden 64, kv 32, mlp 128)."""
    config = registry.get("lora").make_config("quick")
    model, _ = _build("lora", config)
    per_layer = sum(config.r * (i + o) for i, o in [
        (64, 64), (64, 32), (64, 32), (64, 64), (64, 128), (64, 128), (128, 64)])
    trainable, total = count_parameters(model)
    assert trainable == 2 * per_layer
    assert (trainable, total) == model.get_nb_trainable_parameters()


@pytest.mark.parametrize("name", ["full", "freeze", "prompt-tuning", "ia3", "loha", "qlora"])
def test_trainable_counts_match_peft(name):
    config = registry.get(name).make_config("quick")
    model, _ = _build(name, config, _quantization(name))
    trainable, total = count_parameters(model)
    if hasattr(model, "get_nb_trainable_parameters"):
        assert (trainable, total) == model.get_nb_trainable_parameters()
    else:
        assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert total == sum(p.numel() for p in model.parameters())
    assert 0 < trainable <= total


def test_freeze_trains_only_the_top_blocks(tmp_path):
    config = registry.get("freeze").make_config("quick", {"trainable_blocks": 1,
                                                          "train_head": False})
    model, _ = _build("freeze", config)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith(("model.layers.1.", "model.norm")) for n in trained)
    assert not any(n.startswith("model.layers.0.") for n in trained)


# ------------------------------------------------------------------------------------ artifacts


def _scores(model, tokenizer, split):
    from strategies.prompts import label_texts, prompt_for
    from strategies.scoring import label_logprobs

    prompts = [prompt_for(tokenizer, split, row) for row in split.test]
    return label_logprobs(model, tokenizer, prompts, label_texts(split)).sum_logp


@pytest.mark.parametrize("name", ["lora", "full", "prefix-tuning", "qlora"])
def test_saved_artifact_reloads_with_the_same_predictions(name, tmp_path):
    from bench.models import load_model

    split = tiny_split("classification")
    config = registry.get(name).make_config("quick", {**FAST, "max_steps": 3})
    model, tokenizer = _build(name, config, _quantization(name))
    train(model, tokenizer, split, split.train, [], config, device="cpu", seed=0,
          output_dir=tmp_path / "trainer")
    trained_scores = _scores(model, tokenizer, split)
    folder = save_artifact(model, tokenizer, tmp_path / "work", strategy=name,
                           base_model="tiny-llama", split=split,
                           quantization=_quantization(name), config=config)
    manifest = json.loads((folder / ARTIFACT_MANIFEST).read_text())
    assert manifest["kind"] == ("full" if name == "full" else "adapter")
    reloaded, reloaded_tokenizer = load_artifact(folder, load_model)
    reloaded_scores = _scores(reloaded, reloaded_tokenizer, split)
    # QLoRA computes in bf16 on a 4-bit base (TRL keeps the trained adapter in bf16, peft
    # reloads it in fp32): equal up to bf16 rounding. Everything else is exact float32.
    tolerance = 5e-3 if name == "qlora" else 1e-4
    np.testing.assert_allclose(reloaded_scores, trained_scores, rtol=tolerance, atol=tolerance)
    assert (reloaded_scores.argmax(1) == trained_scores.argmax(1)).all()


def test_run_records_counts_phases_and_artifact(context_factory):
    ctx = context_factory("classification")
    phases = []
    ctx.on_phase = phases.append
    steps = []
    ctx.on_progress = lambda p: steps.append(p) if p.phase == "adapt" else None
    spec = registry.get("lora")
    output = spec.run(ctx, spec.make_config("quick", {"max_steps": 2, "epochs": 2,
                                                      "eval_every": 1}))
    assert phases == ["load", "adapt", "predict", "save"]
    assert [p.step for p in steps] == [1, 2] and all(p.loss is not None for p in steps)
    assert output.info["optimizer"] == "adamw_torch"
    assert [p["step"] for p in output.info["val_curve"]] == [1, 2]
    assert output.info["best_step"] in (1, 2) and output.info["selected_by"] == "label_accuracy"
    assert Path(output.artifact_path, "adapter_model.safetensors").exists()
    assert output.train_tokens > 0 and output.predict_tokens > 0
    assert output.mean_prompt_tokens == pytest.approx(output.predict_tokens / len(ctx.data.test))


def test_generation_predicts_strings_through_sft(context_factory):
    ctx = context_factory("qa")
    spec = registry.get("lora")
    output = spec.run(ctx, spec.make_config("quick", {"max_steps": 1, "max_new_tokens": 3}))
    assert len(output.predictions) == len(ctx.data.test)
    assert all(isinstance(p, str) for p in output.predictions)


# ------------------------------------------------------------------------------------ errors


def test_unknown_peft_type_lists_the_available_ones():
    with pytest.raises(StrategyError) as info:
        registry.get("peft:lorra")
    message = str(info.value)
    assert "unknown peft type 'lorra'" in message and "lora" in message and "vera" in message


def test_peft_generic_runs_a_method_by_name_with_json_arguments(tmp_path):
    ctx = make_context("classification", tmp_path / "c", peft_args='{"r": 4}')
    spec = registry.get("peft:lokr")
    output = spec.run(ctx, spec.make_config("quick", {"max_steps": 1}))
    assert spec.name == "peft:lokr" and spec.family == "peft"
    assert output.info["method"] == {"peft_type": "lokr", "peft_args": {"r": 4}}
    assert output.trainable_params > 0


@pytest.mark.parametrize("peft_args,expected", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"rank_of_doom": 3}', "Accepted arguments"),
])
def test_bad_peft_args_are_clean_errors(peft_args, expected, tmp_path):
    ctx = make_context("classification", tmp_path / "c", peft_args=peft_args)
    spec = registry.get("peft:lokr")
    with pytest.raises(StrategyError, match=expected):
        spec.run(ctx, spec.make_config("quick", {"max_steps": 1}))


def test_bad_config_values_are_clean_errors():
    with pytest.raises(StrategyError, match="learning_rate"):
        registry.get("lora").make_config("quick", {"learning_rate": "-1"})
    with pytest.raises(StrategyError, match="trainable_blocks"):
        registry.get("freeze").make_config("quick", {"trainable_blocks": 0})


def test_gpu_only_precision_is_skipped_without_cuda(context_factory):
    ctx = context_factory("classification")
    spec = registry.get("lora")
    with pytest.raises(StrategySkipped, match="needs CUDA"):
        spec.run(ctx, spec.make_config("quick", {"precision": "bf16"}))


def test_preference_task_is_refused_with_a_message(context_factory):
    ctx = context_factory("preference")
    spec = registry.get("lora")
    with pytest.raises(StrategyError, match="not 'preference'"):
        spec.run(ctx, spec.make_config("quick"))


# ------------------------------------------------------------------------------------ export


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """A run folder laid out as the harness writes it, with a trained tiny LoRA adapter."""
    from bench.journal import work_dir

    run_dir = tmp_path_factory.mktemp("run")
    ctx = make_context("classification", work_dir(run_dir, "lora"))
    spec = registry.get("lora")
    spec.run(ctx, spec.make_config("quick", {"max_steps": 2}))
    return run_dir


def _logits(model, tokenizer):
    import torch

    ids = tokenizer("Text: I love it", return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits


def test_export_merged_loads_with_transformers(lora_run, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from advisor.cli import main

    out = tmp_path / "merged"
    assert main(["export", str(lora_run), "lora", str(out), "--merge"]) == 0
    merged = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    base, _ = _tiny_model()
    adapter = PeftModel.from_pretrained(base, str(lora_run / "work" / "lora" / "adapter"))
    torch_close = np.allclose(_logits(merged, tokenizer).numpy(),
                              _logits(adapter, tokenizer).numpy(), atol=1e-4)
    assert torch_close, "the merged model must compute what base + adapter computes"
    assert not any("lora" in n for n, _ in merged.named_parameters())


def test_export_adapter_loads_with_peft(lora_run, tmp_path):
    from peft import PeftModel

    from advisor.cli import main

    out = tmp_path / "adapter"
    assert main(["export", str(lora_run), "lora", str(out)]) == 0
    assert (out / "adapter_config.json").exists()
    base, _ = _tiny_model()
    model = PeftModel.from_pretrained(base, str(out))
    assert model.get_nb_trainable_parameters()[1] > 0


def test_export_errors_are_messages(lora_run, tmp_path, capsys):
    from advisor.cli import main

    assert main(["export", str(lora_run), "full", str(tmp_path / "x")]) == 2
    assert "no saved model for 'full'" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope"), "lora", str(tmp_path / "y")]) == 2
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")
    assert main(["export", str(lora_run), "lora", str(busy)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_prompt_learning_cannot_be_merged(tmp_path, capsys):
    from advisor.cli import main
    from bench.journal import work_dir

    ctx = make_context("classification", work_dir(tmp_path / "run", "prompt-tuning"))
    spec = registry.get("prompt-tuning")
    spec.run(ctx, spec.make_config("quick", {"max_steps": 1}))
    assert main(["export", str(tmp_path / "run"), "prompt-tuning", str(tmp_path / "o"),
                 "--merge"]) == 2
    assert "cannot be merged" in capsys.readouterr().err


def test_epochs_bound_training_even_under_the_step_cap(tmp_path):
    """max_steps is a cap, not a target: 16 rows at batch 8 for one epoch is 2 steps, not 30."""
    from strategies.training import total_optimizer_steps

    split = tiny_split("classification")
    rows = (split.train * 2)[:16]
    config = registry.get("lora").make_config("quick", {"max_steps": 30, "epochs": 1,
                                                        "min_steps": 0, "batch_size": 8,
                                                        "eval_every": 0})
    assert total_optimizer_steps(len(rows), config) == 2
    ctx = make_context("classification", tmp_path / "c",
                       split=dataclasses.replace(split, train=rows))
    output = registry.get("lora").run(ctx, config)
    assert output.info["steps"] == 2 and output.info["epochs_run"] == 1.0


# Every named PEFT candidate takes --peft-args (peft's own argument names) on top of its
# settings; one argument per method that its tunewise config does not set, or overrides.
PEFT_ARGS = {
    "lora": ({"lora_dropout": 0.2}, "lora_dropout", 0.2),
    "dora": ({"lora_dropout": 0.2}, "lora_dropout", 0.2),
    "qlora": ({"lora_dropout": 0.2}, "lora_dropout", 0.2),
    "ia3": ({"init_ia3_weights": False}, "init_ia3_weights", False),
    "loha": ({"rank_dropout": 0.1}, "rank_dropout", 0.1),
    "adalora": ({"beta1": 0.5}, "beta1", 0.5),
    "prefix-tuning": ({"num_virtual_tokens": 7}, "num_virtual_tokens", 7),  # overrides the 20
    "prompt-tuning": ({"num_virtual_tokens": 5}, "num_virtual_tokens", 5),
}


@pytest.mark.parametrize("name", list(PEFT_ARGS))
def test_named_peft_candidates_apply_peft_args(name):
    peft_args, key, value = PEFT_ARGS[name]
    config = registry.get(name).make_config("quick", {"max_steps": 2})
    model, _ = _tiny_model(_quantization(name))
    plan = TrainPlan(total_steps=2, device="cpu", seed=0, train_rows=8, peft_args=peft_args)
    model, info = _module_of(name).build(model, config, plan)
    assert getattr(model.peft_config["default"], key) == value
    if key == "num_virtual_tokens":
        assert info[key] == value  # the record says what ran, not the config's default


def test_an_argument_the_method_does_not_take_is_a_clean_error():
    config = registry.get("ia3").make_config("quick", {"max_steps": 2})
    plan = TrainPlan(total_steps=2, device="cpu", seed=0, train_rows=8, peft_args={"r": 8})
    with pytest.raises(StrategyError, match="ia3: .*Accepted arguments: .*init_ia3_weights"):
        _module_of("ia3").build(_tiny_model()[0], config, plan)


def test_peft_args_reach_the_record_of_a_named_candidate(tmp_path):
    ctx = make_context("classification", tmp_path / "c", peft_args='{"lora_dropout": 0.0}')
    spec = registry.get("lora")
    output = spec.run(ctx, spec.make_config("quick", {"max_steps": 1, "dropout": 0.3}))
    assert output.info["method"]["dropout"] == 0.0  # --peft-args wins over --set lora.dropout
    assert output.info["method"]["peft_args"] == {"lora_dropout": 0.0}


def test_encoder_ft_records_the_loss_of_every_step(tmp_path):
    ctx = make_context("classification", tmp_path / "e")
    spec = registry.get("encoder-ft")
    output = spec.run(ctx, spec.make_config("quick", {"epochs": 2, "batch_size": 4}))
    curve = output.info["train_curve"]
    assert [point["step"] for point in curve] == list(range(1, output.info["steps"] + 1))
    assert all(isinstance(point["loss"], float) and point["loss"] > 0 for point in curve)


def test_trainable_weights_are_upcast_to_float32_and_frozen_ones_kept():
    """Mixed precision on a GPU: bf16-loaded weights that train become float32 (a bf16 weight
    rounds away updates below its spacing), frozen ones stay bf16, tied embeddings stay tied."""
    import torch

    from bench.models import load_model
    from strategies.training_loop import upcast_trainable

    model, _ = load_model("tiny-llama", "causal-lm", dtype="bfloat16")
    for name, param in model.named_parameters():
        param.requires_grad = ".layers.1." in name or "embed_tokens" in name
    assert upcast_trainable(model) == "float32"
    for name, param in model.named_parameters():
        assert param.dtype == (torch.float32 if param.requires_grad else torch.bfloat16), name
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
