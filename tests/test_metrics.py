"""Metrics against hand-computed values, scikit-learn agreement, and bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from bench import metrics
from bench.errors import TunewiseError


def test_classification_against_hand_computed_values():
    references = ["a", "a", "a", "b", "b", "c"]
    predictions = ["a", "a", "b", "b", "c", "c"]
    scored = metrics.score("classification", predictions, references, labels=["a", "b", "c"])
    # per label: a P=2/2 R=2/3; b P=1/2 R=1/2; c P=1/2 R=1/1
    precision = (1 + 0.5 + 0.5) / 3
    recall = (2 / 3 + 0.5 + 1) / 3
    f1s = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 * 1 / 1.5]
    assert scored.metrics["accuracy"] == pytest.approx(4 / 6)
    assert scored.metrics["precision"] == pytest.approx(precision)
    assert scored.metrics["recall"] == pytest.approx(recall)
    assert scored.metrics["macro_f1"] == pytest.approx(sum(f1s) / 3)
    assert scored.confusion == {"labels": ["a", "b", "c"],
                                "matrix": [[2, 1, 0], [0, 1, 1], [0, 0, 1]]}
    assert [row["correct"] for row in scored.row_scores] == [1, 1, 0, 1, 0, 1]


def test_numpy_bootstrap_formulas_agree_with_sklearn():
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    labels = ["x", "y", "z", "w"]
    for _ in range(20):
        n = int(rng.integers(5, 40))
        y_true = [labels[i] for i in rng.integers(0, 4, n)]
        y_pred = [labels[i] for i in rng.integers(0, 3, n)]  # "w" never predicted
        ordered = metrics._classification_labels(y_pred, y_true, labels)
        cm = np.zeros((len(ordered), len(ordered)), dtype=np.int64)
        for t, p in zip(y_true, y_pred):
            cm[ordered.index(t), ordered.index(p)] += 1
        ours = metrics._metrics_from_confusions(cm[None])
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro",
                                                     zero_division=0)
        assert ours["accuracy"][0] == pytest.approx(accuracy_score(y_true, y_pred))
        assert ours["precision"][0] == pytest.approx(p)
        assert ours["recall"][0] == pytest.approx(r)
        assert ours["macro_f1"][0] == pytest.approx(f)


def test_scores_and_per_class_figures_agree_with_sklearn():
    """The record's point estimates, confusion matrix and per-class rows (numpy) against
    scikit-learn's own functions, on random predictions with a stray label and a label that
    never occurs."""
    from sklearn.metrics import (accuracy_score, confusion_matrix,
                                 precision_recall_fscore_support)

    rng = np.random.default_rng(1)
    labels = ["x", "y", "z", "never"]
    for _ in range(20):
        n = int(rng.integers(3, 40))
        y_true = [labels[i] for i in rng.integers(0, 3, n)]
        y_pred = [(labels[:3] + ["stray"])[i] for i in rng.integers(0, 4, n)]
        scored = metrics.score("classification", y_pred, y_true, labels=labels)
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro",
                                                     zero_division=0)
        assert scored.metrics["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
        assert scored.metrics["precision"] == pytest.approx(p)
        assert scored.metrics["recall"] == pytest.approx(r)
        assert scored.metrics["macro_f1"] == pytest.approx(f)
        ordered = scored.confusion["labels"]
        assert scored.confusion["matrix"] == confusion_matrix(y_true, y_pred,
                                                              labels=ordered).tolist()
        rows = metrics.per_class_scores([y_pred], y_true, labels=labels)
        p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=ordered,
                                                           average=None, zero_division=0)
        assert [row["label"] for row in rows] == ordered
        assert [row["precision"] for row in rows] == pytest.approx(list(p), abs=1e-6)
        assert [row["recall"] for row in rows] == pytest.approx(list(r), abs=1e-6)
        assert [row["f1"] for row in rows] == pytest.approx(list(f), abs=1e-6)
        assert [row["support"] for row in rows] == list(support)


def test_prediction_outside_the_labels_counts_as_wrong():
    scored = metrics.score("classification", ["a", "banana"], ["a", "b"], labels=["a", "b"])
    assert scored.metrics["accuracy"] == 0.5
    assert scored.confusion["labels"] == ["a", "b", "banana"]


def test_squad_normalisation_exact_match_and_token_f1():
    assert metrics.normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert metrics.exact_match("the Eiffel tower.", "Eiffel Tower") == 1.0
    assert metrics.exact_match("Eiffel", "Eiffel Tower") == 0.0
    # prediction "paris france" vs reference "paris": P=1/2, R=1 -> F1=2/3
    assert metrics.token_f1("Paris, France", "Paris") == pytest.approx(2 / 3)
    assert metrics.token_f1("London", "Paris") == 0.0
    assert metrics.token_f1("", "") == 1.0
    # a list of acceptable answers: the best one counts
    assert metrics.text_row_scores("Paris", ["the city of Paris", "Paris"])["exact_match"] == 1


def test_rouge_l_against_hand_computed_lcs():
    # LCS("the cat sat on the mat", "the cat lay on the mat") = 5 tokens of 6 and 6
    assert metrics.rouge_l("the cat lay on the mat", "the cat sat on the mat") == \
        pytest.approx(5 / 6)
    assert metrics.rouge_l("completely different", "the cat sat") == 0.0


def test_generation_metrics_are_means_of_rows():
    scored = metrics.score("generation", ["apple", "pear tree", ""],
                           ["apple", "pear", "plum"])
    assert scored.metrics["exact_match"] == pytest.approx(1 / 3)
    assert scored.metrics["token_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert set(scored.ci) == {"exact_match", "token_f1", "rouge_l"}


def test_preference_accuracy_and_win_rate_with_ties_counting_half():
    predictions = [
        {"chosen_logp": -1.0, "rejected_logp": -2.0, "judge_score": 1.0,
         "baseline_judge_score": 0.0},
        {"chosen_logp": -3.0, "rejected_logp": -2.0, "judge_score": 0.5,
         "baseline_judge_score": 0.5},
        {"chosen_logp": -1.0, "rejected_logp": -1.5, "judge_score": 0.0,
         "baseline_judge_score": 2.0},
        {"chosen_logp": -1.0, "rejected_logp": -1.0},  # equal: not preferred; no judge
    ]
    scored = metrics.score("preference", predictions, [None] * 4)
    assert scored.metrics["preference_accuracy"] == pytest.approx(2 / 4)
    assert scored.metrics["win_rate"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_preference_without_judge_has_no_win_rate():
    scored = metrics.score("preference", [{"chosen_logp": 0.0, "rejected_logp": -1.0}], [None])
    assert scored.metrics == {"preference_accuracy": 1.0}


def test_bootstrap_contains_the_point_and_narrows_with_more_rows():
    rng = np.random.default_rng(1)
    widths = []
    for n in (40, 400, 4000):
        rows = (rng.random(n) < 0.7).astype(float)
        low, high = metrics.bootstrap_ci(rows, seed=0)
        assert low <= rows.mean() <= high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # about 2 * 1.96 * sqrt(p (1-p) / n) for a proportion
    assert widths[1] == pytest.approx(2 * 1.96 * np.sqrt(0.21 / 400), rel=0.25)


def test_classification_interval_contains_point_and_narrows():
    widths = []
    for repeat in (1, 10):
        references = ["a", "b", "a", "b", "a"] * 4 * repeat
        predictions = ["a", "a", "a", "b", "b"] * 4 * repeat
        scored = metrics.score("classification", predictions, references, labels=["a", "b"])
        for name, (low, high) in scored.ci.items():
            assert low <= scored.metrics[name] + 1e-9 and scored.metrics[name] <= high + 1e-9
        widths.append(scored.ci["accuracy"][1] - scored.ci["accuracy"][0])
    assert widths[0] > widths[1]


def test_seeds_give_mean_and_std():
    references = ["a", "b", "a", "b"]
    scored = metrics.score_seeds("classification", [["a", "b", "a", "b"], ["a", "a", "a", "a"]],
                                 references, labels=["a", "b"])
    assert scored.metrics["accuracy"] == pytest.approx(0.75)
    assert scored.std["accuracy"] == pytest.approx(np.std([1.0, 0.5], ddof=1))


def test_wrong_number_of_predictions_is_an_error():
    with pytest.raises(ValueError, match="2 predictions for 3 test rows"):
        metrics.score("qa", ["a", "b"], ["a", "b", "c"])


def test_unknown_evaluate_metric_is_a_clear_error():
    with pytest.raises(TunewiseError, match="cannot load this `evaluate` metric"):
        metrics.load_extra_metric("surely_not_a_metric_xyz")


class _FakeEvaluateMetric:
    def compute(self, predictions, references):
        hits = sum(p == r for p, r in zip(predictions, references))
        return {"hits": hits, "per_row": [1, 2], "exact": hits / len(references)}


def test_extra_metric_scalars_are_named_after_the_metric():
    values = metrics.compute_extra_metric(_FakeEvaluateMetric(), "path/to/exact.py",
                                          "classification", ["a", "b"], ["a", "a"], ["a", "b"])
    assert values == {"exact_hits": 1.0, "exact": 0.5}


LOCAL_METRIC = '''
import datasets
import evaluate


class ShareExact(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="share of exact matches", citation="", inputs_description="",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}))

    def _compute(self, predictions, references):
        hits = sum(p == r for p, r in zip(predictions, references))
        return {"share_exact": hits / len(references), "hits": hits}
'''


def test_a_local_evaluate_metric_script_is_loaded_and_scored(tmp_path):
    script = tmp_path / "share_exact" / "share_exact.py"
    script.parent.mkdir()
    script.write_text(LOCAL_METRIC)
    metric = metrics.load_extra_metric(str(script))
    values = metrics.compute_extra_metric(metric, str(script), "qa", ["a", "b", "c"],
                                          ["a", "x", "c"], None)
    assert values == {"share_exact": pytest.approx(2 / 3), "share_exact_hits": 2.0}


def test_large_test_sets_bootstrap_in_chunks_with_the_same_answer(monkeypatch):
    rng = np.random.default_rng(3)
    references = [["a", "b", "c"][i] for i in rng.integers(0, 3, 3000)]
    predictions = [r if rng.random() < 0.8 else "a" for r in references]
    whole = metrics.score("classification", predictions, references, labels=["a", "b", "c"])
    monkeypatch.setattr(metrics, "MAX_DRAW_CELLS", 3000 * 7)  # 7 resamples per chunk
    chunked = metrics.score("classification", predictions, references, labels=["a", "b", "c"])
    for name in metrics.CLASSIFICATION_METRICS:
        assert chunked.ci[name] == pytest.approx(whole.ci[name], abs=0.01)
        assert chunked.ci[name][0] <= whole.metrics[name] <= chunked.ci[name][1]


# ------------------------------------------------------------------ collapsed predictions

def test_one_class_for_almost_every_row_on_balanced_references_is_degenerate():
    references = ["a", "b", "c", "d"] * 24  # largest class 25 %
    collapsed = ["a"] * 95 + ["b"]
    why = metrics.degenerate_predictions("classification", collapsed, references)
    assert why is not None and "'a'" in why and "95 of 96" in why and "25%" in why
    # 90 % exactly is not "more than 90 %"; a varied, even poor, classifier is not flagged
    assert metrics.degenerate_predictions("classification", ["a"] * 87 + ["b"] * 9,
                                          references) is not None  # 90.6 %
    assert metrics.degenerate_predictions("classification", ["a"] * 90 + ["b"] * 10,
                                          ["a", "b", "c", "d"] * 25) is None
    assert metrics.degenerate_predictions("classification", ["a", "b"] * 48, references) is None


def test_one_class_is_not_degenerate_when_the_references_are_skewed_that_way():
    references = ["spam"] * 60 + ["ham"] * 36  # largest class 62 %: predicting it is a choice
    assert metrics.degenerate_predictions("classification", ["spam"] * 96, references) is None


def test_a_constant_generated_answer_is_degenerate_and_preference_never_is():
    references = [f"answer number {i}" for i in range(20)]
    why = metrics.degenerate_predictions("generation", ["I don't know."] * 20, references)
    assert why is not None and "same answer" in why and "20 of 20" in why
    # normalisation: case and punctuation do not make answers different
    assert metrics.degenerate_predictions("qa", ["Paris."] * 19 + ["paris"],
                                          [[f"city {i}", "x"] for i in range(20)]) is not None
    assert metrics.degenerate_predictions("generation", references, references) is None
    # every reference the same: a constant answer may be right
    assert metrics.degenerate_predictions("qa", ["yes"] * 20, [["yes"]] * 20) is None
    assert metrics.degenerate_predictions("preference", [{"chosen": 1.0}] * 20,
                                          [None] * 20) is None


def test_the_record_flag_is_set_when_any_seed_collapsed():
    references = ["a", "b", "c", "d"] * 5
    varied = ["a", "b"] * 10
    assert metrics.collapse_over_seeds("classification", [varied, varied], references) == \
        {"degenerate": False}
    flagged = metrics.collapse_over_seeds("classification", [varied, ["b"] * 20], references)
    assert flagged["degenerate"] is True and "(repeat 2)" in flagged["degenerate_why"]


def test_per_class_scores_against_hand_computed_values_and_sklearn():
    from sklearn.metrics import classification_report

    references = ["a", "a", "a", "b", "b", "c"]
    predictions = ["a", "a", "b", "b", "c", "c"]
    rows = metrics.per_class_scores([predictions], references, labels=["a", "b", "c"])
    assert [r["label"] for r in rows] == ["a", "b", "c"]
    # a P=2/2 R=2/3; b P=1/2 R=1/2; c P=1/2 R=1/1 (as in the hand-computed test above)
    assert [r["precision"] for r in rows] == pytest.approx([1.0, 0.5, 0.5])
    assert [r["recall"] for r in rows] == pytest.approx([2 / 3, 0.5, 1.0])
    assert [r["support"] for r in rows] == [3, 2, 1]
    assert [r["predicted"] for r in rows] == [2, 2, 2]
    report = classification_report(references, predictions, output_dict=True, zero_division=0)
    for row in rows:
        assert row["f1"] == pytest.approx(report[row["label"]]["f1-score"], abs=1e-6)
    # The macro figures the record keeps are the means of these rows.
    scored = metrics.score("classification", predictions, references, labels=["a", "b", "c"])
    assert scored.metrics["macro_f1"] == pytest.approx(np.mean([r["f1"] for r in rows]), abs=1e-6)


def test_per_class_scores_average_seeds_and_list_stray_predictions():
    references = ["a", "b", "b", "a"]
    seeds = [["a", "b", "a", "a"], ["a", "banana", "b", "b"]]
    rows = {r["label"]: r for r in metrics.per_class_scores(seeds, references, labels=["a", "b"])}
    assert list(rows) == ["a", "b", "banana"]
    # seed 0: a P=2/3 R=1, b P=1 R=1/2; seed 1: a P=1 R=1/2, b P=1/2 R=1/2
    assert rows["a"]["precision"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-6)
    assert rows["a"]["recall"] == pytest.approx(0.75)
    assert rows["b"]["recall"] == pytest.approx(0.5)
    assert rows["banana"]["support"] == 0 and rows["banana"]["precision"] == 0.0
    assert rows["a"]["predicted"] == 3  # counted on the first seed


def test_reward_scores_give_reward_accuracy_margin_and_preference_accuracy():
    predictions = [{"chosen_reward": 2.0, "rejected_reward": 0.5},
                   {"chosen_reward": -1.0, "rejected_reward": 0.0}]
    scored = metrics.score("preference", predictions, [None] * 2)
    assert scored.metrics == pytest.approx({"reward_accuracy": 0.5, "reward_margin": 0.25,
                                            "preference_accuracy": 0.5})
    assert set(scored.ci) == set(scored.metrics)  # each with its bootstrap interval


def test_metrics_without_an_interval_are_named_with_the_reason():
    record_metrics = {"accuracy": 0.5, "f1": 0.4, "fake_score": 0.1}
    missing = metrics.metrics_without_ci(record_metrics, {"accuracy": [0.4, 0.6]},
                                         evaluate_metrics={"f1"})
    assert missing == {"f1": metrics.NO_CI_EVALUATE, "fake_score": metrics.NO_CI_STRATEGY}
    assert metrics.metrics_without_ci({"accuracy": 0.5}, {"accuracy": [0.4, 0.6]}) == {}


# --------------------------------------------------------------------------- blind test rows


def test_the_view_keeps_inputs_only_and_shuffles_pairs():
    from bench.split_view import blind_rows, chosen_shown_first

    rows = [{"text": "a", "label": "x", "note": "?"}]
    assert blind_rows("classification", rows, 0) == [{"text": "a"}]  # unknown columns too
    assert blind_rows("qa", [{"question": "q", "context": "c", "answer": "a",
                              "answers": ["a", "b"]}], 0) == [{"question": "q", "context": "c"}]
    assert blind_rows("generation", [{"instruction": "i", "input": "", "output": "o"}], 0) == [
        {"instruction": "i", "input": ""}]
    pairs = [{"prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}
             for i in range(200)]
    shown = blind_rows("preference", pairs, 7)
    first = chosen_shown_first(7, 200)
    assert 60 < sum(first) < 140  # about half each way
    assert first == chosen_shown_first(7, 200) != chosen_shown_first(8, 200)  # seeded
    for row, view, chosen_first in zip(pairs, shown, first):
        assert set(view) == {"prompt", "response_a", "response_b"}
        assert view["response_a" if chosen_first else "response_b"] == row["chosen"]


def test_unblinding_maps_neutral_scores_back_and_drops_claimed_ones():
    from bench.split_view import chosen_shown_first, unblind_predictions

    first = chosen_shown_first(3, 40)
    predictions = [{"response_a_logp": -1.0, "response_b_logp": -2.0, "response": "hi",
                    "chosen_logp": 5.0} for _ in first]  # a claimed chosen_logp is a guess
    mapped = unblind_predictions("preference", predictions, 3)
    for row, chosen_first in zip(mapped, first):
        assert row["chosen_logp"] == (-1.0 if chosen_first else -2.0)
        assert row["rejected_logp"] == (-2.0 if chosen_first else -1.0)
        assert row["response"] == "hi" and "response_a_logp" not in row
    scored = metrics.score("preference", mapped, [None] * 40)
    assert scored.metrics["preference_accuracy"] == pytest.approx(sum(first) / 40)
    claimed_only = unblind_predictions("preference", [{"chosen_logp": 1.0,
                                                       "rejected_logp": 0.0}], 3)
    assert claimed_only == [{}]  # nothing the scorer may trust
    assert unblind_predictions("classification", ["a", "b"], 3) == ["a", "b"]
