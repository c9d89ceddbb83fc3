"""Scoring predictions: the harness, never the strategy, computes every quality number.

    from bench.metrics import score
    scored = score("classification", predictions, references, labels=["neg", "pos"])
    scored.metrics      # {"accuracy": 0.75, "macro_f1": ..., "precision": ..., "recall": ...}
    scored.ci           # {"accuracy": [0.5, 1.0], ...}  95% bootstrap over test rows
    scored.row_scores   # per test row: {"correct": 1} / {"exact_match":.., "token_f1":.., ...}
    scored.confusion    # classification: {"labels": [...], "matrix": [[...]]}

Classification scores (point estimates, per-class figures and the bootstrap) come from
confusion matrices in numpy with scikit-learn's formulas (macro averages over the labels that
occur, zero_division=0; tests check they agree with sklearn): 1,000 sklearn calls per metric
would cost seconds per candidate, and importing sklearn (with scipy) cost the parent ~0.9 s of
CPU per run, after the candidates, for figures a few lines of numpy give exactly.

Generation and qa use SQuAD's answer normalisation for exact match and token F1 and the
`rouge-score` package for ROUGE-L (what the `evaluate` modules wrap), so everything works
offline. `--metric NAME` adds any `evaluate` metric by name or local path for users who have it
(see `load_extra_metric`).

With several seeds, `score_seeds` resamples the same rows for every seed and averages, so the
interval is that of the seed-mean.
"""

from __future__ import annotations

import collections
import functools
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from bench.errors import TunewiseError

BOOTSTRAP_SAMPLES = 1000
CI_LEVEL = 0.95
MAX_DRAW_CELLS = 4_000_000  # resampled indices held at once (32 MB)
CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "precision", "recall")
TEXT_METRICS = ("exact_match", "token_f1", "rouge_l")


@dataclass
class Scored:
    metrics: dict[str, float]
    ci: dict[str, list[float]]
    row_scores: list[dict[str, float]]
    confusion: dict[str, Any] | None = None
    std: dict[str, float] = field(default_factory=dict)  # over seeds, when several


# --------------------------------------------------------------------------- text normalisation


def normalize_answer(text: str) -> str:
    """SQuAD v1.1: lower case, drop punctuation, articles and extra whitespace."""
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between normalised answers (1.0 when both are empty)."""
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(ref_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


_ROUGE = None


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (rouge-score, as `evaluate`'s rouge module computes it)."""
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return float(_ROUGE.score(str(reference), str(prediction))["rougeL"].fmeasure)


def _best_over_references(fn: Callable[[str, str], float], prediction: str, reference) -> float:
    # qa references may be a list of acceptable answers (SQuAD): the best match counts.
    if isinstance(reference, (list, tuple)):
        return max((fn(prediction, r) for r in reference), default=0.0)
    return fn(prediction, reference)


# --------------------------------------------------------------------------- per-task scoring


def _bootstrap(n: int, seed: int, statistic: Callable[[np.ndarray], dict[str, np.ndarray]],
               samples: int = BOOTSTRAP_SAMPLES) -> dict[str, np.ndarray]:
    """Resample the n test rows `samples` times; statistic(draws [k, n]) -> {name: [k]}.

    Draws are made in chunks so a large test set never holds samples x n indices at once."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(samples, MAX_DRAW_CELLS // max(n, 1)))
    parts = []
    for start in range(0, samples, chunk):
        draws = rng.integers(0, n, size=(min(chunk, samples - start), n))
        parts.append(statistic(draws))
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _interval(values: np.ndarray) -> list[float]:
    tail = (1 - CI_LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def _per_label_from_confusions(cms: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall and F1 of every label from confusion matrices [..., L, L] (rows true,
    columns predicted), as sklearn's precision_recall_fscore_support(average=None,
    zero_division=0) computes them, and which labels occur in truth or prediction."""
    true_counts = cms.sum(axis=-1)
    pred_counts = cms.sum(axis=-2)
    hits = np.diagonal(cms, axis1=-2, axis2=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_counts > 0, hits / np.maximum(pred_counts, 1), 0.0)
        recall = np.where(true_counts > 0, hits / np.maximum(true_counts, 1), 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return precision, recall, f1, (true_counts + pred_counts) > 0


def _metrics_from_confusions(cms: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy and macro precision / recall / F1 from confusion matrices [..., L, L]
    (rows true, columns predicted), averaged like sklearn's average="macro" with
    zero_division=0 over the labels that occur in truth or prediction."""
    precision, recall, f1, present = _per_label_from_confusions(cms)
    hits = np.diagonal(cms, axis1=-2, axis2=-1)
    n_present = np.maximum(present.sum(axis=-1), 1)
    return {
        "accuracy": hits.sum(axis=-1) / np.maximum(cms.sum(axis=(-2, -1)), 1),
        "macro_f1": (f1 * present).sum(axis=-1) / n_present,
        "precision": (precision * present).sum(axis=-1) / n_present,
        "recall": (recall * present).sum(axis=-1) / n_present,
    }


def _label_indices(values: Sequence[Any], labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[str(v)] for v in values], dtype=np.int64)


def _classification_labels(predictions, references, labels: Sequence[str] | None) -> list[str]:
    # Keep the split's label order; a prediction outside it (a strategy bug or free text)
    # still counts as wrong and gets its own column rather than crashing the scoring.
    ordered = [str(label) for label in (labels or [])]
    for value in [*references, *predictions]:
        if str(value) not in ordered:
            ordered.append(str(value))
    return ordered


def _classification_bootstrap(true_idx_per_seed, pred_idx_per_seed, n_labels: int,
                              seed: int) -> dict[str, list[float]]:
    def seed_mean_metrics(draws: np.ndarray) -> dict[str, np.ndarray]:
        per_seed = []
        offsets = np.arange(draws.shape[0])[:, None] * n_labels * n_labels
        for true_idx, pred_idx in zip(true_idx_per_seed, pred_idx_per_seed):
            cells = true_idx[draws] * n_labels + pred_idx[draws] + offsets  # [k, n]
            cms = np.bincount(cells.ravel(), minlength=draws.shape[0] * n_labels * n_labels)
            per_seed.append(_metrics_from_confusions(cms.reshape(-1, n_labels, n_labels)))
        return {name: np.mean([m[name] for m in per_seed], axis=0)
                for name in CLASSIFICATION_METRICS}

    boot = _bootstrap(len(true_idx_per_seed[0]), seed, seed_mean_metrics)
    return {name: _interval(values) for name, values in boot.items()}


def confusion_matrix(predictions, references, labels: list[str]) -> np.ndarray:
    """[L, L] counts, rows the reference label, columns the predicted one, in `labels` order
    (which must hold every value: _classification_labels)."""
    n = len(labels)
    cells = _label_indices(references, labels) * n + _label_indices(predictions, labels)
    return np.bincount(cells, minlength=n * n).reshape(n, n)


def classification_point(predictions, references, labels: list[str]) -> tuple[dict, np.ndarray]:
    confusion = confusion_matrix(predictions, references, labels)
    metrics = _metrics_from_confusions(confusion[None])
    return {name: float(metrics[name][0]) for name in CLASSIFICATION_METRICS}, confusion


def _score_classification(predictions_per_seed, references, labels, seed) -> Scored:
    all_predictions = [p for predictions in predictions_per_seed for p in predictions]
    ordered = _classification_labels(all_predictions, references, labels)
    points = [classification_point(predictions, references, ordered)
              for predictions in predictions_per_seed]
    metrics = _mean_dicts([m for m, _ in points])
    true_idx = _label_indices(references, ordered)
    pred_idx = [_label_indices(predictions, ordered) for predictions in predictions_per_seed]
    ci = _classification_bootstrap([true_idx] * len(pred_idx), pred_idx, len(ordered), seed)
    first = predictions_per_seed[0]
    rows = [{"correct": float(str(p) == str(r))} for p, r in zip(first, references)]
    confusion = {"labels": ordered, "matrix": points[0][1].tolist()}
    return Scored(metrics, ci, rows, confusion, _std_dicts([m for m, _ in points]))


def per_class_scores(predictions_per_seed: list[list[Any]], references: list[Any],
                     labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Precision, recall and F1 of every class (scikit-learn's precision_recall_fscore_support,
    average=None, zero_division=0, computed from the confusion matrix), in the split's label
    order; a predicted label outside it gets its own row (support 0). With several seeds each
    figure is the mean over seeds; `support` is the number of test rows of the class,
    `predicted` how often the first seed chose it."""
    all_predictions = [p for predictions in predictions_per_seed for p in predictions]
    ordered = _classification_labels(all_predictions, references, labels)
    confusions = np.stack([confusion_matrix(predictions, references, ordered)
                           for predictions in predictions_per_seed])
    precision, recall, f1, _ = (np.mean(figure, axis=0)
                                for figure in _per_label_from_confusions(confusions))
    support = confusions[0].sum(axis=1)
    predicted = collections.Counter(str(p) for p in predictions_per_seed[0])
    return [{"label": label, "precision": round(float(precision[i]), 6),
             "recall": round(float(recall[i]), 6), "f1": round(float(f1[i]), 6),
             "support": int(support[i]), "predicted": predicted[label]}
            for i, label in enumerate(ordered)]


def text_row_scores(prediction, reference) -> dict[str, float]:
    prediction = "" if prediction is None else str(prediction)
    return {
        "exact_match": _best_over_references(exact_match, prediction, reference),
        "token_f1": _best_over_references(token_f1, prediction, reference),
        "rouge_l": _best_over_references(rouge_l, prediction, reference),
    }


def preference_row_scores(prediction: dict[str, Any]) -> dict[str, float]:
    """preference_accuracy: chosen scored above rejected; win_rate: the judge prefers the
    policy's answer over the baseline's (ties count half). A reward model's rewards give
    reward_accuracy and reward_margin, and are its preference accuracy. Keys absent -> metric
    absent. (The chosen/rejected keys are set by the harness, bench.split_view.)"""
    row: dict[str, float] = {}
    if not isinstance(prediction, dict):
        return row
    if prediction.get("chosen_logp") is not None and prediction.get("rejected_logp") is not None:
        row["preference_accuracy"] = float(prediction["chosen_logp"] > prediction["rejected_logp"])
    chosen, rejected = prediction.get("chosen_reward"), prediction.get("rejected_reward")
    if chosen is not None and rejected is not None:
        row["reward_accuracy"] = float(chosen > rejected)
        row["reward_margin"] = float(chosen - rejected)
        row.setdefault("preference_accuracy", row["reward_accuracy"])
    judge, baseline = prediction.get("judge_score"), prediction.get("baseline_judge_score")
    if judge is not None and baseline is not None:
        row["win_rate"] = 1.0 if judge > baseline else 0.5 if judge == baseline else 0.0
    return row


def _score_rowwise(row_scores_per_seed: list[list[dict[str, float]]], seed: int) -> Scored:
    """Metrics that are means of per-row scores: point = mean, CI = bootstrap of the mean."""
    names = sorted({name for rows in row_scores_per_seed for row in rows for name in row})
    metrics, ci = {}, {}
    per_seed_points: list[dict[str, float]] = [{} for _ in row_scores_per_seed]
    for name in names:
        # Rows without this score (e.g. no judge for some pairs) are left out of its mean.
        matrices = []
        for s, rows in enumerate(row_scores_per_seed):
            values = np.array([row[name] for row in rows if name in row], dtype=float)
            if len(values):
                per_seed_points[s][name] = float(values.mean())
                matrices.append(values)
        if not matrices or len({len(m) for m in matrices}) != 1:
            matrices = matrices[:1]
        if not matrices:
            continue
        boot = _bootstrap(len(matrices[0]), seed, lambda draws: {
            "mean": np.mean([values[draws].mean(axis=1) for values in matrices], axis=0)})
        metrics[name] = float(np.mean([p[name] for p in per_seed_points if name in p]))
        ci[name] = _interval(boot["mean"])
    return Scored(metrics, ci, row_scores_per_seed[0], None, _std_dicts(per_seed_points))


def _mean_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([d[k] for d in dicts if k in d])) for k in dicts[0]}


def _std_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    if len(dicts) < 2:
        return {}
    keys = {k for d in dicts for k in d}
    return {k: float(np.std([d[k] for d in dicts if k in d], ddof=1)) for k in sorted(keys)
            if sum(k in d for d in dicts) > 1}


def reference_of(task: str, row: dict[str, Any]) -> Any:
    """The gold answer of a test row, by task kind (strategies.base's canonical keys)."""
    return {
        "classification": lambda: row["label"],
        "generation": lambda: row["output"],
        "qa": lambda: row["answer"],
        "preference": lambda: row.get("chosen"),
    }[task]()


def score_seeds(task: str, predictions_per_seed: list[list[Any]], references: list[Any], *,
                labels: Sequence[str] | None = None, seed: int = 0) -> Scored:
    """Score one candidate's predictions (one list per seed) against the references."""
    if not references:
        raise ValueError("no test rows to score")
    for predictions in predictions_per_seed:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions for {len(references)} test rows")
    if task == "classification":
        return _score_classification(predictions_per_seed, references, labels, seed)
    if task in ("generation", "qa"):
        rows = [[text_row_scores(p, r) for p, r in zip(predictions, references)]
                for predictions in predictions_per_seed]
        return _score_rowwise(rows, seed)
    if task == "preference":
        rows = [[preference_row_scores(p) for p in predictions]
                for predictions in predictions_per_seed]
        return _score_rowwise(rows, seed)
    raise ValueError(f"unknown task kind {task!r}")


def score(task: str, predictions: list[Any], references: list[Any], *,
          labels: Sequence[str] | None = None, seed: int = 0) -> Scored:
    return score_seeds(task, [predictions], references, labels=labels, seed=seed)


def bootstrap_ci(row_values: Sequence[float], *, seed: int = 0,
                 samples: int = BOOTSTRAP_SAMPLES) -> list[float]:
    """95% percentile-bootstrap interval of the mean of per-row values."""
    values = np.asarray(row_values, dtype=float)
    boot = _bootstrap(len(values), seed, lambda draws: {"mean": values[draws].mean(axis=1)},
                      samples)
    return _interval(boot["mean"])


# Why a metric in a record has no interval (record["metrics_without_ci"]: name -> reason).
NO_CI_EVALUATE = ("an `evaluate` metric (--metric), computed once over the whole test split; "
                  "the harness does not resample it")
NO_CI_STRATEGY = ("reported by the strategy as one number; the harness has no per-row values "
                  "to resample")


def metrics_without_ci(metrics: dict[str, float], ci: dict[str, Any],
                       evaluate_metrics: set[str] | frozenset[str] = frozenset()
                       ) -> dict[str, str]:
    """Every metric of a record that has no interval in metrics_ci, with the reason: the
    harness's own metrics all have one; `--metric` extras and a strategy's extra_metrics
    (every other name) do not."""
    return {name: NO_CI_EVALUATE if name in evaluate_metrics else NO_CI_STRATEGY
            for name in metrics if name not in ci}


# --------------------------------------------------------------------------- `evaluate` metrics


@functools.lru_cache(maxsize=None)
def load_extra_metric(name: str):
    """An `evaluate` metric by hub name or local path; a clear message when it cannot load.
    Cached: the driver checks it before the run and every candidate reuses it."""
    try:
        import evaluate
    except ImportError:
        raise TunewiseError(f"--metric {name}: the `evaluate` package is not installed "
                            "(pip install evaluate)") from None
    try:
        return evaluate.load(name)
    except Exception as exc:  # evaluate raises many kinds (FileNotFoundError, ConnectionError..)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TunewiseError(
            f"--metric {name}: cannot load this `evaluate` metric ({first}). The hub is not "
            "reachable here: pass a local metric script or folder, or use the built-in "
            "metrics (accuracy, macro_f1, precision, recall, exact_match, token_f1, rouge_l)."
        ) from None


def compute_extra_metric(metric, name: str, task: str, predictions: list[Any],
                         references: list[Any], labels: Sequence[str] | None) -> dict[str, float]:
    """Scalar results of an `evaluate` metric, named `<metric>` or `<metric>_<key>`."""
    if task == "classification":
        ordered = _classification_labels(predictions, references, labels)
        predictions = _label_indices(predictions, ordered).tolist()
        references = _label_indices(references, ordered).tolist()
    result = metric.compute(predictions=predictions, references=references) or {}
    short = re.sub(r"[^a-z0-9_]+", "_", str(name).lower().rsplit("/", 1)[-1].removesuffix(".py"))
    scalars = {}
    for key, value in result.items():
        if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
            scalars[short if key == short else f"{short}_{key}"] = float(value)
    return scalars


# --------------------------------------------------------------------------- collapsed predictions

# A candidate "collapsed" when one answer covers more than this share of the scored rows...
COLLAPSE_SHARE = 0.9
# ...while no reference answer covers this share: the data did not call for one answer.
BALANCED_SHARE = 0.5


def degenerate_predictions(task: str, predictions: Sequence[Any],
                           references: Sequence[Any]) -> str | None:
    """Why these predictions collapsed to (nearly) one answer, or None when they did not.

    Classification: one label for > 90 % of the rows where the references' largest class is
    under 50 %. Generation and qa: one (normalised) answer for > 90 % of the rows where no
    reference answer is that common, e.g. an empty or constant output. Such a candidate did not
    learn the task: its score says nothing about its method. Preference predictions are scores,
    not answers, and are never flagged."""
    if task not in ("classification", "generation", "qa") or len(predictions) < 2 or \
            len(predictions) != len(references):
        return None
    key = str if task == "classification" else normalize_answer
    predicted = collections.Counter(key(_first_answer(p)) for p in predictions)
    expected = collections.Counter(key(_first_answer(r)) for r in references)
    answer, count = predicted.most_common(1)[0]
    largest = expected.most_common(1)[0][1] / len(references)
    if count / len(predictions) <= COLLAPSE_SHARE or largest >= BALANCED_SHARE:
        return None
    what = "the same answer" if task != "classification" else f"the label {answer!r}"
    shown = f" ({answer[:40]!r})" if task != "classification" else ""
    return (f"predicts {what}{shown} for {count} of {len(predictions)} scored rows, while the "
            f"references' most common answer covers {largest:.0%}")


def _first_answer(value: Any) -> str:
    """A qa reference may list several accepted answers: the first stands for the row."""
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def collapse_over_seeds(task: str, predictions_per_seed: Sequence[Sequence[Any]],
                        references: Sequence[Any]) -> dict[str, Any]:
    """The record's `degenerate` flag (and `degenerate_why`): set when any seed's predictions
    collapsed, since the seed-mean score then hides a run that learned nothing."""
    for seed_index, predictions in enumerate(predictions_per_seed):
        why = degenerate_predictions(task, predictions, references)
        if why:
            seed = f" (repeat {seed_index + 1})" if len(predictions_per_seed) > 1 else ""
            return {"degenerate": True, "degenerate_why": why + seed}
    return {"degenerate": False}
