"""`encoder-ft`: the sentence encoder fine-tuned end to end with a classification head.

A plain PyTorch loop (AdamW, linear warm-up and decay), evaluated on the validation split after
every epoch; the best epoch's weights are kept and training stops after `patience` epochs
without improvement. The fine-tuned model is saved in the candidate's folder.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from strategies.base import RunContext, StrategyError, StrategyOutput, StrategySpec, option


@dataclass
class EncoderFtConfig:
    epochs: int = option(4, help="passes over the train split (early stopping may end sooner)",
                         full=10)
    learning_rate: float = option(1e-4, help="AdamW learning rate; small encoders on few rows "
                                  "like 5e-5..2e-4")
    batch_size: int = option(32, help="rows per step; a MiniLM step at 32 takes ~0.5 s on CPU")
    max_length: int = option(128, help="tokens per text; longer texts are cut")
    weight_decay: float = option(0.01, help="AdamW weight decay")
    warmup_ratio: float = option(0.1, help="share of steps with a rising learning rate")
    patience: int = option(2, help="epochs without validation improvement before stopping")

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.max_length < 8:
            raise ValueError("epochs and batch_size must be >= 1, max_length >= 8")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batches(n: int, size: int, rng: random.Random | None = None) -> list[list[int]]:
    order = list(range(n))
    if rng is not None:
        rng.shuffle(order)
    return [order[i:i + size] for i in range(0, n, size)]


def predict_ids(model, tokenizer, texts: Sequence[str], config: EncoderFtConfig) -> list[int]:
    import torch

    model.eval()
    out: list[int] = []
    with torch.inference_mode():
        for ids in batches(len(texts), config.batch_size * 2):
            enc = tokenizer([texts[i] for i in ids], padding=True, truncation=True,
                            max_length=config.max_length, return_tensors="pt").to(model.device)
            out.extend(model(**enc).logits.argmax(-1).tolist())
    return out


def predict_texts(model, tokenizer, texts: Sequence[str], labels: Sequence[str],
                  config: EncoderFtConfig) -> list[str]:
    """The classifier's label for each text: the harness and `tunewise predict` both call this,
    so an export answers exactly what the run scored."""
    return [labels[i] for i in predict_ids(model, tokenizer, texts, config)]


def run(ctx: RunContext, config: EncoderFtConfig) -> StrategyOutput:
    import torch
    from transformers import get_linear_schedule_with_warmup

    split = ctx.data
    if not split.train:
        raise StrategyError("encoder-ft needs labelled train rows; the train split is empty")
    label_index = {label: i for i, label in enumerate(split.labels)}
    unknown = {str(r["label"]) for r in split.train} - set(label_index)
    if unknown:
        raise StrategyError(f"train labels not in the split's label list: {sorted(unknown)}")
    seed_everything(ctx.seed)

    ctx.phase("load")
    # float32 on a GPU too: every weight trains, and a bf16 weight rounds away updates smaller
    # than its spacing (strategies.training_loop.upcast_trainable); the encoder is small
    model, tokenizer = ctx.load_model(ctx.encoder_name, "seq-cls", num_labels=len(split.labels),
                                      dtype="float32")
    model.config.id2label = dict(enumerate(split.labels))
    model.config.label2id = dict(label_index)

    ctx.phase("adapt")
    texts = [row["text"] for row in split.train]
    targets = torch.tensor([label_index[str(row["label"])] for row in split.train])
    val_texts = [row["text"] for row in split.validation]
    val_targets = [label_index.get(str(row["label"]), -1) for row in split.validation]
    steps_per_epoch = len(batches(len(texts), config.batch_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps),
                                                total_steps)
    rng = random.Random(ctx.seed)
    best_accuracy, best_state, best_epoch, stale, step, train_tokens = -1.0, None, 0, 0, 0, 0
    train_curve: list[dict[str, float]] = []  # the loss of every step, for the report's plot
    for epoch in range(1, config.epochs + 1):
        model.train()
        for ids in batches(len(texts), config.batch_size, rng):
            enc = tokenizer([texts[i] for i in ids], padding=True, truncation=True,
                            max_length=config.max_length, return_tensors="pt").to(model.device)
            loss = model(**enc, labels=targets[ids].to(model.device)).loss
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            train_tokens += int(enc["attention_mask"].sum())
            train_curve.append({"step": step, "loss": loss.item()})
            ctx.progress("adapt", step, total_steps, loss=train_curve[-1]["loss"])
        if not val_texts:
            continue  # no validation rows: train all epochs, keep the last weights
        predicted = predict_ids(model, tokenizer, val_texts, config)
        accuracy = sum(p == t for p, t in zip(predicted, val_targets)) / len(val_targets)
        if accuracy > best_accuracy:
            best_accuracy, best_epoch, stale = accuracy, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)

    ctx.phase("save")
    artifact = ctx.work_dir / "encoder_ft_model"
    model.save_pretrained(artifact, safe_serialization=True)
    tokenizer.save_pretrained(artifact)

    ctx.phase("predict")
    test_texts = [row["text"] for row in split.test]
    predictions = predict_texts(model, tokenizer, test_texts, split.labels, config)
    ctx.progress("predict", len(predictions), len(predictions))
    test_tokens = sum(min(len(ids), config.max_length)
                      for ids in tokenizer(test_texts)["input_ids"])
    n_params = sum(p.numel() for p in model.parameters())
    return StrategyOutput(
        predictions=predictions, trainable_params=n_params, total_params=n_params,
        train_tokens=train_tokens, predict_tokens=test_tokens,
        mean_prompt_tokens=test_tokens / max(1, len(test_texts)), artifact_path=str(artifact),
        info={"epochs_run": epoch, "best_epoch": best_epoch or epoch, "steps": step,
              "validation_accuracy": best_accuracy if val_texts else None,
              "optimizer": "AdamW", "learning_rate": config.learning_rate,
              "train_curve": train_curve},
        answer=lambda rows: predict_texts(model, tokenizer, [row["text"] for row in rows],
                                          split.labels, config))


SPEC = StrategySpec(
    name="encoder-ft", family="transfer", tasks=frozenset({"classification"}),
    config_cls=EncoderFtConfig, run=run, trainable=True,
    description="sentence encoder + classification head, fine-tuned end to end, early stopping",
)
