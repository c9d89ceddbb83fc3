"""`setfit`: contrastive fine-tuning of the sentence encoder, then a logistic-regression head.

SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts"), with the `setfit`
package: from the labelled train rows it builds sentence pairs (same label -> similarity 1,
different labels -> 0), fine-tunes the whole sentence encoder on them with a cosine-similarity
loss, then fits scikit-learn's LogisticRegression on the tuned embeddings of the train rows.
Unlike `transfer` (frozen encoder + the same head) the encoder itself moves, so rows of one
label are pulled together before the head draws its boundaries; unlike `encoder-ft` it learns
from pairs, which is what makes it work from a handful of rows per label.

Budget: `num_iterations` positive and as many negative pairs are drawn per train row (the
paper's 20), `epochs` passes over those pairs, capped at `max_steps` optimizer steps (the
quick preset's cap keeps MiniLM on the 216-row banking sample near a minute on 2 CPU cores).
The tuned encoder and its head are saved as a SetFit model folder (`SetFitModel.from_pretrained`
loads it back).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from strategies.base import RunContext, StrategyError, StrategyOutput, StrategySpec, option
from strategies.trackers import report_to
from strategies.retrieval import count_tokens

ARTIFACT_DIR = "setfit_model"


@dataclass
class SetFitConfig:
    num_iterations: int = option(5, help="positive (and as many negative) pairs drawn per train "
                                 "row; the paper uses 20", full=20)
    epochs: int = option(1, help="passes over the generated pairs (max_steps may end sooner)")
    batch_size: int = option(16, help="pairs per optimizer step")
    learning_rate: float = option(2e-5, help="AdamW learning rate of the encoder body "
                                  "(SetFit's default 2e-5)")
    max_steps: int = option(30, help="cap on optimizer steps, -1 for none; a MiniLM step of 16 "
                            "pairs (32 texts forward and back) costs ~2 CPU-seconds", full=-1)
    max_length: int = option(64, help="tokens per text, training and predicting (at most the "
                             "encoder's own limit); longer texts are cut", full=128)
    head_c: float = option(1.0, help="inverse regularisation strength of the logistic "
                           "regression head")

    def __post_init__(self) -> None:
        if self.num_iterations < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("num_iterations, epochs and batch_size must be >= 1")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (no cap) or >= 1, got {self.max_steps}")
        if self.learning_rate <= 0 or self.head_c <= 0:
            raise ValueError("learning_rate and head_c must be positive")
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8, got {self.max_length}")


def _progress_callback(ctx: RunContext):
    """Forwards the embedding trainer's steps and loss to the harness's display."""
    from transformers import TrainerCallback

    class ReportProgress(TrainerCallback):
        loss: float | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "embedding_loss" in logs:
                self.loss = float(logs["embedding_loss"])

        def on_step_end(self, args, state, control, **kwargs):
            ctx.progress("adapt", state.global_step, state.max_steps, loss=self.loss)

    return ReportProgress()


def _quiet_setfit() -> None:
    # setfit sets its own logger to INFO on import (a banner per run) and datasets draws a bar
    # per map; progress goes through ctx.progress, not stdout.
    import datasets
    from setfit import logging as setfit_logging

    setfit_logging.set_verbosity_warning()
    datasets.disable_progress_bars()


def train(ctx: RunContext, config: SetFitConfig, encoder, texts: list[str],
          label_ids: list[int]):
    """SetFit's two phases on `encoder`: contrastive pairs tune the body, then the head is fit."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from sklearn.linear_model import LogisticRegression
    from transformers import PrinterCallback

    head = LogisticRegression(C=config.head_c, max_iter=2000, random_state=ctx.seed)
    model = SetFitModel(model_body=encoder, model_head=head, labels=list(ctx.data.labels))
    args = TrainingArguments(
        output_dir=str(ctx.work_dir / "checkpoints"), batch_size=config.batch_size,
        num_epochs=config.epochs, num_iterations=config.num_iterations,
        max_steps=config.max_steps, body_learning_rate=config.learning_rate, seed=ctx.seed, report_to=report_to(),
        show_progress_bar=False, save_strategy="no", logging_steps=5)
    trainer = Trainer(model=model, args=args, callbacks=[_progress_callback(ctx)],
                      train_dataset=Dataset.from_dict({"text": texts, "label": label_ids}))
    # Without progress bars the Trainer prints every log dict to stdout; progress goes to ctx.
    trainer.st_trainer.remove_callback(PrinterCallback)
    trainer.st_trainer.args.dataloader_pin_memory = ctx.device == "cuda"  # CPU: nothing to pin
    trainer.train()
    shutil.rmtree(args.output_dir, ignore_errors=True)  # save_strategy "no": nothing kept there
    return model, trainer.st_trainer.state


def run(ctx: RunContext, config: SetFitConfig) -> StrategyOutput:
    _quiet_setfit()
    split = ctx.data
    label_index = {label: i for i, label in enumerate(split.labels)}
    train_labels = [str(row["label"]) for row in split.train]
    unknown = set(train_labels) - set(label_index)
    if unknown:
        raise StrategyError(f"train labels not in the split's label list: {sorted(unknown)}")
    if len(set(train_labels)) < 2:
        raise StrategyError("setfit needs train rows of at least two labels (its pairs contrast "
                            "one label with another)")

    ctx.phase("load")
    encoder, _ = ctx.load_model(ctx.encoder_name, "sentence-encoder")
    # setfit's own max_length reaches only a torch head; the encoder's limit cuts every text
    encoder.max_seq_length = min(config.max_length, encoder.max_seq_length or config.max_length)
    ctx.phase("adapt")
    texts = [row["text"] for row in split.train]
    model, state = train(ctx, config, encoder, texts, [label_index[y] for y in train_labels])
    val_accuracy = _accuracy(model, split.validation)

    ctx.phase("save")
    artifact = ctx.work_dir / ARTIFACT_DIR
    model.save_pretrained(str(artifact))

    ctx.phase("predict")
    test_texts = [row["text"] for row in split.test]
    predictions = [str(p) for p in model.predict(test_texts, show_progress_bar=False)] \
        if test_texts else []
    ctx.progress("predict", len(predictions), len(predictions))

    body_params = sum(p.numel() for p in encoder.parameters())
    head_params = int(model.model_head.coef_.size + model.model_head.intercept_.size)
    test_tokens = count_tokens(encoder, test_texts)
    return StrategyOutput(
        predictions=predictions, trainable_params=body_params + head_params,
        total_params=body_params + head_params,
        train_tokens=_train_tokens(encoder, texts, state, config),
        predict_tokens=test_tokens, mean_prompt_tokens=test_tokens / max(1, len(test_texts)),
        artifact_path=str(artifact),
        info={"steps": int(state.global_step),
              "pairs_seen": _pairs_seen(state, config, len(texts)),
              "validation_accuracy": val_accuracy, "loss": "CosineSimilarityLoss",
              "head": "LogisticRegression", "learning_rate": config.learning_rate},
        answer=lambda rows: [str(p) for p in model.predict([row["text"] for row in rows],
                                                           show_progress_bar=False)])


def _accuracy(model, rows: list[dict[str, Any]]) -> float | None:
    """Accuracy on `rows` (the validation split, for the record); None without rows."""
    if not rows:
        return None
    predicted = model.predict([row["text"] for row in rows], show_progress_bar=False)
    return sum(str(p) == str(row["label"]) for p, row in zip(predicted, rows)) / len(rows)


def _pairs_seen(state: Any, config: SetFitConfig, n_rows: int) -> int:
    """Pairs the encoder trained on: full batches, at most the pairs drawn for all epochs."""
    drawn = 2 * config.num_iterations * n_rows * config.epochs
    return min(int(state.global_step) * config.batch_size, drawn)


def _train_tokens(encoder, texts: list[str], state: Any, config: SetFitConfig) -> int:
    """Tokens read while adapting: two texts per pair seen (estimated at the train rows' mean
    length, since the pairs are drawn inside setfit) plus one pass over the rows for the head."""
    row_tokens = count_tokens(encoder, texts)  # cut at the encoder's max_seq_length
    mean_tokens = row_tokens / max(1, len(texts))
    return int(2 * _pairs_seen(state, config, len(texts)) * mean_tokens) + row_tokens


SPEC = StrategySpec(
    name="setfit", family="transfer", tasks=frozenset({"classification"}),
    config_cls=SetFitConfig, run=run, trainable=True,
    description="SetFit: sentence encoder fine-tuned on contrastive pairs + logistic "
                "regression (setfit)",
)
