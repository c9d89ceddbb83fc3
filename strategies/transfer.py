"""`transfer`: frozen sentence-encoder embeddings + a scikit-learn logistic regression.

The encoder is never updated; only the linear head (labels x dim + labels) is learned, in
seconds. With several values of C (inverse regularisation strength) the one with the best
validation accuracy is kept. With `cv_folds` > 0 the kept head's settings are also scored by
stratified k-fold on the train rows (strategies.cross_validation).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

from strategies.base import RunContext, StrategyError, StrategyOutput, StrategySpec, option
from strategies.cross_validation import cv_info, cv_positions
from strategies.retrieval import count_tokens, encode


@dataclass
class TransferConfig:
    c_values: list = option([1.0], help="inverse regularisation strengths tried (best on "
                            "validation kept); larger C fits the train rows harder",
                            full=[0.1, 1.0, 10.0])
    max_iter: int = option(2000, help="solver iterations")
    class_weight: str = option("none", help="'balanced' reweights rare labels",
                               choices=("none", "balanced"))
    cv_folds: int = option(0, help="> 0: also score the head by stratified k-fold on the train "
                           "rows (info.cv; fewer folds when a label has fewer rows); the "
                           "advisor's probes set it")

    def __post_init__(self) -> None:
        if self.cv_folds < 0:
            raise ValueError(f"cv_folds must not be negative, got {self.cv_folds}")
        try:
            self.c_values = [float(c) for c in self.c_values]
        except (TypeError, ValueError):
            raise ValueError(f"c_values must be numbers, got {self.c_values!r}") from None
        if not self.c_values or min(self.c_values) <= 0:
            raise ValueError("c_values must be a non-empty list of positive numbers")


def fit_head(train_x, train_y, val_x, val_y, config: TransferConfig, seed: int):
    """Logistic regression per C; the best on validation (or the first without validation)."""
    from sklearn.linear_model import LogisticRegression

    best, best_score = None, -1.0
    for c in config.c_values:
        head = LogisticRegression(C=c, max_iter=config.max_iter, random_state=seed,
                                  class_weight=None if config.class_weight == "none" else "balanced")
        head.fit(train_x, train_y)
        score = head.score(val_x, val_y) if len(val_y) else 0.0
        if score > best_score:
            best, best_score = head, score
    return best, (best_score if len(val_y) else None)


def cross_validate(head, train_x: np.ndarray, train_y: list[str], folds: int,
                   seed: int) -> dict | None:
    """info.cv: each train row (a seeded sample of them on large data) predicted by a head with
    `head`'s settings (C, class weights, iterations) fitted on the other folds, the folds
    stratified and seeded; as many folds as the rarest label has rows, at least 2, at most
    `folds`. None when a fold cannot be fitted (a fold left with one label)."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    positions = cv_positions(len(train_y), seed)
    x, y = train_x[positions], np.array([train_y[p] for p in positions])
    splits = max(2, min(folds, min(Counter(y.tolist()).values())))
    if len(y) < splits:
        return None
    with warnings.catch_warnings():
        # a label with fewer rows than folds: its rows are predicted without it, which is fair
        warnings.filterwarnings("ignore", message="The least populated class")
        try:
            predicted = cross_val_predict(
                clone(head), x, y, cv=StratifiedKFold(splits, shuffle=True, random_state=seed))
        except ValueError:  # a fold's train part holds a single label
            return None
    return cv_info([str(p) for p in predicted], y.tolist(), f"stratified {splits}-fold")


def predict_texts(head, encoder, texts) -> list[str]:
    """The head's label for each text's embedding: the harness and `tunewise predict` both
    call this, so an export answers exactly what the run scored."""
    return [str(p) for p in head.predict(encode(encoder, texts))]


def run(ctx: RunContext, config: TransferConfig) -> StrategyOutput:
    import joblib

    split = ctx.data
    train_y = [str(row["label"]) for row in split.train]
    if len(set(train_y)) < 2:
        raise StrategyError("transfer needs train rows of at least two labels")
    ctx.phase("load")
    encoder, _ = ctx.load_model(ctx.encoder_name, "sentence-encoder")
    ctx.phase("adapt")
    train_texts = [row["text"] for row in split.train]
    val_texts = [row["text"] for row in split.validation]
    train_x = encode(encoder, train_texts,
                     on_batch=lambda done, total: ctx.progress("adapt", done, total))
    val_x = encode(encoder, val_texts) if val_texts else np.zeros((0, train_x.shape[1]))
    val_y = [str(row["label"]) for row in split.validation]
    head, val_accuracy = fit_head(train_x, train_y, val_x, val_y, config, ctx.seed)
    info = {"C": float(head.C), "validation_accuracy": val_accuracy,
            "embedding_dim": int(train_x.shape[1])}
    if config.cv_folds > 0:
        info["cv"] = cross_validate(head, train_x, train_y, config.cv_folds, ctx.seed)
    artifact = ctx.work_dir / "logreg_head.joblib"
    joblib.dump(head, artifact)
    ctx.phase("predict")
    test_texts = [row["text"] for row in split.test]
    predictions = predict_texts(head, encoder, test_texts)
    ctx.progress("predict", len(predictions), len(predictions))
    head_params = int(head.coef_.size + head.intercept_.size)
    test_tokens = count_tokens(encoder, test_texts)
    return StrategyOutput(
        predictions=predictions, trainable_params=head_params,
        total_params=sum(p.numel() for p in encoder.parameters()) + head_params,
        train_tokens=count_tokens(encoder, train_texts + val_texts), predict_tokens=test_tokens,
        mean_prompt_tokens=test_tokens / max(1, len(test_texts)), artifact_path=str(artifact),
        info=info,
        answer=lambda rows: predict_texts(head, encoder, [row["text"] for row in rows]))


SPEC = StrategySpec(
    name="transfer", family="transfer", tasks=frozenset({"classification"}),
    config_cls=TransferConfig, run=run,
    description="frozen sentence embeddings + logistic regression (scikit-learn)",
)
